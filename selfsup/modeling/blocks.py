"""Feed-forward and the encoder/decoder blocks, post-LN (BERT) or pre-LN (GPT-2)."""
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
}


class FeedForward(nn.Module):
    """hidden → intermediate → activation → hidden."""

    def __init__(self, hidden_size: int, intermediate_size: int, activation: str = "gelu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"hidden_act {activation!r} not supported; choose from {sorted(ACTIVATIONS)}")
        self.fc_in = nn.Linear(hidden_size, intermediate_size)
        self.fc_out = nn.Linear(intermediate_size, hidden_size)
        self.act = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.act(self.fc_in(x)))


class Sublayer(nn.Module):
    """Residual wrapper: post-LN ``norm(x + drop(f(x)))`` or pre-LN ``x + drop(f(norm(x)))``.

    Keeping the residual/norm order in one place is what lets one block serve BERT and GPT.
    """

    def __init__(self, hidden_size: int, eps: float, dropout: float, pre_norm: bool):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = Dropout(dropout)
        self.pre_norm = pre_norm

    def forward(self, x: torch.Tensor, f, residual: torch.Tensor | None = None) -> tuple[torch.Tensor, object]:
        """``residual``: what ``f``'s output is added to, when not ``x`` itself (``f`` keeps
        only some positions of ``x``)."""
        out, extra = f(self.norm(x) if self.pre_norm else x)
        x = (x if residual is None else residual) + self.dropout(out)
        return (x if self.pre_norm else self.norm(x)), extra


class Block(nn.Module):
    """Self-attention (+ cross-attention for an encoder–decoder decoder) + feed-forward."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, activation: str,
                 dropout: float, attention_dropout: float, eps: float, pre_norm: bool,
                 cross_attention: bool = False):
        super().__init__()
        self.attention = MultiHeadAttention(hidden_size, num_heads, attention_dropout)
        self.attention_sublayer = Sublayer(hidden_size, eps, dropout, pre_norm)
        if cross_attention:
            self.cross_attention = MultiHeadAttention(hidden_size, num_heads, attention_dropout, cross=True)
            self.cross_sublayer = Sublayer(hidden_size, eps, dropout, pre_norm)
        else:
            self.cross_attention = None
        self.ffn = FeedForward(hidden_size, intermediate_size, activation)
        self.ffn_sublayer = Sublayer(hidden_size, eps, dropout, pre_norm)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None, *, is_causal: bool = False,
                memory: torch.Tensor | None = None, memory_bias: torch.Tensor | None = None,
                cache=None, layer_idx: int = 0, implementation: str = "sdpa",
                output_attentions: bool = False, query_positions: torch.Tensor | None = None):
        """``x``: (batch, seq, hidden). Returns (x, self-attention probs, cross-attention probs);
        the probabilities are None unless ``output_attentions``. With ``query_positions``
        (batch, m) the block computes only those positions' outputs, x is (batch, m, hidden):
        attention still reads every position as a key and value."""
        attn = dict(cache=cache, layer_idx=layer_idx, implementation=implementation,
                    output_attentions=output_attentions)
        residual = None
        if query_positions is not None:
            if self.cross_attention is not None:
                raise ValueError("query_positions is for encoder blocks (no cross-attention)")
            attn["query_positions"] = query_positions
            residual = gather_positions(x, query_positions)
        x, self_probs = self.attention_sublayer(x, lambda h: self.attention(h, bias, is_causal=is_causal, **attn),
                                                residual)
        cross_probs = None
        if self.cross_attention is not None:
            x, cross_probs = self.cross_sublayer(
                x, lambda h: self.cross_attention(h, memory_bias, memory=memory, **attn))
        x, _ = self.ffn_sublayer(x, lambda h: (self.ffn(h), None))
        return x, self_probs, cross_probs
