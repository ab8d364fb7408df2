"""Cross-entropy of a vocabulary projection, ``F.cross_entropy(hidden @ weight.T + bias,
targets)``, in fewer passes over the (n, vocab) logits on the CPU.

The sparse MLM head projects a few hundred masked positions onto ~30k words; at BERT-mini
that projection and its loss were a third of a CPU pretraining step, and most of it was not
arithmetic: each fresh 75 MB tensor (logits, log-probabilities, the zero-filled NLL gradient,
the log-softmax gradient) costs ~36 ms of page faults on one core, more than the exp over
it. Here the logits are computed vocabulary-major, ``weight @ hidden.T`` (vocab, n), which MKL
runs ~1.5x faster than ``hidden @ weight.T`` when n << vocab, and the softmax lives in a buffer
the head keeps between steps; its gradient is formed in place there. One fresh (vocab, n)
tensor per step remains: the logits the model returns.

On other devices (and in half precision) torch's fused kernels and caching allocator already
do this well, and :func:`vocab_cross_entropy` uses them as they are.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class SoftmaxBuffer:
    """A reusable (vocab, n) buffer for the softmax between forward and backward.

    A forward claims it with a fresh token; its backward uses it only if no later forward has
    claimed it since (two forwards before one backward, or a second backward with
    ``retain_graph``), and otherwise recomputes the softmax from the saved logits.
    """

    def __init__(self):
        self._flat: torch.Tensor | None = None
        self._owner: object | None = None

    def claim(self, like: torch.Tensor) -> tuple[torch.Tensor, object]:
        n = like.numel()
        if self._flat is None or self._flat.numel() < n or self._flat.dtype != like.dtype \
                or self._flat.device != like.device:
            self._flat = torch.empty(n, dtype=like.dtype, device=like.device)
        self._owner = object()
        return self._flat[:n].view(like.shape), self._owner

    def take_back(self, owner: object, like: torch.Tensor) -> torch.Tensor | None:
        """The claimed view if ``owner`` still holds it (it is then released), else None."""
        if self._owner is not owner:
            return None
        self._owner = None
        return self._flat[:like.numel()].view(like.shape)

    def __deepcopy__(self, memo):  # a copied module gets its own, empty buffer
        return SoftmaxBuffer()


class _VocabCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, scale: float, buffer: SoftmaxBuffer):
        logits_t = torch.addmm(bias[:, None], weight, hidden.t())  # (vocab, n): returned, so fresh
        columns = torch.arange(targets.numel(), device=targets.device)
        peak = logits_t.amax(0)
        probs, owner = buffer.claim(logits_t)
        total = torch.sub(logits_t, peak, out=probs).exp_().sum(0)  # probs: exp(logit - peak)
        loss = (peak + total.log() - logits_t[targets, columns]).sum() * scale
        ctx.save_for_backward(hidden, weight, logits_t, targets, peak, total)
        ctx.scale, ctx.buffer, ctx.owner = scale, buffer, owner
        ctx.set_materialize_grads(False)  # an unused logits output must not cost a zero (vocab, n) tensor
        return loss, logits_t

    @staticmethod
    def backward(ctx, grad_loss, grad_logits_t):
        hidden, weight, logits_t, targets, peak, total = ctx.saved_tensors
        probs = ctx.buffer.take_back(ctx.owner, logits_t)
        if probs is None:
            probs = torch.sub(logits_t, peak).exp_()
        if grad_loss is None:
            grad = probs.zero_()
        else:
            # d loss / d logit = scale * (softmax - one_hot(target)), formed in place.
            c = grad_loss * ctx.scale
            grad = probs.mul_(c / total)
            columns = torch.arange(targets.numel(), device=targets.device)
            grad[targets, columns] -= c  # one target per column: no index repeats
        if grad_logits_t is not None:
            grad.add_(grad_logits_t)
        d_hidden = grad.t() @ weight if ctx.needs_input_grad[0] else None
        d_weight = grad @ hidden if ctx.needs_input_grad[1] else None
        d_bias = grad.sum(1) if ctx.needs_input_grad[2] else None
        return d_hidden, d_weight, d_bias, None, None, None


def vocab_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor,
                        divisor: int | torch.Tensor | None = None, buffer: SoftmaxBuffer | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``hidden`` (n, h), ``weight`` (vocab, h), ``bias`` (vocab,), ``targets`` (n,) →
    ``(loss, logits)``. ``loss`` is the summed cross-entropy / ``divisor`` (default n: the
    mean); ``logits`` (n, vocab) = ``hidden @ weight.T + bias``, on the CPU a transposed view
    of a vocabulary-major tensor. n = 0 gives a zero loss that still has a graph. Without a
    ``buffer`` (or off the CPU, or below fp32) this is plain ``F.linear`` + ``F.cross_entropy``."""
    n = targets.numel()
    fast = (hidden.device.type == "cpu" and n > 0 and buffer is not None
            and hidden.dtype == weight.dtype == bias.dtype == torch.float32)
    if not fast:
        logits = F.linear(hidden, weight, bias)
        if n == 0:
            return logits.sum() * 0.0, logits
        if divisor is None:
            return F.cross_entropy(logits.float(), targets), logits
        return F.cross_entropy(logits.float(), targets, reduction="sum") / divisor, logits
    scale = 1.0 / float(n if divisor is None else divisor)
    loss, logits_t = _VocabCrossEntropy.apply(hidden, weight, bias, targets, scale, buffer)
    return loss, logits_t.t()
