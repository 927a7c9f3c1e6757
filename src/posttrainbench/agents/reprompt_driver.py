"""Re-prompt driver, run inside the sandbox (stdlib only). See posttrainbench.agents.reprompt.

Usage: python -I reprompt_driver.py --min-left-minutes N --min-session-s S -- FIRST... --then-- RESUME...
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time


def remaining_text(seconds: float) -> str:
    # Kept identical to posttrainbench.agents.reprompt.remaining_text (tested).
    m = max(0, int(seconds // 60))
    return (
        f"You still have {m // 60}h {m % 60:02d}m remaining. Keep improving final_model/ "
        "(run `bash timer.sh` to check the time); make sure final_model/ is a complete, "
        "working model before the time is up."
    )


def deadline() -> float:
    try:
        with open(os.path.join("task", "task.json")) as f:
            d = json.load(f).get("deadline_epoch")
        if d:
            return float(d)
    except (OSError, ValueError):
        pass
    # posttrainbench.settings.TIME_LIMIT_VAR, set by the solve phase (this file imports nothing of ours).
    return time.time() + float(os.environ.get("PTB_TIME_LIMIT_S", "0"))


def run(argv: list[str], text: bytes) -> tuple[int, float]:
    with tempfile.TemporaryFile() as f:
        f.write(text)
        f.seek(0)
        t0 = time.monotonic()
        try:
            rc = subprocess.call(argv, stdin=f)
        except OSError as e:
            sys.stderr.write(f"reprompt: cannot execute {argv[0]}: {e}\n")
            rc = 127
        return rc, time.monotonic() - t0


def main(args: list[str]) -> int:
    i = args.index("--")
    opts, rest = args[:i], args[i + 1 :]
    o = dict(zip(opts[::2], opts[1::2]))
    min_left = float(o["--min-left-minutes"]) * 60
    min_session = float(o.get("--min-session-s", "5"))
    j = rest.index("--then--")
    first, resume = rest[:j], rest[j + 1 :]
    end = deadline()
    rc, took = run(first, sys.stdin.buffer.read())
    short = 1 if took < min_session else 0
    n = 1
    while rc == 0 and short < 2 and end - time.time() > min_left:
        left = end - time.time()
        sys.stderr.write(f"reprompt: session {n} ended with {left / 60:.1f} min left; resuming\n")
        sys.stderr.flush()
        rc, took = run(resume, remaining_text(left).encode())
        short = short + 1 if took < min_session else 0
        n += 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
