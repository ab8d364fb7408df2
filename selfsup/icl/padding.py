"""Batches of token rows for any causal LM: padding, the positions left padding leaves, the
model's device, and the additive attention mask of a packed batch.

Shared by ``scoring`` and ``generation``. The KV cache's keyword is not here: it lives once
for the whole project in :mod:`selfsup.modeling.cache_kwargs`.
"""
from __future__ import annotations

import torch


def model_device(model) -> torch.device:
    """Where ``model``'s weights are (inputs go there)."""
    return next(model.parameters()).device


def model_dtype(model) -> torch.dtype:
    """The floating dtype ``model`` computes in: what an additive attention mask must be."""
    return next(p.dtype for p in model.parameters() if p.is_floating_point())


def pad(rows: list[list[int]], pad_token_id: int, left: bool, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, mask)``, both (len(rows), longest row); 1 in ``mask`` = token. Left padding puts
    every row's last token in the last column (what the next token is predicted from)."""
    width = max(map(len, rows))
    fill = [[pad_token_id] * (width - len(r)) for r in rows]
    ids = [f + r if left else r + f for r, f in zip(rows, fill)]
    mask = [[0] * len(f) + [1] * len(r) if left else [1] * len(r) + [0] * len(f) for r, f in zip(rows, fill)]
    return torch.tensor(ids, device=device), torch.tensor(mask, device=device)


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids (batch, width) counted from each row's first token, so that left padding
    does not shift them (padding gets 0; it is masked anyway)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def additive_mask(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``keep`` (batch, queries, keys), True = may attend -> (batch, 1, queries, keys) of 0 and
    ``dtype``'s minimum: the custom 4D mask transformers' models (eager and SDPA alike) and
    selfsup-gpt add to their attention scores as given."""
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill_(
        ~keep, torch.finfo(dtype).min)[:, None]
