"""Seeded demonstration sampling: one RNG per (seed, task, example), never the example itself."""
from __future__ import annotations

import hashlib
import random

from ..errors import InputError


def example_rng(seed: int, task: str, doc_id: str) -> random.Random:
    """Independent of evaluation order, process count and Python's hash randomisation."""
    digest = hashlib.sha256(f"{seed}\0{task}\0{doc_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def sample_demonstrations(pool: list[dict], doc: dict, k: int, seed: int, task: str,
                          sampler: str = "random") -> list[dict]:
    """``k`` documents from ``pool`` (the fewshot split, or the evaluated split itself),
    excluding any with the evaluated document's id or identical text fields: drawn by a
    seeded RNG per example (``random``), or the first ``k`` in pool order (``first_n``, as
    lm-eval's FirstNSampler: the same demonstrations for every example)."""
    if k == 0:
        return []
    candidates = [d for d in pool if d["id"] != doc["id"] and not _same_example(d, doc)]
    if len(candidates) < k:
        raise InputError(f"task {task}: {k} demonstrations requested but only {len(candidates)} are available")
    if sampler == "first_n":
        return candidates[:k]
    return example_rng(seed, task, doc["id"]).sample(candidates, k)


def _same_example(a: dict, b: dict) -> bool:
    # A duplicate row under another id is still the evaluated example.
    keys = set(a) - {"id", "line"}
    return keys == set(b) - {"id", "line"} and all(a[key] == b[key] for key in keys)
