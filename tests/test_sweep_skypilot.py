"""The SkyPilot launcher, offline (no cloud is reachable here): every generated task spec is
checked against the JSON schemas SkyPilot 0.14.1 validates specs with (committed from the
package: SkyPilot itself cannot share our venv, see launch/skypilot_spec.py), and the results
path (the job pushes its run folder to the sync bucket's mount, this machine pulls it from a
mirror) is run for real on folders, ending in the run-folder states every launcher reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from posttrainbench.fsutil import hash_tree
from posttrainbench.launch import LauncherError, load_sweep, make_launcher, plan_tasks, task_status
from posttrainbench.launch.plan import Task
from posttrainbench.launch.skypilot import SkyPilotLauncher, sky_python
from posttrainbench.launch.skypilot_spec import (
    REMOTE_RESULTS,
    REMOTE_SYNC,
    REMOTE_TASK,
    SpecError,
    checkout_root,
    remote_task_json,
    skypilot_schemas,
    task_config,
    validate_task_config,
)
from posttrainbench.launch.skypilot_sync import PULLED_MARK, main, pull_results
from posttrainbench.results.transfer import TransferError
from posttrainbench.testing import write_synthetic_run

SWEEP = """\
name = "cloud"
results = "out"
hours = 2
gpus_per_run = 2
base_models = ["ptb/tiny-random"]
benchmarks = ["gsm8k-calc"]
launcher = "skypilot"

[[agents]]
name = "reference"
config = "sft"

[skypilot]
accelerator = "A100-80GB"
infra = "gcp/us-central1"
use_spot = true
sync_bucket = "gs://ptb-results-example"
sync_mirror = "MIRROR"
setup = ["echo extra setup"]
envs = { PTB_JUDGE_MODEL = "none" }
"""


def _sweep(tmp_path: Path, text: str = SWEEP):
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    path = tmp_path / "sweep.toml"
    path.write_text(text.replace("MIRROR", str(mirror)))
    return load_sweep(path), mirror


def _job_run_folder(job_results: Path, sweep, run, weights: bytes) -> Path:
    """What the worker leaves on the job's machine: the task's run folder, finished, with a
    final_model whose hashes its run.json recorded."""
    folder = job_results / run.folder.relative_to(sweep.results)
    made = write_synthetic_run(job_results / "tmp", hours=2)
    record = json.loads((made / "run.json").read_text())
    record |= {"spec": run.spec.model_dump(mode="json"), "run_id": run.spec.run_id()}
    (folder / "final_model").mkdir(parents=True)
    (folder / "final_model" / "model.safetensors").write_bytes(weights)
    record["final_model_hashes"] = {"model.safetensors": hash_tree(folder / "final_model")["model.safetensors"]}
    (folder / "run.json").write_text(json.dumps(record))
    return folder


def _checkout() -> Path:
    return checkout_root(Path(__file__).resolve().parent.parent / "src")


def test_every_task_spec_passes_skypilots_schema(tmp_path: Path) -> None:
    sweep, _ = _sweep(tmp_path)
    assert isinstance(make_launcher(sweep), SkyPilotLauncher)
    assert skypilot_schemas()["skypilot_version"] == "0.14.1"
    tasks = plan_tasks(sweep)
    assert [t.kind for t in tasks] == ["baseline", "run"]
    for t in tasks:
        task_file = tmp_path / f"{t.key}.json"
        task_file.write_text(json.dumps(remote_task_json(t)))
        config = task_config(sweep, t, task_file, _checkout())
        validate_task_config(config)  # raises on anything SkyPilot's schema refuses
        res = config["resources"]
        assert res["accelerators"] == {"A100-80GB": t.gpus}  # per-run GPU request (the baseline asks for 1)
        assert res["use_spot"] is True and res["infra"] == "gcp/us-central1"
        assert config["file_mounts"] == {
            REMOTE_TASK: str(task_file),
            REMOTE_SYNC: {"source": "gs://ptb-results-example", "mode": "MOUNT"},
        }
        assert config["envs"]["PTB_JUDGE_MODEL"] == "none" and config["envs"]["OMP_NUM_THREADS"] == "8"
        assert "-m posttrainbench.launch.worker ~/ptb-task.json" in config["run"]
        assert (
            "posttrainbench.launch.skypilot_sync push" in config["run"]
            and '@"$SKYPILOT_TASK_ID-$(date +%s)"' in config["run"]
        )
        assert "pip install -q -e ." in config["setup"] and "echo extra setup" in config["setup"]
        assert (Path(config["workdir"]) / "pyproject.toml").is_file()
        assert json.loads(task_file.read_text())["results"] == REMOTE_RESULTS


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: c["resources"].update(acelerators="H100"), "Additional properties are not allowed"),
        (lambda c: c["resources"].update(use_spot="sometimes"), "is not of type 'boolean'"),
        (lambda c: c["file_mounts"]["/ptb-sync"].update(mode="MOUNTED"), "is not one of"),
        (lambda c: c.update(nodes=2), "Additional properties are not allowed"),
    ],
)
def test_skypilots_schema_refuses_a_bad_spec(tmp_path: Path, change, reason: str) -> None:
    # the control for the test above: the schema is not a rubber stamp
    sweep, _ = _sweep(tmp_path)
    (run,) = [t for t in plan_tasks(sweep) if t.kind == "run"]
    config = task_config(sweep, run, tmp_path / "t.json", _checkout())
    validate_task_config(config)
    change(config)
    with pytest.raises(SpecError, match=reason):
        validate_task_config(config)


def test_the_launcher_writes_each_spec_as_yaml_and_refuses_a_bad_one_before_submitting(tmp_path: Path) -> None:
    sweep, _ = _sweep(tmp_path)
    tasks = plan_tasks(sweep)
    files = SkyPilotLauncher(sweep).specs(tasks)
    assert sorted(files) == sorted(t.key for t in tasks)
    for t in tasks:
        config = yaml.safe_load(files[t.key].read_text())  # what `sky.Task.from_yaml` reads
        validate_task_config(config)
        assert json.loads(Path(config["file_mounts"][REMOTE_TASK]).read_text())["key"] == t.key
    bad, _ = _sweep(tmp_path, SWEEP.replace("use_spot = true", "use_spot = true\nresources = { gpus = 1 }"))
    with pytest.raises(LauncherError, match=r"the SkyPilot spec of .* is invalid: .*'gpus' was unexpected"):
        SkyPilotLauncher(bad).specs(plan_tasks(bad))


def test_an_interrupted_run_folder_is_mounted_so_the_job_resumes_it(tmp_path: Path) -> None:
    sweep, _ = _sweep(tmp_path)
    (run,) = [t for t in plan_tasks(sweep) if t.kind == "run"]
    run.folder.mkdir(parents=True)
    config = task_config(sweep, run, tmp_path / "t.json", _checkout())
    validate_task_config(config)
    rel = run.folder.relative_to(sweep.results).as_posix()
    assert config["file_mounts"][f"{REMOTE_RESULTS}/{rel}"] == str(run.folder)


def test_a_finished_job_is_pulled_back_whole_and_reads_as_done(tmp_path: Path) -> None:
    sweep, mirror = _sweep(tmp_path)
    (run,) = [t for t in plan_tasks(sweep) if t.kind == "run"]
    assert task_status(run).state == "pending"
    # the job's machine: the worker wrote the run folder, then the run script pushed it to the bucket
    folder = _job_run_folder(tmp_path / "job-home" / "ptb-results", sweep, run, os.urandom(1 << 20))
    model = folder / "final_model"
    rel = run.folder.relative_to(sweep.results).as_posix()
    assert main(["push", str(folder), str(mirror / f"{rel}@7")]) == 0
    assert (mirror / f"{rel}@7.done").is_file()
    # an attempt still being pushed (no .done yet) is never taken
    (mirror / f"{rel}@8").mkdir()
    assert pull_results(sweep, mirror) == [rel]
    assert task_status(run).state == "done"
    assert (run.folder / PULLED_MARK).read_text().strip() == f"{run.folder.name}@7"
    assert hash_tree(run.folder / "final_model") == hash_tree(model)
    assert pull_results(sweep, mirror) == []  # already current: nothing copied again
    # status goes through the same states: the launcher pulls before it asks the scheduler
    SkyPilotLauncher(sweep).active([])
    assert task_status(run).state == "done"


def test_a_tampered_attempt_in_the_bucket_is_refused_and_the_local_folder_kept(tmp_path: Path) -> None:
    sweep, mirror = _sweep(tmp_path)
    (run,) = [t for t in plan_tasks(sweep) if t.kind == "run"]
    folder = _job_run_folder(tmp_path / "job", sweep, run, b"honest weights")
    rel = run.folder.relative_to(sweep.results).as_posix()
    main(["push", str(folder), str(mirror / f"{rel}@1")])
    assert pull_results(sweep, mirror) == [rel]  # honest control
    before = hash_tree(run.folder)
    main(["push", str(folder), str(mirror / f"{rel}@2")])
    (mirror / f"{rel}@2" / "final_model" / "model.safetensors").write_bytes(b"swapped in the bucket")
    with pytest.raises(TransferError, match=r"1 attempt.* refused .*differs from the one recorded"):
        pull_results(sweep, mirror)
    assert hash_tree(run.folder) == before
    with pytest.raises(LauncherError, match="differs from the one recorded"):
        SkyPilotLauncher(sweep).active([])  # `ptb sweep status` says so in one line
    assert hash_tree(run.folder) == before


def test_check_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep, _ = _sweep(tmp_path, SWEEP.replace('sync_mirror = "MIRROR"\n', ""))
    with pytest.raises(LauncherError, match="sync_bucket needs sync_mirror"):
        SkyPilotLauncher(sweep).check()
    sweep, _ = _sweep(tmp_path, SWEEP.replace("MIRROR", str(tmp_path / "nowhere")))
    with pytest.raises(LauncherError, match="sync_mirror is not a folder"):
        SkyPilotLauncher(sweep).check()
    # an interpreter without SkyPilot (ours: it cannot be installed beside the harness)
    sweep, _ = _sweep(tmp_path, SWEEP.replace("[skypilot]\n", f"[skypilot]\npython = {json.dumps(sys.executable)}\n"))
    with pytest.raises(LauncherError, match="SkyPilot version failed: ModuleNotFoundError: No module named 'sky'"):
        SkyPilotLauncher(sweep).check()
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LauncherError, match="SkyPilot is not installed"):
        sky_python(None)  # no `sky` on PATH


def test_the_jobs_run_script_runs_the_worker_and_its_result_comes_back(tmp_path: Path) -> None:
    # the generated `run` script, executed by bash on this machine as SkyPilot would on the job's
    # machine (HOME is the job's home, SYNC_DIR stands for the bucket's mount point): the real
    # worker evaluates the baseline, the script pushes its folder, the pull brings it back as done
    sweep, mirror = _sweep(tmp_path, SWEEP.replace("hours = 2\n", "hours = 2\neval_limit = 2\n"))
    baseline = next(t for t in plan_tasks(sweep) if t.kind == "baseline")
    assert task_status(baseline).state == "pending"
    home = tmp_path / "home"
    home.mkdir()
    (home / "ptb-venv").symlink_to(Path(sys.prefix))  # setup's venv: this one
    (home / "ptb-task.json").write_text(json.dumps(remote_task_json(baseline)))  # the file mount
    config = task_config(sweep, baseline, home / "ptb-task.json", _checkout())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTB_")} | {
        "HOME": str(home),
        "SYNC_DIR": str(mirror),
        "SKYPILOT_TASK_ID": "sky-managed-1_ptb-cloud_1-0",
        "PTB_CACHE_DIR": str(tmp_path / "cache"),
    }
    env |= config["envs"]
    proc = subprocess.run(["bash", "-c", config["run"]], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rel = baseline.folder.relative_to(sweep.results).as_posix()
    (done,) = mirror.glob(f"{rel}@sky-managed-1_ptb-cloud_1-0-*.done")
    assert (done.with_name(done.name.removesuffix(".done")) / "result.json").is_file()
    assert (home / "ptb-results" / rel / "result.json").is_file()
    assert pull_results(sweep, mirror) == [rel]
    assert task_status(baseline).state == "done"


def test_api_keys_go_to_the_job_as_secrets_by_name_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An LLM agent's key (what `ptb run` would inject into its sandbox) and the listed extra keys
    go to the job as SkyPilot secrets: the spec names them (schema-checked), the values are filled
    in from this shell by the launch call; a missing one stops the sweep before any submission."""
    text = SWEEP.replace('name = "reference"\nconfig = "sft"', 'name = "claude"\nconfig = "claude-sonnet-4-5"')
    text = text.replace('envs = { PTB_JUDGE_MODEL = "none" }', 'secrets = ["PTB_JUDGE_API_KEY"]\npython = "PY"')
    sweep, _ = _sweep(tmp_path, text.replace("PY", str(tmp_path / "no-sky" / "python")))
    tasks = plan_tasks(sweep)
    by_kind: dict[str, Task] = {t.kind: t for t in tasks}
    for kind, expected in (("run", ["ANTHROPIC_API_KEY", "PTB_JUDGE_API_KEY"]), ("baseline", ["PTB_JUDGE_API_KEY"])):
        config = task_config(sweep, by_kind[kind], tmp_path / "t.json", _checkout())
        validate_task_config(config)
        assert config["secrets"] == dict.fromkeys(expected), config["secrets"]
        assert not set(expected) & set(config["envs"])
    oauth, _ = _sweep(tmp_path, text.replace("claude-sonnet-4-5", "claude-sonnet-4-5:auth=oauth"))
    (run,) = [t for t in plan_tasks(oauth) if t.kind == "run"]
    assert "CLAUDE_CODE_OAUTH_TOKEN" in task_config(oauth, run, tmp_path / "t.json", _checkout())["secrets"]

    launcher = SkyPilotLauncher(sweep)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("PTB_JUDGE_API_KEY", "judge-key-value")
    launched: list[str] = []
    with pytest.raises(LauncherError, match=r"the jobs need ANTHROPIC_API_KEY in this shell's environment"):
        launcher.submit(sweep, tasks, {}, lambda key, ids: launched.append(key))
    assert launched == [] and not (sweep.results / ".sweeps" / "cloud" / "skypilot").exists()
    # with the key set, the specs written for the launch hold the names only
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-value-never-on-disk")
    with pytest.raises(LauncherError, match="could not be run"):  # no SkyPilot here: stops at the call
        launcher.submit(sweep, tasks, {}, lambda key, ids: launched.append(key))
    written = list((sweep.results / ".sweeps" / "cloud" / "skypilot").iterdir())
    assert written and not any(
        b"sk-ant-value-never-on-disk" in f.read_bytes() or b"judge-key-value" in f.read_bytes() for f in written
    )
