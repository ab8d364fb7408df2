"""A model card (README.md) for a pretrained folder: what it is, how it was made, how good."""
from __future__ import annotations

import json
from pathlib import Path

from ..provenance import package_versions  # noqa: F401  (re-exported: scripts/pretrain.py's provenance)
from ..provenance import write_model_card as write


def write_model_card(folder: str | Path, summary: dict) -> Path:
    folder = Path(folder)
    ev = summary.get("eval") or {}
    config = json.loads((folder / "config.json").read_text())
    objective = {"nsp": "masked LM + next sentence prediction", "sop": "masked LM + sentence-order prediction",
                 "none": "masked LM"}[summary["data"].get("sentence_objective", "nsp")]
    sequences = (f"{summary['train_sequences']} training sequences" if summary["train_sequences"] is not None
                 else f"{summary['train_samples']} sequences streamed")
    start = summary.get("starting_model") or {}
    return write(
        folder, title=f"selfsup-bert pretrained with {objective}", pipeline_tag="fill-mask",
        tags=("selfsup-bert", "bert", "masked-lm"), base_model=start.get("source"),
        summary=f"Trained with `scripts/pretrain.py` on `{summary['data']['corpus']}` ({sequences}, "
                f"{summary['steps']} optimizer steps, {summary['num_processes']} process(es), "
                f"{summary['wall_seconds']:.0f} s). Metrics: held-out documents never seen in training"
                + ("." if ev else " (this run held out none)."),
        load=f"import selfsup  # registers the selfsup-bert model type\nfrom transformers import pipeline\n"
             f"fill = pipeline(\"fill-mask\", model=\"{folder}\")",
        results=[{"task": "fill-mask", "dataset": {"name": summary["data"]["corpus"], "type": "text",
                                                   "split": "held-out documents"},
                  "metrics": {k: v for k, v in ev.items() if isinstance(v, (int, float))}}] if ev else None,
        details={"Model config": {k: config[k] for k in (
                     "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
                     "max_position_embeddings", "pre_layer_norm") if k in config},
                 "Data config": summary["data"], "Training config": summary["training"],
                 "Versions": summary["versions"]})
