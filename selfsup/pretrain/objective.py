"""The pretraining objectives for the shared loop: MLM + NSP (or SOP), and ELECTRA's
replaced-token detection; their normalisers, losses and evaluation."""
from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F


def count_targets(batch: dict) -> dict[str, torch.Tensor]:
    """Masked tokens (MLM normaliser) and sequences with an NSP label (NSP normaliser)."""
    counts = {"tokens": (batch["labels"] != -100).sum()}
    if "next_sentence_label" in batch:
        counts["sequences"] = (batch["next_sentence_label"] != -100).sum()
    return counts


def pretraining_loss(model, batch: dict, counts: dict[str, torch.Tensor], state=None):
    """MLM summed over masked tokens / masked tokens in the window, plus NSP summed over
    sequences / sequences in the window: both exact under accumulation and processes."""
    inputs = {k: v for k, v in batch.items() if k != "next_sentence_label"}
    out = model(**inputs, num_items_in_batch=counts["tokens"].clamp(min=1))
    loss = out.mlm_loss
    if "next_sentence_label" in batch:
        nsp = F.cross_entropy(out.seq_relationship_logits.float(), batch["next_sentence_label"], reduction="sum")
        loss = loss + nsp / counts["sequences"].clamp(min=1)
    return loss, out


def count_targets_and_tokens(batch: dict) -> dict[str, torch.Tensor]:
    """ELECTRA's normalisers: masked tokens (the generator's MLM) and real tokens (detection)."""
    return {**count_targets(batch), "real_tokens": batch["attention_mask"].sum()}


def replaced_token_detection_loss(model, batch: dict, counts: dict[str, torch.Tensor], state=None):
    """The generator's MLM over masked tokens / masked tokens in the window, plus lambda x the
    detection loss summed over real tokens / real tokens in the window."""
    out = model(**batch, num_items_in_batch=counts["tokens"].clamp(min=1),
                num_tokens_in_batch=counts["real_tokens"].clamp(min=1))
    return out.loss, out


def fixed_masks(eval_dataset, collator, seed: int) -> list[dict]:
    """Masks every held-out sequence once, with a generator seeded by (seed, its index), so
    that every evaluation scores the same positions whatever the batch size or the number
    of processes. Returns unpadded rows: ``input_ids`` (masked), ``labels``,
    ``token_type_ids`` [, ``next_sentence_label``]."""
    masker = replace(collator, generator=torch.Generator())
    rows = []
    for index, example in enumerate(eval_dataset):
        masker.generator.manual_seed(seed * 1_000_003 + index)
        padded = collator.pad([example])
        n = len(example["input_ids"])
        input_ids, labels = masker.mask(padded["input_ids"], padded["word_ids"])
        row = {"input_ids": input_ids[0, :n].tolist(), "labels": labels[0, :n].tolist(),
               "token_type_ids": example["token_type_ids"]}
        if "next_sentence_label" in example:
            row["next_sentence_label"] = example["next_sentence_label"]
        rows.append(row)
    return rows


# Detection logits binned 0.05 wide over [-12, 12] (and two open-ended bins): histograms sum
# exactly over batches and processes, and the AUC read from them is within a tie of the exact one.
RTD_EDGES = torch.linspace(-12.0, 12.0, 481)


def logit_histogram(logits: torch.Tensor) -> torch.Tensor:
    """Counts of ``logits`` in the bins of RTD_EDGES, as float64 (len(RTD_EDGES) + 1 bins)."""
    bins = torch.bucketize(logits.detach().float(), RTD_EDGES.to(logits.device))
    return torch.bincount(bins, minlength=len(RTD_EDGES) + 1).double()


def histogram_auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """ROC AUC, P(a positive scores above a negative) + half P(a tie), from per-bin counts;
    a pair in one bin counts as a tie."""
    below = torch.cumsum(negative, 0) - negative  # negatives in lower bins
    pairs = positive.sum() * negative.sum()
    return ((positive * (below + 0.5 * negative)).sum() / pairs).item() if pairs > 0 else float("nan")


def make_evaluate_fn(eval_dataset, collator, batch_size: int, seed: int, sentence_objective: str = "nsp"):
    """Held-out MLM loss / accuracy / perplexity (ELECTRA: the generator's), the sentence
    objective's accuracy and majority baseline, named for it (``nsp_*`` or ``sop_*``: both are read from the
    ``next_sentence_label`` column by the same 2-way head), from running counts
    summed over processes. Each process scores a disjoint slice (every sequence exactly
    once: no padding duplicates as a prepared DataLoader would add), with masks fixed once
    by :func:`fixed_masks`, so the scores do not depend on ``batch_size`` or the number of
    processes. ``collator`` gives the masking settings and padding. With ELECTRA, also the
    detection accuracy over real tokens, its baseline (always guessing "original", which a
    detector unsure of every token also scores) and its ROC AUC, which ranks replaced tokens
    against originals whatever the threshold (the replacements are sampled, so they vary
    with the step, not with the batching alone)."""
    rows = None

    def evaluate(model, accelerator, state=None) -> dict[str, float]:
        nonlocal rows
        if rows is None:
            rows = fixed_masks(eval_dataset, collator, seed)
        mine = rows[accelerator.process_index::accelerator.num_processes]
        device = accelerator.device
        sums = {k: torch.zeros((), device=device, dtype=torch.float64)
                for k in ("mlm_loss", "mlm_correct", "mlm_total", "pair_correct", "pair_ones", "pair_total",
                          "sequences", "rtd_correct")}
        for k in ("rtd_hist_replaced", "rtd_hist_original"):
            sums[k] = torch.zeros(len(RTD_EDGES) + 1, device=device, dtype=torch.float64)
        # The wrapped model runs collectives in its forward (DDP syncs buffers, FSDP gathers
        # parameters), so every process runs as many batches as the one with the longest
        # slice; a process whose slice is over runs its first rows again and counts nothing.
        batches = math.ceil(math.ceil(len(rows) / accelerator.num_processes) / batch_size)
        for b in range(batches):
            counted = mine[b * batch_size:(b + 1) * batch_size]
            batch = {k: v.to(device) for k, v in collator.pad(counted or rows[:batch_size]).items()}
            pair_labels = batch.pop("next_sentence_label", None)
            out = model(**batch)
            if not counted:
                continue
            targets = batch["labels"][batch["labels"] != -100]
            logits = out.masked_logits.float()
            sums["mlm_loss"] += F.cross_entropy(logits, targets, reduction="sum").double()
            sums["mlm_correct"] += (logits.argmax(-1) == targets).sum()
            sums["mlm_total"] += targets.numel()
            sums["sequences"] += batch["input_ids"].shape[0]
            if pair_labels is not None:
                sums["pair_correct"] += (out.seq_relationship_logits.argmax(-1) == pair_labels).sum()
                sums["pair_ones"] += (pair_labels == 1).sum()
                sums["pair_total"] += pair_labels.numel()
            if getattr(out, "rtd_logits", None) is not None:
                real = batch["attention_mask"].bool()
                sums["rtd_correct"] += ((out.rtd_logits > 0) == out.replaced)[real].sum()
                sums["rtd_hist_replaced"] += logit_histogram(out.rtd_logits[real & out.replaced])
                sums["rtd_hist_original"] += logit_histogram(out.rtd_logits[real & ~out.replaced])
        sums = accelerator.reduce(sums, reduction="sum")
        mlm_loss = (sums["mlm_loss"] / sums["mlm_total"].clamp(min=1)).item()
        metrics = {"mlm_loss": mlm_loss, "mlm_accuracy": (sums["mlm_correct"] / sums["mlm_total"].clamp(min=1)).item(),
                   "perplexity": math.exp(min(mlm_loss, 50.0)), "mlm_predictions": sums["mlm_total"].item(),
                   "sequences": sums["sequences"].item()}
        if sums["pair_total"] > 0:
            metrics[f"{sentence_objective}_accuracy"] = (sums["pair_correct"] / sums["pair_total"]).item()
            # The majority-class rate of the held-out pairs is the accuracy to beat: google's
            # NSP pair building gives more than half "random" pairs on corpora of short documents.
            ones = (sums["pair_ones"] / sums["pair_total"]).item()
            metrics[f"{sentence_objective}_majority_baseline"] = max(ones, 1.0 - ones)
        # The histograms count every real token once: their totals are the replaced and all tokens.
        replaced = sums["rtd_hist_replaced"].sum()
        total = replaced + sums["rtd_hist_original"].sum()
        if total > 0:
            metrics["rtd_accuracy"] = (sums["rtd_correct"] / total).item()
            metrics["rtd_majority_baseline"] = 1.0 - (replaced / total).item()
            metrics["rtd_auc"] = histogram_auc(sums["rtd_hist_replaced"], sums["rtd_hist_original"])
        return metrics

    return evaluate
