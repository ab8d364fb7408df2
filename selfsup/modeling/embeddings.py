"""Token, position (learned or sinusoidal) and segment embeddings."""
from __future__ import annotations

import math

import torch
from torch import nn

from .dropout import Dropout


def _sinusoid_table(max_positions: int, dim: int) -> torch.Tensor:
    position = torch.arange(max_positions, dtype=torch.float32).unsqueeze(1)
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(max_positions, dim)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq[: dim // 2])
    return table


class SinusoidalPositions(nn.Module):
    """Fixed sin/cos positions (Vaswani et al., 2017): no parameters, so nothing to save."""

    def __init__(self, max_positions: int, dim: int):
        super().__init__()
        # Not persistent: the table is a function of the config, not a learned weight.
        self.register_buffer("table", _sinusoid_table(max_positions, dim), persistent=False)

    @torch.no_grad()
    def reset_table(self) -> None:
        """Models may be built on the meta device (from_pretrained); recompute the table."""
        self.table.copy_(_sinusoid_table(*self.table.shape))

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return self.table[position_ids]


class Embeddings(nn.Module):
    """Sum of token, position and (optionally) segment embeddings, then LayerNorm + dropout.

    ``input_ids``, ``token_type_ids``, ``position_ids``: (batch, seq) → (batch, seq, hidden).
    ``norm`` is BERT's embedding LayerNorm; pre-LN models (GPT) have none. With
    ``position_embedding_type="rope"`` nothing is added here: the attention rotates queries
    and keys instead (``selfsup.modeling.rotary``).
    """

    def __init__(self, vocab_size: int, hidden_size: int, max_positions: int,
                 type_vocab_size: int = 0, position_embedding_type: str = "learned",
                 layer_norm_eps: float = 1e-12, dropout: float = 0.1, norm: bool = True,
                 padding_idx: int | None = None):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden_size, padding_idx=padding_idx)
        if position_embedding_type == "learned":
            self.position_embeddings = nn.Embedding(max_positions, hidden_size)
        elif position_embedding_type == "sinusoidal":
            self.position_embeddings = SinusoidalPositions(max_positions, hidden_size)
        elif position_embedding_type == "rope":
            self.position_embeddings = None
        else:
            raise ValueError(f"position_embedding_type must be 'learned', 'sinusoidal' or 'rope', "
                             f"got {position_embedding_type!r}")
        self.token_type_embeddings = nn.Embedding(type_vocab_size, hidden_size) if type_vocab_size > 0 else None
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps) if norm else None
        self.dropout = Dropout(dropout)
        self.max_positions = max_positions

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, past_length: int = 0) -> torch.Tensor:
        seq_len = input_ids.shape[1]
        x = self.word_embeddings(input_ids)
        if self.position_embeddings is not None:
            if position_ids is None:
                if past_length + seq_len > self.max_positions:
                    raise ValueError(f"sequence of {past_length + seq_len} positions exceeds "
                                     f"max_position_embeddings={self.max_positions}; truncate or window the input")
                position_ids = torch.arange(past_length, past_length + seq_len, device=input_ids.device).unsqueeze(0)
            x = x + self.position_embeddings(position_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.token_type_embeddings(token_type_ids)
        if self.norm is not None:
            x = self.norm(x)
        return self.dropout(x)
