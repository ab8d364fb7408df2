"""Log-likelihood of continuations given contexts: a naive reference and a fast path.

Both return, per request, ``sum_t log p(continuation_t | context, continuation_<t)`` and
whether every continuation token is the argmax (greedy) prediction.

* ``score_naive``: one forward per request, batch of one, no padding: the reference.
* ``score_fast``: one forward per batch of *packed rows*. A row is one distinct context
  followed by the continuations of every request that shares it, each without its last
  token (which is only predicted); a custom attention mask lets each continuation see the
  context and its own earlier tokens, never another continuation, and position ids restart
  after the context for each. So every context token is computed once, every continuation
  token once, with no KV cache to copy and no second forward: the context's last logit
  scores every choice's first token, a continuation's own logits the rest. Rows are sorted
  by length and batches cut where padding would cost more than another forward
  (``length_batches``).

Layout of a batch (``W``: the longest context; block ``k``: every row's ``k``-th longest
continuation, right-padded to the longest of them)::

    [pad.. context][cont 1 ..pad][cont 2 ..pad] ...
                 ^ column W-1 predicts each choice's first token
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

import torch
from tqdm.auto import tqdm

from .padding import additive_mask, model_device, model_dtype
from .requests import Request

# A forward reads every weight once, however few its tokens: on a CPU that costs about as much
# as computing ~20-40 tokens of SmolLM2-135M (measured), so a batch is split only where it
# saves more padded tokens than this.
FORWARD_COST = 32


@dataclass
class Score:
    logprob: float
    is_greedy: bool


def _score_tokens(logp: torch.Tensor, targets: torch.Tensor) -> Score:
    """``logp``: (n, vocab) log-probabilities predicting ``targets`` (n,)."""
    return Score(logprob=logp.gather(-1, targets[:, None]).sum().item(),
                 is_greedy=bool((logp.argmax(-1) == targets).all()))


@torch.no_grad()
def score_naive(model, requests: list[Request], progress: bool = False) -> list[Score]:
    device, scores = model_device(model), []
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


@dataclass
class Row:
    """One distinct context and the requests that share it, longest continuation first."""
    context: list[int]
    requests: list[int]  # indices into the request list
    length: int          # tokens the row runs: the context + each continuation but its last token


def packed_rows(requests: list[Request]) -> list[Row]:
    """Requests grouped by context, longest row first (similar lengths share a batch, and an
    out-of-memory error shows up on the first batch rather than at the end)."""
    by_context: dict[tuple[int, ...], list[int]] = {}
    for i, r in enumerate(requests):
        by_context.setdefault(tuple(r.context), []).append(i)
    rows = []
    for context, members in by_context.items():
        members.sort(key=lambda i: (-len(requests[i].continuation), i))
        rows.append(Row(list(context), members,
                        len(context) + sum(len(requests[i].continuation) - 1 for i in members)))
    return sorted(rows, key=lambda row: (-row.length, row.context))


@torch.no_grad()
def score_fast(model, requests: list[Request], batch_size: int = 8, pad_token_id: int = 0,
               forward_cost: int = FORWARD_COST, progress: bool = False) -> list[Score]:
    """``batch_size`` caps the distinct contexts (rows) per forward; ``forward_cost`` is how many
    padded tokens a further forward is worth (``length_batches``). Results are in request order."""
    rows = packed_rows(requests)
    logprob, greedy = [0.0] * len(requests), [True] * len(requests)
    for part in tqdm(length_batches([row.length for row in rows], batch_size, forward_cost), desc="fast scoring",
                     disable=not progress):
        _score_packed(model, requests, rows[part], pad_token_id, logprob, greedy)
    return [Score(v, g) for v, g in zip(logprob, greedy)]


def _score_packed(model, requests: list[Request], rows: list[Row], pad_token_id: int, logprob: list[float],
                  greedy: list[bool]) -> None:
    """One forward over ``rows`` packed as the module docstring draws; adds each request's
    token log-probabilities to ``logprob`` and its greedy matches to ``greedy`` in place."""
    device = model_device(model)
    width = max(len(row.context) for row in rows)  # W
    blocks = [max(len(requests[row.requests[k]].continuation) - 1 for row in rows if k < len(row.requests))
              for k in range(max(len(row.requests) for row in rows))]
    starts = [width + s for s in accumulate(blocks, initial=0)]
    total = starts[-1]
    ids = torch.full((len(rows), total), pad_token_id, dtype=torch.long)
    position = torch.zeros((len(rows), total), dtype=torch.long)
    keep = torch.eye(total, dtype=torch.bool).repeat(len(rows), 1, 1)  # padding sees itself: no empty softmax
    causal = torch.ones(total, total, dtype=torch.bool).tril()
    # Which kept logit predicts which token: (row, column, target, request); column 0 is W-1.
    where_row, where_col, targets, owner = [], [], [], []
    for r, row in enumerate(rows):
        n = len(row.context)
        a = width - n
        ids[r, a:width] = torch.tensor(row.context)
        position[r, a:width] = torch.arange(n)
        keep[r, a:width, a:width] = causal[:n, :n]
        for k, i in enumerate(row.requests):
            cont = requests[i].continuation
            s, m = starts[k], len(cont) - 1
            if m:
                ids[r, s:s + m] = torch.tensor(cont[:-1])
                position[r, s:s + m] = torch.arange(n, n + m)
                keep[r, s:s + m, a:width] = True
                keep[r, s:s + m, s:s + m] = causal[:m, :m]
            where_row += [r] * (m + 1)
            where_col += [0] + list(range(s - width + 1, s - width + 1 + m))
            targets += cont
            owner += [i] * (m + 1)
    logits = model(input_ids=ids.to(device), attention_mask=additive_mask(keep, model_dtype(model)).to(device),
                   position_ids=position.to(device), use_cache=False, logits_to_keep=total - width + 1).logits
    # Only the predicting positions are normalised: padding never is.
    at = torch.tensor(where_row, device=device), torch.tensor(where_col, device=device)
    logp = logits[at].float().log_softmax(-1)  # (predicted tokens, vocab)
    target = torch.tensor(targets, device=device)
    token_lp = logp.gather(-1, target[:, None])[:, 0].tolist()
    hit = (logp.argmax(-1) == target).tolist()
    for i, v, h in zip(owner, token_lp, hit):
        logprob[i] += v
        greedy[i] = greedy[i] and h
