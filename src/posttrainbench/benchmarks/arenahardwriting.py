"""Arena-Hard v2 creative writing: pairwise LLM judge against the shipped Qwen3-1.7B answers.

Each question is judged twice, in both orders (game 1: A = baseline, B = model; game 2: A =
model, B = baseline), with Arena-Hard's judge prompt and its five verdicts ``[[A>>B]]``,
``[[A>B]]``, ``[[A=B]]``, ``[[B>A]]``, ``[[B>>A]]``. A strong verdict counts as three games, a
slight one or a tie as one; a tie is half a win. Win rate = model wins / games over all scored
questions, with a bootstrap standard error over questions. A question whose judge call failed
or whose verdict is missing or ambiguous is *unscored* (cause recorded), never a loss.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inspect_ai.scorer import Metric, SampleScore, Score, Scorer, Target, metric, scorer
from inspect_ai.solver import TaskState

from ..data import DataError, Item, field, read_jsonl
from ..domain import Decoding
from ..evaluation.graders import UNSCORED, Grader, MalformedGrade, ask_all, bootstrap_stderr, quote_reply
from ..evaluation.protocols import STRICT, Protocol
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


def win_rate_of(pairs: list[tuple[float, int]]) -> float:
    games = sum(g for _, g in pairs)
    return sum(w for w, _ in pairs) / games if games else float("nan")


def _pairs(scores: list[SampleScore]) -> list[tuple[float, int]]:
    pairs: list[tuple[float, int]] = []
    for s in scores:
        meta = s.score.metadata or {}
        if not meta.get(UNSCORED):
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
        return bootstrap_stderr(_pairs(scores), win_rate_of)

    return compute


def _replies(sample: Any) -> list[str | None]:
    return list((next(iter(sample.scores.values())).metadata or {}).get("grader_replies") or [])


def rescore(samples: Sequence[Any]) -> dict[str, float]:
    """Per-question win share recomputed from the judge replies stored in the log."""
    out = {}
    for s in samples:
        try:
            w, g = wins_and_games(_replies(s))
        except MalformedGrade:
            continue
        out[str(s.id)] = w / g
    return out


def aggregate(samples: Sequence[Any], values: dict[str, float]) -> float:
    return win_rate_of([wins_and_games(_replies(s)) for s in samples])


@scorer(metrics=[win_rate(), win_rate_stderr()], name=SCORER)
def arena_scorer(grader: Grader) -> Scorer:
    """Judge the reply against the baseline answer in both orders."""

    async def score(state: TaskState, target: Target) -> Score:
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
        return arena_scorer(grader)

    def rescore(
        self, samples: Sequence[Any], *, code_sandbox: str = "bwrap", protocol: str | Protocol = STRICT
    ) -> dict[str, float]:
        return rescore(samples)

    def aggregate(self, samples: Sequence[Any], values: dict[str, float]) -> float:
        return aggregate(samples, values)
