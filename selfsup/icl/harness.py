"""One task at one number of shots, end to end: documents -> demonstrations -> requests ->
scores (or greedy generations) -> per-example records and aggregated metrics. Data-parallel
under Accelerate: each process handles a disjoint slice of the examples, the records are
gathered once."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ..errors import InputError
from .fewshot import sample_demonstrations
from .generation import generate_until
from .metrics import REPORTED, bootstrap_stderr, icl_metrics
from .models import pad_token_id
from .requests import ChatFormat, Request, build_context, build_pairs, encode_context, encode_pair, gold_answer
from .scoring import score_fast, score_naive
from .tasks import ICLTask

logger = logging.getLogger(__name__)
CONTENT_FREE = "N/A"


@dataclass
class Example:
    """One example while it is scored: its document, demonstrations and token requests;
    ``record`` is what is reported for it (JSON-ready, see ``evaluate_task``)."""
    doc: dict
    demos: list[dict]
    record: dict
    requests: list[Request] = field(default_factory=list)
    content_free_requests: list[Request] = field(default_factory=list)  # --calibrate


@dataclass
class TaskResult:
    task: str
    num_fewshot: int
    metrics: dict[str, float]        # name -> mean, name + "_stderr" -> bootstrap stderr
    records: list[dict]              # one per example, in split order
    seconds: float


def content_free(doc: dict) -> dict:
    """The document with every text field (not the choices, nor a task description) replaced by "N/A"."""
    return {k: (CONTENT_FREE if isinstance(v, str) and k not in ("id", "description") else v) for k, v in doc.items()}


def max_context_length(model, tokenizer, override: int | None) -> int:
    if override:
        return override
    n = getattr(model.config, "max_position_embeddings", None)
    return n or tokenizer.model_max_length


def evaluate_task(model, tokenizer, task: ICLTask, num_fewshot: int, seed: int = 1234, limit: int | None = None,
                  batch_size: int = 8, scorer: str = "fast", calibrate: bool = False, max_length: int | None = None,
                  bootstrap_iters: int = 1000, accelerator=None, progress: bool = False,
                  chat: ChatFormat | None = None) -> TaskResult:
    """``chat``: lm-eval's chat template, system instruction and multiturn demonstrations."""
    if scorer not in ("fast", "naive"):
        raise InputError(f"unknown scorer {scorer!r}: use 'fast' or 'naive'", field="scorer")
    start = time.perf_counter()
    docs = task.load_docs()
    # Without a separate fewshot split, demonstrations come from the whole evaluated split;
    # at 0 shots there are none to read.
    pool = task.load_docs(fewshot=True) if num_fewshot and task.has_fewshot_split() else docs
    indices = list(range(len(docs) if limit is None else min(limit, len(docs))))
    if accelerator is not None and accelerator.num_processes > 1:
        indices = indices[accelerator.process_index::accelerator.num_processes]
    length = max_context_length(model, tokenizer, max_length)

    pad = pad_token_id(tokenizer)
    examples = []
    for i in indices:
        doc = docs[i]
        demos = sample_demonstrations(pool, doc, num_fewshot, seed, task.name, task.fewshot_sampler)
        examples.append(Example(doc, demos, {
            "task": task.name, "index": i, "doc_id": doc["id"], "num_fewshot": num_fewshot,
            "output_type": task.output_type, "fewshot_ids": [d["id"] for d in demos], "choices": doc["choices"],
            "gold": doc["gold"]}))
    if task.output_type == "generate_until":
        _generate(model, tokenizer, task, examples, length, batch_size, pad, progress, chat)
    else:
        _score(model, tokenizer, task, examples, length, batch_size, pad, scorer, calibrate, progress, chat)
    records = [e.record for e in examples]

    if accelerator is not None and accelerator.num_processes > 1:
        from accelerate.utils import gather_object
        records = sorted(gather_object(records), key=lambda r: r["index"])

    calibrated = ["acc_calibrated"] if calibrate and task.output_type == "multiple_choice" else []
    names = list(task.metrics or REPORTED[task.output_type]) + calibrated
    metrics = {}
    for name in names:
        values = [icl_metrics.get(name)(r) for r in records]
        for r, v in zip(records, values):
            r[name] = v
        metrics[name] = sum(values) / len(values)
        metrics[f"{name}_stderr"] = bootstrap_stderr(values, bootstrap_iters, seed)
    for r in records:
        if task.output_type == "multiple_choice":  # the argmax choice
            r["prediction"] = max(range(len(r["logprobs"])), key=r["logprobs"].__getitem__)
        elif task.output_type in ("target", "loglikelihood"):  # whether greedy decoding gives the target
            r["prediction"] = r["is_greedy"][0]
        else:  # generate_until: the answer, cut at the first stop sequence
            r["prediction"] = r["answer"]
    metrics["n"] = len(records)
    seconds = time.perf_counter() - start
    logger.info("%s %d-shot: %s (%.1fs)", task.name, num_fewshot, metrics, seconds)
    return TaskResult(task.name, num_fewshot, metrics, records, seconds)


def _score(model, tokenizer, task: ICLTask, examples: list[Example], length: int, batch_size: int, pad: int,
           scorer: str, calibrate: bool, progress: bool, chat: ChatFormat | None) -> None:
    """Log-likelihood of every choice (and of the content-free input when calibrating)."""
    for e in examples:
        pairs = build_pairs(task, e.doc, e.demos, chat, tokenizer)
        e.record["prompts"] = [c for c, _ in pairs]
        e.record["continuations"] = [task.continuation_text(e.doc, c) for c in e.doc["choices"]]
        e.requests = [encode_pair(tokenizer, c, k, length) for c, k in pairs]
        if calibrate and task.output_type == "multiple_choice":
            cf_pairs = build_pairs(task, content_free(e.doc), e.demos, chat, tokenizer)
            e.content_free_requests = [encode_pair(tokenizer, c, k, length) for c, k in cf_pairs]
    requests = [r for e in examples for r in e.requests + e.content_free_requests]
    if scorer == "fast":
        scores = iter(score_fast(model, requests, batch_size=batch_size, pad_token_id=pad, progress=progress))
    else:
        scores = iter(score_naive(model, requests, progress=progress))
    for e in examples:  # scores come back in request order
        mine = [next(scores) for _ in e.requests]
        e.record["logprobs"] = [s.logprob for s in mine]
        e.record["is_greedy"] = [s.is_greedy for s in mine]
        if e.content_free_requests:
            e.record["content_free_logprobs"] = [next(scores).logprob for _ in e.content_free_requests]


def _generate(model, tokenizer, task: ICLTask, examples: list[Example], length: int, batch_size: int, pad: int,
              progress: bool, chat: ChatFormat | None) -> None:
    """Greedy generation until a stop sequence; the answer is compared with the gold one."""
    room = length - task.max_gen_toks  # lm-eval: the context keeps what the new tokens leave of the window
    if room < 1:
        raise InputError(f"max_gen_toks={task.max_gen_toks} leaves no room for the context in a window of "
                         f"{length} tokens", path=task.source, field="max_gen_toks")
    contexts = []
    for e in examples:
        context = build_context(task, e.doc, e.demos, chat, tokenizer)
        e.record["prompts"] = [context]
        e.record["target"] = gold_answer(task, e.doc)
        contexts.append(encode_context(tokenizer, context, room))
    generations = generate_until(model, tokenizer, contexts, task.until, task.max_gen_toks,
                                 delimiter=task.target_delimiter, batch_size=batch_size, pad_token_id=pad,
                                 progress=progress)
    for e, g in zip(examples, generations):
        e.record |= {"generation": g.text, "answer": g.answer, "finish": g.finish}
