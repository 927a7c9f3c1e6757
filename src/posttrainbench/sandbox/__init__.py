"""Sandboxes: run an agent in isolation with a hard wall-clock limit and resource limits.

Backends (each registered in :data:`SANDBOXES` under its name, see :func:`get_sandbox`):

- ``bwrap`` (:class:`BwrapSandbox`): bubblewrap namespaces; the default on Linux.
- ``docker`` (:class:`~.docker.DockerSandbox`): a container via the docker SDK.
- ``apptainer`` (:class:`~.apptainer.ApptainerSandbox`): ``apptainer exec --containall --pid``.
- ``none`` (:class:`UnsandboxedSandbox`): a plain subprocess with the same time limit and tree
  kill. It is **not isolated** — for debugging and platforms without bwrap only.

Every backend returns a :class:`SandboxResult` whose ``enforced`` map says which limits were
really enforced on this machine, with a reason for each that was not. When the harness is root,
the isolating backends run the command as an unprivileged uid/gid (``enforced["uid"]``, see
:func:`~.base.sandbox_identity`), and ``ro_overlays`` make chosen paths inside the workspace
read-only. The default memory/pids limits of an agent run are sized by
:func:`~.limits.resolve_limits` (the pipeline passes them in ``SandboxConfig``). The isolating backends
share one ``run()`` (:class:`~.isolated.IsolatingSandbox`: checks, not-started results, egress).
"""

from __future__ import annotations

from posttrainbench.domain import SandboxKind
from posttrainbench.sandbox.base import SANDBOXES, Sandbox, SandboxConfig, SandboxResult
from posttrainbench.settings import Settings

# Importing a backend registers it; registration order is SandboxKind's order (so these imports
# are not sorted).
# isort: off
from posttrainbench.sandbox.bwrap import BwrapSandbox
from posttrainbench.sandbox.docker import DockerSandbox
from posttrainbench.sandbox.apptainer import ApptainerSandbox
from posttrainbench.sandbox.unsandboxed import UnsandboxedSandbox
# isort: on

__all__ = [
    "SANDBOXES",
    "ApptainerSandbox",
    "BwrapSandbox",
    "DockerSandbox",
    "Sandbox",
    "SandboxConfig",
    "SandboxResult",
    "UnsandboxedSandbox",
    "get_sandbox",
]


def get_sandbox(kind: SandboxKind | str, settings: Settings | None = None) -> Sandbox:
    """A new backend of kind ``kind`` (UnknownNameError lists the known ones) running under
    ``settings`` (None: read from the environment when needed). Check ``.available()`` before
    relying on it."""
    return SANDBOXES.get(kind.value if isinstance(kind, SandboxKind) else kind)(settings=settings)
