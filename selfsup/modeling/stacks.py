"""Encoder and decoder stacks: embeddings in, hidden states out.

The encoder is bidirectional with a key padding mask; the decoder is causal, optionally
cross-attends to encoder states, and decodes incrementally with a :class:`KVCache`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import attention_bias
from .blocks import Block, make_norm


@dataclass
class StackOutput:
    """``hidden_states``: (batch, seq, hidden) after the last block (and final norm, pre-LN).
    ``all_hidden_states``: the input of every block plus the output, when asked.
    ``attentions`` / ``cross_attentions``: per-layer (batch, heads, q, k), when asked."""

    hidden_states: torch.Tensor
    all_hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None


class Stack(nn.Module):
    """``num_layers`` blocks; pre-LN stacks end with a final norm (GPT-2, Llama).
    ``block_options``: the keyword-only options of :class:`Block` (GQA, norm, gated MLP, biases)."""

    def __init__(self, num_layers: int, hidden_size: int, num_heads: int, intermediate_size: int,
                 activation: str = "gelu", dropout: float = 0.1, attention_dropout: float = 0.1,
                 eps: float = 1e-12, pre_norm: bool = False, causal: bool = False,
                 cross_attention: bool = False, **block_options):
        super().__init__()
        self.layers = nn.ModuleList(
            Block(hidden_size, num_heads, intermediate_size, activation, dropout, attention_dropout,
                  eps, pre_norm, cross_attention, **block_options) for _ in range(num_layers))
        norm = block_options.get("norm", "layernorm")
        self.final_norm = make_norm(norm, hidden_size, eps) if pre_norm else None
        self.causal = causal
        # transformers' gradient_checkpointing_enable() sets both on every module that has
        # the flag, the function carrying the caller's checkpoint kwargs (use_reentrant, ...).
        self.gradient_checkpointing = False
        self._gradient_checkpointing_func = partial(checkpoint, use_reentrant=False)

    def checkpointing_active(self) -> bool:
        """Whether a forward now recomputes each block in backward instead of keeping its
        activations. A KV cache cannot be filled then: the recomputation would append every
        block's keys and values a second time."""
        return self.gradient_checkpointing and self.training and torch.is_grad_enabled()

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                memory: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None,
                cache=None, implementation: str = "sdpa", output_hidden_states: bool = False,
                output_attentions: bool = False, output_positions: torch.Tensor | None = None,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> StackOutput:
        """``x``: embedded input (batch, q_len, hidden). ``attention_mask``: (batch, past+q_len)
        1/0 over all key positions (cached ones included). ``memory``/``memory_mask``: encoder
        states (batch, src_len, hidden) and their padding mask (batch, src_len).
        ``output_positions`` (batch, m): the only positions whose output is wanted (encoder
        only). The last block then computes just those (its keys and values still cover every
        position), and ``hidden_states`` is (batch, m, hidden), equal to the full output at
        those positions. Masked-LM training needs ~15% of them: this skips most of the last
        layer's work. ``rotary``: (cos, sin) of the input's positions, each (batch, q_len, head_dim)."""
        q_len = x.shape[1]
        past = cache.get_seq_length() if cache is not None else 0
        # With no padding and no cache, SDPA applies causality itself (its fastest kernel): no bias
        # tensor is built, as transformers' SDPA models do. (Testing the built bias for None here
        # never let a causal stack take that kernel, since the bias then holds the causal mask.)
        unpadded = attention_mask is None or (attention_mask.dim() == 2 and bool(attention_mask.all()))
        is_causal = self.causal and unpadded and past == 0 and q_len > 1
        bias = None if is_causal else attention_bias(attention_mask, q_len, past + q_len, self.causal, x.dtype,
                                                     x.device)
        memory_bias = None
        if memory is not None:
            memory_bias = attention_bias(memory_mask, q_len, memory.shape[1], False, x.dtype, x.device)
        recompute = self.checkpointing_active()
        if recompute and cache is not None:
            raise ValueError("a KV cache cannot be filled under gradient checkpointing (the backward "
                             "recomputation would append to it again): pass cache=None when training")
        hiddens, attns, cross = [], [], []
        for i, layer in enumerate(self.layers):
            if output_hidden_states:
                hiddens.append(x)
            # Bound now, not looked up when backward recomputes the block: a closure over the
            # loop variables would rerun every block as the last one (with its query_positions).
            run = partial(_run_block, layer, bias=bias, is_causal=is_causal, memory_bias=memory_bias, cache=cache,
                          layer_idx=i, implementation=implementation, output_attentions=output_attentions,
                          query_positions=output_positions if i == len(self.layers) - 1 else None, rotary=rotary)
            # memory is passed, not bound: reentrant checkpointing differentiates only the tensors
            # it is given, and a bound encoder output would be backpropagated once per layer.
            x, a, c = self._gradient_checkpointing_func(run, x, memory) if recompute else run(x, memory)
            attns.append(a)
            cross.append(c)
        if self.final_norm is not None:
            x = self.final_norm(x)
        if output_hidden_states:
            hiddens.append(x)
        return StackOutput(x, tuple(hiddens) if output_hidden_states else None,
                           tuple(attns) if output_attentions else None,
                           tuple(cross) if output_attentions and memory is not None else None)


def _run_block(layer: Block, x: torch.Tensor, memory: torch.Tensor | None, **kwargs):
    return layer(x, memory=memory, **kwargs)


class Encoder(Stack):
    """A bidirectional stack (BERT)."""

    def __init__(self, num_layers: int, hidden_size: int, num_heads: int, intermediate_size: int, **kwargs):
        super().__init__(num_layers, hidden_size, num_heads, intermediate_size, causal=False, **kwargs)


class Decoder(Stack):
    """A causal stack; with ``cross_attention`` each block also attends to encoder states."""

    def __init__(self, num_layers: int, hidden_size: int, num_heads: int, intermediate_size: int,
                 cross_attention: bool = False, **kwargs):
        super().__init__(num_layers, hidden_size, num_heads, intermediate_size, causal=True,
                         cross_attention=cross_attention, **kwargs)
