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
) -> Path:
    """Write the ``run.json`` of a finished run without running anything (leaderboard tests,
    benchmarks). ``score=None`` means the evaluation failed; ``verdict`` is the final verdict
    (``pass``/``fail``/``not_run``) of one required gate; ``data_status`` the evaluation set's
    pin status (``pinned``/``unpinned``/``differs``), if any. Returns the run folder."""
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
