"""The base of every benchmark: its spec (the fields of ``domain.Benchmark``) and its hooks.

A benchmark is one subclass of :class:`BenchmarkDefinition` in its own module, registered with
``@register_benchmark(<spec fields>)``. Only :meth:`~BenchmarkDefinition.read_test_items` must be
written; every other hook has a default for the common case:

==========================  ==================================================================
hook                        default
==========================  ==================================================================
``read_test_items``         (required) every evaluation item, in file order
``read_train_examples``     none shipped (``DataError``)
``test_data_root``          the data root (a benchmark whose files come from elsewhere finds them)
``hub_source``              the benchmark itself (a derived benchmark names the one holding its data)
``dev_items``               ``dev_size`` items, a fixed seeded sample per benchmark, in file order
``messages``                the item's few-shot turns, own earlier turns and prompt (protocol ``strict``)
``solver``                  Inspect's plain ``generate()``
``extract_answer``          the final number of the reply (``#### N``, "The answer is N", last number)
``score_reply``             the extracted answer equals the target numerically
``scorer``                  ``ptb_answer``: ``score_reply`` per sample, accuracy and its stderr
``rescore``                 ``score_reply`` again on each logged reply
``aggregate``               the mean of the per-sample values
==========================  ==================================================================
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

from inspect_ai.model import ChatMessage
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Scorer, Target, accuracy, scorer, stderr
from inspect_ai.solver import Solver, TaskState, generate

from ..data import DataError, DataProvenance, Item, TestSet, data_root, local_files_only, records
from ..data.provenance import collecting_sources
from ..domain import Benchmark
from ..evaluation.contract import STRICT
from ..evaluation.graders import Grader
from ..evaluation.protocols import Protocol, UnsupportedBenchmarkError, get_protocol
from ..evaluation.scoring import SCORING_RULES, numbers_match, scoring_rule, strict_final_number
from ..evaluation.tasks import item_messages
from ..integrity.probe import NumberPool, renumber_item
from ..settings import Settings

DEV_SEED = "posttrainbench-dev-v1"
ANSWER_SCORER = "ptb_answer"

ScoreReply = Callable[[str, str], tuple[bool, str | None]]


class BenchmarkDefinition(Benchmark, ABC):
    """One benchmark: the spec fields of :class:`~posttrainbench.domain.Benchmark` and everything
    specific to it (loaders, prompts per protocol, solver, scorer, re-score, aggregate, dev split).

    It *is* its spec, so it goes wherever a ``domain.Benchmark`` is read (``DataProvenance``, the
    hub gateway's forbidden datasets, results), and ``model_copy(update=...)`` keeps its hooks.
    """

    scorer_name: ClassVar[str] = ANSWER_SCORER
    """The Inspect scorer's name: the key of each sample's score in the log."""
    inspect_metric: ClassVar[str] = "accuracy"
    """The Inspect metric holding the headline number (``metric`` names it in results)."""
    inspect_stderr: ClassVar[str] = "stderr"
    """The Inspect metric holding the headline number's standard error."""
    protocols: ClassVar[tuple[str, ...]] = (STRICT,)
    """Evaluation protocols whose prompts :meth:`messages` builds."""

    # ------------------------------------------------------------------------------------ data

    @abstractmethod
    def read_test_items(self, root: Path) -> list[Item]:
        """Every evaluation item, in file order, from the data root ``root`` (``self.records``)."""

    def read_train_examples(self, root: Path) -> list[dict[str, str]]:
        """Allowed training examples as ``{"prompt", "completion"}`` in the evaluator's exact wording."""
        raise DataError(
            f"{self.id}: the harness ships no training examples for this benchmark "
            f"(allowed data: {self.allowed_training_data or 'see the benchmark card'})"
        )

    def hub_source(self) -> Benchmark:
        """The benchmark whose hub entry holds this one's raw data."""
        return self

    def records(self, root: Path, which: Literal["test", "train"]) -> list[dict[str, Any]]:
        """Raw records of a split: the local file under ``root``, else the hub (``data.records``)."""
        return records(self, root, which, hub=self.hub_source())

    def test_data_root(self, root: Path, settings: Settings) -> Path:
        """The folder :meth:`read_test_items` reads: the data root ``root`` (a benchmark whose
        files come from elsewhere, e.g. a wheel, returns where it put them)."""
        return root

    def load_test_set(
        self, root: Path | None = None, *, local_only: bool = False, settings: Settings | None = None
    ) -> TestSet:
        """The full evaluation set (at most ``full_size`` items, in file order) with its provenance.
        ``root``: the data root (default: ``settings``'); ``settings``: default read from the
        environment now. ``local_only``: raise DataError instead of trying the hub when no local
        file is found. The set is returned even when it differs from the pin: callers that score
        it as the benchmark call ``provenance.require()``."""
        settings = settings if settings is not None else Settings.from_env()
        root = Path(root) if root is not None else data_root(settings)
        with local_files_only(local_only), collecting_sources() as sources:
            items = self.read_test_items(self.test_data_root(root, settings))[: self.full_size]
            return TestSet(items, self.provenance(items, sources, allow_unpinned=settings.data.allow_unpinned))

    def load_test_items(
        self, root: Path | None = None, *, local_only: bool = False, settings: Settings | None = None
    ) -> list[Item]:
        """The items of :meth:`load_test_set` (no pin check: previews, fixtures, contamination scans)."""
        return self.load_test_set(root, local_only=local_only, settings=settings).items

    def load_train_examples(
        self, root: Path | None = None, *, settings: Settings | None = None
    ) -> list[dict[str, str]]:
        """Allowed training examples (:meth:`read_train_examples` under the data root; ``root`` and
        ``settings`` as in :meth:`load_test_set`)."""
        return self.read_train_examples(Path(root) if root is not None else data_root(settings))

    def provenance(self, items: list[Item], sources: list[str], *, allow_unpinned: bool) -> DataProvenance:
        """Where ``items`` came from and whether they are this benchmark's pinned set
        (``allow_unpinned``: ``Settings.data.allow_unpinned``)."""
        return DataProvenance.of(self, items, sources, allow_unpinned=allow_unpinned)

    def dev_items(self, items: list[Item]) -> list[Item]:
        """The dev split the agent's ``evaluate.py`` gets: ``dev_size`` items chosen with a fixed
        seed per benchmark, in file order; the rest is held out (``EvalResult.heldout_score``)."""
        k = min(self.dev_size, len(items))
        rng = random.Random(f"{DEV_SEED}:{self.id}")
        chosen = sorted(rng.sample(range(len(items)), k))
        return [items[i] for i in chosen]

    def probe_spares(self, root: Path) -> list[Item]:
        """Items of the test items' distribution that are neither evaluated nor allowed training
        data, for the memorisation probe's null (default: none; ``root``: the data root)."""
        return []

    def probe_control(self, item: Item, rng: random.Random, pool: NumberPool) -> Item | None:
        """A perturbed copy of ``item`` for the memorisation probe (text nobody trained on, as
        learnable by the benchmark's skill as the item itself); default: numbers renamed to
        numbers of the same shape from ``pool`` (the test items' own numbers)."""
        return renumber_item(item, rng, pool)

    def require_protocol(self, protocol: str | Protocol) -> Protocol:
        """``protocol`` if this benchmark can be evaluated under it today, else ``ValueError`` (an
        unknown protocol, one that does not cover this benchmark, or whose prompts are not built)."""
        try:
            p = get_protocol(protocol)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        variant = p.prompt_variant(self.id)  # UnsupportedBenchmarkError (a ValueError) when p does not cover it
        if variant not in self.protocols:
            raise ValueError(
                f"protocol {p.id!r}: the {variant!r} prompts of {self.id} are not built yet "
                f"(evaluable today: {', '.join(self.protocols)}); its scoring rule is available for re-scoring"
            )
        return p

    def prompt_variant(self, protocol: str | Protocol) -> str:
        """Whose prompts ``protocol`` asks this benchmark with (``strict`` or ``ptb-v1``; a protocol id
        that is not registered, or does not cover this benchmark, is returned as is: no such prompts)."""
        try:
            return get_protocol(protocol).prompt_variant(self.id)
        except (KeyError, UnsupportedBenchmarkError):
            return str(protocol)

    # --------------------------------------------------------------------------------- prompts

    def messages(self, item: Item, protocol: str = STRICT) -> list[ChatMessage]:
        """The chat ``item`` is asked as under ``protocol`` (a protocol id or a prompt variant).
        ``strict``: the item's own text, as pinned by ``items_sha256`` (the same wording as
        :meth:`read_train_examples`); ``ptb-v1`` (both reference protocols):
        :meth:`reference_messages`."""
        variant = self.prompt_variant(protocol)
        if variant not in self.protocols:
            raise ValueError(f"{self.id}: no prompts for protocol {protocol!r}; known: {', '.join(self.protocols)}")
        return item_messages(item) if variant == STRICT else self.reference_messages(item)

    def sample_target(self, item: Item, protocol: str = STRICT) -> str:
        """The target ``item`` is scored against when asked under ``protocol`` (default: ``item.target``; a
        benchmark whose protocols reorder the choices maps it)."""
        return item.target

    def items_for_seed(self, items: list[Item], seed: int) -> list[Item]:
        """``items`` as the reference protocols ask them in the evaluation with ``seed`` (default: unchanged;
        a benchmark whose seed also changes its prompts, GPQA's choice order, rebuilds them)."""
        return items

    def reference_messages(self, item: Item) -> list[ChatMessage]:
        """The chat the reference protocols ask ``item`` as (a benchmark that lists ``ptb-v1`` in
        :attr:`protocols` builds it; see :mod:`posttrainbench.evaluation.reference_prompts`)."""
        raise NotImplementedError(f"{self.id}: the reference prompts are not built")

    # ------------------------------------------------------------------------ solving, scoring

    def solver(self, protocol: str | Protocol = STRICT) -> Solver:
        """How a sample is answered under ``protocol``: one plain generation."""
        return generate()

    def extract_answer(self, completion: str) -> str | None:
        """The answer in a reply under ``strict`` (default: its final number)."""
        return strict_final_number(completion)

    def scoring_rule_id(self, protocol: str | Protocol = STRICT) -> str | None:
        """The answer rule ``protocol`` scores this benchmark with (``evaluation.scoring.SCORING_RULES``);
        None: this benchmark's own :meth:`extract_answer` (a benchmark ``strict`` does not list)."""
        p = get_protocol(protocol)
        if p.id == STRICT and self.id not in p.benchmarks:
            return None
        rule = p.settings_for(self.id).scoring_rule
        return rule if rule in SCORING_RULES else None

    def score_reply(self, completion: str, target: str, protocol: str | Protocol = STRICT) -> tuple[bool, str | None]:
        """``(correct, extracted answer)`` for one reply under ``protocol`` (default ``strict``): the
        one function both the Inspect scorer and the re-check of a log call."""
        rule = self.scoring_rule_id(protocol)
        if rule is not None:
            return scoring_rule(rule)(completion, target)
        answer = self.extract_answer(completion)
        return numbers_match(answer, target), answer

    def grader_settings(self, protocol: str | Protocol) -> dict[str, Any]:
        """The grader's model and call settings ``protocol`` fixes for this benchmark (``GraderConfig`` fields, on
        the configured endpoint), for a protocol that names a ``grader_model``; default: none."""
        return {}

    def scorer(
        self, *, grader: Grader | None = None, code_sandbox: str = "bwrap", protocol: str | Protocol = STRICT
    ) -> Scorer:
        """The Inspect scorer (``grader``: an LLM-graded benchmark's; ``code_sandbox``: where a
        benchmark that runs generated code runs it; ``protocol``: whose scoring rule)."""
        return answer_scorer(partial(self.score_reply, protocol=protocol))

    def rescore(
        self, samples: Sequence[Any], *, code_sandbox: str = "bwrap", protocol: str | Protocol = STRICT
    ) -> dict[str, float]:
        """Per-sample values recomputed from what the raw log holds (``check_log`` compares them
        with the scores Inspect stored). A sample left out could not be re-scored."""
        return {
            str(s.id): float(self.score_reply(s.output.completion, target_text(s), protocol=protocol)[0])
            for s in samples
        }

    def aggregate(
        self, samples: Sequence[Any], values: dict[str, float], *, protocol: str | Protocol = STRICT
    ) -> float:
        """Per-sample values -> the headline number (default: their mean)."""
        return sum(values[str(s.id)] for s in samples) / len(samples)


def target_text(sample: Any) -> str:
    """A logged sample's target as text."""
    t = sample.target
    return t if isinstance(t, str) else "".join(t[:1])


@scorer(metrics=[accuracy(), stderr()], name=ANSWER_SCORER)
def answer_scorer(score_reply: ScoreReply) -> Scorer:
    """Inspect scorer: a benchmark's answer rule applied to the reply and compared with the target."""

    async def score(state: TaskState, target: Target) -> Score:
        completion = state.output.completion
        ok, answer = score_reply(completion, target.text)
        return Score(value=CORRECT if ok else INCORRECT, answer=answer, explanation=completion)

    return score
