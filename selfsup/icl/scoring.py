"""Log-likelihood of continuations given contexts: a naive reference and a fast path.

Both return, per request, ``sum_t log p(continuation_t | context, continuation_<t)`` and
whether every continuation token is the argmax (greedy) prediction.

* ``score_naive``: one forward per request, batch of one, no padding: the reference.
* ``score_fast``: each distinct context runs once (left-padded batches of similar length,
  explicit position ids), its last logit scores every choice's first token, so single-token
  choices cost one forward; longer choices reuse the context's KV cache, whose rows are
  repeated once per choice, and only the continuation tokens run again.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache

from .requests import Request


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


@torch.no_grad()
def score_fast(model, requests: list[Request], batch_size: int = 8, pad_token_id: int = 0,
               progress: bool = False) -> list[Score]:
    """``batch_size`` counts distinct contexts per forward; results are in request order."""
    device = _device(model)
    by_context: dict[tuple[int, ...], list[int]] = {}
    for i, r in enumerate(requests):
        by_context.setdefault(tuple(r.context), []).append(i)
    # Longest first: similar lengths share a batch (little padding), and an out-of-memory
    # error shows up on the first batch rather than at the end.
    contexts = sorted(by_context, key=lambda c: (-(len(c) + max(len(requests[i].continuation) for i in by_context[c])), c))
    scores: list[Score | None] = [None] * len(requests)
    for start in tqdm(range(0, len(contexts), batch_size), desc="fast scoring", disable=not progress):
        batch = contexts[start:start + batch_size]
        ctx_len = torch.tensor([len(c) for c in batch], device=device)
        width = int(ctx_len.max())
        ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for row, c in enumerate(batch):  # left padding: every context ends at the same column
            ids[row, width - len(c):] = torch.tensor(c, device=device)
            mask[row, width - len(c):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                    use_cache=True, logits_to_keep=1)
        first = out.logits[:, -1].float().log_softmax(-1)  # (batch, vocab): predicts each choice's 1st token
        # Continuations of 2+ tokens: (row in batch, request index), run on the repeated cache.
        rest = [(row, i) for row, c in enumerate(batch) for i in by_context[c] if len(requests[i].continuation) > 1]
        for row, c in enumerate(batch):
            for i in by_context[c]:
                if len(requests[i].continuation) == 1:
                    scores[i] = _score_tokens(first[row:row + 1], torch.tensor(requests[i].continuation, device=device))
        if not rest:
            continue
        rows = torch.tensor([row for row, _ in rest], device=device)
        cache = out.past_key_values
        cache.batch_select_indices(rows)  # (len(rest), heads, width, head_dim)
        cont_width = max(len(requests[i].continuation) for _, i in rest) - 1
        cont_ids = torch.full((len(rest), cont_width), pad_token_id, dtype=torch.long, device=device)
        cont_mask = torch.zeros_like(cont_ids)
        for j, (_, i) in enumerate(rest):
            tokens = requests[i].continuation[:-1]  # the last token is only predicted
            cont_ids[j, :len(tokens)] = torch.tensor(tokens, device=device)
            cont_mask[j, :len(tokens)] = 1
        cont_positions = ctx_len[rows, None] + torch.arange(cont_width, device=device)
        logits = model(input_ids=cont_ids, attention_mask=torch.cat([mask[rows], cont_mask], dim=1),
                       position_ids=cont_positions, past_key_values=cache, use_cache=True).logits
        logp = logits.float().log_softmax(-1)  # (len(rest), cont_width, vocab)
        for j, (row, i) in enumerate(rest):
            target = torch.tensor(requests[i].continuation, device=device)
            preds = torch.cat([first[row:row + 1], logp[j, :len(target) - 1]])
            scores[i] = _score_tokens(preds, target)
    return scores
