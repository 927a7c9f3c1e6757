"""Check that ``posttrainbench.launch.skypilot_spec.validate_task_config`` (the committed schemas)
agrees with SkyPilot's own parser (``sky.Task.from_yaml_config``) on the specs of a sweep and on
broken variants of them. Run with an interpreter that has both ``skypilot`` and this package
(a scratch venv: they cannot share ours)::

    python scripts/skypilot_crosscheck.py SWEEP.toml   # a sweep with launcher = "skypilot"
"""

from __future__ import annotations

import copy
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sky

from posttrainbench.launch import load_sweep, plan_tasks
from posttrainbench.launch.skypilot_spec import SpecError, checkout_root, task_config, validate_task_config

CHANGES: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("as generated", lambda c: None),
    ("misspelt resources field", lambda c: c["resources"].update(acelerators="H100")),
    ("use_spot not a boolean", lambda c: c["resources"].update(use_spot="sometimes")),
    ("unknown storage mode", lambda c: c["file_mounts"]["/ptb-sync"].update(mode="MOUNTED")),
    ("unknown top-level field", lambda c: c.update(nodes=2)),
    ("disk_size not a number", lambda c: c["resources"].update(disk_size="big")),
    ("invalid env name", lambda c: c["envs"].update({"1BAD": "x"})),
    ("num_nodes = 2", lambda c: c.update(num_nodes=2)),
]


def _verdict(check: Callable[[], Any]) -> str:
    try:
        check()
    except (SpecError, ValueError):
        return "refused"
    return "accepted"


def main(sweep_file: str) -> int:
    """Print one line per (task, change) and return 1 if any verdict differs."""
    sweep = load_sweep(Path(sweep_file))
    task_file = Path(tempfile.mkdtemp()) / "task.json"
    task_file.write_text("{}")
    differ = 0
    for t in plan_tasks(sweep):
        base = task_config(sweep, t, task_file, checkout_root(Path(__file__).resolve().parent))
        for name, change in CHANGES:
            c = copy.deepcopy(base)
            change(c)
            ours = _verdict(lambda c=c: validate_task_config(c))
            theirs = _verdict(lambda c=c: sky.Task.from_yaml_config(copy.deepcopy(c)))
            differ += ours != theirs
            print(f"{t.kind:8} {name:26} ours: {ours:8} SkyPilot {sky.__version__}: {theirs}")
    print(f"{differ} disagreement(s)")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
