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
from typing import Any, ClassVar

from inspect_ai.model import ChatMessage
from inspect_ai.scorer import Metric, SampleScore, Score, Scorer, Target, metric, scorer
from inspect_ai.solver import TaskState

from ..data import ChatTurn, DataError, Item, field
from ..evaluation.graders import UNSCORED, Grader, MalformedGrade, ask_all, bootstrap_stderr, quote_reply
from ..evaluation.protocols import REF_V1, STRICT, Protocol, get_protocol
from ..evaluation.reference_postprocess import limit_repetitions, strip_reasoning
from ..evaluation.tasks import item_messages
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
        if any((s.score.metadata or {}).get(STDERR_RULE) == "numpy-bootstrap" for s in scores):
            return reference_bootstrap_stderr(values)
        return bootstrap_stderr(values, clipped_mean)

    return compute


def rescore(samples: Sequence[Any], reference: bool = False) -> dict[str, float]:
    """Per-sample values recomputed from the grader replies stored in the log (``reference``: its rules)."""
    out = {}
    for s in samples:
        meta = next(iter(s.scores.values())).metadata or {}
        if reference:
            attempts = meta.get("grader_attempts") or []
            if len(attempts) == len(s.metadata["rubrics"]):
                out[str(s.id)] = reference_value(s.metadata["rubrics"], [reference_met(a) for a in attempts])
            continue
        try:
            out[str(s.id)] = sample_value(s.metadata["rubrics"], meta.get("grader_replies") or [])
        except (MalformedGrade, ValueError):
            continue  # reported by check_log as not re-scorable
    return out


def aggregate(samples: Sequence[Any], values: dict[str, float]) -> float:
    return clipped_mean([values[str(s.id)] for s in samples])


# ---------------------------------------------------------------------------------------------
# the reference's grading (ptb-v1.2): tasks/healthbench/evaluate_final_eval.py and evaluation_code/grader.py,
# scoring.py (docs/evaluation.md has the table)

REFERENCE_RULE = "healthbench-reference"
"""The protocols' scoring rule id of the reference's grading."""
REFERENCE_GRADER = {"model": "gpt-5-mini", "max_tokens": 49152, "temperature": None, "reasoning_effort": None}
"""The reference's grader call for a gpt-5 model: ``max_completion_tokens=49152``, no temperature, no system turn."""
REFERENCE_ATTEMPTS = 3
"""``API_MAX_RETRY``: a criterion is asked again while the reply is not a JSON object with a boolean
``criteria_met``; after that it counts as not met (the reference's ``grade_example`` turns the failure into False)."""
STDERR_RULE = "stderr_rule"
"""Score metadata key: ``numpy-bootstrap`` for the reference's standard error (``compute_bootstrap_std``)."""
_FENCES = re.compile(r"^```json\s*|\s*```$")


def reference_grader_prompt(conversation: list[dict[str, str]], reply: str, rubric: dict[str, Any]) -> str:
    """The reference's grader prompt: the conversation and the (post-processed) reply, unquoted, substituted with
    two ``str.replace`` in turn (so a ``<<rubric_item>>`` in the conversation is replaced too, as there)."""
    turns = [*conversation, {"role": "assistant", "content": reply}]
    convo = "\n\n".join(f"{t['role']}: {t['content']}" for t in turns)
    item = f"[{rubric['points']}] {rubric['criterion']}"
    return GRADER_TEMPLATE.replace("<<conversation>>", convo).replace("<<rubric_item>>", item)


def reference_label(text: str) -> bool | None:
    """``criteria_met`` as the reference reads it (``parse_json_to_dict``: an outer ```json fence removed, JSON
    parsed, the value exactly ``true`` or ``false``); None where it would ask again."""
    try:
        obj = json.loads(_FENCES.sub("", text.strip()))
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("criteria_met"), bool):
        return None
    return bool(obj["criteria_met"])


def reference_met(attempts: list[str | None]) -> bool:
    """A criterion's verdict from its attempts' replies: the first readable label, else not met."""
    for reply in attempts:
        label = reference_label(reply) if reply is not None else None
        if label is not None:
            return label
    return False


def reference_value(rubrics: list[dict[str, Any]], met: list[bool]) -> float:
    """``normalized_score``: met points (negative ones subtract) over the positive points, 0 without any."""
    total = sum(r["points"] for r in rubrics if r["points"] > 0)
    return sum(r["points"] for r, m in zip(rubrics, met, strict=True) if m) / total if total > 0 else 0.0


def reference_bootstrap_stderr(values: list[float], n: int = 1000) -> float:
    """``compute_bootstrap_std``: NumPy's ``default_rng(42)``, ``n`` resamples with replacement, the population std
    of their clipped means."""
    import numpy as np

    if len(values) < 2:
        return 0.0
    arr = np.array(values)
    rng = np.random.default_rng(42)
    means = [np.clip(np.mean(rng.choice(arr, size=len(arr), replace=True)), 0, 1) for _ in range(n)]
    return float(np.std(means))


async def _reference_criterion(grader: Grader, prompt: str) -> list[str | None]:
    replies: list[str | None] = []
    for _ in range(REFERENCE_ATTEMPTS):
        got, _errors = await ask_all(grader, [(None, prompt)])
        replies.append(got[0])
        if got[0] is not None and reference_label(got[0]) is not None:
            break
    return replies


async def reference_score(grader: Grader, state: TaskState) -> Score:
    """One example as the reference grades it: the reply post-processed, every criterion asked (again while its
    reply is unreadable, up to 3 times), an unreadable or failed criterion not met; never unscored."""
    import asyncio

    judged = limit_repetitions(strip_reasoning(state.output.completion))
    rubrics = state.metadata["rubrics"]
    prompts = [reference_grader_prompt(state.metadata["conversation"], judged, r) for r in rubrics]
    attempts = await asyncio.gather(*(_reference_criterion(grader, p) for p in prompts))
    met = [reference_met(a) for a in attempts]
    value = reference_value(rubrics, met)
    meta: dict[str, Any] = {"grader_attempts": attempts, "met": met, "judged_reply": judged}
    meta[STDERR_RULE] = "numpy-bootstrap"
    return Score(value=value, explanation=f"{value:.3f} of the positive rubric points", metadata=meta)


@scorer(metrics=[rubric_score(), rubric_stderr()], name=SCORER)
def healthbench_scorer(grader: Grader, reference: bool = False) -> Scorer:
    """Grade the reply against every rubric item of the sample (``reference``: as the reference does)."""

    async def score(state: TaskState, target: Target) -> Score:
        if reference:
            return await reference_score(grader, state)
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
    protocols: ClassVar[tuple[str, ...]] = (STRICT, REF_V1)

    def reference_messages(self, item: Item) -> list[ChatMessage]:
        """The reference's chat: the example's conversation as it is (its ``generate_answers``)."""
        return item_messages(item)

    def _reference(self, protocol: str | Protocol) -> bool:
        p = get_protocol(protocol)
        return self.id in p.benchmarks and p.settings_for(self.id).scoring_rule == REFERENCE_RULE

    def grader_settings(self, protocol: str | Protocol) -> dict[str, Any]:
        """The reference's grader call (:data:`REFERENCE_GRADER`) under a protocol that grades as the reference."""
        return dict(REFERENCE_GRADER) if self._reference(protocol) else {}

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
        return healthbench_scorer(grader, reference=self._reference(protocol))

    def rescore(
        self, samples: Sequence[Any], *, code_sandbox: str = "bwrap", protocol: str | Protocol = STRICT
    ) -> dict[str, float]:
        return rescore(samples, reference=self._reference(protocol))

    def aggregate(
        self, samples: Sequence[Any], values: dict[str, float], *, protocol: str | Protocol = STRICT
    ) -> float:
        return aggregate(samples, values)
