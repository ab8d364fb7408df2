"""Entity-level precision, recall and F1 with CoNLL semantics (conlleval), IOB1 or IOB2.

An entity is a maximal chunk of tokens of one type; it counts as correct only if its
type and both boundaries match a gold entity exactly.

* IOB2: every entity starts with ``B-``; an ``I-X`` after ``O`` or another type still
  starts a chunk (conlleval is lenient there).
* IOB1: ``I-X`` starts a chunk unless it continues an ``X`` chunk; ``B-X`` only marks the
  start of an ``X`` chunk right after another ``X`` chunk.
"""
from __future__ import annotations

from collections.abc import Sequence

from .registry import metrics


def entities(tags: Sequence[str], scheme: str = "IOB2") -> set[tuple[str, int, int]]:
    """(type, start, end_exclusive) chunks of one sentence."""
    if scheme not in ("IOB1", "IOB2"):
        raise ValueError(f"scheme must be IOB1 or IOB2, got {scheme!r}")
    chunks, start, kind = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, tag_type = tag.partition("-") if tag != "O" else ("O", "", None)
        if prefix not in ("B", "I", "O"):
            raise ValueError(f"tag {tag!r} at position {i} is not IOB")
        begins = prefix == "B" or (prefix == "I" and tag_type != kind)
        if kind is not None and (prefix == "O" or begins):
            chunks.add((kind, start, i))
            kind = None
        if prefix != "O" and (kind is None or begins):
            start, kind = i, tag_type
    return chunks


@metrics.register("seqeval")
def entity_f1(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
              scheme: str = "IOB2") -> dict[str, float]:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predicted sentences for {len(references)} references")
    tp = n_pred = n_gold = 0
    per_type: dict[str, list[int]] = {}
    for i, (pred, gold) in enumerate(zip(predictions, references)):
        if len(pred) != len(gold):
            raise ValueError(f"sentence {i}: {len(pred)} predicted tags for {len(gold)} words")
        p, g = entities(pred, scheme), entities(gold, scheme)
        tp, n_pred, n_gold = tp + len(p & g), n_pred + len(p), n_gold + len(g)
        for kind, *_ in p | g:
            per_type.setdefault(kind, [0, 0, 0])
        for e in p & g:
            per_type[e[0]][0] += 1
        for e in p:
            per_type[e[0]][1] += 1
        for e in g:
            per_type[e[0]][2] += 1
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out = {"precision": precision, "recall": recall, "f1": f1}
    for kind, (t, np_, ng) in sorted(per_type.items()):
        p_, r_ = (t / np_ if np_ else 0.0), (t / ng if ng else 0.0)
        out[f"{kind}_f1"] = 2 * p_ * r_ / (p_ + r_) if p_ + r_ else 0.0
    return out
