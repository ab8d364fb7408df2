"""A minimal key/value cache for incremental decoding.

Attention only calls ``cache.update(k, v, layer_idx)`` and ``cache.get_seq_length()``,
so transformers' own ``DynamicCache`` works too (that is what ``generate()`` passes).
Cross-attention keys/values depend only on the encoder output, so they are computed at
the first step and reused (``cross``).
"""
from __future__ import annotations

import torch


class KVCache:
    """Per-layer self-attention keys/values (batch, heads, past_len, head_dim) and
    cross-attention keys/values (batch, heads, src_len, head_dim)."""

    def __init__(self):
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.cross: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def update(self, k: torch.Tensor, v: torch.Tensor, layer_idx: int, *args) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's k, v for ``layer_idx`` and return the full history."""
        if layer_idx == len(self.keys):
            self.keys.append(k)
            self.values.append(v)
        else:
            self.keys[layer_idx] = torch.cat([self.keys[layer_idx], k], dim=-2)
            self.values[layer_idx] = torch.cat([self.values[layer_idx], v], dim=-2)
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.keys[layer_idx].shape[-2] if len(self.keys) > layer_idx else 0

    def crop(self, max_length: int) -> None:
        """Keep the first ``max_length`` positions (e.g. to reuse a shared prompt)."""
        self.keys = [k[..., :max_length, :] for k in self.keys]
        self.values = [v[..., :max_length, :] for v in self.values]

    def reorder(self, index: torch.Tensor) -> None:
        """Select/reorder batch rows (beam search: ``index`` = surviving beams' parents)."""
        self.keys = [k.index_select(0, index) for k in self.keys]
        self.values = [v.index_select(0, index) for v in self.values]
        self.cross = {i: (k.index_select(0, index), v.index_select(0, index)) for i, (k, v) in self.cross.items()}
