"""One task at one number of shots, end to end: documents -> demonstrations -> requests ->
scores -> per-example records and aggregated metrics. Data-parallel under Accelerate:
each process scores a disjoint slice of the examples, the records are gathered once."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..errors import InputError
from .fewshot import sample_demonstrations
from .metrics import METRICS, REPORTED, bootstrap_stderr
from .requests import build_pairs, encode_pair, render
from .scoring import score_fast, score_naive
from .tasks import TaskSpec

logger = logging.getLogger(__name__)
CONTENT_FREE = "N/A"


@dataclass
class TaskResult:
    task: str
    num_fewshot: int
    metrics: dict[str, float]        # name -> mean, name + "_stderr" -> bootstrap stderr
    records: list[dict]              # one per example, in split order
    seconds: float


def content_free(doc: dict) -> dict:
    """The document with every text field (not the choices) replaced by "N/A"."""
    return {k: (CONTENT_FREE if isinstance(v, str) and k != "id" else v) for k, v in doc.items()}


def max_context_length(model, tokenizer, override: int | None) -> int:
    if override:
        return override
    n = getattr(model.config, "max_position_embeddings", None)
    return n or tokenizer.model_max_length


def evaluate_task(model, tokenizer, task: TaskSpec, num_fewshot: int, seed: int = 1234, limit: int | None = None,
                  batch_size: int = 8, scorer: str = "fast", calibrate: bool = False, max_length: int | None = None,
                  bootstrap_iters: int = 1000, accelerator=None, progress: bool = False) -> TaskResult:
    if scorer not in ("fast", "naive"):
        raise InputError(f"unknown scorer {scorer!r}: use 'fast' or 'naive'", field="scorer")
    start = time.perf_counter()
    docs = task.load_docs()
    # Without a separate fewshot split, demonstrations come from the whole evaluated split.
    pool = task.load_docs(fewshot=True) if task.fewshot_data else docs
    indices = list(range(len(docs) if limit is None else min(limit, len(docs))))
    if accelerator is not None and accelerator.num_processes > 1:
        indices = indices[accelerator.process_index::accelerator.num_processes]
    length = max_context_length(model, tokenizer, max_length)

    records, requests = [], []
    for i in indices:
        doc = docs[i]
        demos = sample_demonstrations(pool, doc, num_fewshot, seed, task.name)
        pairs = build_pairs(task, doc, demos)
        record = {"task": task.name, "index": i, "doc_id": doc["id"], "num_fewshot": num_fewshot,
                  "output_type": task.output_type, "fewshot_ids": [d["id"] for d in demos],
                  "prompts": [c for c, _ in pairs], "continuations": [render(task.continuation, doc, c) for c in doc["choices"]],
                  "choices": doc["choices"], "gold": doc["gold"]}
        record["_requests"] = [encode_pair(tokenizer, c, k, length) for c, k in pairs]
        if calibrate and task.output_type == "multiple_choice":
            cf_pairs = build_pairs(task, content_free(doc), demos)
            record["_cf_requests"] = [encode_pair(tokenizer, c, k, length) for c, k in cf_pairs]
        requests += record["_requests"] + record.get("_cf_requests", [])
        records.append(record)

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    if scorer == "fast":
        scores = score_fast(model, requests, batch_size=batch_size, pad_token_id=pad, progress=progress)
    else:
        scores = score_naive(model, requests, progress=progress)
    pos = 0
    for record in records:
        n = len(record.pop("_requests"))
        record["logprobs"] = [s.logprob for s in scores[pos:pos + n]]
        record["is_greedy"] = [s.is_greedy for s in scores[pos:pos + n]]
        pos += n
        if "_cf_requests" in record:
            m = len(record.pop("_cf_requests"))
            record["content_free_logprobs"] = [s.logprob for s in scores[pos:pos + m]]
            pos += m

    if accelerator is not None and accelerator.num_processes > 1:
        from accelerate.utils import gather_object
        records = sorted(gather_object(records), key=lambda r: r["index"])

    names = list(task.metrics or REPORTED[task.output_type]) + (["acc_calibrated"] if calibrate and task.output_type == "multiple_choice" else [])
    metrics = {}
    for name in names:
        values = [METRICS.get(name)(r) for r in records]
        for r, v in zip(records, values):
            r[name] = v
        metrics[name] = sum(values) / len(values)
        metrics[f"{name}_stderr"] = bootstrap_stderr(values, bootstrap_iters, seed)
    for r in records:  # multiple choice: the argmax choice; target: whether greedy decoding gives it
        r["prediction"] = (max(range(len(r["logprobs"])), key=r["logprobs"].__getitem__)
                           if task.output_type == "multiple_choice" else r["is_greedy"][0])
    metrics["n"] = len(records)
    seconds = time.perf_counter() - start
    logger.info("%s %d-shot: %s (%.1fs)", task.name, num_fewshot, metrics, seconds)
    return TaskResult(task.name, num_fewshot, metrics, records, seconds)
