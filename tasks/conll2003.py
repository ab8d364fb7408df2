"""CoNLL-2003 English NER (Tjong Kim Sang & De Meulder, 2003), entity-level F1.

``ner/conll2003``: the IOB2 files (``train.txt``, ``valid.txt``, ``test.txt``);
``ner/conll2003_iob1``: the original shared-task files (``eng.train/testa/testb``),
scored with IOB1 chunk semantics.
"""
from __future__ import annotations

from pathlib import Path

from selfsup.errors import InputError
from selfsup.finetune.readers import read_conll
from selfsup.finetune.tasks import TaskSpec, register
from selfsup.resources import shared_data_dir

LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
FILES = {"iob2": {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"},
         "iob1": {"train": "original_iob1/eng.train", "validation": "original_iob1/eng.testa",
                  "test": "original_iob1/eng.testb"}}


def _read(scheme: str, data_dir, split: str) -> list[dict]:
    root = Path(data_dir) if data_dir is not None else shared_data_dir()
    if root is None:
        raise InputError("conll2003: no data_dir and no shared/data folder; pass --data_dir")
    return read_conll(root / "conll2003" / FILES[scheme][split], LABELS)


register(TaskSpec("ner/conll2003", "token", ("f1", "precision", "recall"), labels=LABELS,
                  read=lambda d, s: _read("iob2", d, s), splits=("train", "validation", "test"),
                  version="conll2003-iob2", options={"scheme": "IOB2"}))
register(TaskSpec("ner/conll2003_iob1", "token", ("f1", "precision", "recall"), labels=LABELS,
                  read=lambda d, s: _read("iob1", d, s), splits=("train", "validation", "test"),
                  version="conll2003-iob1", options={"scheme": "IOB1"}))
