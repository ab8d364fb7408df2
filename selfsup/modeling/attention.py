"""Multi-head attention: SDPA for speed, an explicit eager path for probabilities.

Masks are additive float tensors broadcastable to (batch, heads, q_len, k_len), built once
per forward by :func:`attention_bias` and shared by every layer. A large negative number
(not -inf) keeps fully masked rows (padding queries) finite instead of NaN.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .dropout import dropout as dropout_fn
from .rotary import apply_rotary


def attention_bias(attention_mask: torch.Tensor | None, q_len: int, k_len: int, causal: bool,
                   dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
    """Additive bias (batch|1, 1, q_len, k_len) from a key padding mask and/or causality.

    ``attention_mask``: (batch, k_len), 1 = real token, 0 = padding. With a cache the
    queries are the last ``q_len`` of ``k_len`` positions, so query i sits at position
    ``k_len - q_len + i`` and may see keys up to and including that position.
    Returns None when nothing is masked, so SDPA can take its fastest kernel.

    A 4D ``attention_mask`` (batch, 1, q_len, k_len) is a custom additive mask (0 = attend,
    the dtype's minimum = not), as transformers' models take one: it is used as given, its
    causality included (the ICL harness packs several continuations after one context).
    """
    if attention_mask is not None and attention_mask.dim() == 4:
        return attention_mask.to(dtype)
    neg = torch.finfo(dtype).min
    bias = None
    if attention_mask is not None and not bool(attention_mask.all()):
        keep = attention_mask[:, None, None, :].to(torch.bool)
        bias = torch.zeros(keep.shape, dtype=dtype, device=device).masked_fill(~keep, neg)
    if causal and q_len > 1:
        q_pos = torch.arange(k_len - q_len, k_len, device=device)[:, None]
        future = torch.arange(k_len, device=device)[None, :] > q_pos
        causal_bias = torch.zeros(q_len, k_len, dtype=dtype, device=device).masked_fill(future, neg)[None, None]
        bias = causal_bias if bias is None else (bias + causal_bias).clamp(min=neg)
    return bias


def gather_positions(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``x`` (batch, seq, hidden) at ``positions`` (batch, m) → (batch, m, hidden)."""
    return x.gather(1, positions[..., None].expand(-1, -1, x.shape[-1]))


class MultiHeadAttention(nn.Module):
    """Self- or cross-attention with ``num_heads`` query heads.

    Self-attention projects q, k, v with one fused (hidden, hidden + 2·kv_dim) matmul;
    cross-attention projects q from the decoder and k, v (fused) from the encoder states.
    ``num_kv_heads`` < ``num_heads`` is grouped-query attention (Ainslie et al., 2023): query
    head h reads key/value head h // (num_heads / num_kv_heads), and the cache holds only the
    ``num_kv_heads`` heads. ``bias``: whether the projections have biases (GPT-2 yes, Llama no).
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0, cross: bool = False,
                 num_kv_heads: int | None = None, bias: bool = True):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_heads}")
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if num_heads % num_kv_heads:
            raise ValueError(f"num_attention_heads {num_heads} is not divisible by num_key_value_heads {num_kv_heads}")
        if cross and num_kv_heads != num_heads:
            raise ValueError("grouped-query attention is for self-attention")
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, hidden_size // num_heads
        kv_dim = num_kv_heads * self.head_dim
        self.cross = cross
        if cross:
            self.q = nn.Linear(hidden_size, hidden_size, bias=bias)
            self.kv = nn.Linear(hidden_size, 2 * kv_dim, bias=bias)
        else:
            self.qkv = nn.Linear(hidden_size, hidden_size + 2 * kv_dim, bias=bias)
        self.out = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.dropout = dropout

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, seq, n·head_dim) → (batch, n, seq, head_dim)."""
        b, t, _ = x.shape
        return x.view(b, t, -1, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None, *, is_causal: bool = False,
                memory: torch.Tensor | None = None, cache=None, layer_idx: int = 0,
                implementation: str = "sdpa", output_attentions: bool = False,
                query_positions: torch.Tensor | None = None,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x``: (batch, q_len, hidden); ``memory``: encoder states (batch, src_len, hidden)
        for cross-attention; ``bias`` from :func:`attention_bias`; ``is_causal`` lets SDPA
        apply causality itself when there is no bias and no cache. ``query_positions``
        (batch, m): bidirectional self-attention only, every position is a key and a value
        but only these are queries, so the output is (batch, m, hidden). ``rotary``: (cos, sin),
        each (batch, q_len, head_dim), rotates this step's queries and keys (self-attention).

        Returns the output (batch, q_len | m, hidden) and, on the eager path with
        ``output_attentions``, the probabilities (batch, heads, q_len | m, k_len).
        """
        if self.cross:
            q = self._heads(self.q(x))
            if cache is not None and layer_idx in cache.cross:
                k, v = cache.cross[layer_idx]
            else:
                k, v = (self._heads(t) for t in self.kv(memory).chunk(2, dim=-1))
                if cache is not None:
                    cache.cross[layer_idx] = (k, v)
        elif query_positions is not None:
            if is_causal or cache is not None or rotary is not None:
                raise ValueError("query_positions is for bidirectional attention without a cache or rotary positions")
            h, w, b = x.shape[-1], self.qkv.weight, self.qkv.bias
            q = self._heads(F.linear(gather_positions(x, query_positions), w[:h], None if b is None else b[:h]))
            k, v = (self._heads(t) for t in F.linear(x, w[h:], None if b is None else b[h:]).chunk(2, dim=-1))
        else:
            kv_dim = self.num_kv_heads * self.head_dim
            q, k, v = (self._heads(t) for t in self.qkv(x).split([x.shape[-1], kv_dim, kv_dim], dim=-1))
            if rotary is not None:
                q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
            if cache is not None:
                k, v = cache.update(k, v, layer_idx)
        dropout = self.dropout if self.training else 0.0
        if implementation not in ("sdpa", "eager"):
            raise ValueError(f"attn_implementation must be 'sdpa' or 'eager', got {implementation!r}")
        # With dropout, CPU SDPA falls back to the same explicit math, with torch's slower
        # dropout; the explicit path below uses ours (selfsup.modeling.dropout).
        explicit = implementation == "eager" or output_attentions or (dropout > 0 and q.device.type == "cpu")
        probs = None
        groups = self.num_heads // self.num_kv_heads
        if explicit:
            if groups > 1:
                k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
            if bias is not None:
                scores = scores + bias
            elif is_causal:
                scores = scores + attention_bias(None, q.shape[-2], k.shape[-2], True, scores.dtype, scores.device)
            probs = scores.softmax(dim=-1)
            y = dropout_fn(probs, dropout, self.training) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout,
                                               is_causal=is_causal and bias is None, enable_gqa=groups > 1)
        b, _, t, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, -1)), probs
