"""DialogSum (Chen et al., 2021): dialogue → one-paragraph summary, whose summaries copy
speaker tags (``#Person1#``) and names from the dialogue.

Local files: ``<data_dir>/seq2seq/dialogsum/dialogsum.{train,dev,test}.jsonl``
(default data_dir: shared/data). The test split has three references
(``summary1..3``); train and dev have one (``summary``).
"""
from __future__ import annotations

from pathlib import Path

from selfsup.resources import shared_data_dir

VERSION = 1
SOURCE_COLUMN = "dialogue"
SPLITS = {
    "train": ("dialogsum.train.jsonl", "summary"),
    "validation": ("dialogsum.dev.jsonl", "summary"),
    "test": ("dialogsum.test.jsonl", ["summary1", "summary2", "summary3"]),
}


def data_file(split: str, data_dir: str | Path | None = None) -> Path:
    from selfsup.errors import InputError
    if split not in SPLITS:
        raise KeyError(f"unknown DialogSum split {split!r}; known: {sorted(SPLITS)}")
    root = Path(data_dir) if data_dir is not None else shared_data_dir()
    if root is None:
        raise InputError("shared data not found: set SELFSUP_DATA or pass data_dir")
    return root / "seq2seq" / "dialogsum" / SPLITS[split][0]


def target_columns(split: str) -> str | list[str]:
    return SPLITS[split][1]


def load(split: str, data_dir: str | Path | None = None, limit: int | None = None):
    """The split as :class:`selfsup.seq2seq.data.Pair` rows (every reference kept)."""
    from selfsup.seq2seq.data import read_pairs
    pairs = read_pairs(data_file(split, data_dir), SOURCE_COLUMN, target_columns(split))
    return pairs[:limit]
