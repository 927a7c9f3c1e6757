"""Sandboxes: run an agent in isolation with a hard wall-clock limit and resource limits.

Backends (see :func:`get_sandbox`):

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
from posttrainbench.sandbox.base import Sandbox, SandboxConfig, SandboxResult
from posttrainbench.sandbox.bwrap import BwrapSandbox
from posttrainbench.sandbox.unsandboxed import UnsandboxedSandbox

__all__ = [
    "BwrapSandbox",
    "Sandbox",
    "SandboxConfig",
    "SandboxResult",
    "UnsandboxedSandbox",
    "get_sandbox",
]


def get_sandbox(kind: SandboxKind | str) -> Sandbox:
    """The backend for ``kind``. Check ``.available()`` before relying on it."""
    kind = SandboxKind(kind)
    if kind == SandboxKind.bwrap:
        return BwrapSandbox()
    if kind == SandboxKind.docker:
        from posttrainbench.sandbox.docker import DockerSandbox

        return DockerSandbox()
    if kind == SandboxKind.apptainer:
        from posttrainbench.sandbox.apptainer import ApptainerSandbox

        return ApptainerSandbox()
    if kind == SandboxKind.none:
        return UnsandboxedSandbox()
    raise ValueError(f"unknown sandbox kind: {kind}")  # pragma: no cover - enum is exhaustive
