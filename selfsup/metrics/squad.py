"""SQuAD exact match and F1, as the official v1.1 / v2.0 evaluation scripts define them.

Answers are normalised (lower-case, punctuation and articles removed, whitespace
collapsed); each prediction takes its best score over the gold answers. In v2.0 an
unanswerable question has no gold answer and only the empty prediction scores 1.
"""
from __future__ import annotations

import re
import string
from collections import Counter

from .registry import metrics

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:  # v2.0: both empty is a match, one empty is not
        return float(pred == ref)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


@metrics.register("squad")
def squad(predictions: dict[str, str], references: dict[str, list[str]]) -> dict[str, float]:
    """``predictions``: id → answer text ("" = no answer); ``references``: id → gold
    answers ([] = unanswerable). Returns percentages like the official script."""
    missing = set(references) - set(predictions)
    if missing:
        raise ValueError(f"{len(missing)} questions have no prediction, e.g. {sorted(missing)[:3]}")
    em = f1 = 0.0
    has_ans = {"em": 0.0, "f1": 0.0, "n": 0}
    no_ans = {"em": 0.0, "f1": 0.0, "n": 0}
    for qid, golds in references.items():
        golds = golds or [""]
        e = max(exact_match(predictions[qid], g) for g in golds)
        f = max(token_f1(predictions[qid], g) for g in golds)
        em, f1 = em + e, f1 + f
        bucket = has_ans if golds != [""] else no_ans
        bucket["em"], bucket["f1"], bucket["n"] = bucket["em"] + e, bucket["f1"] + f, bucket["n"] + 1
    n = len(references)
    out = {"exact_match": 100 * em / n, "f1": 100 * f1 / n}
    if no_ans["n"]:
        for name, b in (("HasAns", has_ans), ("NoAns", no_ans)):
            if b["n"]:
                out[f"{name}_exact"] = 100 * b["em"] / b["n"]
                out[f"{name}_f1"] = 100 * b["f1"] / b["n"]
    return out
