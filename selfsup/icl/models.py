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
