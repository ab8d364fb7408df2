"""Metrics by name: ``metrics.get("mcc")(predictions, references) -> float``."""
from ..registry import Registry

metrics: Registry = Registry("metric")
