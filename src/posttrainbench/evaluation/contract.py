"""What the evaluator needs of a benchmark.

The evaluation machinery never imports ``posttrainbench.benchmarks``: a caller looks a benchmark
up in that registry and passes its definition down (``evaluate_model(path, get_benchmark(id),
...)``). Every ``posttrainbench.benchmarks.BenchmarkDefinition`` satisfies this protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..domain import Decoding
from .protocols import STRICT
from .protocols import Protocol as EvalProtocol

if TYPE_CHECKING:
    from inspect_ai.model import ChatMessage
    from inspect_ai.scorer import Scorer
    from inspect_ai.solver import Solver

    from ..data import DataProvenance, Item, TestSet
    from ..settings import Settings
    from .graders import Grader


class EvaluableBenchmark(Protocol):
    """A benchmark as the evaluator uses it: a few spec fields, its data, prompts and scoring."""

    @property
    def id(self) -> str: ...
    @property
    def metric(self) -> str:
        """Name of the headline number in results (``accuracy``, ``pass@1``, ``win_rate``, ...)."""

    @property
    def decoding(self) -> Decoding: ...
    @property
    def max_tokens_ladder(self) -> tuple[int, ...]: ...
    @property
    def grader(self) -> Literal["local", "llm"]: ...
    @property
    def scorer_name(self) -> str:
        """Name of the Inspect scorer (the key of each sample's score in the log)."""

    @property
    def inspect_metric(self) -> str:
        """The Inspect metric holding the headline number."""

    @property
    def inspect_stderr(self) -> str:
        """The Inspect metric holding its standard error."""

    def load_test_set(
        self, root: Path | None = None, *, local_only: bool = False, settings: Settings | None = None
    ) -> TestSet: ...
    def provenance(self, items: list[Item], sources: list[str], *, allow_unpinned: bool) -> DataProvenance: ...
    def messages(self, item: Item, protocol: str = STRICT) -> list[ChatMessage]: ...
    def sample_target(self, item: Item, protocol: str = STRICT) -> str: ...
    def items_for_seed(self, items: list[Item], seed: int) -> list[Item]:
        """``items`` as asked under the reference protocols' ``seed`` (GPQA reorders the choices)."""

    def solver(self, protocol: str | EvalProtocol = STRICT) -> Solver: ...
    def grader_settings(self, protocol: str | EvalProtocol) -> dict[str, Any]:
        """The grader model and call settings a protocol that names a ``grader_model`` fixes."""

    def scorer(
        self, *, grader: Grader | None = None, code_sandbox: str = "bwrap", protocol: str | EvalProtocol = STRICT
    ) -> Scorer: ...
    def rescore(
        self, samples: Sequence[Any], *, code_sandbox: str = "bwrap", protocol: str | EvalProtocol = STRICT
    ) -> dict[str, float]: ...
    def aggregate(
        self, samples: Sequence[Any], values: dict[str, float], *, protocol: str | EvalProtocol = STRICT
    ) -> float: ...
