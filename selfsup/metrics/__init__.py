"""Evaluation metrics as their papers define them, offline (no Hub download)."""
from . import generation, seqeval, squad  # noqa: F401  (register their metrics)
from .classification import accuracy, f1_binary, matthews_corrcoef, pearson, spearman
from .registry import metrics

__all__ = ["metrics", "accuracy", "f1_binary", "matthews_corrcoef", "pearson", "spearman"]
