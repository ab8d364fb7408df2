"""Coverage (See et al., 2017): the running sum of past attention, fed back to the
attention so it can avoid repeating itself, and the loss that penalises re-attending."""
from __future__ import annotations

import torch


def coverage_attention(scores: torch.Tensor, source_mask: torch.Tensor, weight: torch.Tensor,
                       coverage: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Attention with coverage, step by step over the target.

    ``scores``: (batch, tgt_len, src_len) content scores; ``weight``: a scalar parameter;
    ``coverage``: (batch, src_len) attention summed over earlier steps (zeros at the start,
    or the cache's value when decoding incrementally). Step t attends with
    ``softmax(scores_t + weight · c_t)`` where ``c_t = Σ_{t'<t} a_{t'}``.
    Returns attention (batch, tgt_len, src_len), the coverage before each step
    (batch, tgt_len, src_len) and the coverage after the last step (batch, src_len).
    """
    b, t, s = scores.shape
    neg = torch.finfo(scores.dtype).min
    pad = ~source_mask.to(torch.bool)
    cov = scores.new_zeros(b, s) if coverage is None else coverage
    attns, covs = [], []
    for i in range(t):  # sequential: step t's attention depends on every earlier step's
        a = (scores[:, i] + weight * cov).masked_fill(pad, neg).softmax(-1)
        covs.append(cov)
        attns.append(a)
        cov = cov + a
    return torch.stack(attns, 1), torch.stack(covs, 1), cov


def coverage_loss(attention: torch.Tensor, coverage: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """``Σ_t Σ_i min(a_t,i, c_t,i)`` over real target positions, summed (the caller
    normalises by its token count). ``attention``/``coverage``: (batch, tgt_len, src_len);
    ``target_mask``: (batch, tgt_len), 1 = a position that has a label."""
    per_step = torch.minimum(attention, coverage).sum(-1)
    return (per_step * target_mask.to(per_step.dtype)).sum()
