"""Accuracy, binary F1, Matthews correlation, Pearson and Spearman correlation.

Definitions as in GLUE (Wang et al., 2018) and scikit-learn / scipy, written out so they
run offline; tests compare them with hand-computed values and scipy.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from .registry import metrics


def _check(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("no examples to score")


@metrics.register("accuracy")
def accuracy(predictions: Sequence, references: Sequence) -> float:
    _check(predictions, references)
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


@metrics.register("f1")
def f1_binary(predictions: Sequence[int], references: Sequence[int], positive: int = 1) -> float:
    """F1 of the positive class (MRPC, QQP); 0 when there are no true positives."""
    _check(predictions, references)
    tp = sum(p == positive and r == positive for p, r in zip(predictions, references))
    fp = sum(p == positive and r != positive for p, r in zip(predictions, references))
    fn = sum(p != positive and r == positive for p, r in zip(predictions, references))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


@metrics.register("mcc")
def matthews_corrcoef(predictions: Sequence[int], references: Sequence[int]) -> float:
    """Binary Matthews correlation (CoLA). 0 when a row or column of the confusion matrix
    is empty (e.g. a constant prediction), as scikit-learn defines it."""
    _check(predictions, references)
    tp = sum(p == 1 and r == 1 for p, r in zip(predictions, references))
    tn = sum(p == 0 and r == 0 for p, r in zip(predictions, references))
    fp = sum(p == 1 and r == 0 for p, r in zip(predictions, references))
    fn = sum(p == 0 and r == 1 for p, r in zip(predictions, references))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else (tp * tn - fp * fn) / denominator


@metrics.register("pearson")
def pearson(predictions: Sequence[float], references: Sequence[float]) -> float:
    _check(predictions, references)
    n = len(references)
    mp, mr = sum(predictions) / n, sum(references) / n
    cov = sum((p - mp) * (r - mr) for p, r in zip(predictions, references))
    sp = math.sqrt(sum((p - mp) ** 2 for p in predictions))
    sr = math.sqrt(sum((r - mr) ** 2 for r in references))
    return 0.0 if sp == 0 or sr == 0 else cov / (sp * sr)


def _ranks(values: Sequence[float]) -> list[float]:
    """Average ranks (ties share the mean of their positions), 1-based."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


@metrics.register("spearman")
def spearman(predictions: Sequence[float], references: Sequence[float]) -> float:
    _check(predictions, references)
    return pearson(_ranks(predictions), _ranks(references))
