"""Loading any causal LM: a folder or Hub id, a GGUF file, our selfsup-gpt, a peft adapter."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import selfsup  # noqa: F401  (registers selfsup-gpt with AutoModelForCausalLM)

from ..errors import InputError
from ..resources import require_model

# float64 is left out on purpose: the scoring kernels and GGUF dequantisation assume at most fp32.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}", field="dtype")


def load_model(model: str, gguf_file: str | None = None, peft: str | None = None, dtype: str = "float32"):
    """``(model, tokenizer)`` in eval mode. ``model`` may also be the path of a .gguf file.
    A GGUF checkpoint is dequantised to ``dtype`` by transformers at load."""
    check_dtype(dtype)
    require_model(model, "model")
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


def weights_fingerprint(model: str, gguf_file: str | None = None, peft: str | None = None) -> str | None:
    """sha256 over the weight files of a local ``model`` (and ``peft`` adapter), so a model
    retrained and saved at the same path is told apart from the one a result was scored with;
    None for a Hub id, whose files are not local before loading."""
    files = []
    for root, only in ((model, gguf_file), (peft, None)):
        path = Path(root).expanduser() if root else None
        if path is None or not path.exists():
            continue
        if path.is_file():
            files.append(path)
        else:
            files += [path / only] if only else sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if not files:
        return None
    digest = hashlib.sha256()
    for f in files:
        stat = f.stat()
        digest.update(f"{f.name}:{_file_sha256(f.resolve(), stat.st_size, stat.st_mtime_ns)}\n".encode())
    return digest.hexdigest()


@lru_cache(maxsize=None)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    """Read once per process for each (task, shots) that asks; size and time key the cache."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()
