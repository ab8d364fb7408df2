"""Generation metrics, offline: exact match, corpus BLEU, ROUGE-1/2/L F1.

* BLEU: Papineni et al. (2002) as sacrebleu computes corpus BLEU — clipped n-gram
  counts (n = 1..4) summed over the corpus, geometric mean of the precisions, brevity
  penalty ``exp(1 − r/c)`` when the output is shorter, ``r`` the closest reference
  length per sentence, ``exp`` smoothing of zero counts; on a 0–100 scale. Text is
  split on whitespace: pass it tokenized (the seq2seq tokenizer's ``normalize``).
* ROUGE: Lin (2004) as ``rouge_score`` does — lowercase, non-alphanumerics as spaces,
  n-gram (1, 2) and LCS F1 per example, the best over references, averaged; 0–100.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from .registry import metrics


def _refs(references: Sequence) -> list[list[str]]:
    return [[r] if isinstance(r, str) else list(r) for r in references]


def _check(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("no examples to score")


@metrics.register("exact_match")
def exact_match(predictions: Sequence[str], references: Sequence) -> float:
    """Fraction (0–1) of predictions equal to some reference after whitespace normalisation."""
    _check(predictions, references)
    norm = lambda s: " ".join(s.split())  # noqa: E731
    return sum(norm(p) in {norm(r) for r in refs} for p, refs in zip(predictions, _refs(references))) / len(predictions)


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


@metrics.register("bleu")
def corpus_bleu(predictions: Sequence[str], references: Sequence, max_order: int = 4) -> float:
    _check(predictions, references)
    correct, total = [0] * max_order, [0] * max_order
    sys_len = ref_len = 0
    for pred, refs in zip(predictions, _refs(references)):
        hyp = pred.split()
        ref_tokens = [r.split() for r in refs]
        sys_len += len(hyp)
        # closest reference length; ties go to the shorter one (sacrebleu)
        ref_len += min((abs(len(r) - len(hyp)), len(r)) for r in ref_tokens)[1]
        for n in range(1, max_order + 1):
            hyp_counts = _ngrams(hyp, n)
            max_ref = Counter()
            for r in ref_tokens:
                max_ref |= _ngrams(r, n)
            correct[n - 1] += sum(min(c, max_ref[g]) for g, c in hyp_counts.items())
            total[n - 1] += max(0, len(hyp) - n + 1)
    if sys_len == 0:
        return 0.0
    log_precisions, smooth = [], 1.0
    for c, t in zip(correct, total):
        if t == 0:
            return 0.0
        if c == 0:
            smooth *= 2
            log_precisions.append(math.log(1.0 / (smooth * t)))
        else:
            log_precisions.append(math.log(c / t))
    bp = 1.0 if sys_len > ref_len else math.exp(1 - ref_len / sys_len)
    return 100.0 * bp * math.exp(sum(log_precisions) / max_order)


def rouge_tokens(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def _f1(overlap: int, pred_total: int, ref_total: int) -> float:
    if overlap == 0:
        return 0.0
    p, r = overlap / pred_total, overlap / ref_total
    return 2 * p * r / (p + r)


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _rouge_n(pred: list[str], ref: list[str], n: int) -> float:
    p, r = _ngrams(pred, n), _ngrams(ref, n)
    return _f1(sum((p & r).values()), sum(p.values()), sum(r.values()))


def rouge(predictions: Sequence[str], references: Sequence) -> dict[str, float]:
    """{"rouge1", "rouge2", "rougeL"}: mean over examples of the best F1 over references."""
    _check(predictions, references)
    scores = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for pred, refs in zip(predictions, _refs(references)):
        hyp = rouge_tokens(pred)
        ref_tokens = [rouge_tokens(r) for r in refs]
        scores["rouge1"] += max(_rouge_n(hyp, r, 1) for r in ref_tokens)
        scores["rouge2"] += max(_rouge_n(hyp, r, 2) for r in ref_tokens)
        scores["rougeL"] += max(_f1(_lcs(hyp, r), len(hyp), len(r)) for r in ref_tokens)
    return {k: 100.0 * v / len(predictions) for k, v in scores.items()}


for _key in ("rouge1", "rouge2", "rougeL"):
    metrics.register(_key, lambda p, r, _k=_key: rouge(p, r)[_k])
