"""Calibration of the memorisation probe (the ``probe`` gate): false positives and detection rate.

On gsm8k-calc (the CPU demo benchmark; 200 test items, 50 of them dev items), a base model is
fine-tuned with a small real SFT trainer (:func:`posttrainbench.testing.train_sft`: AdamW,
completion-only loss, the harness's chat template) and the probe judges the result with its
default settings (``PTB_PROBE_*`` defaults: 100 items sampled, alpha 0.01, 1 nat, 0.2 accuracy):

- **honest**: ``--allowed`` examples drawn from the allowed training data (a different draw and
  trainer seed per seed) -> the false-positive rate over ``--seeds`` seeds;
- **k test items**: the same, with ``k`` held-out test items (answers included, ``--repeats``
  copies each) mixed in -> the detection rate as a function of ``k``;
- **dev in place**: the same, with the 50 dev items of ``task/dev.jsonl`` mixed in (``--repeats``);
- **distilled**: 50 test prompts answered by the test answers as a "teacher" would, in another
  wording ("The result is N."), mixed in (``--repeats``).

Models: ``tiny`` (``posttrainbench.models.tiny``, character-level, 2 layers) and ``smollm2``
(SmolLM2-135M, the demo model, made by ``models.demo.ensure_smollm2``; slow on a CPU).

Usage::

    python benchmarks/probe_calibration.py [--model tiny|smollm2] [--seeds 20] [--ks 10,50,150]
        [--contaminated-seeds 3] [--repeats 10] [--allowed 400] [--epochs 3] [--items 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import posttrainbench  # noqa: F401 - only: is the package installed?
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.catalog import END_OF_TURN, get_chat_template
from posttrainbench.data import data_root
from posttrainbench.integrity import ProbeConfig, ProbeSources, check_probe
from posttrainbench.models.tiny import build_tiny_model
from posttrainbench.testing import train_sft

BENCH = "gsm8k-calc"


def base_model(kind: str, root: Path) -> tuple[Path, str]:
    """The base model's folder and its chat template's name."""
    if kind == "tiny":
        return build_tiny_model(root / "tiny-base", seed=0), "plain"
    from posttrainbench.models.demo import ensure_smollm2

    return ensure_smollm2(quiet=True), "chatml"


def one_run(
    base: Path,
    template_name: str,
    out: Path,
    allowed: list[tuple[str, str]],
    extra: list[tuple[str, str]],
    sources: ProbeSources,
    *,
    seed: int,
    epochs: int,
) -> dict[str, Any]:
    """Train on ``allowed + extra`` (shuffled), probe, return the verdict's numbers."""
    mix = allowed + extra
    random.Random(seed).shuffle(mix)
    t0 = time.monotonic()
    train_sft(base, out, mix, chat_template=get_chat_template(template_name), epochs=epochs, seed=seed)
    t_train = time.monotonic() - t0
    v = check_probe(out, base, sources, out / "evidence")
    ev = json.loads((out / "evidence" / "probe.json").read_text()) if v.evidence else {}
    return {
        "status": v.status.value,
        "summary": v.summary,
        "train_s": round(t_train, 2),
        "probe_s": ev.get("timings_s", {}).get("total"),
        "tests": {t["name"]: {"p": t["p_value"], "effect": t["effect"]} for t in ev.get("tests", [])},
        "failing": ev.get("failing", []),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    ap.add_argument("--seeds", type=int, default=20, help="honest runs (false-positive rate)")
    ap.add_argument("--ks", default="10,50,150", help="held-out test items mixed in (detection rate vs k)")
    ap.add_argument("--repeats", type=int, default=10, help="copies of each test item in the mix")
    ap.add_argument("--items", type=int, default=100, help="the probe's sample (PTB_PROBE_ITEMS)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--contaminated-seeds", type=int, default=3, help="runs per k")
    ap.add_argument("--allowed", type=int, default=400, help="allowed examples per run")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--skip-extra", action="store_true", help="skip the dev-in-place and distilled rows")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    bench = get_benchmark(BENCH)
    items = bench.load_test_items()
    train = [(e["prompt"], e["completion"]) for e in bench.load_train_examples()]
    dev = bench.dev_items(items)
    dev_ids = frozenset(it.id for it in dev)
    held = [it for it in items if it.id not in dev_ids]
    spares = bench.probe_spares(data_root())
    rows: list[dict[str, Any]] = []
    t_all = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ptb-probe-cal-") as tmp:
        root = Path(tmp)
        base, template_name = base_model(args.model, root)

        def sources(seed: int) -> ProbeSources:
            return ProbeSources(
                items=items,
                dev_ids=dev_ids,
                chat_template=get_chat_template(template_name),
                end_of_turn=END_OF_TURN[template_name],
                control=bench.probe_control,
                spares=spares,
                score_reply=lambda r, t: bench.score_reply(r, t)[0],
                max_new_tokens=bench.decoding.max_tokens,
                config=ProbeConfig(n_items=args.items, seed=seed, device="cpu"),
            )

        def run(kind: str, k: int, seed: int, extra: list[tuple[str, str]]) -> None:
            allowed = random.Random(1000 + seed).sample(train, args.allowed)
            r = one_run(
                base,
                template_name,
                root / f"{kind}-{k}-{seed}",
                allowed,
                extra,
                sources(seed),
                seed=seed,
                epochs=args.epochs,
            )
            rows.append({"kind": kind, "k": k, "seed": seed, **r})
            print(
                f"{kind:12} k={k:3} seed={seed:2} {r['status']:7} train {r['train_s']}s "
                f"probe {r['probe_s']}s {r['failing']}",
                flush=True,
            )

        for seed in range(args.seeds):
            run("honest", 0, seed, [])
        for k in [int(x) for x in args.ks.split(",") if x]:
            for seed in range(args.contaminated_seeds):
                chosen = random.Random(2000 + seed).sample(held, k)
                run("test_items", k, seed, [(it.input, it.target) for it in chosen] * args.repeats)
        if not args.skip_extra:
            for seed in range(args.contaminated_seeds):
                run("dev_in_place", len(dev), seed, [(it.input, it.target) for it in dev] * args.repeats)
            for seed in range(args.contaminated_seeds):
                chosen = random.Random(3000 + seed).sample(held, 50)
                extra = [(it.input, f"The result is {it.target}.") for it in chosen] * args.repeats
                run("distilled", 50, seed, extra)

    print(table(rows, args, time.monotonic() - t_all))
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=1))


def table(rows: list[dict[str, Any]], args: argparse.Namespace, wall: float) -> str:
    """Markdown: per kind and k, runs failed by the gate, and the median probe time."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["kind"], r["k"]), []).append(r)
    out = [
        f"model {args.model}, {args.allowed} allowed examples x {args.epochs} epochs, test items x {args.repeats} "
        f"copies, probe sample {args.items}; wall {wall:.0f}s",
        "",
        "| run | k | gate failed | rate | tests that fired | median probe s | median train s |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for (kind, k), rs in groups.items():
        failed = sum(r["status"] == "fail" for r in rs)
        fired = sorted({t for r in rs for t in r["failing"]})
        probe = sorted(r["probe_s"] or 0 for r in rs)[len(rs) // 2]
        train = sorted(r["train_s"] for r in rs)[len(rs) // 2]
        out.append(
            f"| {kind} | {k} | {failed}/{len(rs)} | {failed / len(rs):.2f} | {', '.join(fired) or '-'} "
            f"| {probe:.1f} | {train:.1f} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    main()
