"""The pointer-generator copy head (See et al., 2017) with coverage, for ``selfsup-seq2seq``.

One single-head *copy attention* over the encoder states sits on top of the decoder; its
distribution is both what gets copied and what coverage accumulates. The output is a
distribution over a per-example extended vocabulary: source words outside the vocabulary
get ids ``vocab_size + k`` (k = order of first appearance in that example's source), so the
model can produce and be scored on them (see ``selfsup.seq2seq.tokenizer``).

The formulas are pure functions (``copy_distribution``, ``coverage_attention``,
``coverage_loss``); ``CopyHead`` holds the parameters and wires them together.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


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


def coverage_attention(scores: torch.Tensor, source_mask: torch.Tensor, weight: torch.Tensor,
                       coverage: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Attention with coverage (the running sum of past attention, fed back so the
    attention can avoid repeating itself), step by step over the target.

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


def num_extra_ids(source_extended_ids: torch.Tensor, vocab_size: int, labels: torch.Tensor | None = None) -> int:
    """How many extended ids the batch needs: its largest OOV index + 1 over the source
    (and the labels, which may name an OOV of the source), 0 when there is none."""
    num_extra = max(0, int(source_extended_ids.max()) + 1 - vocab_size)
    if labels is not None:
        num_extra = max(num_extra, int(labels.max()) + 1 - vocab_size)
    return num_extra


@dataclass
class CopyHeadOutput:
    """``probs``: (batch, tgt_len, vocab + num_extra), rows summing to 1; ``attention``:
    (batch, tgt_len, src_len), the copy attention; ``p_gen``: (batch, tgt_len, 1);
    ``coverage``: (batch, tgt_len, src_len) the coverage before each step (None without coverage)."""

    probs: torch.Tensor
    attention: torch.Tensor
    p_gen: torch.Tensor
    coverage: torch.Tensor | None = None


class CopyHead(nn.Module):
    """Copy attention (``query``, ``key``), the generation switch ``p_gen`` and, with
    coverage, the scalar ``coverage_weight`` (initialised to 0: coverage starts neutral).

    Incremental decoding keeps the projected encoder keys and the coverage in the cache
    (``cache.copy_keys``: (batch, src_len, hidden); ``cache.coverage``: (batch, src_len)),
    so each step projects the encoder states once and carries coverage on."""

    def __init__(self, hidden_size: int, coverage: bool = False):
        super().__init__()
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        # p_gen from [decoder state; copy context; decoder input] (See et al., eq. 8)
        self.p_gen = nn.Linear(3 * hidden_size, 1)
        self.coverage_weight = nn.Parameter(torch.zeros(())) if coverage else None

    def attention(self, states: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
                  cache=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Copy attention (batch, tgt_len, src_len) of decoder ``states`` (batch, tgt_len, hidden)
        over ``memory`` (batch, src_len, hidden), and the coverage before each step (or None).
        Reads and updates the cache's ``copy_keys`` and ``coverage``."""
        keys = cache.copy_keys if cache is not None and cache.copy_keys is not None else self.key(memory)
        scores = (self.query(states) @ keys.transpose(1, 2)).float() / math.sqrt(states.shape[-1])
        coverage = None
        if self.coverage_weight is not None:
            prior = cache.coverage if cache is not None else None
            attn, coverage, after = coverage_attention(scores, memory_mask, self.coverage_weight, prior)
        else:
            attn = scores.masked_fill(~memory_mask[:, None, :].bool(), torch.finfo(scores.dtype).min).softmax(-1)
        if cache is not None:
            cache.copy_keys = keys
            if coverage is not None:
                cache.coverage = after
        return attn, coverage

    def forward(self, vocab_logits: torch.Tensor, states: torch.Tensor, decoder_inputs: torch.Tensor,
                memory: torch.Tensor, memory_mask: torch.Tensor, source_extended_ids: torch.Tensor,
                num_extra: int, cache=None) -> CopyHeadOutput:
        """``vocab_logits``: (batch, tgt_len, vocab); ``states``: decoder outputs and
        ``decoder_inputs``: their embedded inputs, (batch, tgt_len, hidden); ``memory``:
        encoder states (batch, src_len, hidden) with ``memory_mask`` (batch, src_len);
        ``source_extended_ids``: (batch, src_len); ``num_extra``: see ``num_extra_ids``."""
        attn, coverage = self.attention(states, memory, memory_mask, cache)
        context = attn.to(memory.dtype) @ memory
        p_gen = torch.sigmoid(self.p_gen(torch.cat([states, context, decoder_inputs], -1))).float()
        probs = copy_distribution(vocab_logits.softmax(-1), attn, p_gen, source_extended_ids, num_extra, memory_mask)
        return CopyHeadOutput(probs, attn, p_gen, coverage)

    @staticmethod
    def loss(out: CopyHeadOutput, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Summed NLL of ``labels`` (batch, tgt_len; extended ids allowed, -100 ignored) under
        ``out.probs``, and the summed coverage loss (None without coverage)."""
        flat = labels.reshape(-1)
        # log of the picked probability only: log(0) elsewhere would make 0·inf = NaN gradients.
        # The floor gives a target with no mass (an OOV absent from the source) a finite loss.
        picked = out.probs.reshape(-1, out.probs.shape[-1]).gather(1, flat.clamp(min=0)[:, None]).squeeze(1)
        nll = -torch.where(flat != -100, picked.clamp_min(1e-30).log(), 0.0).sum()
        if out.coverage is None:
            return nll, None
        return nll, coverage_loss(out.attention, out.coverage, labels != -100)
