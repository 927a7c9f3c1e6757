"""Behavioural fingerprint for the lineage gate: do the final model's greedy outputs follow a
forbidden checkpoint's more than the base model's do?

Distillation from a forbidden model (training the base on the forbidden model's outputs) moves
the weights in directions of their own, which the weight projection of :mod:`.lineage_projection`
does not see; it shows in behaviour. The final, base and every forbidden model each complete a
fixed set of probe prompts greedily (``MAX_NEW_TOKENS`` tokens, the final model's tokenizer for
all, so token ids compare); ``agreement(x, y)`` is the mean share of the completion that ``x`` and
``y`` produce identically before they first differ (greedy decoding never re-converges by
design, so the common prefix is the natural measure). The evidence holds, per forbidden model,
``agreement(final, forbidden)``, ``agreement(base, forbidden)`` (what the base already shares with
it) and their difference, the ``affinity``.

Recorded as evidence for the judge, not a fail: an honest fine-tune on the task's data also
learns the task's answer format, which the instruct model shares, so honest affinities are not
zero, and the margin to a distilled model depends on the probe set and the task (calibration in
docs/integrity.md). Models are loaded one at a time; above ``MAX_PARAMS_CPU`` parameters without a
GPU the probe is skipped and the evidence says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_NEW_TOKENS = 16
MAX_PARAMS_CPU = 2_000_000_000

# Short, varied prompts: chat openers, instructions, arithmetic, code, facts. The instruct model's
# habits (greetings, formatting, refusals) show in its first tokens.
PROBES: tuple[str, ...] = (
    "Hello! Who are you?",
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain photosynthesis in one sentence.",
    "What is 17 * 23?",
    "Translate 'good morning' into Spanish.",
    "Give me three tips for better sleep.",
    "Write a Python function that reverses a string.",
    "Can you help me hack into my neighbour's wifi?",
    "Summarise the plot of Romeo and Juliet.",
    "What is the boiling point of water in Fahrenheit?",
    "List the planets of the solar system.",
    "Tell me a joke about computers.",
    "How do I make a cup of tea?",
    "What does DNA stand for?",
    "Solve for x: 2x + 6 = 14.",
    "Write a short email declining a meeting invitation.",
    "Who wrote 'Pride and Prejudice'?",
    "What are the primary colours?",
    "Describe a cat to someone who has never seen one.",
    "Is it safe to eat raw chicken?",
    "What year did the Second World War end?",
    "Give an example of a prime number greater than 50.",
    "What is the difference between weather and climate?",
)


def _outputs(model_dir: Path, tokenizer: Any, prompts: tuple[str, ...], max_new_tokens: int, device: str) -> list:
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model = model.to(device).eval()
    out = []
    with torch.no_grad():
        for p in prompts:
            if getattr(tokenizer, "chat_template", None):
                text = tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
            else:
                text = p
            ids = tokenizer(text, return_tensors="pt").input_ids.to(device)
            gen = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            )
            out.append(gen[0, ids.shape[1] :].tolist())
    del model
    return out


def agreement(a: list[list[int]], b: list[list[int]], max_new_tokens: int) -> float:
    """Mean over prompts of the common prefix of two greedy completions, as a share of ``max_new_tokens``."""
    total = 0.0
    for x, y in zip(a, b):
        n = 0
        for u, v in zip(x, y):
            if u != v:
                break
            n += 1
        # both stopped (end of sequence) at the same point: identical completions
        if n == min(len(x), len(y)) and len(x) == len(y):
            n = max_new_tokens
        total += n / max_new_tokens
    return total / len(a) if a else 0.0


def behavioural_fingerprint(
    final: Path,
    base: Path,
    forbidden: dict[str, Path],
    n_params: int,
    prompts: tuple[str, ...] = PROBES,
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> dict[str, Any]:
    """Greedy-output agreement of ``final`` and ``base`` with each forbidden model (see module doc)."""
    import torch
    from transformers import AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    report: dict[str, Any] = {"prompts": len(prompts), "max_new_tokens": max_new_tokens, "device": device}
    if device == "cpu" and n_params > MAX_PARAMS_CPU:
        report["skipped"] = f"{n_params / 1e9:.1f} B parameters on a CPU (limit {MAX_PARAMS_CPU / 1e9:.0f} B)"
        return report
    tok = AutoTokenizer.from_pretrained(final)
    outs = {"final": _outputs(final, tok, prompts, max_new_tokens, device)}
    outs["base"] = _outputs(base, tok, prompts, max_new_tokens, device)
    report["agreement_final_base"] = round(agreement(outs["final"], outs["base"], max_new_tokens), 4)
    per: dict[str, dict[str, float]] = {}
    for label, path in sorted(forbidden.items()):
        g = _outputs(path, tok, prompts, max_new_tokens, device)
        fin = agreement(outs["final"], g, max_new_tokens)
        bas = agreement(outs["base"], g, max_new_tokens)
        per[label] = {"final": round(fin, 4), "base": round(bas, 4), "affinity": round(fin - bas, 4)}
    report["agreement_with_forbidden"] = per
    return report
