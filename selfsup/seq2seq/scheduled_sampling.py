"""Scheduled sampling (Bengio et al., 2015) for a parallel decoder, two-pass
(Mihaylova & Martins, 2019).

A schedule gives ε_i, the probability of feeding the gold token at training step i.
Pass one runs the decoder on gold inputs and predicts every position; each decoder
input token is then, independently, the gold token with probability ε_i or the model's
prediction otherwise; pass two trains on that mix. ε = 1 is exactly teacher forcing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from selfsup.registry import Registry

schedules: Registry = Registry("scheduled-sampling schedule")


@schedules.register("linear")
def linear(step: int, k: float = 1.0, c: float = 1e-3, minimum: float = 0.0) -> float:
    """ε_i = max(ε_min, k − c·i)."""
    return max(minimum, k - c * step)


@schedules.register("exponential")
def exponential(step: int, k: float = 0.999, c: float = 0.0, minimum: float = 0.0) -> float:
    """ε_i = max(ε_min, k^i), k < 1."""
    return max(minimum, k ** step)


@schedules.register("inverse_sigmoid")
def inverse_sigmoid(step: int, k: float = 20.0, c: float = 0.0, minimum: float = 0.0) -> float:
    """ε_i = max(ε_min, k / (k + exp(i / k))), k ≥ 1."""
    return max(minimum, k / (k + math.exp(min(step / k, 700.0))))


@schedules.register("none")
def teacher_forcing(step: int, k: float = 0.0, c: float = 0.0, minimum: float = 0.0) -> float:
    """Always gold (ε = 1)."""
    return 1.0


@dataclass
class ScheduledSamplingArguments:
    scheduled_sampling: str = "none"  # linear | exponential | inverse_sigmoid | none
    ss_k: float = 20.0  # inverse_sigmoid: steps ≈ k·ln k before ε falls below ~1/2
    ss_c: float = 1e-3  # linear slope per optimizer step
    ss_min: float = 0.0  # floor of ε
    ss_mode: str = "argmax"  # "argmax" or "sample" from the first pass

    def gold_probability(self, step: int) -> float:
        return schedules.get(self.scheduled_sampling)(step, k=self.ss_k, c=self.ss_c, minimum=self.ss_min)


def predicted_inputs(logits: torch.Tensor, mode: str = "argmax", generator: torch.Generator | None = None
                     ) -> torch.Tensor:
    """First-pass predictions (batch, tgt_len) from ``logits`` (batch, tgt_len, vocab'):
    position t predicts the token after t, i.e. the decoder input at t + 1."""
    if mode == "argmax":
        return logits.argmax(-1)
    if mode == "sample":
        probs = logits.float().softmax(-1)
        return torch.multinomial(probs.view(-1, probs.shape[-1]), 1, generator=generator).view(probs.shape[:-1])
    raise ValueError(f"ss_mode must be 'argmax' or 'sample', got {mode!r}")


def mix_inputs(gold_inputs: torch.Tensor, predictions: torch.Tensor, p_gold: float,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Decoder inputs for pass two. ``gold_inputs``: (batch, tgt_len), starting with the
    decoder start token; ``predictions``: (batch, tgt_len) from :func:`predicted_inputs`.
    Input t ≥ 1 is gold with probability ``p_gold``, else the prediction made at t − 1;
    the start token is always kept. Chosen per token."""
    shifted = torch.cat([gold_inputs[:, :1], predictions[:, :-1]], dim=1)
    u = torch.rand(gold_inputs.shape, generator=generator, device="cpu").to(gold_inputs.device)
    keep_gold = u < p_gold
    keep_gold[:, 0] = True
    return torch.where(keep_gold, gold_inputs, shifted)


def scheduled_sampling_loss(model, batch: dict, p_gold: float, mode: str = "argmax",
                            num_items_in_batch=None, generator: torch.Generator | None = None):
    """Two-pass loss: pass one (no gradient) on gold inputs predicts every position, the
    inputs are mixed per token (:func:`mix_inputs`), pass two is trained on the mix with
    the gold labels. ``batch`` holds the model's inputs with ``labels`` (batch, tgt_len).
    Returns pass two's output (``.loss``)."""
    core = getattr(model, "module", model)  # DDP-wrapped or not
    config = core.config
    gold_inputs = core.shift_right(batch["labels"])
    with torch.no_grad():
        first = model(**batch, decoder_input_ids=gold_inputs, use_cache=False).logits
    mixed = mix_inputs(gold_inputs, predicted_inputs(first, mode, generator), p_gold, generator)
    # A copied OOV has no embedding row: the decoder reads it as [UNK], as for gold copies.
    mixed = mixed.masked_fill(mixed >= config.vocab_size, config.unk_token_id)
    return model(**batch, decoder_input_ids=mixed, use_cache=False, num_items_in_batch=num_items_in_batch)
