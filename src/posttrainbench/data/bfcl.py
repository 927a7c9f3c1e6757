"""BFCL exec_simple data: the question and answer files shipped inside the PyPI package
``bfcl-eval`` (Apache-2.0). Only its data files are used: the wheel is downloaded with
``pip download --no-deps`` (none of its dependencies is installed) and the two files are
extracted into the cache, once.

Layout (the package's own, relative to a data root or the cache folder)::

    bfcl/BFCL_v4_exec_simple.json                   questions + function docs (JSON lines)
    bfcl/possible_answer/BFCL_v4_exec_simple.json   ground-truth calls (JSON lines)
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

from ..fsutil import atomic_write_text
from ..wheels import WheelDownloadError, pip_download
from .items import DataError

BFCL_REQUIREMENT = "bfcl-eval==2026.3.23"
BFCL_WHEEL_ENV = "PTB_BFCL_WHEEL"
QUESTIONS = "bfcl/BFCL_v4_exec_simple.json"
ANSWERS = "bfcl/possible_answer/BFCL_v4_exec_simple.json"
# Where the files sit inside the wheel (bfcl-eval keeps exec_* under unused_datasets/ since v4).
WHEEL_MEMBERS = {
    QUESTIONS: "bfcl_eval/data/unused_datasets/question/BFCL_v4_exec_simple.json",
    ANSWERS: "bfcl_eval/data/unused_datasets/possible_answer/BFCL_v4_exec_simple.json",
}


def bfcl_cache_dir() -> Path:
    """``<cache root>/data/bfcl-eval-<version>`` (cache root: ``$PTB_CACHE_DIR`` or ~/.cache/posttrainbench)."""
    root = Path(os.environ.get("PTB_CACHE_DIR") or Path.home() / ".cache" / "posttrainbench")
    return root / "data" / BFCL_REQUIREMENT.replace("==", "-")


def extract_bfcl_files(wheel: Path, dest: Path) -> Path:
    """Extract the exec_simple files of a ``bfcl-eval`` wheel into ``dest`` (atomically per file)."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            for rel, member in WHEEL_MEMBERS.items():
                try:
                    data = zf.read(member)
                except KeyError:
                    raise DataError(f"{wheel} has no {member}; is it {BFCL_REQUIREMENT}?") from None
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(dest / rel, data.decode("utf-8"))
    except zipfile.BadZipFile as exc:
        raise DataError(f"{wheel} is not a valid wheel (zip): {exc}") from exc
    return dest


def ensure_bfcl_files(cache_dir: Path | None = None) -> Path:
    """A folder holding ``QUESTIONS`` and ``ANSWERS``: the cache, filled from the wheel if needed
    (``$PTB_BFCL_WHEEL`` if set, else ``pip download --no-deps bfcl-eval==...``)."""
    dest = Path(cache_dir) if cache_dir is not None else bfcl_cache_dir()
    if all((dest / rel).is_file() for rel in WHEEL_MEMBERS):
        return dest
    wheel_env = os.environ.get(BFCL_WHEEL_ENV)
    if wheel_env:
        return extract_bfcl_files(Path(wheel_env), dest)
    with tempfile.TemporaryDirectory(prefix="ptb-bfcl-") as tmp:
        try:
            wheel = pip_download(BFCL_REQUIREMENT, Path(tmp), timeout_s=600)
        except WheelDownloadError as exc:
            raise DataError(
                f"bfcl: {exc}\nDownload it where the index is reachable (`pip download --no-deps "
                f"{BFCL_REQUIREMENT}`) and set {BFCL_WHEEL_ENV} to the .whl file, or put {QUESTIONS} "
                f"and {ANSWERS} under PTB_DATA_DIR."
            ) from exc
        return extract_bfcl_files(wheel, dest)
