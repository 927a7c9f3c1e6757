"""Large-artifact transfer (results/transfer.py): an interrupted copy resumes and ends
byte-identical, corrupt chunks are fetched again, a full disk fails clearly and loses nothing,
and the destination never appears half-copied.

Files of a few MB with a 64 kB chunk stand for multi-GB weights (the code has no size cap: it
never holds more than one chunk)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posttrainbench.fsutil import hash_tree, sha256_file
from posttrainbench.results.transfer import (
    PART_SUFFIX,
    LocalSource,
    TransferError,
    copy_run_folder,
    copy_tree,
    staging_dir,
)

CHUNK = 64 << 10


class _Stop(Exception):
    pass


def _model_folder(root: Path, mb: int = 3) -> Path:
    """A folder shaped like a final_model: a few MB of random weights, a config, a nested file."""
    root.mkdir(parents=True)
    (root / "model.safetensors").write_bytes(os.urandom(mb << 20))
    (root / "model-00002.safetensors").write_bytes(os.urandom((1 << 20) + 12345))  # not a chunk multiple
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "sub").mkdir()
    (root / "sub" / "empty.txt").write_bytes(b"")
    return root


def test_copy_is_byte_identical_and_appears_atomically(tmp_path: Path) -> None:
    src = _model_folder(tmp_path / "src")
    dest = tmp_path / "out" / "final_model"
    seen: list[bool] = []
    copy_tree(LocalSource(src), dest, chunk_size=CHUNK, on_chunk=lambda f, i: seen.append(dest.exists()))
    assert seen and not any(seen)  # never visible while chunks were arriving
    assert hash_tree(dest) == hash_tree(src)
    assert not staging_dir(dest).exists()
    with pytest.raises(FileExistsError):
        copy_tree(LocalSource(src), dest, chunk_size=CHUNK)


def test_interrupted_copy_resumes_where_it_stopped(tmp_path: Path) -> None:
    src = _model_folder(tmp_path / "src")
    dest = tmp_path / "final_model"

    def stop_at_20(path: str, index: int) -> None:
        if path == "model.safetensors" and index == 20:
            raise _Stop

    with pytest.raises(_Stop):
        copy_tree(LocalSource(src), dest, chunk_size=CHUNK, on_chunk=stop_at_20)
    assert not dest.exists()
    part = staging_dir(dest) / ("model.safetensors" + PART_SUFFIX)
    assert part.stat().st_size == 21 * CHUNK  # chunks 0..20 arrived
    fetched: list[tuple[str, int]] = []
    copy_tree(LocalSource(src), dest, chunk_size=CHUNK, on_chunk=lambda f, i: fetched.append((f, i)))
    assert hash_tree(dest) == hash_tree(src)
    big = [i for f, i in fetched if f == "model.safetensors"]
    assert big[0] == 21 and len(big) == (3 << 20) // CHUNK - 21  # nothing fetched twice
    # files finished before the interruption (sorted first) are not fetched again
    assert all(f != "config.json" for f, _ in fetched)


def test_a_killed_copy_process_resumes_byte_identical(tmp_path: Path) -> None:
    src = _model_folder(tmp_path / "src", mb=4)
    dest = tmp_path / "final_model"
    script = (
        "import sys, time\n"
        "from posttrainbench.results.transfer import LocalSource, copy_tree\n"
        f"copy_tree(LocalSource(sys.argv[1]), __import__('pathlib').Path(sys.argv[2]), chunk_size={CHUNK},"
        " on_chunk=lambda f, i: time.sleep(0.01))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(src), str(dest)])
    part = staging_dir(dest) / ("model-00002.safetensors" + PART_SUFFIX)
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size > 4 * CHUNK) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not dest.exists()
    fetched: list[tuple[str, int]] = []
    copy_tree(LocalSource(src), dest, chunk_size=CHUNK, on_chunk=lambda f, i: fetched.append((f, i)))
    assert hash_tree(dest) == hash_tree(src)
    assert all(f != "model-00002.safetensors" or i >= 4 for f, i in fetched)  # resumed, not restarted


def test_corrupt_chunk_on_disk_is_detected_and_fetched_again(tmp_path: Path) -> None:
    src = _model_folder(tmp_path / "src")
    dest = tmp_path / "final_model"

    def stop(path: str, index: int) -> None:
        if path == "model.safetensors" and index == 30:
            raise _Stop

    with pytest.raises(_Stop):
        copy_tree(LocalSource(src), dest, chunk_size=CHUNK, on_chunk=stop)
    part = staging_dir(dest) / ("model.safetensors" + PART_SUFFIX)
    with open(part, "r+b") as fh:  # a bit flips in chunk 10 of what already arrived
        fh.seek(10 * CHUNK + 7)
        byte = fh.read(1)
        fh.seek(10 * CHUNK + 7)
        fh.write(bytes([byte[0] ^ 0x01]))
    fetched: list[int] = []
    copy_tree(LocalSource(src), dest, chunk_size=CHUNK, on_chunk=lambda f, i: fetched.append(i))
    assert fetched[0] == 10  # cut back to the last intact chunk
    assert sha256_file(dest / "model.safetensors") == sha256_file(src / "model.safetensors")


class _FlakySource(LocalSource):
    """A real local source whose transport corrupts some reads (as a bad link would)."""

    def __init__(self, root: Path, bad_reads: int) -> None:
        super().__init__(root)
        self.bad_reads = bad_reads

    def read(self, path: str, offset: int, length: int) -> bytes:
        block = super().read(path, offset, length)
        if path == "model.safetensors" and offset == 5 * CHUNK and self.bad_reads > 0:
            self.bad_reads -= 1
            return bytes([block[0] ^ 0xFF]) + block[1:]
        return block


def test_corrupt_chunk_in_transit_is_refetched_and_a_persistent_one_fails(tmp_path: Path) -> None:
    src = _model_folder(tmp_path / "src")
    copy_tree(_FlakySource(src, bad_reads=2), tmp_path / "a", chunk_size=CHUNK)
    assert hash_tree(tmp_path / "a") == hash_tree(src)
    with pytest.raises(TransferError, match=r"chunk 5 .* did not match its hash"):
        copy_tree(_FlakySource(src, bad_reads=99), tmp_path / "b", chunk_size=CHUNK)
    assert not (tmp_path / "b").exists()


def test_source_changed_between_attempts_restarts_the_copy(tmp_path: Path) -> None:
    src = _model_folder(tmp_path / "src")
    dest = tmp_path / "final_model"

    def stop(path: str, index: int) -> None:
        if index == 3:
            raise _Stop

    with pytest.raises(_Stop):
        copy_tree(LocalSource(src), dest, chunk_size=CHUNK, on_chunk=stop)
    (src / "model.safetensors").write_bytes(os.urandom(3 << 20))  # the agent's model was replaced
    copy_tree(LocalSource(src), dest, chunk_size=CHUNK)
    assert hash_tree(dest) == hash_tree(src)


def test_run_folder_is_held_to_the_hashes_recorded_in_run_json(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _model_folder(run / "final_model")
    hashes = {p.name: sha256_file(p) for p in (run / "final_model").iterdir() if p.is_file()}
    (run / "run.json").write_text(json.dumps({"final_model_hashes": hashes}))
    copy_run_folder(run, tmp_path / "copy", chunk_size=CHUNK)  # honest control
    assert hash_tree(tmp_path / "copy") == hash_tree(run)
    # the weights were swapped after the run recorded its canonical submission
    (run / "final_model" / "model.safetensors").write_bytes(os.urandom(1 << 20))
    with pytest.raises(TransferError, match="differs from the one recorded"):
        copy_run_folder(run, tmp_path / "copy2", chunk_size=CHUNK)
    assert not (tmp_path / "copy2").exists()


def test_symlink_in_source_is_refused(tmp_path: Path) -> None:
    src = _model_folder(tmp_path / "src")
    (src / "leak").symlink_to("/etc/passwd")
    with pytest.raises(TransferError, match="symlink"):
        copy_tree(LocalSource(src), tmp_path / "out", chunk_size=CHUNK)


@pytest.fixture
def small_disk(tmpfs) -> Path:
    return tmpfs("3m")


def test_disk_full_fails_clearly_loses_nothing_and_resumes(tmp_path: Path, small_disk: Path) -> None:
    src = _model_folder(tmp_path / "src")  # ~4 MB onto a 3 MB disk
    before = hash_tree(src)
    dest = small_disk / "final_model"
    with pytest.raises(TransferError, match="no space left on the device") as err:
        copy_tree(LocalSource(src), dest, chunk_size=CHUNK)
    assert "resumes" in str(err.value) and not dest.exists()
    assert hash_tree(src) == before  # the source is untouched
    arrived = sum(p.stat().st_size for p in staging_dir(dest).rglob("*") if p.is_file())
    assert arrived > 2 << 20  # what arrived is kept for the resume
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    fetched: list[tuple[str, int]] = []
    copy_tree(LocalSource(src), dest, chunk_size=CHUNK, on_chunk=lambda f, i: fetched.append((f, i)))
    assert hash_tree(dest) == before
    assert len(fetched) < (4 << 20) // CHUNK // 2  # most of it was not fetched again


def test_in_place_copy_resumes_without_renaming_the_folder(tmp_path: Path) -> None:
    # for bucket mounts: the folder is written where it will stay, marked incomplete until done
    src = _model_folder(tmp_path / "src")
    dest = tmp_path / "bucket" / "run@1"

    def stop(path: str, index: int) -> None:
        if path == "model.safetensors" and index == 5:
            raise _Stop

    with pytest.raises(_Stop):
        copy_tree(LocalSource(src), dest, chunk_size=CHUNK, on_chunk=stop, in_place=True)
    assert (dest / ".ptb-transfer.json").is_file() and not staging_dir(dest).exists()
    fetched: list[int] = []
    copy_tree(LocalSource(src), dest, chunk_size=CHUNK, in_place=True, on_chunk=lambda f, i: fetched.append(i))
    assert hash_tree(dest) == hash_tree(src) and fetched[0] == 6


def test_ptb_copy_copies_a_run_folder_and_refuses_an_existing_destination(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from posttrainbench.cli.main import app

    run = tmp_path / "run"
    _model_folder(run / "final_model")
    hashes = {p.name: sha256_file(p) for p in (run / "final_model").iterdir() if p.is_file()}
    (run / "run.json").write_text(json.dumps({"final_model_hashes": hashes}))
    res = CliRunner().invoke(app, ["copy", str(run), str(tmp_path / "copy"), "--chunk-mb", "1"])
    assert res.exit_code == 0, res.output
    assert hash_tree(tmp_path / "copy") == hash_tree(run) and "copied 5 files" in res.output
    res = CliRunner().invoke(app, ["copy", str(run), str(tmp_path / "copy")], env={"COLUMNS": "250"})
    assert res.exit_code == 2 and "destination already exists" in res.output
    (run / "final_model" / "config.json").write_text("{}")  # changed after run.json recorded it
    res = CliRunner().invoke(app, ["copy", str(run), str(tmp_path / "copy2")], env={"COLUMNS": "250"})
    assert res.exit_code == 2 and "differs from the one recorded in the run" in res.output
    assert not (tmp_path / "copy2").exists()


def test_a_resume_reuses_the_manifest_and_a_change_hidden_from_stat_fails_instead_of_passing(tmp_path: Path) -> None:
    src = _model_folder(tmp_path / "src")
    dest = tmp_path / "final_model"

    def stop(path: str, index: int) -> None:
        if path == "model.safetensors" and index == 3:
            raise _Stop

    with pytest.raises(_Stop):
        copy_tree(LocalSource(src), dest, chunk_size=CHUNK, on_chunk=stop)
    # the weights change in place with the same size and a forged mtime: stat cannot see it, so the
    # resume reuses the stored hashes (no full re-read) and the fetched bytes then contradict them
    big = src / "model.safetensors"
    st = big.stat()
    with open(big, "r+b") as fh:
        fh.seek(20 * CHUNK)
        fh.write(os.urandom(CHUNK))
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(TransferError, match="did not match its hash"):
        copy_tree(LocalSource(src), dest, chunk_size=CHUNK)
    assert not dest.exists()
    copy_tree(LocalSource(src), dest, chunk_size=CHUNK)  # the next attempt hashes the source again
    assert hash_tree(dest) == hash_tree(src)
