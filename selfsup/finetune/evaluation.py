"""Scoring a fine-tuned model on a split, each example counted exactly once.

Every process runs its shard; ``gather_for_metrics`` reassembles predictions in dataset
order and drops the duplicates Accelerate adds to even out the last batch.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..metrics import metrics
from . import ner, qa


def predict(model, accelerator, features, collator, batch_size: int, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Model outputs ``keys`` for every feature row, in order, on every process."""
    columns = [c for c in features.column_names if c in ("input_ids", "attention_mask", "token_type_ids")]
    loader = accelerator.prepare(DataLoader(features.select_columns(columns), batch_size=batch_size,
                                            collate_fn=collator))
    outputs = {k: [] for k in keys}
    model.eval()
    with torch.no_grad():
        for batch in loader:
            out = model(**batch)
            for k in keys:
                value = accelerator.pad_across_processes(out[k].float(), dim=1, pad_index=-1e4)
                outputs[k].append(accelerator.gather_for_metrics(value).cpu())
    result = {}
    for k, parts in outputs.items():
        width = max(p.shape[1] for p in parts) if parts[0].ndim > 1 else None
        if width is not None:  # batches were padded to their own lengths
            parts = [torch.nn.functional.pad(p, (0, 0) * (p.ndim - 2) + (0, width - p.shape[1]), value=-1e4)
                     for p in parts]
        result[k] = torch.cat(parts).numpy()
    return result


def classify(task, logits: np.ndarray, names: bool = True) -> list:
    """Predictions from ``logits`` (num_examples, num_labels): scores for regression, else
    label names (or indices with ``names=False``)."""
    if task.is_regression:
        return logits[:, 0].tolist()
    ids = logits.argmax(-1).tolist()
    return [task.labels[i] for i in ids] if names else ids


def score(task, examples, features, outputs: dict[str, np.ndarray], cfg) -> tuple[dict, list]:
    """Metrics and per-example predictions (label names, scores, answer texts or tag lists)."""
    if task.case in ("sequence", "pair"):
        refs = [e["label"] for e in examples]
        preds = classify(task, outputs["logits"], names=False)
        values = {name: metrics.get(name)(preds, refs) for name in task.metrics}
        return values, classify(task, outputs["logits"])
    if task.case == "token":
        words = ner.merge_predictions(features, outputs["logits"], [len(e["tokens"]) for e in examples])
        pred_tags = [[task.labels[t] for t in w] for w in words]
        gold_tags = [[task.labels[t] for t in e["tags"]] for e in examples]
        values = metrics.get("seqeval")(pred_tags, gold_tags, scheme=task.options.get("scheme", "IOB2"))
        return {k: values[k] for k in values}, pred_tags
    answers = qa.postprocess(examples, features, outputs["start_logits"], outputs["end_logits"], cfg.n_best_size,
                             cfg.max_answer_length, task.options.get("version_2_with_negative", False),
                             cfg.null_score_diff_threshold)
    values = metrics.get("squad")(answers, {e["id"]: e["answers"]["text"] for e in examples})
    return values, [answers[e["id"]] for e in examples]
