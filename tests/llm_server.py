"""A local HTTP server speaking the real OpenAI chat-completions and Anthropic messages wire
protocols, so that tests run the real ``openai`` / ``anthropic`` SDK clients against it.

Replies are scripted, in order (the last one repeats): a string is the assistant's text; a
:class:`Status` is an HTTP error with the provider's error body; a :class:`Slow` reply waits
before answering (to trigger client timeouts). Every request is recorded (path, headers, JSON).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Union


@dataclass(frozen=True)
class Status:
    code: int
    message: str = "server error"


@dataclass(frozen=True)
class Slow:
    seconds: float
    text: str = "{}"


Reply = Union[str, Status, Slow]


class FakeLLMServer:
    """``with FakeLLMServer([...]) as srv:`` then ``srv.openai_url`` / ``srv.anthropic_url``."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._n = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002 - silence
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "json": body})
                    reply = server.replies[min(server._n, len(server.replies) - 1)]
                    server._n += 1
                anthropic = self.path.rstrip("/").endswith("/messages")
                if isinstance(reply, Slow):
                    time.sleep(reply.seconds)
                    reply = reply.text
                if isinstance(reply, Status):
                    err = (
                        {"type": "error", "error": {"type": "api_error", "message": reply.message}}
                        if anthropic
                        else {"error": {"message": reply.message, "type": "server_error", "param": None, "code": None}}
                    )
                    self._send(reply.code, err)
                    return
                model = body.get("model", "fake")
                if anthropic:
                    payload = {
                        "id": f"msg_{server._n}",
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [{"type": "text", "text": reply}],
                        "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {"input_tokens": 100, "output_tokens": 50},
                    }
                else:
                    payload = {
                        "id": f"chatcmpl-{server._n}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop", "logprobs": None}
                        ],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
                    }
                self._send(200, payload)

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.httpd.shutdown()
        self.httpd.server_close()
