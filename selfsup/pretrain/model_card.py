"""Model cards (README.md) for pretrained folders, selfsup-bert and selfsup-gpt: what each is, how it
was made, how good."""
from __future__ import annotations

import json
from pathlib import Path

from ..provenance import write_model_card as write


def held_out_results(task: str, corpus: str, ev: dict) -> list[dict] | None:
    """The card's model-index entry for scores on held-out documents (None if none were held out)."""
    if not ev:
        return None
    return [{"task": task, "dataset": {"name": corpus, "type": "text", "split": "held-out documents"},
             "metrics": {k: v for k, v in ev.items() if isinstance(v, (int, float))}}]


def write_model_card(folder: str | Path, summary: dict) -> Path:
    folder = Path(folder)
    ev = summary.get("eval") or {}
    config = json.loads((folder / "config.json").read_text())
    objective = {"nsp": "masked LM + next sentence prediction", "sop": "masked LM + sentence-order prediction",
                 "none": "masked LM"}[summary["data"].get("sentence_objective", "nsp")]
    # ELECTRA's folder is for fine-tuning: its generator's MLM head is a pretraining aid, not the model.
    electra = (summary.get("model") or {}).get("objective") == "electra"
    if electra:
        objective = "ELECTRA's replaced-token detection"
        load = ("import selfsup  # registers the selfsup-bert model type\n"
                "from transformers import AutoModelForSequenceClassification\n"
                f"model = AutoModelForSequenceClassification.from_pretrained(\"{folder}\", num_labels=2)")
    else:
        load = ("import selfsup  # registers the selfsup-bert model type\nfrom transformers import pipeline\n"
                f"fill = pipeline(\"fill-mask\", model=\"{folder}\")")
    sequences = (f"{summary['train_sequences']} training sequences" if summary["train_sequences"] is not None
                 else f"{summary['train_samples']} sequences streamed")
    start = summary.get("starting_model") or {}
    return write(
        folder, title=f"selfsup-bert pretrained with {objective}", pipeline_tag=None if electra else "fill-mask",
        tags=("selfsup-bert", "bert", "electra" if electra else "masked-lm"), base_model=start.get("source"),
        summary=f"Trained with `scripts/pretrain.py` on `{summary['data']['corpus']}` ({sequences}, "
                f"{summary['steps']} optimizer steps, {summary['num_processes']} process(es), "
                f"{summary['wall_seconds']:.0f} s). Metrics: held-out documents never seen in training"
                + ("." if ev else " (this run held out none)."),
        load=load, results=held_out_results("replaced-token-detection" if electra else "fill-mask",
                                            summary["data"]["corpus"], ev),
        details={"Model config": {k: config[k] for k in (
                     "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
                     "max_position_embeddings", "pre_layer_norm") if k in config},
                 "Data config": summary["data"], "Training config": summary["training"],
                 "Versions": summary["versions"]})


def write_clm_model_card(folder: str | Path, summary: dict) -> Path:
    """The card of a ``scripts/pretrain_gpt.py`` folder: held-out perplexity as summary.json has it."""
    folder = Path(folder)
    ev = summary.get("eval") or {}
    return write(
        folder, title="selfsup-gpt pretrained with causal language modelling", pipeline_tag="text-generation",
        tags=("selfsup-gpt", "causal-lm"), base_model=summary["model"].get("model_name_or_path"),
        summary=f"Trained with `scripts/pretrain_gpt.py` on `{summary['data']['corpus']}` ({summary['train_blocks']} "
                f"blocks of {summary['data']['block_size']} tokens, {summary['steps']} optimizer steps, "
                f"{summary['wall_seconds']:.0f} s). Metrics: held-out documents never seen in training"
                + ("." if ev else " (this run held out none)."),
        load=f"import selfsup  # registers the selfsup-gpt model type\nfrom transformers import pipeline\n"
             f"generate = pipeline(\"text-generation\", model=\"{folder}\")",
        results=held_out_results("text-generation", summary["data"]["corpus"], ev),
        details={"Data config": summary["data"], "Model config": summary["model"],
                 "Training config": summary["training"], "Versions": summary["versions"]})
