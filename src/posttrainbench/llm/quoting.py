"""Hostile text inside an LLM prompt: quoted as data, so that it cannot steer the model.

A judge or grader prompt holds text the audited party wrote (an agent's files and trace, a model's
reply). That text may try to close its data section, open a section of its own, impersonate the
prompt's instructions or state a verdict the model might echo. :func:`neutralise` breaks up the
marks that structure our prompts (``<|``/``|>`` section tags, ``[[``/``]]`` verdict labels,
Markdown headings at the start of a line) with a separating character; :func:`quote_data` also
wraps the text in a named ``<|data ...|>`` section that nothing inside it can close. An honest
text reads the same to a human or a model.
"""

from __future__ import annotations

import re

DATA_OPEN = '<|data name="{name}"|>'
DATA_CLOSE = "<|/data|>"
_HEADING = re.compile(r"(?m)^(\s*)(#+)(?=\s|$)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029\u0085]")


def neutralise(text: str) -> str:
    """``text`` with every prompt-structuring mark broken up (see the module docstring).

    Control characters and Unicode line/paragraph separators (which some readers treat as a line
    break, so that a heading could start there) are shown as ``\\xNN`` escapes."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    text = text.replace("[[", "[ [").replace("]]", "] ]").replace("<|", "< |").replace("|>", "| >")
    return _HEADING.sub(r"\1\\\2", text)


def quote_data(text: str, name: str) -> str:
    """``text`` as a data section named ``name`` (both neutralised): the section's own closing
    tag is the only ``<|/data|>`` that can follow."""
    label = neutralise(name).replace('"', "'").replace("\n", "\\n").replace("\r", "\\r")
    return f"{DATA_OPEN.format(name=label)}\n{neutralise(text)}\n{DATA_CLOSE}"


def outside_data(prompt: str) -> str:
    """The parts of a prompt that are not inside a data section: what a model that respects the
    quoting reads as instructions (used to test that quoted text cannot add instructions)."""
    return re.sub(r"<\|data name=\"[^\"\n]*\"\|>.*?<\|/data\|>", "", prompt, flags=re.S)
