"""A tiny, fully deterministic training setup for the loop's invariant tests.

Run as a script (under ``accelerate launch``) it trains and writes the final weights and
the learning rate seen at each step, so runs with different process counts can be
compared: ``python tiny_training.py OUT_DIR PER_DEVICE_BATCH ACCUMULATION STEPS [EPOCHS
[MIXED_PRECISION]]`` (STEPS <= 0: train by EPOCHS instead).
"""
from __future__ import annotations

import json
import sys

import torch
from safetensors.torch import save_file

from selfsup.modeling import SelfsupBertConfig, SelfsupBertForMaskedLM
from selfsup.training import Trainer, TrainingConfig

VOCAB = 50


def tiny_model(seed: int = 0) -> SelfsupBertForMaskedLM:
    torch.manual_seed(seed)
    config = SelfsupBertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0)
    return SelfsupBertForMaskedLM(config)


def tiny_dataset(n: int = 64, seq: int = 12, seed: int = 1) -> list[dict]:
    """Pre-masked rows with a varying number of targets (so token normalisation matters)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        ids = torch.randint(5, VOCAB, (seq,), generator=g)
        labels = torch.full((seq,), -100)
        k = 1 + i % 4
        pos = torch.randperm(seq, generator=g)[:k]
        labels[pos] = ids[pos]
        ids = ids.clone()
        ids[pos] = 4  # [MASK]
        rows.append({"input_ids": ids, "attention_mask": torch.ones(seq, dtype=torch.long), "labels": labels})
    return rows


def collate(rows: list[dict]) -> dict:
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


def make_trainer(output_dir, per_device_batch: int, accumulation: int, steps: int, **overrides) -> Trainer:
    settings = {"learning_rate": 1e-2, "warmup_steps": 2, "logging_steps": 1, "report_to": "none", "seed": 7,
                **overrides}
    config = TrainingConfig(output_dir=str(output_dir), per_device_train_batch_size=per_device_batch,
                            gradient_accumulation_steps=accumulation, max_steps=steps, **settings)
    return Trainer(tiny_model(), config, tiny_dataset(), collate)


if __name__ == "__main__":
    out, batch, accumulation, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    epochs = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
    precision = sys.argv[6] if len(sys.argv) > 6 else "no"
    trainer = make_trainer(out, batch, accumulation, steps, num_train_epochs=epochs, mixed_precision=precision)
    summary = trainer.train()
    trainer.save_model(f"{out}/model")  # collective after train(): the process group must still exist
    if trainer.accelerator.is_main_process:
        model = trainer.accelerator.unwrap_model(trainer.model)
        save_file({k: v.clone() for k, v in model.state_dict().items()}, f"{out}/weights.safetensors")
        lrs = [h["learning_rate"] for h in trainer.history if "learning_rate" in h]
        json.dump({"learning_rates": lrs, "num_processes": trainer.accelerator.num_processes,
                   "epochs": [h["epoch"] for h in trainer.history if "epoch" in h], "steps": summary["steps"],
                   "train_samples": summary["train_samples"],
                   "losses": [h["loss"] for h in trainer.history if "loss" in h]},
                  open(f"{out}/run.json", "w"))
    trainer.accelerator.end_training()  # release the process group: gloo aborts at exit otherwise
