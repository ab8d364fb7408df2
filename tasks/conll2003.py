"""CoNLL-2003 English NER (Tjong Kim Sang & De Meulder, 2003), entity-level F1.

``ner/conll2003``: the IOB2 files (``train.txt``, ``valid.txt``, ``test.txt``);
``ner/conll2003_iob1``: the original shared-task files (``eng.train/testa/testb``),
scored with IOB1 chunk semantics.
"""
from __future__ import annotations

from pathlib import Path

from selfsup.errors import InputError
from selfsup.finetune.readers import read_conll
from selfsup.finetune.tasks import FinetuneTask, register
from selfsup.pretrain.corpus import read_documents
from selfsup.resources import shared_data_dir

LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
FILES = {"iob2": {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"},
         "iob1": {"train": "original_iob1/eng.train", "validation": "original_iob1/eng.testa",
                  "test": "original_iob1/eng.testb"}}


def _path(scheme: str, data_dir, split: str) -> Path:
    root = Path(data_dir) if data_dir is not None else shared_data_dir()
    if root is None:
        raise InputError("conll2003: no data_dir and no shared/data folder; pass --data_dir")
    return root / "conll2003" / FILES[scheme][split]


def _read(scheme: str, data_dir, split: str) -> list[dict]:
    return read_conll(_path(scheme, data_dir, split), LABELS)


def _read_text(scheme: str, data_dir, split: str) -> list[list[str]]:
    """The news documents (``-DOCSTART-`` to ``-DOCSTART-``), a sentence per block; tags never read."""
    return read_documents(_path(scheme, data_dir, split), "conll")


register(FinetuneTask("ner/conll2003", "token", ("f1", "precision", "recall"), labels=LABELS,
                  read=lambda d, s: _read("iob2", d, s), splits=("train", "validation", "test"),
                  version="conll2003-iob2", options={"scheme": "IOB2"},
                  read_text=lambda d, s: _read_text("iob2", d, s)))
register(FinetuneTask("ner/conll2003_iob1", "token", ("f1", "precision", "recall"), labels=LABELS,
                  read=lambda d, s: _read("iob1", d, s), splits=("train", "validation", "test"),
                  version="conll2003-iob1", options={"scheme": "IOB1"},
                  read_text=lambda d, s: _read_text("iob1", d, s)))
