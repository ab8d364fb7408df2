"""Rotary position embeddings (RoPE; Su et al., 2021, "RoFormer"), as Llama applies them.

Queries and keys are rotated by an angle proportional to their position, so the score
q·k depends only on the distance between the two. Dimension i of the first half of a head
pairs with dimension i of the second half (``rotate_half``), as in transformers' Llama, not
adjacent pairs as in the paper: converted Llama weights then need no permutation. Nothing
is added to the embeddings, and nothing is learned.
"""
from __future__ import annotations

import torch
from torch import nn


def _inverse_frequencies(head_dim: int, theta: float) -> torch.Tensor:
    """(head_dim / 2,) angles per position: theta^(-2i / head_dim)."""
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))


class RotaryPositions(nn.Module):
    """cos/sin tables for ``position_ids``, computed once per forward and shared by every layer."""

    def __init__(self, head_dim: int, theta: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary positions need an even head dimension, got {head_dim}")
        self.head_dim, self.theta = head_dim, theta
        # Not persistent: a function of the config, not a learned weight.
        self.register_buffer("inv_freq", _inverse_frequencies(head_dim, theta), persistent=False)

    @torch.no_grad()
    def reset_table(self) -> None:
        """Models may be built on the meta device (from_pretrained); recompute the frequencies."""
        self.inv_freq.copy_(_inverse_frequencies(self.head_dim, self.theta))

    def forward(self, position_ids: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``position_ids`` (batch, seq) → (cos, sin), each (batch, seq, head_dim) in ``dtype``.
        The angles are computed in float32 whatever ``dtype``: in bf16, position × frequency
        loses the low bits that tell neighbouring positions apart."""
        freqs = position_ids[..., None].float() * self.inv_freq.float()
        angles = torch.cat([freqs, freqs], dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x`` (batch, heads, seq, head_dim) rotated by ``cos``/``sin`` (batch, seq, head_dim)."""
    cos, sin = cos[:, None], sin[:, None]
    return x * cos + rotate_half(x) * sin
