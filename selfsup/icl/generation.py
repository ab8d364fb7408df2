"""Greedy generation until a stop sequence, batched (lm-evaluation-harness's ``generate_until``).

Contexts are left-padded so that every row's next token sits in the last column, with an
attention mask over the padding and position ids counted from each row's first real
token: a batch generates the same text as each context alone. One forward over the
contexts fills the KV cache, then one token per step; a batch stops as soon as every row
has produced a stop sequence or an end-of-sequence token, or after ``max_gen_toks``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from tqdm.auto import tqdm

from selfsup.modeling.cache_kwargs import cache_keyword, output_cache

from .padding import model_device, pad, positions


@dataclass
class Generation:
    text: str      # every generated token decoded, end-of-sequence excluded
    answer: str    # ``text`` without one leading delimiter, cut at the first stop sequence
    finish: str    # "stop" (a stop sequence), "eos" (end-of-sequence token) or "length" (max_gen_toks)


def cut(text: str, until: Sequence[str], delimiter: str = "") -> tuple[str, bool]:
    """``(answer, stopped)``: ``text`` without one leading ``delimiter`` (the task's
    target_delimiter, which the demonstrations put between prompt and answer), truncated
    before the earliest occurrence of any stop sequence, as lm-eval's ``split(term)[0]``."""
    if delimiter and text.startswith(delimiter):
        text = text[len(delimiter):]
    ends = [i for i in (text.find(s) for s in until) if i >= 0]
    return (text[:min(ends)], True) if ends else (text, False)


def stop_token_ids(model, tokenizer) -> set[int]:
    """End-of-sequence ids of the tokenizer and of the model's generation config (may be a list)."""
    ids = {tokenizer.eos_token_id}
    config = getattr(model, "generation_config", None)
    extra = getattr(config, "eos_token_id", None)
    ids |= set(extra) if isinstance(extra, (list, tuple)) else {extra}
    return {i for i in ids if i is not None}


@torch.no_grad()
def generate_until(model, tokenizer, contexts: list[list[int]], until: Sequence[str], max_gen_toks: int,
                   delimiter: str = "", batch_size: int = 8, pad_token_id: int = 0,
                   progress: bool = False) -> list[Generation]:
    """Greedy continuation of each context (token ids); results in ``contexts`` order."""
    device, eos = model_device(model), stop_token_ids(model, tokenizer)
    # Longest first: similar lengths share a batch (little padding), out-of-memory shows up early.
    order = sorted(range(len(contexts)), key=lambda i: (-len(contexts[i]), i))
    results: list[Generation | None] = [None] * len(contexts)
    cache_kw = cache_keyword(model)
    for start in tqdm(range(0, len(order), batch_size), desc="generating", disable=not progress):
        batch = order[start:start + batch_size]
        ids, mask = pad([contexts[i] for i in batch], pad_token_id, left=True, device=device)
        lengths = mask.sum(-1, keepdim=True)  # (batch, 1): real tokens per row
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask),
                    use_cache=True, logits_to_keep=1)
        tokens: list[list[int]] = [[] for _ in batch]
        finish: list[str | None] = [None] * len(batch)
        for step in range(max_gen_toks):
            next_ids = out.logits[:, -1].argmax(-1)  # (batch,)
            for row, token in enumerate(next_ids.tolist()):
                if finish[row] is not None:
                    continue  # finished rows keep running with the batch; their tokens are dropped
                if token in eos:
                    finish[row] = "eos"
                    continue
                tokens[row].append(token)
                if cut(tokenizer.decode(tokens[row], skip_special_tokens=True), until, delimiter)[1]:
                    finish[row] = "stop"
            if all(f is not None for f in finish) or step == max_gen_toks - 1:
                break
            mask = torch.cat([mask, mask.new_ones(len(batch), 1)], dim=1)
            out = model(input_ids=next_ids[:, None], attention_mask=mask, position_ids=lengths + step,
                        **{cache_kw: output_cache(out)}, use_cache=True)
        for row, i in enumerate(batch):
            text = tokenizer.decode(tokens[row], skip_special_tokens=True)
            results[i] = Generation(text=text, answer=cut(text, until, delimiter)[0], finish=finish[row] or "length")
    return results
