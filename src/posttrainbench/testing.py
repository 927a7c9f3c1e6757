"""Test helpers: a tiny, random, *real* causal LM that builds in well under a second.

``build_tiny_model`` writes a folder that every part of the harness can treat like a real
base model: ``config.json`` + ``model.safetensors`` of a small ``LlamaForCausalLM``, and a
``tokenizer.json`` (a character-level tokenizer made with the ``tokenizers`` library, so any
printable ASCII text round-trips exactly) loadable with ``AutoTokenizer``.

The same seed gives byte-identical weights, so tests can compare models across processes.
"""

from __future__ import annotations

import string
from pathlib import Path

# Special tokens, in id order. <|im_start|>/<|im_end|> let ChatML-templated tests tokenize
# their markers as single tokens; the tiny model's own end of sequence is "</s>".
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>")
PAD, BOS, EOS, UNK = SPECIAL_TOKENS[:4]

# Every printable ASCII character (letters, digits, punctuation, space, \t \n \r \x0b \x0c).
CHARACTERS: tuple[str, ...] = tuple(dict.fromkeys(string.printable))

TINY_CONFIG: dict[str, int | float | bool] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
}


def tiny_vocab() -> dict[str, int]:
    """Token -> id of the tiny tokenizer: special tokens first, then one token per character."""
    tokens = (*SPECIAL_TOKENS, *CHARACTERS)
    return {tok: i for i, tok in enumerate(tokens)}


def build_tiny_tokenizer(chat_template: str | None = None):
    """A character-level ``PreTrainedTokenizerFast`` (no network, no files needed)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = tiny_vocab()
    # BPE without merges is a character-level model that treats every char (space and
    # newline included) as a token; the Fuse decoder concatenates them back without spaces.
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=TINY_CONFIG["max_position_embeddings"],
    )
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok


def build_tiny_model(
    path: Path,
    *,
    seed: int = 0,
    chat_template: str | None = None,
    dtype: str = "float32",
    max_positions: int | None = None,
) -> Path:
    """Write a tiny random ``LlamaForCausalLM`` + character tokenizer to ``path`` and return it.

    Deterministic for a given ``seed`` (the global RNG state is left untouched). The folder
    holds ``config.json``, ``generation_config.json``, ``model.safetensors`` and the tokenizer
    files; ``chat_template`` (a Jinja string) is saved with the tokenizer if given;
    ``max_positions`` overrides the context length (512) for tests with long prompts.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    config = LlamaConfig(
        vocab_size=len(vocab),
        bos_token_id=vocab[BOS],
        eos_token_id=vocab[EOS],
        pad_token_id=vocab[PAD],
        **{**TINY_CONFIG, **({"max_position_embeddings": max_positions} if max_positions else {})},
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model = model.to(getattr(torch, dtype)).eval()
    model.save_pretrained(path)
    build_tiny_tokenizer(chat_template).save_pretrained(path)
    for f in path.iterdir():  # transformers writes some files 0600; the sandbox may read as another uid
        if f.is_file():
            f.chmod(0o644)
    return path


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
    created_at: "datetime | None" = None,
    suffix: str = "",
    data_status: str | None = None,
) -> Path:
    """Write the ``run.json`` of a finished run without running anything (leaderboard tests,
    benchmarks). ``score=None`` means the evaluation failed; ``verdict`` is the final verdict
    (``pass``/``fail``/``not_run``) of one required gate; ``data_status`` the evaluation set's
    pin status (``pinned``/``unpinned``/``differs``), if any. Returns the run folder."""
    from datetime import datetime, timezone

    from .catalog import get_base_model
    from .domain import PHASES, PhaseState, RunRecord, RunSpec, Verdict, VerdictStatus
    from .results import run_paths, save_record

    spec = RunSpec(
        agent=agent, agent_config=agent_config, base_model=base_model, benchmark=benchmark,
        hours=hours, repeat=repeat, suffix=suffix,
    )
    status = VerdictStatus(verdict)
    record = RunRecord(
        run_id=spec.run_id(),
        spec=spec,
        created_at=created_at or datetime.now(timezone.utc),
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
    results_root: Path, *, benchmark: str, base_model: str, score: float, checkpoint: str = "base",
    limit: int | None = None,
) -> Path:
    """Write a ``baseline.json`` (zero-shot score of the base model or of its instruct model)."""
    from .catalog import get_base_model
    from .results import save_baseline

    folder = save_baseline(results_root, benchmark=benchmark, base_model=get_base_model(base_model), score=score,
                           checkpoint=checkpoint, limit=limit)
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

    def __init__(self, respond) -> None:  # noqa: ANN001
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.respond = respond
        self.requests: list[dict] = []
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:  # noqa: ANN002
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                auth = self.headers.get("Authorization") or self.headers.get("x-api-key") or ""
                with lock:
                    server.requests.append({"path": self.path, "body": body, "auth": auth})
                try:
                    out = server.respond(body)
                except Exception as exc:  # a bug in the test's responder: a 500, visible in the test
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

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
