"""Default memory/pids limits (sizing, settings) and the cgroup v1/v2 code paths.

What runs where: this machine is a cgroup *hybrid* (v1 ``memory`` and ``pids`` hierarchies, a v2
``unified`` hierarchy with no memory/pids controller). So

- the v1 limit path is tested for real (here, in ``test_sandbox.py`` and the prevention suite);
- the v2 path is tested for real only for what this v2 hierarchy can do (a tracking cgroup:
  create, join, find every process, remove) and, for limits, against a fake cgroupfs tree laid
  out like a v2 host's (``/proc/self/mountinfo``, ``/proc/self/cgroup``, ``cgroup.controllers``,
  ``cgroup.subtree_control``, ``memory.events``, ``pids.events``): that exercises our discovery,
  controller enabling, limit writes and event parsing, not the kernel's enforcement.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from posttrainbench.domain import RunSpec
from posttrainbench.pipeline import Pipeline
from posttrainbench.sandbox import limits
from posttrainbench.sandbox.limits import Machine, default_limits, resolve_limits, setup_cgroups
from posttrainbench.sandbox.process import supervise
from posttrainbench.settings import Settings, SettingsError

GIB = 1024


def test_default_limits_formula() -> None:
    laptop = Machine(mem_mb=24 * GIB, mem_limited_by_cgroup=False, cpus=2, gpus=0, pid_max=32768)
    # (24 GiB - 2.4 GiB reserve); 1024 + 64 * 2 tasks
    assert default_limits(0, laptop) == (24 * GIB - 2457, 1152)
    node = Machine(mem_mb=2048 * GIB, mem_limited_by_cgroup=False, cpus=192, gpus=8, pid_max=4194304)
    mem, pids = default_limits(1, node)
    assert mem == int((2048 * GIB - 2048 * GIB // 10) / 8) and pids == 1024 + 64 * 192 + 512
    assert default_limits(8, node)[0] == 2048 * GIB - 2048 * GIB // 10  # all GPUs: the whole pool
    assert default_limits(0, node)[0] == 2048 * GIB - 2048 * GIB // 10  # CPU run: the whole pool
    # a Slurm job / container: its cgroup limit is the pool, already this run's share
    job = Machine(mem_mb=200 * GIB, mem_limited_by_cgroup=True, cpus=16, gpus=8, pid_max=4194304)
    assert default_limits(1, job)[0] == 200 * GIB - 20 * GIB
    tiny = Machine(mem_mb=1024, mem_limited_by_cgroup=False, cpus=1, gpus=0, pid_max=1000)
    assert default_limits(0, tiny) == (512, 500)  # floors and the kernel's pid_max


def test_limit_settings() -> None:
    m = Machine(mem_mb=24 * GIB, mem_limited_by_cgroup=False, cpus=2, gpus=0, pid_max=32768)
    plan = resolve_limits(0, Settings.from_env({}), machine=m)
    assert (plan.memory_mb, plan.max_pids, plan.memory_source, plan.pids_source) == (
        24 * GIB - 2457,
        1152,
        "default",
        "default",
    )
    plan = resolve_limits(
        0, Settings.from_env({"PTB_SANDBOX_MEMORY_MB": "4096", "PTB_SANDBOX_MAX_PIDS": "OFF"}), machine=m
    )
    assert (plan.memory_mb, plan.max_pids) == (4096, None)
    assert (plan.memory_source, plan.pids_source) == ("PTB_SANDBOX_MEMORY_MB", "PTB_SANDBOX_MAX_PIDS=off")
    rec = plan.record()
    assert rec["machine"] == {
        "mem_mb": 24 * GIB,
        "mem_limited_by_cgroup": False,
        "cpus": 2,
        "gpus": 0,
        "pid_max": 32768,
    }
    for bad, expected in (
        ({"PTB_SANDBOX_MEMORY_MB": "lots"}, "PTB_SANDBOX_MEMORY_MB='lots': expected an integer ≥ 512, or `off`"),
        ({"PTB_SANDBOX_MEMORY_MB": "100"}, "PTB_SANDBOX_MEMORY_MB='100': expected an integer ≥ 512, or `off`"),
        ({"PTB_SANDBOX_MAX_PIDS": "-1"}, "PTB_SANDBOX_MAX_PIDS='-1': expected an integer ≥ 16, or `off`"),
    ):
        with pytest.raises(SettingsError) as err:
            Settings.from_env(bad)
        assert err.value.problems == (expected,)


def test_machine_probe_is_this_machine() -> None:
    m = Machine.probe()
    meminfo = (
        int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal:")).split()[1])
        // 1024
    )
    assert m.mem_mb <= meminfo and m.cpus == len(os.sched_getaffinity(0))
    assert m.pid_max == int(Path("/proc/sys/kernel/pid_max").read_text())


def test_bad_limit_setting_stops_the_run_before_it_starts(
    tmp_path: Path, script_agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invalid limit is an error of the settings, named with what it expects, before any phase
    runs (the run folder is not even made); a pipeline that was valid when made re-reads them."""
    spec = RunSpec(
        agent=script_agent("touch ran\n"),
        agent_config="x",
        base_model="ptb/tiny-random",
        benchmark="gsm8k-calc",
        hours=0.05,
    )
    monkeypatch.setenv("PTB_SANDBOX_MAX_PIDS", "many")
    with pytest.raises(SettingsError, match=r"^PTB_SANDBOX_MAX_PIDS='many': expected an integer ≥ 16, or `off`$"):
        Pipeline(spec, tmp_path)
    monkeypatch.delenv("PTB_SANDBOX_MAX_PIDS")
    pipe = Pipeline(spec, tmp_path)
    monkeypatch.setenv("PTB_SANDBOX_MAX_PIDS", "many")
    with pytest.raises(SettingsError, match="PTB_SANDBOX_MAX_PIDS='many'"):
        pipe.run()
    assert not pipe.paths.root.exists()


# --- cgroup v2, for real (what this machine's v2 hierarchy offers) ---------------------------------


def test_real_cgroups_on_this_machine(tmp_path: Path) -> None:
    """A tracking cgroup and limit cgroups, created, joined and removed on this kernel."""
    if os.geteuid() != 0:
        pytest.fail("needs root (writable cgroups)")
    cg, enforced = setup_cgroups(None, None, track=True)
    assert cg is not None
    v2 = next((m for m in limits._mounts() if m[2] == "cgroup2"), None)
    if v2 is not None:  # a tracking cgroup needs no controller: v2 whenever there is a v2 hierarchy
        assert cg.version == 2 and str(cg.dirs[0]).startswith(v2[1])
    out = tmp_path / "out"
    o = supervise(["/bin/sh", "-c", "cat /proc/self/cgroup"], env={}, cwd=tmp_path, stdin=None, stdout=out, stderr=out,
                  time_limit_s=30, kill_grace_s=1, cgroups=cg, spare_leader=False)  # fmt: skip
    assert o.returncode == 0
    name = cg.dirs[0].name
    assert (
        any(line.startswith("0::") and line.endswith(name) for line in out.read_text().splitlines()) or cg.version == 1
    )
    cg.remove()
    assert not cg.dirs[0].exists()
    # limits: v2 when its memory and pids controllers are there, else v1 with the v2 reason kept
    cg, enforced = setup_cgroups(256, 32)
    assert cg is not None and enforced["memory"] is True and enforced["pids"] is True
    ctrls = set((Path(v2[1]) / "cgroup.controllers").read_text().split()) if v2 else set()
    assert cg.version == (2 if {"memory", "pids"} <= ctrls else 1)
    cg.remove()


# --- cgroup v2 limits against a fake cgroupfs tree --------------------------------------------------


def _fake_v2(
    tmp_path: Path, controllers: str = "cpuset cpu io memory hugetlb pids rdma misc", v1: bool = False
) -> Path:
    """A v2 host: cgroup2 at <tmp>/sys/fs/cgroup, we are in /user.slice/session-1.scope."""
    proc, root = tmp_path / "proc" / "self", tmp_path / "sys" / "fs" / "cgroup"
    proc.mkdir(parents=True)
    own = root / "user.slice" / "session-1.scope"
    own.mkdir(parents=True)
    for d in (root, root / "user.slice", own):
        (d / "cgroup.controllers").write_text(controllers + "\n")
        (d / "cgroup.subtree_control").write_text("")
        (d / "cgroup.procs").write_text("")
    (root / "user.slice" / "memory.max").write_text(f"{8 * 2**30}\n")  # the session is limited to 8 GiB
    (own / "memory.max").write_text("max\n")
    mounts = [
        f"35 24 0:30 / {root} rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot"
    ]
    cgroup = ["0::/user.slice/session-1.scope"]
    if v1:
        for i, c in enumerate(("memory", "pids")):
            d = tmp_path / "v1" / c
            d.mkdir(parents=True)
            mounts.append(f"{40 + i} 24 0:{40 + i} / {d} rw,relatime - cgroup cgroup rw,{c}")
            cgroup.insert(0, f"{i + 1}:{c}:/")
    (proc / "mountinfo").write_text("\n".join(mounts) + "\n")
    (proc / "cgroup").write_text("\n".join(cgroup) + "\n")
    return own


def _kernel_rmdir(d: Path) -> None:
    """What rmdir of a cgroup does to its interface files, so ``Cgroups.remove`` can finish."""
    for f in d.iterdir():
        f.unlink()


def test_fake_v2_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = _fake_v2(tmp_path)
    monkeypatch.setattr(limits, "PROC_SELF", tmp_path / "proc" / "self")
    cg, enforced = setup_cgroups(512, 100, pid_overhead=2)
    assert cg is not None and cg.version == 2 and cg.dirs[0].parent == own and cg.memory_dir == cg.dirs[0]
    d = cg.dirs[0]
    assert d.name.startswith("ptb-")
    assert (d / "memory.max").read_text() == str(512 * 2**20) and (d / "memory.swap.max").read_text() == "0"
    assert (d / "pids.max").read_text() == "102"  # the backend's own helpers on top
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids"  # enabled for our children
    assert enforced == {"memory": True, "pids": True, "swap": True}
    assert cg.procs_files() == [d / "cgroup.procs"]
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n")
    (d / "pids.events").write_text("max 7\n")
    assert cg.oom_kills() == 2 and cg.pids_limit_hits() == 7
    _kernel_rmdir(d)
    cg.remove()
    assert not d.exists()
    # the harness's own limit (an ancestor's memory.max) is the machine's memory for the defaults
    m = Machine.probe()
    assert m.mem_limited_by_cgroup and m.mem_mb == 8 * GIB


def test_fake_v2_without_controllers_falls_back_to_v1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_v2(tmp_path, controllers="cpu io", v1=True)
    monkeypatch.setattr(limits, "PROC_SELF", tmp_path / "proc" / "self")
    cg, enforced = setup_cgroups(256, 50)
    assert cg is not None and cg.version == 1
    mem, pids = (tmp_path / "v1" / "memory"), (tmp_path / "v1" / "pids")
    assert [d.parent for d in cg.dirs] == [mem, pids]
    assert (cg.dirs[0] / "memory.limit_in_bytes").read_text() == str(256 * 2**20)
    assert (cg.dirs[1] / "pids.max").read_text() == "50"
    assert enforced["memory"] is True and enforced["pids"] is True
    for d in cg.dirs:
        _kernel_rmdir(d)
    cg.remove()


def test_fake_v2_unwritable_is_recorded_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = _fake_v2(tmp_path, controllers="cpu io")  # no memory/pids controller, and no v1 either
    monkeypatch.setattr(limits, "PROC_SELF", tmp_path / "proc" / "self")
    cg, enforced = setup_cgroups(256, 50)
    assert cg is None
    assert str(enforced["memory"]).startswith("not enforced: no cgroup v1 memory hierarchy; cgroup v2: ")
    assert f"cgroup2 at {own} lacks controller(s) memory,pids (has: cpu,io)" in str(enforced["memory"])
