"""Re-prompt mode for CLI agents: while more than N minutes remain, resume the session.

A CLI agent often stops long before its time is up. With ``reprompt=<N>`` in the agent config
the CLI runs under a small driver (:data:`DRIVER`, stdlib only, run inside the sandbox): it
passes the task prompt (its own stdin) to the first invocation, and each time the CLI exits
while more than N minutes remain it starts the *resume* command with the prompt
"You still have Xh Ym remaining. ..." on stdin. Every invocation writes to the same stdout, so
the trace holds all sessions. The deadline is ``deadline_epoch`` of ``task/task.json`` (set by
the harness when the agent starts). A CLI that fails (non-zero exit) or returns within
:data:`MIN_SESSION_S` seconds twice in a row stops the loop, so a broken CLI cannot spin.
"""

from __future__ import annotations

from pathlib import Path

DRIVER = Path(__file__).with_name("reprompt_driver.py")
MIN_SESSION_S = 5.0
SEPARATOR = "--then--"


def remaining_text(seconds: float) -> str:
    """``You still have 1h 05m remaining. ...`` (the message the driver sends)."""
    m = max(0, int(seconds // 60))
    return (
        f"You still have {m // 60}h {m % 60:02d}m remaining. Keep improving final_model/ "
        "(run `bash timer.sh` to check the time); make sure final_model/ is a complete, "
        "working model before the time is up."
    )


def driver_argv(python: str, first: list[str], resume: list[str], *, min_left_minutes: float) -> list[str]:
    """argv that runs ``first`` then ``resume`` repeatedly under the re-prompt driver."""
    return [
        python, "-I", str(DRIVER), "--min-left-minutes", str(min_left_minutes),
        "--min-session-s", str(MIN_SESSION_S), "--", *first, SEPARATOR, *resume,
    ]  # fmt: skip
