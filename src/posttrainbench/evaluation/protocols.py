"""Evaluation protocols: first-class, versioned objects recorded with every result.

A :class:`Protocol` fixes, per benchmark, what a score means: the prompt variant, decoding
(temperature, top-p, seeds, max-token ladder, stops), the scoring rule, the code-execution timeout
and the grader. Every result records the protocol id and :attr:`Protocol.digest` (a hash of all
its settings), and results of different protocols are never ranked together.

- ``strict`` (default): ours. Harness-owned greedy decoding, scorers made right
  (:mod:`.scoring`), held-out scoring.
- ``ptb-v1``: the reference as published for v1 (aisa-group/PostTrainBench ``src/eval``),
  scorer bugs included (:attr:`Protocol.reference_bugs`; docs/evaluation.md has the table with the
  source of every value): BFCL scored by the reference's exact comparison, Arena-Hard and
  HealthBench judged as in v1.2 (v1 did not judge them otherwise), one unseeded run.
- ``ptb-v1.2``: v1.2 of the reference: six benchmarks (BFCL dropped), five fixed seeds, its
  hardened GSM8K and HumanEval scorers, Arena-Hard and HealthBench with their graders.

Prompt construction per protocol (reference chat templates, few-shot placement, instruction
wordings) is carried as ``prompt_variant``: ``strict`` or ``ptb-v1`` (both reference protocols ask
the same prompts; a benchmark lists the variants it builds in ``BenchmarkDefinition.protocols``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping

from pydantic import BaseModel, ConfigDict, Field

STRICT = "strict"
REF_V1 = "ptb-v1"
REF_V1_2 = "ptb-v1.2"

REFERENCE_SEEDS = (72332, 87681, 38992, 92201, 13818)
"""``FINAL_EVAL_SEEDS`` of the reference's ``src/eval/run_final_eval.sh`` (v1.2)."""


class UnsupportedBenchmarkError(ValueError):
    """The protocol does not define settings for this benchmark (it cannot be evaluated under it)."""


class BenchmarkSettings(BaseModel):
    """What a protocol fixes for one benchmark."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt_variant: str = Field(STRICT, description="Whose prompts (template, instructions, few-shot) are asked.")
    temperature: float | None = Field(0.0, description="None: the model's own generation config (the reference).")
    top_p: float | None = 1.0
    seeds: tuple[int, ...] = Field((), description="One evaluation per seed, averaged; () = one unseeded run.")
    max_tokens_ladder: tuple[int, ...] = Field(..., min_length=1)
    stop: tuple[str, ...] = ()
    scoring_rule: str = Field(..., description="A rule id of posttrainbench.evaluation.scoring (or the benchmark's).")
    code_timeout_s: float | None = Field(None, description="Wall-clock limit of one executed program (code tasks).")
    grader_model: str | None = Field(None, description="LLM grader (None: the harness's configured grader).")
    strip_thinking: bool = Field(False, description="Remove <think>...</think> before grading.")
    heldout: bool = Field(True, description="Also report the score on items the agent was not given.")


class Protocol(BaseModel):
    """One evaluation protocol: an id, a version and its settings per benchmark."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    version: str
    description: str
    benchmarks: dict[str, BenchmarkSettings]
    reference_bugs: tuple[str, ...] = Field((), description="Reference bugs this protocol reproduces on purpose.")

    @property
    def digest(self) -> str:
        """sha256 (16 hex) of every setting: two results with equal digests were scored alike."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def settings_for(self, benchmark_id: str) -> BenchmarkSettings:
        """This protocol's settings for ``benchmark_id`` (:class:`UnsupportedBenchmarkError` if none)."""
        try:
            return self.benchmarks[benchmark_id]
        except KeyError:
            raise UnsupportedBenchmarkError(
                f"protocol {self.id!r} does not cover benchmark {benchmark_id!r} "
                f"(it covers: {', '.join(sorted(self.benchmarks))})"
            ) from None

    def prompt_variant(self, benchmark_id: str) -> str:
        """Whose prompts this protocol asks ``benchmark_id`` with. ``strict`` covers every benchmark: one
        it does not list (a new or test one) asks its own prompts; other protocols raise
        :class:`UnsupportedBenchmarkError` for a benchmark they do not cover."""
        if self.id == STRICT and benchmark_id not in self.benchmarks:
            return STRICT
        return self.settings_for(benchmark_id).prompt_variant

    def record(self) -> dict[str, str]:
        """What a result stores: ``{"id", "version", "digest"}``."""
        return {"id": self.id, "version": self.version, "digest": self.digest}


def _s(ladder: tuple[int, ...], rule: str, **kw: object) -> BenchmarkSettings:
    return BenchmarkSettings(max_tokens_ladder=ladder, scoring_rule=rule, **kw)


_MATH = (4000, 3000, 2000)  # reference: gsm8k/humaneval evaluate.py --max-tokens 4000; run_final_eval.sh stages
_LONG = (16000, 12000, 8000)  # reference: aime2025/gpqamain --max-tokens 16000; run_final_eval.sh stages

STRICT_PROTOCOL = Protocol(
    id=STRICT,
    version="1",
    description="Ours: harness-owned greedy decoding, hardened scorers, held-out scoring.",
    benchmarks={
        "gsm8k": _s(_MATH, "final-number"),
        "gsm8k-calc": _s((16, 12, 8), "first-number"),
        "aime2025": _s(_LONG, "final-number"),
        "gpqamain": _s(_LONG, "answer-letter"),
        "humaneval": _s(_MATH, "code-fence", code_timeout_s=30.0),
        "bfcl": _s((4000, 3000, 2000), "bfcl-ast"),
        "arenahardwriting": _s((16384, 12288, 8192), "arena-judge", strip_thinking=True),
        "healthbench": _s((16384, 12288, 8192), "healthbench-rubric", strip_thinking=True),
    },
)

_REF = {"prompt_variant": "ptb-v1", "temperature": None, "top_p": None, "heldout": False}


def _reference(
    seeds: tuple[int, ...], gsm8k_rule: str, humaneval_rule: str, bfcl: bool
) -> dict[str, BenchmarkSettings]:
    out = {
        "gsm8k": _s(_MATH, gsm8k_rule, seeds=seeds, **_REF),
        "aime2025": _s(_LONG, "inspect-aime", seeds=seeds, **_REF),
        "gpqamain": _s(_LONG, "inspect-choice", seeds=seeds, **_REF),
        "humaneval": _s(_MATH, humaneval_rule, seeds=seeds, code_timeout_s=30.0, **_REF),
    }
    if bfcl:
        # reference: tasks/bfcl/evaluate*.py --max-tokens 16000; run_final_eval.sh stages 12000, 8000
        # scored as the reference's pinned inspect_evals BFCL scorer: an exact comparison (benchmarks/bfcl.py)
        out["bfcl"] = _s(_LONG, "inspect-bfcl-exact", **_REF)
    # reference: tasks/arenahardwriting/evaluate_final_eval.py (judge gpt-5-mini, its post-processing and
    # scoring); run_final_eval.sh: --max-new-tokens 16384, 12288, 8192, and the first seed only (paid judge).
    # v1 judged alike, unseeded (docs/evaluation.md: the v1.1 and v1.2 release notes, the final-eval file's header
    # "the only difference is --seed", and the published v1 win rates, whose denominators need exploded games)
    out["arenahardwriting"] = _s(
        (16384, 12288, 8192), "arena-reference", seeds=seeds[:1], grader_model="gpt-5-mini",
        strip_thinking=True, **_REF,
    )  # fmt: skip
    # reference: tasks/healthbench/evaluate_final_eval.py (grader.py, scoring.py); the same stages and seed rule
    out["healthbench"] = _s(
        (16384, 12288, 8192), "healthbench-reference", seeds=seeds[:1], grader_model="gpt-5-mini",
        strip_thinking=True, **_REF,
    )  # fmt: skip
    return out


V1_PROTOCOL = Protocol(
    id=REF_V1,
    version="1",
    description="The reference as published for v1 (aisa-group/PostTrainBench src/eval), bugs included.",
    benchmarks=_reference((), "inspect-match-numeric", "inspect-find-code", bfcl=True),
    reference_bugs=(
        "gsm8k: the last number is compared with str.endswith after 5-significant-digit formatting "
        "(711 is correct for 11; 123459 for 123456); negative and comma targets are compared as text "
        "(13 is correct for -3)",
        "gsm8k, aime2025: a final number in scientific notation or as a fraction is skipped (not a number to "
        "the scorer), so an earlier number is taken",
        "aime2025: same endswith comparison as gsm8k on the whole reply with \\boxed{} removed",
        "humaneval: an import above the function in the reply's block is cut off with the signature "
        "(code after the first ':\\n    ' only)",
        "bfcl: arguments compared with Python's == (no BFCL normalisation): a string differing only in case or "
        "spacing, an optional argument sent with its default value, or a float off in the last digit is wrong; "
        "1 is correct for True and 5.0 for an integer 5",
        "bfcl: one unreadable <tool_call> block (not JSON, or 'parameters' for 'arguments') drops every call of "
        "the reply (vLLM's hermes parser)",
    ),
)

V1_2_PROTOCOL = Protocol(
    id=REF_V1_2,
    version="1.2",
    description="The reference v1.2: six benchmarks (BFCL dropped), five fixed seeds, hardened gsm8k/humaneval.",
    benchmarks=_reference(REFERENCE_SEEDS, "signed-last-number-exact", "inspect-find-code", bfcl=False),
    reference_bugs=tuple(b for b in V1_PROTOCOL.reference_bugs[1:] if not b.startswith("bfcl:")),  # BFCL dropped
)


class ProtocolRegistry(Mapping[str, Protocol]):
    """Protocol id -> :class:`Protocol`."""

    def __init__(self, protocols: tuple[Protocol, ...]) -> None:
        self._by_id = {p.id: p for p in protocols}

    def __getitem__(self, name: str) -> Protocol:
        try:
            return self._by_id[name]
        except KeyError:
            raise KeyError(f"unknown protocol {name!r}; known: {', '.join(self._by_id)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)


PROTOCOLS = ProtocolRegistry((STRICT_PROTOCOL, V1_PROTOCOL, V1_2_PROTOCOL))


def get_protocol(protocol: str | Protocol) -> Protocol:
    """A protocol by id (a :class:`Protocol` is returned as is); ``KeyError`` naming the known ids."""
    return protocol if isinstance(protocol, Protocol) else PROTOCOLS[protocol]
