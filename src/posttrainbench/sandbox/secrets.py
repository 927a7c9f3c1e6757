"""Secrets: which values are secret, keeping them out of the sandbox, and redacting stored text.

- :func:`secret_values` collects the values of every secret-looking variable of the harness
  environment (``*_API_KEY``, ``*TOKEN*``, ``*SECRET*``, ...): the judge's and graders' keys, the
  hub token, the agent's own key.
- :func:`foreign_secrets` checks an environment about to enter the sandbox: a known secret value
  under any name other than the agent's own key names is an error (the harness refuses to start).
- :func:`redact` replaces every known value, and every string that *looks* like a key
  (:data:`KEY_PATTERNS`), with ``[REDACTED:<what>]``; :func:`redact_file` does it for a file
  in place (streaming, for outputs of any size).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..trace import Trace

#: Environment variable names that hold secrets.
SECRET_NAME_RE = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY|AUTH)", re.I)
#: Values shorter than this are not treated as secrets (too likely to match ordinary text).
MIN_SECRET_LEN = 8

#: Key formats of the providers we know, redacted wherever they appear.
_B = r"(?<![A-Za-z0-9_\-])"  # a key starts at a token boundary ("task-..." is not "sk-...")
KEY_PATTERNS: dict[str, re.Pattern[str]] = {
    "anthropic-key": re.compile(_B + r"sk-ant-[A-Za-z0-9_\-]{10,}"),
    "openai-key": re.compile(_B + r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    "google-key": re.compile(_B + r"AIza[0-9A-Za-z_\-]{30,}"),
    "hf-token": re.compile(_B + r"hf_[A-Za-z0-9]{30,}"),
    "github-token": re.compile(_B + r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),
    "aws-key-id": re.compile(_B + r"(?:AKIA|ASIA)[0-9A-Z]{16}"),
    "slack-token": re.compile(_B + r"xox[abposr]-[A-Za-z0-9\-]{10,}"),
    "bearer": re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/\-]{20,}=*"),
}

_LINE_LIMIT = 8 << 20  # lines longer than this are processed in pieces


def secret_values(env: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    """value -> variable name, for every secret-looking variable of ``env`` (and ``extra``)."""
    out: dict[str, str] = {}
    for name, value in env.items():
        if SECRET_NAME_RE.search(name) and len(value.strip()) >= MIN_SECRET_LEN:
            out[value.strip()] = name
    for value in extra:
        if value and len(value) >= MIN_SECRET_LEN:
            out.setdefault(value, "agent-credential")
    return out


def foreign_secrets(env: Mapping[str, str], host_env: Mapping[str, str], allowed: Iterable[str]) -> list[str]:
    """Names in ``env`` that carry a host secret other than the agent's own (``allowed``) keys.

    A value counts when it equals, or contains, a secret value of the host environment held
    under a name that is not allowed; so does a secret-looking name that is not allowed."""
    allowed = set(allowed)
    own = {host_env.get(n, "") for n in allowed} - {""}
    foreign = {v: n for v, n in secret_values(host_env).items() if n not in allowed and v not in own}
    bad = []
    for name, value in env.items():
        if name in allowed:
            if value not in own:
                bad.append(f"{name} (not the harness's value)")
            continue
        if any(v in value for v in foreign) or (
            SECRET_NAME_RE.search(name) and len(value) >= MIN_SECRET_LEN and value not in own
        ):
            bad.append(name)
    return bad


def redact(text: str, values: Mapping[str, str] | Iterable[str], *, patterns: bool = True) -> str:
    """``text`` with known secret values (and, with ``patterns``, key-shaped strings) replaced."""
    if not text:
        return text
    named = values if isinstance(values, Mapping) else dict.fromkeys(values, "secret")
    for value in sorted(named, key=len, reverse=True):
        if value and value in text:
            text = text.replace(value, f"[REDACTED:{named[value]}]")
    if not patterns:
        return text
    for what, pat in KEY_PATTERNS.items():
        text = pat.sub(f"[REDACTED:{what}]", text)
    return text


def redact_file(path: Path, values: Mapping[str, str] | Iterable[str], *, patterns: bool = True) -> int:
    """Redact ``path`` in place (streamed line by line, invalid UTF-8 kept byte-exact elsewhere).

    Returns the number of lines changed. A missing file is left alone (0)."""
    path = Path(path)
    if not path.is_file():
        return 0
    tmp = path.with_name(path.name + ".redacting")
    changed = 0
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        while True:
            line = src.readline(_LINE_LIMIT)
            if not line:
                break
            text = line.decode("utf-8", errors="surrogateescape")
            new = redact(text, values, patterns=patterns)
            if new != text:
                changed += 1
            dst.write(new.encode("utf-8", errors="surrogateescape"))
    if changed:
        os.replace(tmp, path)
    else:
        tmp.unlink()
    return changed


def redact_tree(root: Path, values: Mapping[str, str], *, max_file_bytes: int = 64 << 20) -> list[str]:
    """Redact the known secret *values* (not the key patterns: code may legitimately hold
    key-shaped test strings) from every regular file under ``root`` up to ``max_file_bytes``
    (symlinks are not followed). Returns the relative paths of the files changed.

    For the agent's workspace, which the harness stores: CLI agents keep their session
    transcripts there (e.g. ``.claude/projects/*.jsonl``), including any tool output that
    printed the agent's own key."""
    needles = [v.encode() for v in values if v]
    changed: list[str] = []
    if not needles:
        return changed
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            try:
                st = p.lstat()
                if not p.is_file() or p.is_symlink() or st.st_size > max_file_bytes:
                    continue
                with open(p, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if any(n in data for n in needles) and redact_file(p, values, patterns=False):
                changed.append(str(p.relative_to(root)))
    return sorted(changed)


def redact_trace(trace: Trace, values: Mapping[str, str] | Iterable[str]) -> Trace:
    """A copy of ``trace`` with every known secret value and key-shaped string redacted
    (texts, tool inputs at any depth, tool outputs, parse errors)."""
    values = dict(values) if isinstance(values, Mapping) else list(values)

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return redact(v, values)
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {walk(k): walk(x) for k, x in v.items()}
        return v

    return Trace.model_validate(walk(trace.model_dump(mode="json")))
