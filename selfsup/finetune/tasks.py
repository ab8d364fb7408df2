"""Fine-tuning task specifications and their registry.

A task is data: which of BERT's four cases it is, where its files are, its label set and
the metrics its paper reports. Definitions live in ``tasks/`` (installed as
``selfsup.tasks``): ``glue.py``, ``squad.py``, ``conll2003.py``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..registry import Registry

CASES = ("sequence", "pair", "token", "span")  # → class; → class per token; pair → class/score; span


@dataclass(frozen=True)
class FinetuneTask:
    name: str
    case: str
    metrics: tuple[str, ...]
    # Read one split: (data_dir, split) → list of examples (dicts). data_dir None = default.
    read: Callable[[Path | None, str], list[dict]]
    labels: tuple[str, ...] | None = None  # None: regression (one score)
    splits: tuple[str, ...] = ("train", "validation")
    main_metric: str | None = None  # what "best checkpoint" maximises; default: the first metric
    version: str = "1"
    options: dict = field(default_factory=dict)
    # Read one split's text only, labels never parsed (for pretraining on the task's own
    # text): (data_dir, split) → one list of sentences per example or document. None: not offered.
    read_text: Callable[[Path | None, str], list[list[str]]] | None = None

    def __post_init__(self):
        if self.case not in CASES:
            raise ValueError(f"task {self.name}: case must be one of {CASES}, got {self.case!r}")

    @property
    def is_regression(self) -> bool:
        return self.labels is None and self.case in ("sequence", "pair")

    @property
    def selection_metric(self) -> str:
        return self.main_metric or self.metrics[0]


finetune_tasks: Registry[FinetuneTask] = Registry("task")
_TASK_MODULES = ("glue", "squad", "conll2003")


def register(spec: FinetuneTask) -> FinetuneTask:
    return finetune_tasks.register(spec.name, spec)


def get_finetune_task(name: str) -> FinetuneTask:
    for module in _TASK_MODULES:
        importlib.import_module(f"selfsup.tasks.{module}")
    return finetune_tasks.get(name)
