"""Arena-Hard v2 creative writing: pairwise LLM judge against the shipped Qwen3-1.7B answers.

Each question is judged twice, in both orders (game 1: A = baseline, B = model; game 2: A =
model, B = baseline), with Arena-Hard's judge prompt and its five verdicts ``[[A>>B]]``,
``[[A>B]]``, ``[[A=B]]``, ``[[B>A]]``, ``[[B>>A]]``. A strong verdict counts as three games, a
slight one or a tie as one; a tie is half a win. Win rate = model wins / games over all scored
questions, with a bootstrap standard error over questions. A question whose judge call failed
or whose verdict is missing or ambiguous is *unscored* (cause recorded), never a loss.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from inspect_ai.model import ChatMessage, ChatMessageUser
from inspect_ai.scorer import Metric, SampleScore, Score, Scorer, Target, metric, scorer
from inspect_ai.solver import TaskState

from ..data import DataError, Item, field, read_jsonl
from ..domain import Decoding
from ..evaluation.graders import DROPPED, UNSCORED, Grader, MalformedGrade, ask_all, bootstrap_stderr, quote_reply
from ..evaluation.protocols import REF_V1, STRICT, Protocol, get_protocol
from ..evaluation.reference_postprocess import limit_repetitions, strip_reasoning
from .base import BenchmarkDefinition
from .registry import register_benchmark

SCORER = "ptb_arena"
METRIC = "win_rate"
BASELINE_FILE = "baseline_answers_Qwen3-1.7B.jsonl"

JUDGE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
    "assistants to the user prompt displayed below. You will be given assistant A's answer and "
    "assistant B's answer. Your job is to evaluate which assistant's answer is better.\n\n"
    "When evaluating the assistants' answers, compare both assistants' answers. You must identify "
    "and correct any mistakes or inaccurate information.\n\n"
    "Then consider if the assistant's answers are helpful, relevant, and concise. Helpful means the "
    "answer correctly responds to the prompt or follows the instructions. Note when user prompt has "
    "any ambiguity or more than one interpretation, it is more helpful and appropriate to ask for "
    "clarifications or more information from the user than providing an answer based on "
    "assumptions. Relevant means all parts of the response closely connect or are appropriate to "
    "what is being asked. Concise means the response is clear and not verbose or excessive.\n\n"
    "Then consider the creativity and novelty of the assistant's answers when needed. Finally, "
    "identify any missing important information in the assistants' answers that would be "
    "beneficial to include when responding to the user prompt.\n\n"
    "After providing your explanation, you must output only one of the following choices as your "
    "final verdict with a label:\n\n"
    "1. Assistant A is significantly better: [[A>>B]]\n"
    "2. Assistant A is slightly better: [[A>B]]\n"
    "3. Tie, relatively the same: [[A=B]]\n"
    "4. Assistant B is slightly better: [[B>A]]\n"
    "5. Assistant B is significantly better: [[B>>A]]\n\n"
    'Example output: "My final verdict is tie: [[A=B]]".'
)
JUDGE_USER = (
    "<|User Prompt|>\n{question}\n\n<|The Start of Assistant A's Answer|>\n{answer_a}\n"
    "<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\n{answer_b}\n"
    "<|The End of Assistant B's Answer|>"
)
STRONG_WEIGHT = 3
_VERDICT = re.compile(r"\[\[([AB<>=]+)\]\]")
# verdict -> (A's win share, games)
_OUTCOMES: dict[str, tuple[float, int]] = {
    "A>>B": (1.0, STRONG_WEIGHT),
    "A>B": (1.0, 1),
    "A=B": (0.5, 1),
    "B>A": (0.0, 1),
    "B>>A": (0.0, STRONG_WEIGHT),
}


def parse_verdict(text: str) -> str:
    """The one verdict label in a judge reply; :class:`MalformedGrade` if none or several differ."""
    found = {v for v in _VERDICT.findall(text) if v in _OUTCOMES}
    if len(found) != 1:
        what = "no verdict" if not found else f"conflicting verdicts {sorted(found)}"
        raise MalformedGrade(f"judge reply has {what}: {text[-200:]!r}")
    return found.pop()


def judge_prompts(question: str, model_answer: str, baseline_answer: str) -> list[tuple[str, str]]:
    """The two games: baseline as A, then the model as A. Both answers are quoted as data
    (:func:`~posttrainbench.evaluation.graders.quote_reply`), so that neither can end its section
    or state a verdict."""
    model_answer, baseline_answer = quote_reply(model_answer), quote_reply(baseline_answer)
    return [
        (JUDGE_SYSTEM, JUDGE_USER.format(question=question, answer_a=baseline_answer, answer_b=model_answer)),
        (JUDGE_SYSTEM, JUDGE_USER.format(question=question, answer_a=model_answer, answer_b=baseline_answer)),
    ]


def wins_and_games(replies: list[str | None]) -> tuple[float, int]:
    """Model wins and games over both orders; :class:`MalformedGrade` for a failed or bad reply."""
    if len(replies) != 2:
        raise MalformedGrade("a judge call failed")
    model_is_b, model_is_a = replies
    if model_is_b is None or model_is_a is None:
        raise MalformedGrade("a judge call failed")
    share_1, games_1 = _OUTCOMES[parse_verdict(model_is_b)]
    share_2, games_2 = _OUTCOMES[parse_verdict(model_is_a)]
    return (1.0 - share_1) * games_1 + share_2 * games_2, games_1 + games_2


# ---------------------------------------------------------------------------------------------
# the reference's judge (ptb-v1.2): tasks/arenahardwriting/evaluate_final_eval.py, its arena-hard-v2.0.yaml and
# judge_utils.JUDGE_SETTINGS["creative_writing"] (docs/evaluation.md has the table)

REFERENCE_RULE = "arena-reference"
"""The protocols' scoring rule id of the reference's judging (``protocols.BenchmarkSettings.scoring_rule``)."""
REFERENCE_JUDGE = {"model": "gpt-5-mini", "reasoning_effort": "medium", "max_tokens": 49152, "temperature": None}
"""The reference's judge call: ``JUDGE_MODEL``, ``REASONING_EFFORT``, ``JUDGE_MAX_COMPLETION``, no temperature."""
REFERENCE_JUDGE_USER = (
    "<|User Prompt|>\n{QUESTION}\n\n<|The Start of Assistant A's Answer|>\n{ANSWER_A}\n"
    "<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\n{ANSWER_B}\n"
    "<|The End of Assistant B's Answer|>"
)
"""``prompt_template`` of the reference's ``arena-hard-v2.0.yaml``, filled with ``str.format``."""
REFERENCE_PATTERNS = (re.compile(r"\[\[([AB<>=]+)\]\]"), re.compile(r"\[([AB<>=]+)\]"))
"""``regex_patterns`` of the same file, tried in order on the upper-cased reply; the last match of the first one
that matches is the verdict."""
# verdict -> A's score per game, as the reference's _judgments_to_battles (weight 3)
REFERENCE_SCORES: dict[str, list[float]] = {
    "A>B": [1.0], "A>>B": [1.0] * STRONG_WEIGHT, "A=B": [0.5], "A<<B": [0.0] * STRONG_WEIGHT, "A<B": [0.0],
    "B>A": [0.0], "B>>A": [0.0] * STRONG_WEIGHT, "B=A": [0.5], "B<<A": [1.0] * STRONG_WEIGHT, "B<A": [1.0],
}  # fmt: skip
STDERR_RULE = "stderr_rule"
"""Score metadata key: ``games`` for the reference's standard error (over the games, not a bootstrap)."""


def reference_verdict(text: str) -> str | None:
    """The reference's ``get_score``: None when no pattern matches."""
    for pattern in REFERENCE_PATTERNS:
        found = [m for m in pattern.findall(text.upper()) if m]
        if found:
            return str(found[-1]).strip("\n")
    return None


def reference_judge_prompts(question: str, judged: str, baseline: str) -> list[tuple[str, str]]:
    """The reference's two games, unquoted: the baseline as A, then the (post-processed) reply as A."""
    fill = REFERENCE_JUDGE_USER.format
    return [
        (JUDGE_SYSTEM, fill(QUESTION=question, ANSWER_A=baseline, ANSWER_B=judged)),
        (JUDGE_SYSTEM, fill(QUESTION=question, ANSWER_A=judged, ANSWER_B=baseline)),
    ]


def reference_games(replies: list[str | None]) -> list[float] | None:
    """The model's score in each game of one question (game 1 flipped: the model is B), or None when a reply has no
    verdict (the reference drops the question); :class:`MalformedGrade` for a failed call or a verdict outside the
    reference's map (the reference's scoring raises there)."""
    if len(replies) != 2 or replies[0] is None or replies[1] is None:
        raise MalformedGrade("a judge call failed")
    ab, ba = reference_verdict(replies[0]), reference_verdict(replies[1])
    if ab is None or ba is None:
        return None
    if ab not in REFERENCE_SCORES or ba not in REFERENCE_SCORES:
        raise MalformedGrade(f"verdict outside the reference's map: {ab!r} / {ba!r}")
    return [1.0 - x for x in REFERENCE_SCORES[ab]] + REFERENCE_SCORES[ba]


def games_stderr(games: list[float]) -> float:
    """The reference's stderr: sample std (ddof 1) of the game scores over the square root of their number."""
    import statistics

    return statistics.stdev(games) / math.sqrt(len(games)) if len(games) > 1 else 0.0


def win_rate_of(pairs: list[tuple[float, int]]) -> float:
    games = sum(g for _, g in pairs)
    return sum(w for w, _ in pairs) / games if games else float("nan")


def _pairs(scores: list[SampleScore]) -> list[tuple[float, int]]:
    pairs: list[tuple[float, int]] = []
    for s in scores:
        meta = s.score.metadata or {}
        if not meta.get(UNSCORED) and not meta.get(DROPPED):
            pairs.append((float(meta["wins"]), int(meta["games"])))
    return pairs


@metric(name=METRIC)
def win_rate() -> Metric:
    """Model wins / games over scored questions (strong verdicts weigh 3)."""

    def compute(scores: list[SampleScore]) -> float:
        return win_rate_of(_pairs(scores))

    return compute


@metric(name="win_rate_stderr")
def win_rate_stderr() -> Metric:
    """Bootstrap standard error of the win rate over questions (1000 resamples, fixed seed)."""

    def compute(scores: list[SampleScore]) -> float:
        metas = [s.score.metadata or {} for s in scores]
        if any(m.get(STDERR_RULE) == "games" for m in metas):  # the reference's: over every game
            ok = [m for m in metas if not m.get(UNSCORED) and not m.get(DROPPED)]
            return games_stderr([float(x) for m in ok for x in m["game_scores"]])
        return bootstrap_stderr(_pairs(scores), win_rate_of)

    return compute


def _replies(sample: Any) -> list[str | None]:
    return list((next(iter(sample.scores.values())).metadata or {}).get("grader_replies") or [])


def _reference_pair(sample: Any) -> tuple[float, int] | None:
    games = reference_games(_replies(sample))
    return None if games is None else (sum(games), len(games))


def rescore(samples: Sequence[Any], reference: bool = False) -> dict[str, float]:
    """Per-question win share recomputed from the judge replies stored in the log (``reference``: with the
    reference's verdict rules)."""
    out = {}
    for s in samples:
        try:
            pair = _reference_pair(s) if reference else wins_and_games(_replies(s))
        except MalformedGrade:
            continue
        if pair is not None:
            out[str(s.id)] = pair[0] / pair[1]
    return out


def aggregate(samples: Sequence[Any], values: dict[str, float], reference: bool = False) -> float:
    pairs = [_reference_pair(s) if reference else wins_and_games(_replies(s)) for s in samples]
    return win_rate_of([p for p in pairs if p is not None])


@scorer(metrics=[win_rate(), win_rate_stderr()], name=SCORER)
def arena_scorer(grader: Grader, reference: bool = False) -> Scorer:
    """Judge the reply against the baseline answer in both orders (``reference``: as the reference does, see
    :func:`reference_judge_prompts`)."""

    async def score(state: TaskState, target: Target) -> Score:
        if reference:
            return await reference_score(grader, state)
        question = state.user_prompt.text
        prompts = judge_prompts(question, state.output.completion, state.metadata["baseline_answer"])
        replies, errors = await ask_all(grader, prompts)
        meta: dict[str, Any] = {"grader_replies": replies, "grader_errors": errors}
        try:
            wins, games = wins_and_games(replies)
        except MalformedGrade as exc:
            meta[UNSCORED] = "; ".join(errors) if errors else str(exc)
            return Score(value=0.0, explanation=f"unscored: {meta[UNSCORED]}", metadata=meta)
        meta.update(wins=wins, games=games)
        verdicts = [parse_verdict(r) for r in replies if r is not None]
        return Score(
            value=wins / games, answer=" / ".join(verdicts), explanation=f"{wins} of {games} games", metadata=meta
        )

    return score


async def reference_score(grader: Grader, state: TaskState) -> Score:
    """One question as the reference judges it: the reply post-processed (``<think>`` cut, repetitions capped), both
    games unquoted, its verdict rules and game scores; a question without a verdict is dropped, as there."""
    judged = limit_repetitions(strip_reasoning(state.output.completion))
    prompts = reference_judge_prompts(state.user_prompt.text, judged, state.metadata["baseline_answer"])
    replies, errors = await ask_all(grader, prompts)
    meta: dict[str, Any] = {"grader_replies": replies, "grader_errors": errors, "judged_reply": judged}
    meta[STDERR_RULE] = "games"
    try:
        games = reference_games(replies)
    except MalformedGrade as exc:
        meta[UNSCORED] = "; ".join(errors) if errors else str(exc)
        return Score(value=0.0, explanation=f"unscored: {meta[UNSCORED]}", metadata=meta)
    if games is None:
        meta[DROPPED] = "a judge reply has no verdict (the reference drops the question)"
        return Score(value=0.0, explanation=f"dropped: {meta[DROPPED]}", metadata=meta)
    meta.update(wins=sum(games), games=len(games), game_scores=games)
    verdicts = " / ".join(str(reference_verdict(r or "")) for r in replies)
    return Score(
        value=sum(games) / len(games), answer=verdicts, explanation=f"{sum(games)} of {len(games)}", metadata=meta
    )


# ---------------------------------------------------------------------------------------------
# the benchmark


def _answer_text(content: Any) -> str:
    """Arena-Hard stores an answer as a string or as ``{"answer": ...}``."""
    if isinstance(content, dict):
        content = content.get("answer")
    if not isinstance(content, str):
        raise DataError(f"baseline answer is not text: {str(content)[:80]!r}")
    return content


@register_benchmark(
    id="arenahardwriting",
    display_name="Arena-Hard v2 (creative writing)",
    local_test_file="arenahardwriting/question.jsonl",
    items_sha256="d8815712a81adba42f44418cc10fdd2e048a8cc0ff617068a9257d83b498e411",
    full_size=250,
    dev_size=25,
    max_tokens_ladder=(16000, 12000, 8000),
    decoding=Decoding(temperature=0.0, max_tokens=16000),
    allowed_training_data="Any writing/chat data except Arena-Hard prompts and answers.",
    grader="llm",
    metric="win_rate",
)
class ArenaHardWriting(BenchmarkDefinition):
    """Arena-Hard v2 creative writing vs Qwen3-1.7B, pairwise LLM judge (grader from PTB_GRADER_* env)."""

    scorer_name = SCORER
    inspect_metric = METRIC
    inspect_stderr = "win_rate_stderr"
    protocols: ClassVar[tuple[str, ...]] = (STRICT, REF_V1)

    def reference_messages(self, item: Item) -> list[ChatMessage]:
        """The reference's chat: the question as the one user message (its ``generate_answers``)."""
        return [ChatMessageUser(content=item.input)]

    def _reference(self, protocol: str | Protocol) -> bool:
        p = get_protocol(protocol)
        return self.id in p.benchmarks and p.settings_for(self.id).scoring_rule == REFERENCE_RULE

    def grader_settings(self, protocol: str | Protocol) -> dict[str, Any]:
        """The reference's judge call (:data:`REFERENCE_JUDGE`) under a protocol that judges as the reference."""
        return dict(REFERENCE_JUDGE) if self._reference(protocol) else {}

    def read_test_items(self, root: Path) -> list[Item]:
        records = self.records(root, "test")
        path = root / Path(self.local_test_file or "arenahardwriting/question.jsonl").parent / BASELINE_FILE
        if not path.is_file():
            raise DataError(f"{self.id}: the baseline answers {path} are missing (needed by the pairwise judge)")
        baseline: dict[str, str] = {}
        for n, rec in enumerate(read_jsonl(path)):
            msgs = rec.get("messages") or []
            if not msgs or msgs[-1].get("role") != "assistant":
                raise DataError(f"{path}:{n + 1}: no assistant message")
            baseline[str(rec.get("uid"))] = _answer_text(msgs[-1].get("content"))
        items = []
        for i, rec in enumerate(records):
            where = f"{self.id} #{i}"
            uid = field(rec, "uid", where=where)
            if uid not in baseline:
                raise DataError(f"{where}: no baseline answer for question {uid!r} in {path}")
            items.append(
                Item(
                    id=f"arena-{uid}",
                    input=field(rec, "prompt", where=where),
                    target="",
                    metadata={"uid": uid, "baseline_answer": baseline[uid]},
                )
            )
        return items

    def scorer(
        self, *, grader: Grader | None = None, code_sandbox: str = "bwrap", protocol: str | Protocol = STRICT
    ) -> Scorer:
        if grader is None:
            raise ValueError(f"{self.id} is graded by an LLM: its scorer needs a grader")
        return arena_scorer(grader, reference=self._reference(protocol))

    def rescore(
        self, samples: Sequence[Any], *, code_sandbox: str = "bwrap", protocol: str | Protocol = STRICT
    ) -> dict[str, float]:
        return rescore(samples, reference=self._reference(protocol))

    def aggregate(
        self, samples: Sequence[Any], values: dict[str, float], *, protocol: str | Protocol = STRICT
    ) -> float:
        return aggregate(samples, values, reference=self._reference(protocol))
