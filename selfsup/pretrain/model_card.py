"""A model card (README.md) for a pretrained folder: what it is, how it was made, how good."""
from __future__ import annotations

import json
import platform
from pathlib import Path


def package_versions() -> dict[str, str]:
    """The versions a result depends on (provenance for the card and summary.json). Read
    from the modules, not the installed metadata: a checkout on PYTHONPATH has none."""
    import importlib

    return {"python": platform.python_version(),
            **{name: getattr(importlib.import_module(name), "__version__", "unknown")
               for name in ("selfsup", "torch", "transformers", "accelerate", "datasets", "tokenizers")}}


def write_model_card(folder: str | Path, summary: dict) -> Path:
    folder = Path(folder)
    ev = summary.get("eval") or {}
    metrics = "\n".join(f"| {k} | {v:.4f} |" for k, v in ev.items()) or "| (no held-out evaluation) | |"
    config = json.loads((folder / "config.json").read_text())
    objective = {"nsp": "masked LM + next sentence prediction", "sop": "masked LM + sentence-order prediction",
                 "none": "masked LM"}[summary["data"].get("sentence_objective", "nsp")]
    sequences = (f"{summary['train_sequences']} training sequences" if summary["train_sequences"] is not None
                 else f"{summary['train_samples']} sequences streamed")
    card = f"""---
library_name: transformers
tags: [selfsup, bert, fill-mask, masked-lm]
---
# selfsup-bert pretrained with {objective}

Trained with `scripts/pretrain.py` of [selfsup](https://example.invalid/selfsup) on
`{summary['data']['corpus']}` ({sequences}, {summary['steps']} optimizer
steps, {summary['num_processes']} process(es), {summary['wall_seconds']:.0f} s).

```python
import selfsup  # registers the selfsup-bert model type
from transformers import AutoModelForMaskedLM, pipeline
fill = pipeline("fill-mask", model="{folder}")
```

## Held-out metrics (documents never seen in training)

| metric | value |
|---|---|
{metrics}

## Model config

```json
{json.dumps({k: config[k] for k in ('hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'vocab_size', 'max_position_embeddings', 'pre_layer_norm') if k in config}, indent=2)}
```

## Data config

```json
{json.dumps(summary['data'], indent=2)}
```

## Training config

```json
{json.dumps(summary['training'], indent=2)}
```

## Versions

```json
{json.dumps(summary['versions'], indent=2)}
```
"""
    path = folder / "README.md"
    path.write_text(card)
    return path
