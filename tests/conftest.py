"""Shared fixtures: an isolated cache, and scripted agents for bad-input tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

# No test may reach the model/dataset hub: set before anything imports huggingface_hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest

from posttrainbench.agents import AGENTS, Agent
from posttrainbench.domain import AgentSpec


@pytest.fixture(scope="session")
def ptb_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache dir for the session (tiny models are built once)."""
    return tmp_path_factory.mktemp("ptb-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(ptb_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_CACHE_DIR", str(ptb_cache))
    monkeypatch.delenv("PTB_DATA_DIR", raising=False)


class ScriptAgent(Agent):
    """A test agent whose behaviour is a bash script run inside the real sandbox."""

    spec = AgentSpec(id="script-test", display_name="script", llm=False)
    script = ""

    @classmethod
    def with_script(cls, script: str) -> type[ScriptAgent]:
        """This agent class running ``script``."""
        return type(cls.__name__, (cls,), {"script": script})

    def setup_workspace(self, workspace: Path, ctx) -> list[str]:
        (workspace / "agent.sh").write_text(self.script)
        return ["agent.sh"]

    def command(self, ctx) -> list[str]:
        return ["bash", "agent.sh"]

    def version(self) -> str:
        return "script-test"


@pytest.fixture
def script_agent() -> Iterator[Callable[[str | type[ScriptAgent]], str]]:
    """Register a scripted agent named ``script-test`` in the agent registry: call the fixture
    with the bash script (or a ScriptAgent subclass); a later call replaces it. It is
    unregistered when the test ends."""
    with ExitStack() as stack:

        def register(script: str | type[ScriptAgent]) -> str:
            cls = script if isinstance(script, type) else ScriptAgent.with_script(script)
            stack.enter_context(AGENTS.registered(cls))
            return cls.spec.id

        yield register


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (playwright) for the module's browser tests; tests using it are in the
    ``browser`` tier."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount a small tmpfs: call the fixture with its size (``"8m"``); unmounted when the test
    ends. Needs root (CI runs as root)."""
    import subprocess

    assert os.geteuid() == 0, "mounting a tmpfs needs root (CI runs as root)"
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        mnt = tmp_path / f"disk{len(mounted)}"
        mnt.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True)
        mounted.append(mnt)
        return mnt

    try:
        yield mount
    finally:
        for mnt in mounted:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


# --- test tiers -------------------------------------------------------------------------------
# Markers say what a test needs or costs; CI runs everything, developers run the fast tier:
#   pytest -m "not slow and not slurm and not docker and not browser and not npm"
# `slow` is what took 5 s or more on the 2-core CI machine (measured with --durations, see
# docs/development.md); the others follow from the fixtures and files a test uses.
_FILE_MARKS: dict[str, tuple[str, ...]] = {
    "test_demo.py": ("slow",),
    "test_sweep_slurm.py": ("slurm", "slow"),
    "test_docker_sandbox.py": ("docker", "sandbox"),
    "test_cli_agents.py": ("npm", "sandbox"),
    "test_red_team.py": ("sandbox", "slow"),
    "test_prevention.py": ("sandbox", "slow"),
    "test_reference_agent.py": ("slow",),
    "test_sweep_interrupts.py": ("slow",),  # live progress and sweep interrupts (issue 15, part progress)
    "test_sandbox.py": ("sandbox",),
    "test_sandbox_escapes.py": ("sandbox",),
    "test_sandbox_limits.py": ("sandbox",),
    "test_humaneval_hostile.py": ("sandbox",),
    "test_disk_full.py": ("sandbox",),
    "test_observer.py": ("sandbox",),
    "test_harbor_trial.py": ("docker", "slow"),  # Harbor trials on a private dockerd (issue 17, part harbor)
}
_FIXTURE_MARKS: dict[str, str] = {
    "browser": "browser",
    "script_agent": "sandbox",
    "bwrap": "sandbox",
    "docker_sb": "docker",
}
_SLOW_TESTS: frozenset[str] = frozenset(
    {
        "test_import.py::test_verify_runs_our_gates_on_imported_upstream_folders",
        # the numba case compiles the kernels once per process (~6 s)
        "test_contamination_fastpath.py::test_fast_scan_equals_the_reference_on_planted_items",
        "test_pipeline.py::test_reference_agent_full_lifecycle_then_resume_is_a_no_op",
        "test_pipeline.py::test_agent_hanging_past_its_limit_is_killed",
        "test_pipeline.py::test_interrupted_solve_restarts_from_a_fresh_workspace",
        "test_eval_humaneval.py::test_all_canonical_solutions_pass_in_the_sandbox",
        "test_benchmark_units.py::test_a_new_benchmark_runs_end_to_end_on_the_tiny_model",
        "test_reference_prompts.py::test_ptb_eval_under_ptb_v1_runs_end_to_end_and_records_the_protocol",
        "test_verify_wiring.py::test_judge_is_required_exactly_when_configured",
        "test_contamination_evasions.py::test_parquet_rows_and_token_ids",
        "test_integrity.py::test_fingerprint_agreement_follows_the_model_that_was_copied",
        "test_integrity.py::test_a_copy_of_the_forbidden_function_fails_on_its_logits",  # rotate
        "test_verify_wiring.py::test_forbidden_checkpoints_resolve_from_the_local_store_only",
        "test_eval_backends.py::test_openai_backend_server_down_is_a_failed_evaluation",
        "test_probe.py::test_probe_verdict_on_real_fine_tunes",
        "test_probe.py::test_probe_is_not_run_without_controls",
        "test_probe.py::test_without_spare_items_the_likelihood_tests_are_evidence_only",
        "test_cli_read_only.py::test_a_read_only_results_tree_is_ranked_and_left_untouched",
        "test_cli_errors.py::test_a_read_only_output_folder_is_refused_before_any_work",
        "test_interrupts.py::test_one_ctrl_c_stops_an_evaluation_and_the_ladder_does_not_go_on",
        "test_cli_errors.py::test_an_unreachable_hub_is_said_at_once_without_retries",
        "test_cli.py::test_eval_says_what_it_evaluates_and_where_the_inspect_log_went",
        "test_cli.py::test_a_narrow_terminal_keeps_rank_agent_and_score_and_says_what_it_hid",
        "test_interrupts.py::test_ctrl_c_during_solve_is_recorded_as_interrupted_and_resuming_reruns_it",
        "test_scorer_corpus.py::test_a_sample_of_humaneval_rows_passes_or_fails_as_expected_when_executed",
        "test_scorer_corpus.py::test_correct_but_slow_code_passes_within_the_30_s_of_every_protocol",
        "test_view.py::test_cli_view_read_only_mount_and_sigint",
        "test_sweep_skypilot.py::test_the_jobs_run_script_runs_the_worker_and_its_result_comes_back",
        # Harbor (issue 17, part harbor)
        "test_harbor.py::test_the_verifier_runs_our_gates_and_evaluator_on_the_agents_workspace",
        "test_harbor.py::test_cli_export_writes_checked_folders_and_refuses_a_missing_image",
        # live progress (issue 15, part progress)
        "test_live_progress.py::test_ptb_run_not_on_a_terminal_prints_timestamped_steps_and_losses",
        "test_live_progress.py::test_ptb_eval_on_a_terminal_shows_one_live_line_that_ends_clean",
    }
)
TIER_MARKERS = ("slow", "sandbox", "docker", "slurm", "browser", "npm")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test its tier markers (see the table above)."""
    for item in items:
        name = item.path.name
        marks = set(_FILE_MARKS.get(name, ()))
        marks |= {m for f, m in _FIXTURE_MARKS.items() if f in getattr(item, "fixturenames", ())}
        if f"{name}::{item.originalname}" in _SLOW_TESTS:  # type: ignore[attr-defined]  # every item is a pytest.Function
            marks.add("slow")
        for m in sorted(marks):
            item.add_marker(getattr(pytest.mark, m))
