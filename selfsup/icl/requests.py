"""Prompt rendering and tokenisation of requests (as lm-evaluation-harness).

For one document with k demonstrations and n choices, choice i is the pair
``(context_i, continuation_i)``; ``context_i`` starts with the shared demonstrations.
A generate_until document is one context, which the model continues greedily.
"""
from __future__ import annotations

from dataclasses import dataclass

from .tasks import TaskSpec


def render(template: str, doc: dict, choice: str) -> str:
    return template.format_map({**doc, "choice": choice})


def demonstration(task: TaskSpec, doc: dict) -> str:
    gold = doc["choices"][doc["gold"]]
    return render(task.prompt, doc, gold) + task.target_delimiter + render(task.continuation, doc, gold)


def _head(task: TaskSpec, demos: list[dict]) -> str:
    """The description, then the demonstrations, each followed by the separator."""
    if not demos:
        return task.description
    sep = task.fewshot_separator
    return task.description + sep.join(demonstration(task, d) for d in demos) + sep


def build_pairs(task: TaskSpec, doc: dict, demos: list[dict]) -> list[tuple[str, str]]:
    """``[(context, continuation)]``, one per choice."""
    head = _head(task, demos)
    return [(head + render(task.prompt, doc, c), task.target_delimiter + render(task.continuation, doc, c))
            for c in doc["choices"]]


def build_context(task: TaskSpec, doc: dict, demos: list[dict]) -> str:
    """generate_until: the text the model continues (its prompt never uses ``{choice}``)."""
    return _head(task, demos) + render(task.prompt, doc, "")


def gold_answer(task: TaskSpec, doc: dict) -> str:
    """generate_until: the expected answer, as the demonstrations show it after the delimiter."""
    return render(task.continuation, doc, doc["choices"][doc["gold"]])


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


def encode_context(tokenizer, context: str, max_length: int) -> list[int]:
    """generate_until: the context's ids, left-truncated to ``max_length`` (what is left of
    the window after the generated tokens), encoded without special tokens as ``encode_pair``."""
    ids = tokenizer.encode(context, add_special_tokens=False)
    if not ids:
        ids = [tokenizer.eos_token_id if tokenizer.bos_token_id is None else tokenizer.bos_token_id]
    return ids[-max_length:]
