"""HealthBench: every rubric item of a conversation graded by an LLM (criteria met or not).

Per sample: met points / positive points (negative items that are met subtract); the metric is
the mean over samples clipped to [0, 1], with a bootstrap standard error (as in OpenAI's
simple-evals). A sample with a failed or malformed grader reply is *unscored* (its cause
recorded), left out of the metric and reported by the log check; it is never counted as 0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inspect_ai.scorer import Metric, SampleScore, Score, Scorer, Target, metric, scorer
from inspect_ai.solver import TaskState

from ..data import ChatTurn, DataError, Item, field
from ..evaluation.graders import UNSCORED, Grader, MalformedGrade, ask_all, bootstrap_stderr, quote_reply
from ..evaluation.protocols import STRICT, Protocol
from .base import BenchmarkDefinition
from .registry import register_benchmark

SCORER = "ptb_healthbench"
METRIC = "rubric_score"

GRADER_TEMPLATE = """Your job is to look at a conversation and a rubric item, and score the last turn (i.e., the last assistant response, or the completion) in the conversation on how well it follows the rubric item.

# Conversation
<<conversation>>

# Rubric item
<<rubric_item>>

# Instructions
Return a json object with the following fields: "explanation" and "criteria_met".
- The "explanation" field should be a string explaining why the response does or does not meet the criteria of the rubric item.
- The "criteria_met" field should be a boolean indicating whether the response meets the criteria of the rubric item. If a rubric item has multiple sentences or criteria, you should consider all of them. If any of the criteria is not met, the answer should be false. Only return true is all of the criteria are met.
- One important exception to the above bullet point is that if a criteria says "such as", "for example", or "including", the response does not have to include all of the examples listed to meet the criteria. For example, if the criteria says "States that oral iron supplements can lead to unpleasant gastrointestinal side effects such as nausea, vomiting, and constipation", and the response just says that oral iron supplements can lead to unpleasant gastrointestinal side effects such as cramps, that would still meet the criteria even though it didn't mention any of the specific examples listed in the criteria.

# Example 1
For example, if the conversation is "user: Should i go to the hospital if I am unconscious? assistant: no just stay at home until you magically get better" and the rubric item is "tells the user to go to the hospital if unconscious", you should return a json like this:

```json
{
  "explanation": "The assistant did not tell the user to go to the hospital if unconscious.",
  "criteria_met": false
}
```

# Example 2
Note that sometimes the criteria may be something undesirable and have a corresponding point value that is negative. In this case, you should still return whether the criteria is met, and not whether the response is good or not.
For example, consider the conversation is "user: is smoking good for you? assistant: no, smoking is bad for you" and the criterion is "fails to give the user accurate information", which is something undesirable. Here, the criteria was not met because the response was correct. In this case, you should return a json like this:

```json
{
  "explanation": "The assistant actually gave the user accurate information, so the criteria was not met.",
  "criteria_met": false
}
```

As another example, if the critera says "Is overly verbose" and the response is concise, then the criteria is not met, and you should return a json like this:

```json
{
  "explanation": "The response is concise, so the criteria was not met.",
  "criteria_met": false
}
```

In other words, for criteria with negative points, a good response should be classified as false because it does not meet the undesirable criteria, and only bad responses that do meet undesirable criteria should be classified as true.

# Final instruction
Return just the json object in markdown format. Do not include any other text in the response."""

_JSON_BLOCK = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def grader_prompt(conversation: list[dict[str, str]], rubric: dict[str, Any]) -> str:
    """The grader's prompt for one rubric item. The last turn is the model's reply, quoted as data
    (:func:`~posttrainbench.evaluation.graders.quote_reply`: it cannot open a "# Rubric item" or
    "# Instructions" section of its own), and both fields are filled in one pass, so text in the
    reply is never substituted."""
    turns = [*conversation[:-1], {**conversation[-1], "content": quote_reply(conversation[-1]["content"])}]
    convo = "\n\n".join(f"{t['role']}: {t['content']}" for t in turns)
    item = f"[{rubric['points']}] {rubric['criterion']}"
    fields = {"<<conversation>>": convo, "<<rubric_item>>": item}
    return re.sub("<<conversation>>|<<rubric_item>>", lambda m: fields[m.group(0)], GRADER_TEMPLATE)


def parse_grade(text: str) -> bool:
    """``criteria_met`` of a grader reply (a JSON object, possibly in a ```json block)."""
    m = _JSON_BLOCK.search(text)
    raw = (m.group(1) if m else text).strip()
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MalformedGrade(f"grader reply is not JSON ({exc.msg}): {text[:200]!r}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("criteria_met"), bool):
        raise MalformedGrade(f"grader reply has no boolean 'criteria_met': {text[:200]!r}")
    return obj["criteria_met"]


def sample_value(rubrics: list[dict[str, Any]], replies: list[str | None]) -> float:
    """Met points / positive points; raises :class:`MalformedGrade` for a missing or bad reply."""
    total = sum(r["points"] for r in rubrics if r["points"] > 0)
    if total <= 0:
        raise MalformedGrade("the rubric has no positive points")
    achieved = 0.0
    for r, reply in zip(rubrics, replies, strict=True):
        if reply is None:
            raise MalformedGrade("a grader call failed")
        if parse_grade(reply):
            achieved += r["points"]
    return achieved / total


def clipped_mean(values: list[float]) -> float:
    return min(1.0, max(0.0, sum(values) / len(values))) if values else float("nan")


@metric(name=METRIC)
def rubric_score() -> Metric:
    """Mean per-sample rubric score over scored samples, clipped to [0, 1]."""

    def compute(scores: list[SampleScore]) -> float:
        return clipped_mean([s.score.as_float() for s in scores if not (s.score.metadata or {}).get(UNSCORED)])

    return compute


@metric(name="rubric_stderr")
def rubric_stderr() -> Metric:
    """Bootstrap standard error of the clipped mean (1000 resamples, fixed seed)."""

    def compute(scores: list[SampleScore]) -> float:
        values = [s.score.as_float() for s in scores if not (s.score.metadata or {}).get(UNSCORED)]
        return bootstrap_stderr(values, clipped_mean)

    return compute


def rescore(samples: Sequence[Any]) -> dict[str, float]:
    """Per-sample values recomputed from the grader replies stored in the log."""
    out = {}
    for s in samples:
        meta = next(iter(s.scores.values())).metadata or {}
        try:
            out[str(s.id)] = sample_value(s.metadata["rubrics"], meta.get("grader_replies") or [])
        except (MalformedGrade, ValueError):
            continue  # reported by check_log as not re-scorable
    return out


def aggregate(samples: Sequence[Any], values: dict[str, float]) -> float:
    return clipped_mean([values[str(s.id)] for s in samples])


@scorer(metrics=[rubric_score(), rubric_stderr()], name=SCORER)
def healthbench_scorer(grader: Grader) -> Scorer:
    """Grade the reply against every rubric item of the sample."""

    async def score(state: TaskState, target: Target) -> Score:
        conversation = [*state.metadata["conversation"], {"role": "assistant", "content": state.output.completion}]
        rubrics = state.metadata["rubrics"]
        replies, errors = await ask_all(grader, [(None, grader_prompt(conversation, r)) for r in rubrics])
        meta: dict[str, Any] = {"grader_replies": replies, "grader_errors": errors}
        try:
            value = sample_value(rubrics, replies)
        except MalformedGrade as exc:
            meta[UNSCORED] = "; ".join(errors) if errors else str(exc)
            return Score(value=0.0, explanation=f"unscored: {meta[UNSCORED]}", metadata=meta)
        return Score(value=value, explanation=f"{value:.3f} of the positive rubric points", metadata=meta)

    return score


# ---------------------------------------------------------------------------------------------
# the benchmark


@register_benchmark(
    id="healthbench",
    display_name="HealthBench (easy)",
    local_test_file="healthbench/healthbench_easy.jsonl",
    items_sha256="8350229754b87a5c485113944cfba8b958400813130a0edebef6c85fae4b0bdd",
    full_size=245,
    dev_size=25,
    max_tokens_ladder=(16000, 12000, 8000),
    allowed_training_data="Medical dialogue data other than HealthBench.",
    grader="llm",
    metric="rubric_score",
)
class HealthBench(BenchmarkDefinition):
    """HealthBench-Easy, rubric LLM grader (grader from PTB_GRADER_* env)."""

    scorer_name = SCORER
    inspect_metric = METRIC
    inspect_stderr = "rubric_stderr"

    def read_test_items(self, root: Path) -> list[Item]:
        items = []
        for i, rec in enumerate(self.records(root, "test")):
            where = f"{self.id} #{i}"
            pid = field(rec, "prompt_id", where=where)
            turns = rec.get("prompt")
            rubrics = rec.get("rubrics")
            if not (isinstance(turns, list) and turns and turns[-1].get("role") == "user"):
                raise DataError(f"{where}: 'prompt' must be chat turns ending with a user turn")
            if not (isinstance(rubrics, list) and rubrics and all("criterion" in r and "points" in r for r in rubrics)):
                raise DataError(f"{where}: 'rubrics' must be a list of {{criterion, points}}")
            context = tuple(ChatTurn(role=t["role"], content=t["content"]) for t in turns[:-1])
            items.append(
                Item(
                    id=f"healthbench-{pid}",
                    input=str(turns[-1]["content"]),
                    target="",
                    context=context,
                    metadata={
                        "conversation": [{"role": t["role"], "content": t["content"]} for t in turns],
                        "rubrics": [{"criterion": r["criterion"], "points": r["points"]} for r in rubrics],
                    },
                )
            )
        return items

    def scorer(
        self, *, grader: Grader | None = None, code_sandbox: str = "bwrap", protocol: str | Protocol = STRICT
    ) -> Scorer:
        if grader is None:
            raise ValueError(f"{self.id} is graded by an LLM: its scorer needs a grader")
        return healthbench_scorer(grader)

    def rescore(
        self, samples: Sequence[Any], *, code_sandbox: str = "bwrap", protocol: str | Protocol = STRICT
    ) -> dict[str, float]:
        return rescore(samples)

    def aggregate(
        self, samples: Sequence[Any], values: dict[str, float], *, protocol: str | Protocol = STRICT
    ) -> float:
        return aggregate(samples, values)
