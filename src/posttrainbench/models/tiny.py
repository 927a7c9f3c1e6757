"""A tiny, random, *real* causal LM that builds in well under a second (the ``ptb/tiny-random``
base model, and the models tests build).

``build_tiny_model`` writes a folder that every part of the harness can treat like a real
base model: ``config.json`` + ``model.safetensors`` of a small ``LlamaForCausalLM``, and a
``tokenizer.json`` (a character-level tokenizer made with the ``tokenizers`` library, so any
printable ASCII text round-trips exactly) loadable with ``AutoTokenizer``.

The same seed gives byte-identical weights, so tests can compare models across processes.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# Special tokens, in id order. <|im_start|>/<|im_end|> let ChatML-templated tests tokenize
# their markers as single tokens; the tiny model's own end of sequence is "</s>".
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>")
PAD, BOS, EOS, UNK = SPECIAL_TOKENS[:4]

# Every printable ASCII character (letters, digits, punctuation, space, \t \n \r \x0b \x0c).
CHARACTERS: tuple[str, ...] = tuple(dict.fromkeys(string.printable))

TINY_CONFIG: dict[str, int | float | bool] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
}


def tiny_vocab() -> dict[str, int]:
    """Token -> id of the tiny tokenizer: special tokens first, then one token per character."""
    tokens = (*SPECIAL_TOKENS, *CHARACTERS)
    return {tok: i for i, tok in enumerate(tokens)}


def build_tiny_tokenizer(chat_template: str | None = None) -> PreTrainedTokenizerFast:
    """A character-level ``PreTrainedTokenizerFast`` (no network, no files needed)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = tiny_vocab()
    # BPE without merges is a character-level model that treats every char (space and
    # newline included) as a token; the Fuse decoder concatenates them back without spaces.
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=TINY_CONFIG["max_position_embeddings"],
    )
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok


def build_tiny_model(
    path: Path,
    *,
    seed: int = 0,
    chat_template: str | None = None,
    dtype: str = "float32",
    max_positions: int | None = None,
) -> Path:
    """Write a tiny random ``LlamaForCausalLM`` + character tokenizer to ``path`` and return it.

    Deterministic for a given ``seed`` (the global RNG state is left untouched). The folder
    holds ``config.json``, ``generation_config.json``, ``model.safetensors`` and the tokenizer
    files; ``chat_template`` (a Jinja string) is saved with the tokenizer if given;
    ``max_positions`` overrides the context length (512) for tests with long prompts.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    sizes: dict[str, Any] = {**TINY_CONFIG, **({"max_position_embeddings": max_positions} if max_positions else {})}
    config = LlamaConfig(
        vocab_size=len(vocab),
        bos_token_id=vocab[BOS],
        eos_token_id=vocab[EOS],
        pad_token_id=vocab[PAD],
        **sizes,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model = model.to(getattr(torch, dtype)).eval()
    model.save_pretrained(path)
    build_tiny_tokenizer(chat_template).save_pretrained(path)
    for f in path.iterdir():  # transformers writes some files 0600; the sandbox may read as another uid
        if f.is_file():
            f.chmod(0o644)
    return path
