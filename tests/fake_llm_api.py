"""A local LLM API that speaks the real wire protocols and replays a scripted tool-use session.

Test double for the *remote* APIs only (the agent CLIs under test are the real npm packages):

- Anthropic Messages: ``POST /v1/messages`` (``stream: true`` -> SSE events ``message_start``,
  ``content_block_*``, ``message_delta``, ``message_stop``; else one JSON message),
- OpenAI Responses: ``POST /v1/responses`` (SSE ``response.created``, ``response.output_item.*``,
  ``response.completed``), the protocol Codex CLI uses.

The conversation position is derived from the request itself (how many tool results it already
carries), so side requests that a CLI makes (titles, quota probes, requests without tools) get a
short text answer and do not advance the script. Every request is recorded (path, headers, body)
with the usage the server reported, so tests can compare token counts end to end.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Tool names a CLI may give its shell tool, in order of preference.
SHELL_TOOLS = ("Bash", "shell_command", "shell", "exec_command", "run_shell_command", "bash")


@dataclass
class Step:
    """One scripted assistant turn: a shell command to run, or a final text."""

    bash: str | None = None
    text: str | None = None


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    scripted: bool
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class FakeLLM:
    """The scripted server; ``start()`` binds 127.0.0.1 on a free port."""

    steps: list[Step]
    requests: list[Recorded] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append(Recorded(self.path, dict(self.headers), None, False))
                self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": "not here"}})

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                if self.headers.get("Content-Encoding") == "zstd":
                    raise RuntimeError("zstd request bodies are not supported by the fake")
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                path = self.path.split("?")[0]
                if path.endswith("/messages/count_tokens"):
                    fake.requests.append(Recorded(self.path, dict(self.headers), body, False))
                    self._json(200, {"input_tokens": max(1, len(raw) // 4)})
                elif path.endswith("/messages"):
                    self._anthropic(body, raw)
                elif path.endswith("/responses"):
                    self._openai(body, raw)
                elif path.endswith(":countTokens"):
                    fake.requests.append(Recorded(self.path, dict(self.headers), body, False))
                    self._json(200, {"totalTokens": max(1, len(raw) // 4)})
                elif path.endswith((":streamGenerateContent", ":generateContent")):
                    self._gemini(body, raw, path, stream=path.endswith(":streamGenerateContent"))
                else:
                    fake.requests.append(Recorded(self.path, dict(self.headers), body, False))
                    self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

            # ---------------------------------------------------------- helpers
            def _json(self, code: int, obj: Any) -> None:
                b = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

            def _sse(self, events: list[tuple[str | None, dict]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for name, data in events:
                    chunk = (f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n"
                    self.wfile.write(chunk.encode())
                    self.wfile.flush()
                self.close_connection = True

            def _pick(self, tools: list[dict], n_results: int) -> tuple[Step, str | None]:
                names = [t.get("name") or (t.get("function") or {}).get("name") for t in tools]
                shell = next((s for s in SHELL_TOOLS if s in names), None)
                if shell is None or n_results >= len(fake.steps):
                    return Step(text="ok"), shell
                return fake.steps[n_results], shell

            # ---------------------------------------------------------- anthropic
            def _anthropic(self, body: dict, raw: bytes) -> None:
                msgs = body.get("messages") or []
                n_results = sum(
                    1
                    for m in msgs
                    if isinstance(m.get("content"), list)
                    for c in m["content"]
                    if isinstance(c, dict) and c.get("type") == "tool_result"
                )
                step, shell = self._pick(body.get("tools") or [], n_results)
                scripted = shell is not None
                model = body.get("model", "claude-test")
                in_tok = max(1, len(raw) // 4)
                if step.bash is not None:
                    args = {"command": step.bash, "description": "scripted step"}
                    block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", "name": shell, "input": {}}
                    out_tok = 20 + len(step.bash) // 4
                    stop = "tool_use"
                else:
                    args, block = None, {"type": "text", "text": ""}
                    out_tok = 5 + len(step.text or "") // 4
                    stop = "end_turn"
                fake.requests.append(Recorded(self.path, dict(self.headers), body, scripted, in_tok, out_tok))
                mid = f"msg_{uuid.uuid4().hex[:20]}"
                usage = {
                    "input_tokens": in_tok,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                }
                if not body.get("stream"):
                    content = [dict(block, input=args)] if args is not None else [{"type": "text", "text": step.text}]
                    self._json(200, {
                        "id": mid, "type": "message", "role": "assistant", "model": model, "content": content,
                        "stop_reason": stop, "stop_sequence": None,
                        "usage": dict(usage, output_tokens=out_tok),
                    })  # fmt: skip
                    return
                delta = (
                    {"type": "input_json_delta", "partial_json": json.dumps(args)}
                    if args is not None
                    else {"type": "text_delta", "text": step.text}
                )
                self._sse([
                    ("message_start", {"type": "message_start", "message": {
                        "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
                        "stop_reason": None, "stop_sequence": None, "usage": usage}}),
                    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
                    ("ping", {"type": "ping"}),
                    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
                    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                       "usage": {"output_tokens": out_tok}}),
                    ("message_stop", {"type": "message_stop"}),
                ])  # fmt: skip

            # ---------------------------------------------------------- gemini
            def _gemini(self, body: dict, raw: bytes, path: str, *, stream: bool) -> None:
                contents = body.get("contents") or []
                n_results = sum(
                    1
                    for c in contents
                    for p in (c.get("parts") or [])
                    if isinstance(p, dict) and "functionResponse" in p
                )
                decls = [d for t in body.get("tools") or [] for d in (t.get("functionDeclarations") or [])]
                step, shell = self._pick(decls, n_results)
                model = path.rsplit("/", 1)[-1].split(":")[0]
                in_tok = max(1, len(raw) // 4)
                if step.bash is not None:
                    part: dict[str, Any] = {
                        "functionCall": {"name": shell, "args": {"command": step.bash, "description": "scripted step"}}
                    }
                    out_tok = 20 + len(step.bash) // 4
                else:
                    part = {"text": step.text}
                    out_tok = 5 + len(step.text or "") // 4
                fake.requests.append(Recorded(self.path, dict(self.headers), body, shell is not None, in_tok, out_tok))
                resp = {
                    "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
                    "usageMetadata": {"promptTokenCount": in_tok, "candidatesTokenCount": out_tok, "totalTokenCount": in_tok + out_tok},
                    "modelVersion": model,
                }  # fmt: skip
                if stream:
                    self._sse([(None, resp)])
                else:
                    self._json(200, resp)

            # ---------------------------------------------------------- openai
            def _openai(self, body: dict, raw: bytes) -> None:
                items = body.get("input") or []
                n_results = sum(
                    1
                    for it in items
                    if isinstance(it, dict) and it.get("type") in ("function_call_output", "custom_tool_call_output")
                )
                step, shell = self._pick(body.get("tools") or [], n_results)
                scripted = shell is not None
                model = body.get("model", "gpt-test")
                in_tok = max(1, len(raw) // 4)
                rid = f"resp_{uuid.uuid4().hex[:20]}"
                if step.bash is not None:
                    if shell == "shell":
                        args: dict[str, Any] = {"command": ["bash", "-lc", step.bash]}
                    elif shell == "exec_command":
                        args = {"cmd": step.bash, "yield_time_ms": 60000}
                    else:
                        args = {"command": step.bash}
                    item: dict[str, Any] = {
                        "type": "function_call", "id": f"fc_{uuid.uuid4().hex[:20]}", "status": "completed",
                        "call_id": f"call_{uuid.uuid4().hex[:20]}", "name": shell, "arguments": json.dumps(args),
                    }  # fmt: skip
                    out_tok = 20 + len(step.bash) // 4
                else:
                    item = {
                        "type": "message", "id": f"msg_{uuid.uuid4().hex[:20]}", "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": step.text, "annotations": []}],
                    }  # fmt: skip
                    out_tok = 5 + len(step.text or "") // 4
                fake.requests.append(Recorded(self.path, dict(self.headers), body, scripted, in_tok, out_tok))
                usage = {
                    "input_tokens": in_tok, "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens": out_tok, "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": in_tok + out_tok,
                }  # fmt: skip
                base = {"id": rid, "object": "response", "created_at": 1764200000, "model": model, "output": []}
                events: list[tuple[str | None, dict]] = [
                    ("response.created", {"type": "response.created", "response": dict(base, status="in_progress")}),
                    (
                        "response.output_item.added",
                        {"type": "response.output_item.added", "output_index": 0, "item": item},
                    ),
                ]
                if item["type"] == "message":
                    events.append(("response.output_text.delta", {
                        "type": "response.output_text.delta", "item_id": item["id"], "output_index": 0,
                        "content_index": 0, "delta": step.text}))  # fmt: skip
                events += [
                    ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
                    ("response.completed", {"type": "response.completed",
                                            "response": dict(base, status="completed", output=[item], usage=usage)}),
                ]  # fmt: skip
                self._sse(events)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def scripted(self) -> list[Recorded]:
        """The requests that carried the shell tool (the scripted conversation)."""
        return [r for r in self.requests if r.scripted]

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *a: object) -> None:
        self.stop()
