"""The MLM + NSP objective for the shared loop: normalisers, loss and evaluation."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader


def count_targets(batch: dict) -> dict[str, torch.Tensor]:
    """Masked tokens (MLM normaliser) and sequences with an NSP label (NSP normaliser)."""
    counts = {"tokens": (batch["labels"] != -100).sum()}
    if "next_sentence_label" in batch:
        counts["sequences"] = (batch["next_sentence_label"] != -100).sum()
    return counts


def pretraining_loss(model, batch: dict, counts: dict[str, torch.Tensor]):
    """MLM summed over masked tokens / masked tokens in the window, plus NSP summed over
    sequences / sequences in the window: both exact under accumulation and processes."""
    inputs = {k: v for k, v in batch.items() if k != "next_sentence_label"}
    out = model(**inputs, num_items_in_batch=counts["tokens"].clamp(min=1))
    loss = out.mlm_loss
    if "next_sentence_label" in batch:
        nsp = F.cross_entropy(out.seq_relationship_logits.float(), batch["next_sentence_label"], reduction="sum")
        loss = loss + nsp / counts["sequences"].clamp(min=1)
    return loss, out


def make_evaluate_fn(eval_dataset, collator, batch_size: int, seed: int):
    """Held-out MLM loss / accuracy / perplexity and NSP accuracy, from running counts
    reduced over processes. ``collator`` owns a generator that is re-seeded at every
    evaluation, so successive evaluations score the same masked positions."""
    if collator.generator is None:
        raise ValueError("the evaluation collator needs its own generator")
    loader = None

    def evaluate(model, accelerator) -> dict[str, float]:
        nonlocal loader
        if loader is None:
            loader = accelerator.prepare(DataLoader(eval_dataset, batch_size=batch_size, collate_fn=collator))
        collator.generator.manual_seed(seed + accelerator.process_index)
        device = accelerator.device
        sums = {k: torch.zeros((), device=device, dtype=torch.float64)
                for k in ("mlm_loss", "mlm_correct", "mlm_total", "nsp_correct", "nsp_total")}
        for batch in loader:
            nsp = batch.pop("next_sentence_label", None)
            out = model(**batch)
            targets = batch["labels"][batch["labels"] != -100]
            logits = out.masked_logits.float()
            sums["mlm_loss"] += F.cross_entropy(logits, targets, reduction="sum").double()
            sums["mlm_correct"] += (logits.argmax(-1) == targets).sum()
            sums["mlm_total"] += targets.numel()
            if nsp is not None:
                sums["nsp_correct"] += (out.seq_relationship_logits.argmax(-1) == nsp).sum()
                sums["nsp_total"] += nsp.numel()
        sums = accelerator.reduce(sums, reduction="sum")
        mlm_loss = (sums["mlm_loss"] / sums["mlm_total"].clamp(min=1)).item()
        metrics = {"mlm_loss": mlm_loss, "mlm_accuracy": (sums["mlm_correct"] / sums["mlm_total"].clamp(min=1)).item(),
                   "perplexity": math.exp(min(mlm_loss, 50.0)), "mlm_predictions": sums["mlm_total"].item()}
        if sums["nsp_total"] > 0:
            metrics["nsp_accuracy"] = (sums["nsp_correct"] / sums["nsp_total"]).item()
        return metrics

    return evaluate
