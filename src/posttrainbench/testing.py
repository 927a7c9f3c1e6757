"""Test helpers: synthetic run folders and baselines without running anything, and a local
server speaking the real LLM wire protocols (no model: the tiny models are
:mod:`posttrainbench.models.tiny`)."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime


def write_synthetic_run(
    results_root: Path,
    *,
    agent: str = "reference",
    agent_config: str = "sft",
    base_model: str = "ptb/tiny-random",
    benchmark: str = "gsm8k-calc",
    hours: float = 1.0,
    repeat: int = 0,
    score: float | None = 0.5,
    verdict: str = "pass",
    completed: bool = True,
    failure: str | None = None,
    time_used_s: float | None = 1800.0,
    usage: dict[str, float] | None = None,
    created_at: datetime | None = None,
    suffix: str = "",
    data_status: str | None = None,
    protocol: str = "strict",
    eval_limit: int | None = None,
) -> Path:
    """Write the ``run.json`` of a finished run without running anything (leaderboard tests,
    benchmarks). ``score=None`` means the evaluation failed; ``verdict`` is the final verdict
    (``pass``/``fail``/``not_run``) of one required gate; ``data_status`` the evaluation set's
    pin status (``pinned``/``unpinned``/``differs``), if any; ``eval_limit``: evaluated with ``--limit``.
    Returns the run folder."""
    from datetime import datetime

    from .catalog import get_base_model
    from .domain import PHASES, PhaseState, RunRecord, RunSpec, Verdict, VerdictStatus
    from .results import run_paths, save_record

    spec = RunSpec(
        agent=agent,
        agent_config=agent_config,
        base_model=base_model,
        benchmark=benchmark,
        hours=hours,
        repeat=repeat,
        suffix=suffix,
        protocol=protocol,
        eval_limit=eval_limit,
    )
    status = VerdictStatus(verdict)
    record = RunRecord(
        run_id=spec.run_id(),
        spec=spec,
        created_at=created_at or datetime.now(UTC),
        phases={p: PhaseState(status="done" if completed else "pending") for p in PHASES},
        verdicts=[Verdict(gate="lineage", status=status, summary=f"synthetic {verdict}")],
        required_gates=["lineage"],
        final_verdict=status,
        metrics=({"status": "ok", "score": score} if score is not None else {"status": "failed", "error": "synthetic"})
        | ({"data": {"status": data_status}} if data_status else {}),
        time_used_s=time_used_s,
        usage=usage or {},
        failure=failure if failure is not None else (None if score is not None else "evaluate: synthetic failure"),
    )
    paths = run_paths(results_root, spec, get_base_model(base_model))
    paths.root.mkdir(parents=True, exist_ok=True)
    save_record(paths.run_json, record)
    return paths.root


def write_synthetic_baseline(
    results_root: Path,
    *,
    benchmark: str,
    base_model: str,
    score: float,
    checkpoint: str = "base",
    limit: int | None = None,
) -> Path:
    """Write a ``baseline.json`` (zero-shot score of the base model or of its instruct model)."""
    from .catalog import get_base_model
    from .results import save_baseline

    folder = save_baseline(
        results_root,
        benchmark=benchmark,
        base_model=get_base_model(base_model),
        score=score,
        checkpoint=checkpoint,
        limit=limit,
    )
    return folder


# ---------------------------------------------------------------------------------------------
# A local stand-in for a remote LLM API (graders, judges): real HTTP, real wire protocol, so the
# real ``openai`` / ``anthropic`` SDK clients run against it.


class FakeLLMServer:
    """HTTP server speaking OpenAI chat completions (``POST /v1/chat/completions``) and Anthropic
    messages (``POST /v1/messages``). ``respond(request_json)`` returns the reply text, or an
    ``int`` HTTP status to fail that call. Every request (body + auth header) is kept in
    ``requests``. Use as a context manager; ``base_url`` ends with ``/v1`` (the OpenAI SDK's
    base URL), ``root_url`` does not (the Anthropic SDK's).
    """

    def __init__(self, respond: Callable[[dict[str, Any]], str | int]) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.respond = respond
        self.requests: list[dict] = []
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                auth = self.headers.get("Authorization") or self.headers.get("x-api-key") or ""
                with lock:
                    server.requests.append({"path": self.path, "body": body, "auth": auth})
                try:
                    out = server.respond(body)
                except Exception as exc:  # noqa: BLE001 - a bug in the test's responder: a 500, visible in the test
                    out = 500
                    body = {"error": str(exc)}
                if isinstance(out, int):
                    self._send(out, {"error": {"message": f"injected status {out}", "type": "server_error"}})
                elif self.path.endswith("/chat/completions"):
                    self._send(200, {
                        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                        "model": body.get("model", "fake"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": out},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    })  # fmt: skip
                elif self.path.endswith("/messages"):
                    self._send(200, {
                        "id": "msg_fake", "type": "message", "role": "assistant",
                        "model": body.get("model", "fake"), "content": [{"type": "text", "text": out}],
                        "stop_reason": "end_turn", "stop_sequence": None,
                        "usage": {"input_tokens": 1, "output_tokens": 1},
                    })  # fmt: skip
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def _send(self, status: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self.root_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.base_url = self.root_url + "/v1"

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def train_sft(
    base: Path,
    out: Path,
    examples: list[tuple[str, str]],
    *,
    chat_template: str,
    epochs: int = 3,
    lr: float = 3e-3,
    batch_size: int = 16,
    seed: int = 0,
) -> Path:
    """A small real SFT trainer (tests, the probe's calibration): fine-tune the causal LM at
    ``base`` on ``(prompt, completion)`` pairs rendered with ``chat_template`` (loss on the
    completion's tokens only, as TRL's completion-only SFT), AdamW, ``epochs`` shuffled passes;
    the model and its tokenizer are saved to ``out``. Deterministic for a given ``seed``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        model.train()
        rows = []
        for prompt, completion in examples:
            msgs = [{"role": "user", "content": prompt}]
            head = str(
                tok.apply_chat_template(msgs, chat_template=chat_template, tokenize=False, add_generation_prompt=True)
            )
            full = str(
                tok.apply_chat_template(
                    [*msgs, {"role": "assistant", "content": completion}], chat_template=chat_template, tokenize=False
                )
            )
            if not full.startswith(head):
                full = head + completion
            n_head = len(tok(head, add_special_tokens=False)["input_ids"])
            ids = [*tok(full, add_special_tokens=False)["input_ids"], tok.eos_token_id]
            rows.append((ids, n_head))
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
        gen = torch.Generator().manual_seed(seed)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        for _ in range(epochs):
            order = torch.randperm(len(rows), generator=gen).tolist()
            for b in range(0, len(order), batch_size):
                batch = [rows[i] for i in order[b : b + batch_size]]
                width = max(len(ids) for ids, _ in batch)
                ids_t = torch.full((len(batch), width), pad, dtype=torch.long)
                labels = torch.full((len(batch), width), -100, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for r, (ids, n_head) in enumerate(batch):
                    ids_t[r, : len(ids)] = torch.tensor(ids)
                    labels[r, n_head : len(ids)] = torch.tensor(ids[n_head:])
                    mask[r, : len(ids)] = 1
                loss = model(input_ids=ids_t, attention_mask=mask, labels=labels).loss
                loss.backward()
                opt.step()
                opt.zero_grad()
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
