"""Dropout with torch's semantics, drawn and applied in fewer passes on the CPU.

Each element is zeroed independently with probability ``p`` and the survivors are scaled
by ``1 / (1 - p)``, exactly as ``nn.Dropout``. On the CPU, torch draws its mask with
``bernoulli_`` and applies it in several passes: 28.5 ms on a 32×4×128×128 attention-
probability tensor on 2 cores, against 8 ms for uniform floats, one ``masked_fill`` and an
in-place scale here. Dropout was 10–20% of a BERT-mini pretraining step on the CPU. On other
devices torch's fused kernel is already fast and is used as is.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        # The mask comes from the default generator, so seeding and Accelerate's RNG
        # checkpointing cover it as they cover nn.Dropout.
        drop = torch.rand(x.shape, device=x.device) < p
        ctx.save_for_backward(drop)
        ctx.scale = 1.0 / (1.0 - p)
        return x.masked_fill(drop, 0).mul_(ctx.scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (drop,) = ctx.saved_tensors
        return grad.masked_fill(drop, 0).mul_(ctx.scale), None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Functional form: ``F.dropout(x, p, training)``, faster on the CPU."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    return _Dropout.apply(x, p)


class Dropout(nn.Dropout):
    """Drop-in ``nn.Dropout`` (same ``p``, same repr) whose CPU path is :func:`dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)
