"""Prompt rendering and tokenisation of requests (as lm-evaluation-harness).

For one document with k demonstrations and n choices, choice i is the pair
``(context_i, continuation_i)``; ``context_i`` starts with the shared demonstrations.
A generate_until document is one context, which the model continues greedily.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import jinja2

from ..errors import InputError
from .tasks import ICLTask


@dataclass(frozen=True)
class ChatFormat:
    """lm-eval's ``--apply_chat_template``, ``--system_instruction`` and ``--fewshot_as_multiturn``:
    the prompt as messages rendered by the tokenizer's chat template, demonstrations as
    user/assistant turns (multiturn) or all in one user message."""
    apply_chat_template: bool = False
    system_instruction: str | None = None
    fewshot_as_multiturn: bool = False


@dataclass
class Message:
    role: str          # system | user | assistant
    content: str
    delimiter: str = ""  # what follows the content in plain text (and in a single-turn chat)


def _maybe_delimit(prefix: str | None, suffix: str | None, delimiter: str) -> str:
    """lm-eval's join of the system instruction and the description: the delimiter only where
    neither side has whitespace at the seam."""
    if not prefix or not suffix:
        return prefix or suffix or ""
    return prefix + suffix if prefix[-1].isspace() or suffix[0].isspace() else prefix + delimiter + suffix


def head_messages(task: ICLTask, doc: dict, demos: list[dict], system_instruction: str | None = None
                  ) -> list[Message]:
    """The system instruction and description, then each demonstration as a question and its
    gold answer (lm-eval's ``fewshot_context``)."""
    system = _maybe_delimit(system_instruction, task.description_text(doc), task.fewshot_separator)
    messages = [Message("system", system)] if system else []
    for demo in demos:
        gold = demo["choices"][demo["gold"]]
        messages += [Message("user", task.prompt_text(demo, gold), task.target_delimiter),
                     Message("assistant", task.continuation_text(demo, gold), task.fewshot_separator)]
    return messages


def render_messages(messages: list[Message], chat: ChatFormat | None = None, tokenizer=None) -> str:
    """Plain text (each content followed by its delimiter), or the tokenizer's chat template
    with the generation prompt added."""
    if chat is None or not chat.apply_chat_template:
        return "".join(m.content + m.delimiter for m in messages)
    if chat.fewshot_as_multiturn:
        turns = [{"role": m.role, "content": m.content} for m in messages]
    else:  # lm-eval's multiturn_to_singleturn: everything after the system message is one user turn
        system = messages[:1] if messages[0].role == "system" else []
        rest = messages[len(system):]
        text = "".join(m.content + m.delimiter for m in rest[:-1]) + rest[-1].content
        turns = [{"role": m.role, "content": m.content} for m in system] + [{"role": "user", "content": text}]
    return apply_chat_template(tokenizer, turns)


def apply_chat_template(tokenizer, turns: list[dict]) -> str:
    if getattr(tokenizer, "chat_template", None) is None:
        raise InputError("--apply_chat_template: the tokenizer has no chat template", field="apply_chat_template")
    kwargs = {"tokenize": False, "add_generation_prompt": True}
    try:
        return tokenizer.apply_chat_template(turns, **kwargs)
    except jinja2.TemplateError:
        # As lm-eval: templates that refuse a system role get the conversation without it.
        return tokenizer.apply_chat_template([t for t in turns if t["role"] != "system"], **kwargs)


def _delimiter(task: ICLTask, chat: ChatFormat | None) -> str:
    """Before the evaluated continuation: none under a chat template (the answer starts the
    assistant turn) or for lm-eval's loglikelihood (its target carries its own space)."""
    if (chat is not None and chat.apply_chat_template) or task.output_type == "loglikelihood":
        return ""
    return task.target_delimiter


def build_pairs(task: ICLTask, doc: dict, demos: list[dict], chat: ChatFormat | None = None,
                tokenizer=None) -> list[tuple[str, str]]:
    """``[(context, continuation)]``, one per choice."""
    head = head_messages(task, doc, demos, chat and chat.system_instruction)
    contexts: dict[str, str] = {}  # prompt -> rendered context: most tasks share one prompt
    pairs = []
    for c in doc["choices"]:
        prompt = task.prompt_text(doc, c)
        if prompt not in contexts:
            contexts[prompt] = render_messages(head + [Message("user", prompt)], chat, tokenizer)
        pairs.append((contexts[prompt], _delimiter(task, chat) + task.continuation_text(doc, c)))
    return pairs


def build_context(task: ICLTask, doc: dict, demos: list[dict], chat: ChatFormat | None = None,
                  tokenizer=None) -> str:
    """generate_until: the text the model continues (its prompt never uses the choice)."""
    head = head_messages(task, doc, demos, chat and chat.system_instruction)
    return render_messages(head + [Message("user", task.prompt_text(doc, ""))], chat, tokenizer)


def gold_answer(task: ICLTask, doc: dict) -> str:
    """generate_until: the expected answer, as the demonstrations show it after the delimiter."""
    return task.continuation_text(doc, doc["choices"][doc["gold"]])


@dataclass
class Request:
    """Token ids of one (context, continuation) pair; the model scores ``continuation``
    given ``context``. ``context`` is shared by every choice whose context text is equal."""
    context: list[int]
    continuation: list[int]


@functools.lru_cache(maxsize=8)
def _adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts its BOS before a text by default (Llama, Gemma; not GPT-2 or SmolLM2)."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer.encode("a")[:1] == [bos] != tokenizer.encode("a", add_special_tokens=False)[:1]


def _bos(tokenizer, text: str) -> list[int]:
    """lm-eval encodes with the tokenizer's own special tokens, so a Llama-family context starts
    with BOS, unless the text already does (a chat template that writes it). Only the BOS is
    taken from them: a BERT-style [SEP] at the end would split context and continuation wrongly."""
    if not _adds_bos(tokenizer) or (tokenizer.bos_token and text.startswith(tokenizer.bos_token)):
        return []
    return [tokenizer.bos_token_id]


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
    ctx = _bos(tokenizer, context) + ctx
    if not ctx:
        # Nothing to condition on: the first continuation token is predicted from end-of-text.
        ctx = [tokenizer.eos_token_id if tokenizer.bos_token_id is None else tokenizer.bos_token_id]
    keep = max_length - len(cont)
    if keep < 1:
        raise ValueError(f"continuation of {len(cont)} tokens does not fit max_length={max_length}")
    return Request(context=ctx[-keep:], continuation=cont)


def encode_context(tokenizer, context: str, max_length: int) -> list[int]:
    """generate_until: the context's ids, left-truncated to ``max_length`` (what is left of
    the window after the generated tokens), with a BOS where ``encode_pair`` puts one."""
    ids = _bos(tokenizer, context) + tokenizer.encode(context, add_special_tokens=False)
    if not ids:
        ids = [tokenizer.eos_token_id if tokenizer.bos_token_id is None else tokenizer.bos_token_id]
    return ids[-max_length:]
