"""Feed-forward, norms and the encoder/decoder blocks, post-LN (BERT) or pre-LN (GPT-2, Llama)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import MultiHeadAttention, gather_positions
from .dropout import Dropout

ACTIVATIONS = {
    "gelu": F.gelu,  # exact erf GELU, as in BERT
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2's tanh approximation
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,  # SwiGLU's gate (Llama)
}


class FeedForward(nn.Module):
    """hidden → intermediate → activation → hidden; with ``gated``,
    ``fc_out(act(gate) * up)`` where ``gate, up = fc_in(x)`` (GLU variants, Shazeer 2020:
    SwiGLU with ``silu``, as Llama). Gate and up are stored as one fused (2·intermediate, hidden)
    weight, gate rows first, and multiplied as its two halves (see ``forward``)."""

    def __init__(self, hidden_size: int, intermediate_size: int, activation: str = "gelu",
                 gated: bool = False, bias: bool = True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"hidden_act {activation!r} not supported; choose from {sorted(ACTIVATIONS)}")
        self.fc_in = nn.Linear(hidden_size, (2 if gated else 1) * intermediate_size, bias=bias)
        self.fc_out = nn.Linear(intermediate_size, hidden_size, bias=bias)
        self.act = ACTIVATIONS[activation]
        self.gated = gated

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            # Two matmuls with the weight's halves, not one matmul chunked afterwards: gate and up
            # come out contiguous, and the layer allocates what Llama's MLP does, with no
            # (batch, seq, 2·intermediate) block. On the CPU, glibc's malloc gives freed heap back
            # to the OS and faults it in again, and how much depends on the blocks' sizes and the
            # heap's history: one SmolLM2 scoring run with the fused block took 3x Llama's page
            # faults and 0.92x its speed (bench/decoder_faults.py measures both).
            w_gate, w_up = self.fc_in.weight.chunk(2)
            b_gate, b_up = (None, None) if self.fc_in.bias is None else self.fc_in.bias.chunk(2)
            return self.fc_out(self.act(F.linear(x, w_gate, b_gate)) * F.linear(x, w_up, b_up))
        return self.fc_out(self.act(self.fc_in(x)))


class RMSNorm(nn.Module):
    """``x / rms(x) · weight`` (Zhang & Sennrich, 2019): LayerNorm without centring or bias, as Llama.
    Computed in float32 whatever the input dtype (a bf16 mean of squares loses the small ones)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


NORMS = {"layernorm": nn.LayerNorm, "rmsnorm": RMSNorm}


def make_norm(kind: str, hidden_size: int, eps: float) -> nn.Module:
    if kind not in NORMS:
        raise ValueError(f"norm_type {kind!r} not supported; choose from {sorted(NORMS)}")
    return NORMS[kind](hidden_size, eps=eps)


class Sublayer(nn.Module):
    """Residual wrapper: post-LN ``norm(x + drop(f(x)))`` or pre-LN ``x + drop(f(norm(x)))``.

    Keeping the residual/norm order in one place is what lets one block serve BERT and GPT.
    """

    def __init__(self, hidden_size: int, eps: float, dropout: float, pre_norm: bool, norm: str = "layernorm"):
        super().__init__()
        self.norm = make_norm(norm, hidden_size, eps)
        self.dropout = Dropout(dropout)
        self.pre_norm = pre_norm

    def forward(self, x: torch.Tensor, f, residual: torch.Tensor | None = None) -> tuple[torch.Tensor, object]:
        """``residual``: what ``f``'s output is added to, when not ``x`` itself (``f`` keeps
        only some positions of ``x``)."""
        out, extra = f(self.norm(x) if self.pre_norm else x)
        x = (x if residual is None else residual) + self.dropout(out)
        return (x if self.pre_norm else self.norm(x)), extra


class Block(nn.Module):
    """Self-attention (+ cross-attention for an encoder–decoder decoder) + feed-forward.

    The defaults are BERT/GPT-2's; a Llama block is ``norm="rmsnorm"``, ``gated_mlp=True``
    with ``activation="silu"``, no biases, and rotary positions passed to ``forward``."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, activation: str,
                 dropout: float, attention_dropout: float, eps: float, pre_norm: bool,
                 cross_attention: bool = False, *, num_kv_heads: int | None = None, norm: str = "layernorm",
                 gated_mlp: bool = False, attention_bias: bool = True, mlp_bias: bool = True):
        super().__init__()
        self.attention = MultiHeadAttention(hidden_size, num_heads, attention_dropout, num_kv_heads=num_kv_heads,
                                            bias=attention_bias)
        self.attention_sublayer = Sublayer(hidden_size, eps, dropout, pre_norm, norm)
        if cross_attention:
            self.cross_attention = MultiHeadAttention(hidden_size, num_heads, attention_dropout, cross=True,
                                                      bias=attention_bias)
            self.cross_sublayer = Sublayer(hidden_size, eps, dropout, pre_norm, norm)
        else:
            self.cross_attention = None
        self.ffn = FeedForward(hidden_size, intermediate_size, activation, gated=gated_mlp, bias=mlp_bias)
        self.ffn_sublayer = Sublayer(hidden_size, eps, dropout, pre_norm, norm)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None, *, is_causal: bool = False,
                memory: torch.Tensor | None = None, memory_bias: torch.Tensor | None = None,
                cache=None, layer_idx: int = 0, implementation: str = "sdpa",
                output_attentions: bool = False, query_positions: torch.Tensor | None = None,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None):
        """``x``: (batch, seq, hidden). Returns (x, self-attention probs, cross-attention probs);
        the probabilities are None unless ``output_attentions``. With ``query_positions``
        (batch, m) the block computes only those positions' outputs, x is (batch, m, hidden):
        attention still reads every position as a key and value. ``rotary``: (cos, sin) for
        self-attention, each (batch, seq, head_dim)."""
        attn = dict(cache=cache, layer_idx=layer_idx, implementation=implementation,
                    output_attentions=output_attentions)
        residual = None
        if query_positions is not None:
            if self.cross_attention is not None:
                raise ValueError("query_positions is for encoder blocks (no cross-attention)")
            attn["query_positions"] = query_positions
            residual = gather_positions(x, query_positions)
        x, self_probs = self.attention_sublayer(
            x, lambda h: self.attention(h, bias, is_causal=is_causal, rotary=rotary, **attn), residual)
        cross_probs = None
        if self.cross_attention is not None:
            x, cross_probs = self.cross_sublayer(
                x, lambda h: self.cross_attention(h, memory_bias, memory=memory, **attn))
        x, _ = self.ffn_sublayer(x, lambda h: (self.ffn(h), None))
        return x, self_probs, cross_probs
