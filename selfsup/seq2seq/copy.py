"""The pointer-generator mixture (See et al., 2017) over a per-example extended vocabulary.

Source words outside the vocabulary get ids ``vocab_size + k`` (k = order of first
appearance in that example's source), so the model can produce and be scored on them.
"""
from __future__ import annotations

import torch


def copy_distribution(vocab_probs: torch.Tensor, attention: torch.Tensor, p_gen: torch.Tensor,
                      source_extended_ids: torch.Tensor, num_extra: int,
                      source_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Final distribution ``p_gen · P_vocab + (1 − p_gen) · Σ_{i: src_i = w} a_i``.

    ``vocab_probs``: (batch, tgt_len, vocab); ``attention``: (batch, tgt_len, src_len), rows
    summing to 1 over real source tokens; ``p_gen``: (batch, tgt_len, 1) in [0, 1];
    ``source_extended_ids``: (batch, src_len), OOV words as ``vocab + k``; ``num_extra``: the
    batch's largest OOV count; ``source_mask``: (batch, src_len), 1 = token, 0 = padding.
    Padded source positions get no copy mass (their attention is zeroed and the rest
    renormalised). Returns (batch, tgt_len, vocab + num_extra), rows summing to 1.
    """
    if source_mask is not None:
        attention = attention * source_mask[:, None, :].to(attention.dtype)
        attention = attention / attention.sum(-1, keepdim=True).clamp_min(torch.finfo(attention.dtype).tiny)
    b, t, v = vocab_probs.shape
    generated = p_gen * vocab_probs
    final = torch.cat([generated, generated.new_zeros(b, t, num_extra)], dim=-1)
    index = source_extended_ids[:, None, :].expand(b, t, -1)
    return final.scatter_add(-1, index, (1 - p_gen) * attention)
