"""Loading any causal LM: a folder or Hub id, a GGUF file, our selfsup-gpt, a peft adapter."""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import selfsup  # noqa: F401  (registers selfsup-gpt with AutoModelForCausalLM)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_model(model: str, gguf_file: str | None = None, peft: str | None = None, dtype: str = "float32"):
    """``(model, tokenizer)`` in eval mode. ``model`` may also be the path of a .gguf file.
    A GGUF checkpoint is dequantised to ``dtype`` by transformers at load."""
    if gguf_file is None and model.endswith(".gguf"):
        model, gguf_file = str(Path(model).parent), Path(model).name
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=DTYPES[dtype], **kwargs)
    if peft is not None:
        from peft import PeftModel
        lm = PeftModel.from_pretrained(lm, peft)
    return lm.eval(), tokenizer


def pad_token_id(tokenizer) -> int:
    """The id to pad batches with: the tokenizer's pad token, else its EOS (causal LMs often
    have no pad token), else 0. Padded positions are masked out, so any id is correct."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
