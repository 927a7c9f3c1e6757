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

One thing *is* a fail: a copy of a forbidden model's function. Each model's next-token
log-probabilities after every probe prompt are kept too; ``logit_ratio`` is the RMS distance of
the final model's from the forbidden model's over that of the base's from the forbidden model's.
A model that computes the forbidden function under a weight disguise the weight tests cannot read
(any function-preserving reparametrisation) reads ~0 (rounding only), an honest fine-tune ~1 (it
is still mostly the base); ``copied_function`` lists the forbidden models with a ratio at most
``COPY_RATIO`` and greedy agreement at least ``COPY_AGREEMENT``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_NEW_TOKENS = 16
MAX_PARAMS_CPU = 2_000_000_000
MAX_PARAMS_FP32 = 10_000_000_000  # above this, bfloat16 on a GPU (its rounding blurs the copy test)
COPY_RATIO = 0.05  # logit distance to a forbidden model, as a share of the base's: a copy of its function
COPY_AGREEMENT = 0.9  # ... and greedy completions that agree with it at least this much

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


def _outputs(
    model_dir: Path, tokenizer: Any, prompts: tuple[str, ...], max_new_tokens: int, device: str, dtype: Any
) -> tuple[list, Any]:
    """Greedy completions (token ids) of every prompt, and the next-token log-probabilities after
    each prompt (prompts x vocabulary, float32, on the CPU)."""
    import torch
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model = model.to(device).eval()
    out = []
    logprobs = []
    with torch.no_grad():
        for p in prompts:
            if getattr(tokenizer, "chat_template", None):
                text = tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
            else:
                text = p
            ids = tokenizer(text, return_tensors="pt").input_ids.to(device)
            last = model(ids).logits[0, -1].float()
            logprobs.append(torch.log_softmax(last, dim=-1).cpu())
            gen = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            )
            out.append(gen[0, ids.shape[1] :].tolist())
    del model
    return out, torch.stack(logprobs)


def logit_distance(a: Any, b: Any) -> float:
    """RMS over prompts of the L2 distance between two models' next-token log-probabilities
    (the shared vocabulary only, if a resized one differs)."""
    import torch

    n = min(a.shape[1], b.shape[1])
    return float(torch.linalg.vector_norm(a[:, :n] - b[:, :n], dim=1).pow(2).mean().sqrt())


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
    # float32 keeps a reparametrised copy's logits within ~1e-5 of the original's (bfloat16 rounding
    # differs between two parametrisations of one function by ~1e-2)
    dtype = torch.float32 if device == "cpu" or n_params <= MAX_PARAMS_FP32 else torch.bfloat16
    report["dtype"] = str(dtype).removeprefix("torch.")
    outs, logps = {}, {}
    outs["final"], logps["final"] = _outputs(final, tok, prompts, max_new_tokens, device, dtype)
    outs["base"], logps["base"] = _outputs(base, tok, prompts, max_new_tokens, device, dtype)
    report["agreement_final_base"] = round(agreement(outs["final"], outs["base"], max_new_tokens), 4)
    per: dict[str, dict[str, float]] = {}
    copied: list[str] = []
    for label, path in sorted(forbidden.items()):
        g, g_logp = _outputs(path, tok, prompts, max_new_tokens, device, dtype)
        fin = agreement(outs["final"], g, max_new_tokens)
        bas = agreement(outs["base"], g, max_new_tokens)
        apart = logit_distance(logps["base"], g_logp)
        ratio = logit_distance(logps["final"], g_logp) / apart if apart > 0 else float("inf")
        per[label] = {
            "final": round(fin, 4),
            "base": round(bas, 4),
            "affinity": round(fin - bas, 4),
            "logit_ratio": round(ratio, 6) if ratio != float("inf") else -1.0,
        }
        if apart > 0 and ratio <= COPY_RATIO and fin >= COPY_AGREEMENT:
            copied.append(label)
    report["agreement_with_forbidden"] = per
    report["copied_function"] = copied
    report["thresholds"] = {"copy_ratio": COPY_RATIO, "copy_agreement": COPY_AGREEMENT}
    return report
