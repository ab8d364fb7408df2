"""Prompt rendering and tokenisation of log-likelihood requests (as lm-evaluation-harness).

For one document with k demonstrations and n choices, choice i is the pair
``(context_i, continuation_i)``; ``context_i`` starts with the shared demonstrations.
"""
from __future__ import annotations

from dataclasses import dataclass

from .tasks import TaskSpec


def render(template: str, doc: dict, choice: str) -> str:
    return template.format_map({**doc, "choice": choice})


def demonstration(task: TaskSpec, doc: dict) -> str:
    gold = doc["choices"][doc["gold"]]
    return render(task.prompt, doc, gold) + task.target_delimiter + render(task.continuation, doc, gold)


def build_pairs(task: TaskSpec, doc: dict, demos: list[dict]) -> list[tuple[str, str]]:
    """``[(context, continuation)]``, one per choice."""
    head = task.description
    if demos:
        head += task.fewshot_separator.join(demonstration(task, d) for d in demos) + task.fewshot_separator
    return [(head + render(task.prompt, doc, c), task.target_delimiter + render(task.continuation, doc, c))
            for c in doc["choices"]]


@dataclass
class Request:
    """Token ids of one (context, continuation) pair; the model scores ``continuation``
    given ``context``. ``context`` is shared by every choice whose context text is equal."""
    context: list[int]
    continuation: list[int]


def encode_pair(tokenizer, context: str, continuation: str, max_length: int) -> Request:
    """lm-eval's split: trailing spaces of the context move to the continuation, the context is
    encoded alone and the continuation is what encoding the whole adds after it, so all
    choices share the same context ids. Left-truncated to ``max_length`` tokens."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    ctx = tokenizer.encode(context, add_special_tokens=False)
    cont = tokenizer.encode(context + continuation, add_special_tokens=False)[len(ctx):]
    if not cont:
        raise ValueError(f"continuation {continuation!r} encodes to no tokens")
    if not ctx:
        # Nothing to condition on: the first continuation token is predicted from end-of-text.
        ctx = [tokenizer.eos_token_id if tokenizer.bos_token_id is None else tokenizer.bos_token_id]
    keep = max_length - len(cont)
    if keep < 1:
        raise ValueError(f"continuation of {len(cont)} tokens does not fit max_length={max_length}")
    return Request(context=ctx[-keep:], continuation=cont)
