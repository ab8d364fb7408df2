"""Per-example metrics (registered by name) and bootstrap standard errors of their means."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..registry import Registry

# example record (see harness.evaluate_task) -> 0/1
icl_metrics: Registry[Callable[[dict], float]] = Registry("ICL metric")
# Which metrics each output type reports (calibrated accuracy only when it was computed).
REPORTED = {"multiple_choice": ["acc", "acc_norm"], "target": ["acc"], "loglikelihood": ["acc"],
            "generate_until": ["exact_match"]}
# The output types whose records a metric can read (log-likelihoods or generated text);
# a metric not listed here (a user's own) is allowed on any.
OUTPUT_TYPES_OF = {"acc": ("multiple_choice", "target", "loglikelihood"),
                   "acc_norm": ("multiple_choice", "target", "loglikelihood"),
                   "acc_calibrated": ("multiple_choice",), "exact_match": ("generate_until",)}


@icl_metrics.register("acc")
def acc(record: dict) -> float:
    if record["output_type"] in ("target", "loglikelihood"):  # whether greedy decoding gives the target
        return float(record["is_greedy"][0])
    return float(int(np.argmax(record["logprobs"])) == record["gold"])


@icl_metrics.register("acc_norm")
def acc_norm(record: dict) -> float:
    """lm-eval's acc_norm: log-likelihood divided by the continuation's length in characters
    (without the target delimiter)."""
    scores = np.array(record["logprobs"]) / np.array([len(c) for c in record["continuations"]])
    return float(int(np.argmax(scores)) == record["gold"])


@icl_metrics.register("acc_calibrated")
def acc_calibrated(record: dict) -> float:
    """Contextual calibration (Zhao et al., 2021): divide p(choice | prompt) by the choice's
    probability given a content-free input ("N/A"), both normalised over the choices."""
    cf = np.array(record["content_free_logprobs"])
    prior = cf - np.logaddexp.reduce(cf)
    return float(int(np.argmax(np.array(record["logprobs"]) - prior)) == record["gold"])


@icl_metrics.register("exact_match")
def exact_match(record: dict) -> float:
    """The generated answer (already cut at the first stop sequence) equals the target,
    surrounding whitespace stripped from both."""
    return float(record["answer"].strip() == record["target"].strip())


def bootstrap_stderr(values: list[float], iters: int = 1000, seed: int = 0) -> float:
    """Standard deviation of the mean over ``iters`` resamples with replacement (seeded)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    idx = np.random.default_rng(seed).integers(0, len(x), size=(iters, len(x)))
    return float(x[idx].mean(axis=1).std(ddof=1))
