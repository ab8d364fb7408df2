"""Log-likelihood of continuations given contexts: a naive reference and a fast path.

Both return, per request, ``sum_t log p(continuation_t | context, continuation_<t)`` and
whether every continuation token is the argmax (greedy) prediction.

* ``score_naive``: one forward per request, batch of one, no padding: the reference.
* ``score_fast``: each distinct context runs once, in left-padded batches of similar length
  with explicit position ids; its last logit scores every choice's first token, so
  single-token choices cost that one forward. Longer choices run only their own tokens, on
  rows of the context's KV cache, in right-padded batches of similar continuation length.
  Batches are cut where padding would cost more than another forward (``length_batches``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache

from selfsup.modeling.cache_kwargs import cache_keyword

from .requests import Request

# A forward reads every weight once, however few its tokens: on a CPU that costs about as much
# as computing ~20-40 tokens of SmolLM2-135M (measured), so a batch is split only where it
# saves more padded tokens than this.
FORWARD_COST = 32


@dataclass
class Score:
    logprob: float
    is_greedy: bool


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _score_tokens(logp: torch.Tensor, targets: torch.Tensor) -> Score:
    """``logp``: (n, vocab) log-probabilities predicting ``targets`` (n,)."""
    return Score(logprob=logp.gather(-1, targets[:, None]).sum().item(),
                 is_greedy=bool((logp.argmax(-1) == targets).all()))


@torch.no_grad()
def score_naive(model, requests: list[Request], progress: bool = False) -> list[Score]:
    device, scores = _device(model), []
    for r in tqdm(requests, desc="naive scoring", disable=not progress):
        ids = torch.tensor([r.context + r.continuation[:-1]], device=device)
        logits = model(input_ids=ids, use_cache=False).logits[0, -len(r.continuation):]
        scores.append(_score_tokens(logits.float().log_softmax(-1), torch.tensor(r.continuation, device=device)))
    return scores


def length_batches(lengths: list[int], max_size: int, forward_cost: int = FORWARD_COST) -> list[slice]:
    """Consecutive batches of ``lengths`` (sorted longest first; each batch is padded to its
    first) of at most ``max_size``, minimising padded tokens + ``forward_cost`` per batch."""
    n = len(lengths)
    best, start = [0] + [float("inf")] * n, [0] * (n + 1)  # best[j]: cheapest split of lengths[:j]
    for end in range(1, n + 1):
        for s in range(max(0, end - max_size), end):
            cost = best[s] + lengths[s] * (end - s) + forward_cost
            if cost < best[end]:
                best[end], start[end] = cost, s
    batches, end = [], n
    while end:
        batches.append(slice(start[end], end))
        end = start[end]
    return batches[::-1]


def _pad(rows: list[list[int]], pad_token_id: int, left: bool, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, mask)``, both (len(rows), longest row); 1 in ``mask`` = token."""
    width = max(map(len, rows))
    fill = [[pad_token_id] * (width - len(r)) for r in rows]
    ids = [f + r if left else r + f for r, f in zip(rows, fill)]
    mask = [[0] * len(f) + [1] * len(r) if left else [1] * len(r) + [0] * len(f) for r, f in zip(rows, fill)]
    return torch.tensor(ids, device=device), torch.tensor(mask, device=device)


@torch.no_grad()
def score_fast(model, requests: list[Request], batch_size: int = 8, pad_token_id: int = 0,
               forward_cost: int = FORWARD_COST, progress: bool = False) -> list[Score]:
    """``batch_size`` caps the distinct contexts per forward; ``forward_cost`` is how many padded
    tokens a further forward is worth (``length_batches``). Results are in request order."""
    device, cache_kw = _device(model), cache_keyword(model)
    by_context: dict[tuple[int, ...], list[int]] = {}
    for i, r in enumerate(requests):
        by_context.setdefault(tuple(r.context), []).append(i)
    # Longest first: similar lengths share a batch, and an out-of-memory error shows up on the
    # first batch rather than at the end.
    contexts = sorted(by_context, key=lambda c: (-len(c), c))
    logprob, greedy = [0.0] * len(requests), [True] * len(requests)
    for batch in tqdm(length_batches([len(c) for c in contexts], batch_size, forward_cost), desc="fast scoring",
                      disable=not progress):
        batch = contexts[batch]
        ids, mask = _pad([list(c) for c in batch], pad_token_id, left=True, device=device)
        # Continuations of 2+ tokens, as (row in batch, request index): they need the KV cache.
        rest = [(row, i) for row, c in enumerate(batch) for i in by_context[c] if len(requests[i].continuation) > 1]
        cache = DynamicCache() if rest else None  # filled in place by the forward
        out = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                    **{cache_kw: cache}, use_cache=bool(rest), logits_to_keep=1)
        first = out.logits[:, -1].float().log_softmax(-1)  # (batch, vocab): predicts each choice's 1st token
        # Every choice's first token, one gather for the whole batch.
        rows = [row for row, c in enumerate(batch) for _ in by_context[c]]
        index = [i for c in batch for i in by_context[c]]
        targets = torch.tensor([requests[i].continuation[0] for i in index], device=device)
        lp = first[rows, targets].tolist()
        hit = (first.argmax(-1)[rows] == targets).tolist()
        for i, v, h in zip(index, lp, hit):
            logprob[i], greedy[i] = v, h
        if rest:
            _score_rest(model, requests, rest, cache, mask, pad_token_id, forward_cost, logprob, greedy, cache_kw)
    return [Score(v, g) for v, g in zip(logprob, greedy)]


def _score_rest(model, requests: list[Request], rest: list[tuple[int, int]], cache: DynamicCache,
                mask: torch.Tensor, pad_token_id: int, forward_cost: int, logprob: list[float],
                greedy: list[bool], cache_kw: str) -> None:
    """Tokens 2.. of each continuation in ``rest``, given the context batch's ``cache`` and
    ``mask`` (batch, width); adds to ``logprob`` and ``greedy`` in place."""
    device = mask.device
    rest = sorted(rest, key=lambda r: (-len(requests[r[1]].continuation), r))
    ctx_len = mask.sum(-1)
    for part in length_batches([len(requests[i].continuation) - 1 for _, i in rest], len(rest), forward_cost):
        part = rest[part]
        rows = torch.tensor([row for row, _ in part], device=device)
        # The last token is only predicted: inputs are tokens 1..n-1, targets 2..n (both right-padded).
        ids, real = _pad([requests[i].continuation[:-1] for _, i in part], pad_token_id, left=False, device=device)
        targets = _pad([requests[i].continuation[1:] for _, i in part], 0, left=False, device=device)[0]
        # A new cache per part: these rows of the context's keys and values (it is extended in place).
        part_cache = DynamicCache([(layer.keys[rows], layer.values[rows]) for layer in cache.layers])
        logits = model(input_ids=ids, attention_mask=torch.cat([mask[rows], real], dim=1),
                       position_ids=ctx_len[rows, None] + torch.arange(ids.shape[1], device=device),
                       **{cache_kw: part_cache}, use_cache=True).logits
        real = real.bool()
        logp = logits[real].float().log_softmax(-1)  # (real tokens, vocab): padding is never normalised
        token_lp = torch.zeros(real.shape, device=device).masked_scatter_(
            real, logp.gather(-1, targets[real, None])[:, 0])
        miss = torch.zeros_like(real).masked_scatter_(real, logp.argmax(-1) != targets[real])
        for (_, i), s, m in zip(part, token_lp.sum(-1).tolist(), miss.any(-1).tolist()):
            logprob[i] += s
            greedy[i] = greedy[i] and not m
