"""The memorisation probe: whatever happened to the files, training on test items leaves a
signature in the weights.

For a random sample of the benchmark's test items (``n_items``, always including the dev items
the agent was given, up to half of the sample), the probe measures, with the final model and
with the base model, the log-likelihood (nats) of

- ``answer``: the item's answer given its prompt, rendered in the harness's chat template (what
  completion-only SFT trains);
- ``text``: the item's whole text, prompt and answer (what plain-text training trains);

for the original item and for ``CONTROLS`` perturbed copies of it (numbers renamed consistently
in prompt and answer, or the benchmark's own control, e.g. gsm8k-calc recomputes the answer;
words swapped when an item has no number): texts no one trained on. An item's *gain* is final
minus base; an honest fine-tune that teaches the benchmark's skill raises the gain of the
controls as much as the original's, a fine-tune on the item raises the original's only. The
tests (:mod:`.probe_stats`): per channel a dominance count (exact binomial) and a rank shift;
and the final model's greedy accuracy on the dev items it was given against held-out items
(one-sided Fisher), which catches training on the dev items in place. A test fails the gate
when its p-value is below ``alpha`` divided by the number of tests (Bonferroni) *and* its effect
reaches the minimum (``min_nats`` nats; ``min_acc_gap`` accuracy), so that a huge honest run
does not fail on a tiny effect. Everything (per-item gains, statistics, p-values, effects, the
sample and its seed, timings) is in ``evidence/probe.json``.

The sample's seed is drawn at verification time unless configured (an agent that knew the sample
could train on the other items only); it is recorded, so the verdict can be reproduced.
"""

from __future__ import annotations

import math
import random
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data import Item
from ..domain import Verdict, VerdictStatus
from ._common import guarded, not_run, verdict, write_evidence
from .probe_stats import (
    TestResult,
    dominance_test,
    dominance_vs_spares,
    fisher_greater,
    shift_test,
    shift_vs_spares,
)

GATE = "probe"
CONTROLS = 4
MIN_ITEMS = 10
BATCH = 16
SMALL_MODEL_PARAMS = 20_000_000

#: Numbers of the benchmark's test items by shape (length, decimal point), with repeats: controls
#: draw their numbers from it, so that they follow the benchmark's own number distribution.
NumberPool = dict[tuple[int, bool], list[str]]
#: A control of an item: a perturbed copy nobody trained on (None: the item has none).
Control = Callable[[Item, random.Random, NumberPool], Item | None]

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z]{3,}")


@dataclass(frozen=True)
class ProbeConfig:
    """The probe's knobs (``PTB_PROBE_*``)."""

    n_items: int = 100
    alpha: float = 0.01
    min_nats: float = 1.0
    min_acc_gap: float = 0.2
    gen_tokens: int = 32
    max_tokens: int = 1024
    device: str = "auto"
    seed: int | None = None


def number_pool(items: Sequence[Item]) -> NumberPool:
    """Every number of ``items`` (turns, prompt, answer) by shape, with repeats."""
    pool: NumberPool = {}
    for it in items:
        for tok in _NUMBER.findall(it.test_text()):
            pool.setdefault(_shape(tok), []).append(tok)
    return pool


def _shape(tok: str) -> tuple[int, bool]:
    return len(tok), "." in tok


def renumber(text: str, mapping: dict[str, str], rng: random.Random, pool: NumberPool | None = None) -> str:
    """``text`` with every number replaced by its image in ``mapping``; a number seen the first
    time gets a number of the same shape drawn from ``pool`` (random digits when the pool has
    none other), never itself."""

    def new(tok: str) -> str:
        if tok not in mapping:
            choices = (pool or {}).get(_shape(tok), [])
            cand = tok
            for attempt in range(40):  # from the pool first, then random digits of the same shape
                use_pool = choices and attempt < 20
                cand = rng.choice(choices) if use_pool else ".".join(_fresh_digits(p, rng) for p in tok.split("."))
                if cand != tok:
                    break
            mapping[tok] = cand
        return mapping[tok]

    return _NUMBER.sub(lambda m: new(m.group(0)), text)


def _fresh_digits(digits: str, rng: random.Random) -> str:
    if not digits:
        return digits
    first = str(rng.randint(1, 9)) if len(digits) > 1 or digits != "0" else str(rng.randint(0, 9))
    return first + "".join(str(rng.randint(0, 9)) for _ in digits[1:])


def swap_words(text: str, rng: random.Random, swaps: int = 2) -> str:
    """``text`` with up to ``swaps`` disjoint pairs of neighbouring words (3+ letters) exchanged."""
    spans = [m.span() for m in _WORD.finditer(text)]
    pairs = list(range(0, len(spans) - 1, 2))  # disjoint pairs (0,1), (2,3), ...
    out = text
    for i in sorted(rng.sample(pairs, min(swaps, len(pairs))), reverse=True):
        (a, b), (c, d) = spans[i], spans[i + 1]
        if out[a:b] != out[c:d]:
            out = out[:a] + out[c:d] + out[b:c] + out[a:b] + out[d:]
    return out


def renumber_item(item: Item, rng: random.Random, pool: NumberPool) -> Item | None:
    """The default control: the item's own turns, prompt and answer with every number renamed
    consistently (to numbers of the same shape drawn from the benchmark's ``pool``); an item
    without numbers gets two neighbouring word pairs swapped instead."""
    mapping: dict[str, str] = {}
    context = tuple(t.model_copy(update={"content": renumber(t.content, mapping, rng, pool)}) for t in item.context)
    out = item.model_copy(
        update={
            "context": context,
            "input": renumber(item.input, mapping, rng, pool),
            "target": renumber(item.target, mapping, rng, pool),
        }
    )
    if out.test_text() == item.test_text():
        out = item.model_copy(update={"input": swap_words(item.input, rng)})
    return None if out.test_text() == item.test_text() else out


@dataclass(frozen=True)
class ProbeSources:
    """What the probe reads besides the two models: the benchmark's test items, the ids of the
    dev items the agent was given, the harness's chat template, and the benchmark's hooks."""

    items: list[Item]
    dev_ids: frozenset[str]
    chat_template: str
    end_of_turn: tuple[str, ...] = ()
    control: Control = renumber_item
    #: Items of the benchmark's distribution that are neither evaluated nor allowed training data
    #: (empty: the tests assume the exchangeability null; see :mod:`.probe_stats`).
    spares: list[Item] = field(default_factory=list)
    #: ``(reply, target) -> correct`` (None: no accuracy comparison).
    score_reply: Callable[[str, str], bool] | None = None
    #: The benchmark's own generation budget (the greedy pass uses at most this many tokens).
    max_new_tokens: int = 32
    config: ProbeConfig = field(default_factory=ProbeConfig)


@dataclass
class _Texts:
    """The texts of one item (original first, then its controls) in both channels."""

    item: Item
    dev: bool
    spare: bool
    variants: list[Item]
    seqs: list[tuple[list[int], int]] = field(default_factory=list)  # (ids, first answer position)


def _messages(item: Item) -> list[dict[str, str]]:
    return [{"role": t.role, "content": t.content} for t in (*item.fewshot, *item.context)] + [
        {"role": "user", "content": item.input}
    ]


def _encode(tok: Any, template: str, item: Item, max_tokens: int) -> tuple[list[int], int]:
    """``(ids, first answer position)`` of an item's conversation with its answer, rendered in
    the chat template (as SFT data is), cut to its last ``max_tokens`` tokens."""
    msgs = _messages(item)
    prompt = tok.apply_chat_template(msgs, chat_template=template, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(
        [*msgs, {"role": "assistant", "content": item.target}], chat_template=template, tokenize=False
    )
    if not full.startswith(prompt) or len(full) == len(prompt):
        full = prompt + item.target
    enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    if tok.bos_token_id is not None and (not ids or ids[0] != tok.bos_token_id):
        ids, offsets = [tok.bos_token_id, *ids], [(0, 0), *offsets]
    start = next((i for i, (a, b) in enumerate(offsets) if b > a and a >= len(prompt)), len(ids))
    cut = max(0, len(ids) - max_tokens)
    return ids[cut:], max(1, start - cut)


def _token_logprobs(model: Any, seqs: Sequence[list[int]], device: str) -> list[list[float]]:
    """Per sequence, ``log p(token t | tokens < t)`` for t >= 1 (batched, right-padded)."""
    import torch

    out: list[list[float]] = [[] for _ in seqs]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    with torch.inference_mode():
        for b in range(0, len(order), BATCH):
            idx = order[b : b + BATCH]
            width = max(len(seqs[i]) for i in idx)
            ids = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, : len(seqs[i])] = torch.tensor(seqs[i])
                mask[r, : len(seqs[i])] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None].to(device))[..., 0].cpu()
            for r, i in enumerate(idx):
                out[i] = lp[r, : len(seqs[i]) - 1].tolist()
    return out


def _load(path: Path, device: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    return model.to(device).eval()


@contextmanager
def _cpu_threads(model: Any, device: str) -> Iterator[None]:
    """One torch thread for a small model on the CPU (its batches are too small for threads to
    pay: on a shared 2-core machine two threads made the tiny model's probe 10x slower)."""
    import torch

    small = device == "cpu" and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS
    before = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _device(wanted: str) -> str:
    import torch

    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def _greedy(
    model: Any, tok: Any, prompts: list[str], max_new: int, stops: tuple[str, ...], device: str, context: int
) -> list[str]:
    """Greedy replies to rendered prompts (left-padded batches, each prompt keeping its last
    ``context - max_new`` tokens), cut at the first stop string."""
    import torch

    replies: list[str] = []
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    with torch.inference_mode():
        for b in range(0, len(prompts), BATCH):
            keep = max(1, context - max_new)
            enc = [list(tok(p, add_special_tokens=False)["input_ids"])[-keep:] for p in prompts[b : b + BATCH]]
            width = max(len(e) for e in enc)
            ids = torch.full((len(enc), width), pad, dtype=torch.long)
            mask = torch.zeros((len(enc), width), dtype=torch.long)
            for r, e in enumerate(enc):
                ids[r, width - len(e) :] = torch.tensor(e)
                mask[r, width - len(e) :] = 1
            gen = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new,
                do_sample=False,
                pad_token_id=pad,
            )
            for row in gen[:, width:].cpu().tolist():
                text = tok.decode(row, skip_special_tokens=True)
                cuts = [text.index(s) for s in stops if s in text]
                replies.append(text[: min(cuts)] if cuts else text)
    return replies


def _sample(sources: ProbeSources, cfg: ProbeConfig, rng: random.Random) -> list[Item]:
    """Up to ``n_items`` items: dev items (at most a quarter of them: training on the dev items in
    place touches every one), then held-out ones."""
    dev = [it for it in sources.items if it.id in sources.dev_ids]
    held = [it for it in sources.items if it.id not in sources.dev_ids]
    n_dev = min(len(dev), cfg.n_items // 4)
    dev_s = rng.sample(dev, n_dev)
    held_s = rng.sample(held, min(len(held), cfg.n_items - n_dev))
    return dev_s + held_s


@guarded(GATE)
def check_probe(
    final_model: Path, base_model: Path, sources: ProbeSources, evidence_dir: Path | None = None
) -> Verdict:
    """The memorisation probe's verdict on ``final_model`` against ``base_model`` (module docstring)."""
    from transformers import AutoConfig, AutoTokenizer

    cfg = sources.config
    t0 = time.monotonic()
    seed = cfg.seed if cfg.seed is not None else secrets.randbits(63)
    rng = random.Random(seed)
    sample = _sample(sources, cfg, rng)
    pool = number_pool(sources.items)
    spares = rng.sample(sources.spares, min(len(sources.spares), cfg.n_items)) if sources.spares else []
    tok = AutoTokenizer.from_pretrained(base_model)
    context = getattr(AutoConfig.from_pretrained(base_model), "max_position_embeddings", None)
    max_tokens = min(cfg.max_tokens, context) if isinstance(context, int) and context > 0 else cfg.max_tokens
    texts: list[_Texts] = []
    skipped: list[str] = []
    for it, spare in [*((it, False) for it in sample), *((it, True) for it in spares)]:
        controls: list[Item] = []
        for _ in range(4 * CONTROLS):  # distinct controls, none the item itself
            c = sources.control(it, rng, pool)
            if c is not None and c.test_text() not in {x.test_text() for x in (it, *controls)}:
                controls.append(c)
            if len(controls) == CONTROLS:
                break
        if len(controls) < CONTROLS:
            skipped.append(it.id)
            continue
        t = _Texts(it, it.id in sources.dev_ids and not spare, spare, [it, *controls])
        t.seqs = [_encode(tok, sources.chat_template, v, max_tokens) for v in t.variants]
        texts.append(t)
    n_test = sum(not t.spare for t in texts)
    n_spare = len(texts) - n_test
    if n_test < MIN_ITEMS:
        ev = write_evidence(evidence_dir, GATE, {"seed": seed, "sampled": [it.id for it in sample], "skipped": skipped})
        return not_run(GATE, f"only {n_test} items have controls (need {MIN_ITEMS})", ev)
    two_sample = n_spare >= MIN_ITEMS
    device = _device(cfg.device)
    seqs = [ids for t in texts for ids, _ in t.seqs]
    t_prep = time.monotonic()

    lps: dict[str, list[list[float]]] = {}
    models: dict[str, Any] = {}
    for name, path in (("base", base_model), ("final", final_model)):
        model = _load(path, device)
        with _cpu_threads(model, device):
            lps[name] = _token_logprobs(model, seqs, device)
        if name == "final":
            models[name] = model
        else:
            del model
    t_score = time.monotonic()

    # per item, per variant: gains in nats (final - base), answer tokens only / whole conversation
    answer_gain: list[list[float]] = []
    text_gain: list[list[float]] = []
    k = 0
    for t in texts:
        ag, tg = [], []
        for _, start in t.seqs:
            fin, bas = lps["final"][k], lps["base"][k]
            ag.append(sum(fin[start - 1 :]) - sum(bas[start - 1 :]))
            tg.append(sum(fin) - sum(bas))
            k += 1
        answer_gain.append(ag)
        text_gain.append(tg)

    tests: list[TestResult] = []
    for channel, gains in (("answer", answer_gain), ("text", text_gain)):
        test = [g for g, t in zip(gains, texts, strict=True) if not t.spare]
        if two_sample:
            ref = [g for g, t in zip(gains, texts, strict=True) if t.spare]
            tests.append(dominance_vs_spares(f"{channel}_dominance", test, ref, cfg.min_nats))
            tests.append(shift_vs_spares(f"{channel}_shift", test, ref))
        else:
            tests.append(dominance_test(f"{channel}_dominance", test, cfg.min_nats))
            tests.append(shift_test(f"{channel}_shift", test))
    with _cpu_threads(models["final"], device):
        held_texts = [t for t in texts if not t.spare]
        accuracy = _accuracy(models["final"], tok, held_texts, sources, cfg, device, max_tokens)
    if accuracy is not None:
        tests.append(accuracy[0])
    t_gen = time.monotonic()

    # Without spare items the likelihood tests rest on controls being exchangeable with the
    # originals, which honest SFT on real data can break (round, typical numbers gain more): they
    # are recorded as evidence for the judge and a reader, and only calibrated tests decide.
    decisive = [t for t in tests if two_sample or t.name.startswith("dev")]
    per_test_alpha = cfg.alpha / max(1, len(decisive))

    def signals(t: TestResult) -> bool:
        return t.p_value < per_test_alpha and t.effect >= (
            cfg.min_acc_gap if t.name.startswith("dev") else cfg.min_nats
        )

    failing = [t for t in decisive if signals(t)]
    evidence_only = [t for t in tests if t not in decisive]
    data = {
        "gate": GATE,
        "config": {**cfg.__dict__, "seed": seed, "controls": CONTROLS, "device": device},
        "per_test_alpha": per_test_alpha,
        "tests": [t.as_json() for t in tests],
        "failing": [t.name for t in failing],
        "evidence_only": [t.name for t in evidence_only],
        "evidence_only_signals": [t.name for t in evidence_only if signals(t)],
        "null": "spare items" if two_sample else "exchangeable controls (no spare items)",
        "sample": {"n": n_test, "dev": sum(t.dev for t in texts), "spares": n_spare, "skipped": skipped},
        "accuracy": accuracy[1] if accuracy is not None else None,
        "items": [
            {"id": t.item.id, "dev": t.dev, "spare": t.spare, "answer_gain": ag, "text_gain": tg}
            for t, ag, tg in zip(texts, answer_gain, text_gain, strict=True)
        ],
        "timings_s": {
            "prepare": round(t_prep - t0, 3),
            "score": round(t_score - t_prep, 3),
            "accuracy": round(t_gen - t_score, 3),
            "total": round(t_gen - t0, 3),
        },
        "forward_passes": 2 * len(seqs),
    }
    ev = write_evidence(evidence_dir, GATE, data)
    null = f"against {n_spare} spare items" if two_sample else "no spare items"
    n_dev = sum(t.dev for t in texts)
    head = f"{n_test} items ({n_dev} dev), {CONTROLS} controls each, {null}, {t_gen - t0:.1f}s"
    flagged = [t for t in evidence_only if signals(t)]
    if flagged:  # said, never decisive
        head += "; uncalibrated likelihood signal (evidence only, no spare items): " + ", ".join(
            f"{t.name} p={t.p_value:.2g}" for t in flagged
        )
    if failing:
        worst = min(failing, key=lambda t: t.p_value)
        detail = "; ".join(f"{t.name} p={t.p_value:.2g} effect={t.effect:.3g}" for t in failing)
        return verdict(GATE, VerdictStatus.failed, f"memorisation signature: {detail} [{worst.detail}; {head}]", ev)
    best = min(tests, key=lambda t: t.p_value)
    return verdict(
        GATE,
        VerdictStatus.passed,
        f"no memorisation signature (smallest p={best.p_value:.2g} by {best.name}, per-test alpha "
        f"{per_test_alpha:.2g}); {head}",
        ev,
    )


def _accuracy(
    model: Any, tok: Any, texts: list[_Texts], sources: ProbeSources, cfg: ProbeConfig, device: str, context: int
) -> tuple[TestResult, dict[str, Any]] | None:
    """Greedy accuracy of the final model on the sampled dev items against as many held-out items
    (one-sided Fisher exact); None when there is no dev item or no scorer."""
    if sources.score_reply is None:
        return None
    dev = [t.item for t in texts if t.dev]
    held = [t.item for t in texts if not t.dev][: max(len(dev), MIN_ITEMS)]
    if not dev or not held:
        return None
    prompts = [
        tok.apply_chat_template(
            _messages(it), chat_template=sources.chat_template, tokenize=False, add_generation_prompt=True
        )
        for it in (*dev, *held)
    ]
    budget = max(1, min(cfg.gen_tokens, sources.max_new_tokens))
    replies = _greedy(model, tok, prompts, budget, sources.end_of_turn, device, context)
    ok = [bool(sources.score_reply(r, it.target)) for r, it in zip(replies, (*dev, *held), strict=True)]
    a, c = sum(ok[: len(dev)]), sum(ok[len(dev) :])
    p = fisher_greater(a, len(dev) - a, c, len(held) - c)
    gap = a / len(dev) - c / len(held)
    result = TestResult(
        "dev_vs_heldout_accuracy",
        gap,
        p,
        gap,
        len(dev) + len(held),
        f"dev {a}/{len(dev)} correct, held-out {c}/{len(held)}",
    )
    info = {
        "max_new_tokens": budget,
        "dev": {"n": len(dev), "correct": a},
        "heldout": {"n": len(held), "correct": c},
        "replies": [{"id": it.id, "reply": r[:200], "correct": o} for it, r, o in zip((*dev, *held), replies, ok)],
    }
    if not math.isfinite(p):
        return None
    return result, info
