"""The agent prompt and ``timer.sh``, rendered from templates shipped with the package."""

from __future__ import annotations

from importlib.resources import files

import jinja2

from ..domain import BaseModelSpec, Benchmark, NetworkPolicy, RunSpec

_ENV = jinja2.Environment(
    loader=jinja2.FunctionLoader(
        lambda name: files("posttrainbench.agents").joinpath("templates", name).read_text("utf-8")
    ),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def hours_text(hours: float) -> str:
    """``10`` -> ``10 hours``, ``0.1`` -> ``6 minutes``, ``1.5`` -> ``1 hour 30 minutes``."""
    minutes = round(hours * 60)
    h, m = divmod(minutes, 60)
    parts = []
    if h:
        parts.append(f"{h} hour{'s' if h != 1 else ''}")
    if m or not parts:
        parts.append(f"{m} minute{'s' if m != 1 else ''}")
    return " ".join(parts)


def hardware_text(gpus: int, gpu_name: str | None) -> str:
    """Describe the hardware the agent gets."""
    if gpus <= 0:
        return "CPU only (no GPU)"
    name = gpu_name or "GPU"
    return f"{gpus} x {name}"


def render_prompt(
    spec: RunSpec,
    benchmark: Benchmark,
    base: BaseModelSpec,
    *,
    base_model_path: str,
    train_files: list[str],
    gpu_name: str | None = None,
) -> str:
    """Render the task prompt with the model, benchmark, hours, hardware and the seven rules."""
    network = {
        NetworkPolicy.none: "none (offline); everything you need is in the workspace",
        NetworkPolicy.allowlist: "only through a logging proxy (HTTP(S)_PROXY is set) to the "
        "model hub and the Python package index; every request is logged",
        NetworkPolicy.open: "open internet access",
    }[spec.network]
    return _ENV.get_template("prompt.md.j2").render(
        model=base.hub_id,
        benchmark_name=benchmark.display_name,
        base_model_path=base_model_path,
        allowed_training_data=benchmark.allowed_training_data,
        train_files=train_files,
        hours_text=hours_text(spec.hours),
        hardware=hardware_text(spec.gpus, gpu_name),
        network=network,
        forbidden=", ".join(base.forbidden) or "none listed",
    )


def render_timer(deadline_epoch: float) -> str:
    """``timer.sh`` printing the time left until ``deadline_epoch`` (unix seconds)."""
    return _ENV.get_template("timer.sh.j2").render(deadline_epoch=int(deadline_epoch))
