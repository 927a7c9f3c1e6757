"""Write the JSON schemas SkyPilot validates a task spec with (``sky.Task.from_yaml_config``)
into ``src/posttrainbench/resources/skypilot/`` (run with an interpreter that has ``skypilot``
installed: it cannot share our venv, see docs/running.md#skypilot-clouds-kubernetes)::

    python scripts/skypilot_schema.py
"""

from __future__ import annotations

import json
from pathlib import Path

import sky
from sky.utils import schemas

OUT = Path(__file__).resolve().parent.parent / "src" / "posttrainbench" / "resources" / "skypilot"


def main() -> None:
    """Dump the task, resources and storage schemas of the installed SkyPilot."""
    data = {
        "skypilot_version": sky.__version__,
        "task": schemas.get_task_schema(),
        "resources": schemas.get_resources_schema(),
        "storage": schemas.get_storage_schema(),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "schemas.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
