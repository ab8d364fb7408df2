"""Scores a fixed (seeded) model on the first 37 RTE dev pairs; run under 1 and 2
processes to check that distributed evaluation counts each example exactly once.
Usage: python finetune_eval_script.py MODEL_DIR OUT_JSON"""
from __future__ import annotations

import json
import sys

import torch
from accelerate import Accelerator
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

from selfsup.finetune import evaluation
from selfsup.finetune.config import FinetuneConfig
from selfsup.finetune.run import build_features, load_examples
from selfsup.finetune.tasks import get_finetune_task

model_dir, out = sys.argv[1], sys.argv[2]
accelerator = Accelerator()
task = get_finetune_task("glue/rte")
cfg = FinetuneConfig(task="glue/rte", model_name_or_path=model_dir, max_seq_length=64)
tokenizer = AutoTokenizer.from_pretrained(model_dir)
examples = load_examples(task, cfg, "validation", 37)  # odd: the last batch is uneven across processes
features = build_features(task, examples, tokenizer, cfg, train=False)
torch.manual_seed(0)
model = accelerator.prepare(AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2))
outputs = evaluation.predict(model, accelerator, features, DataCollatorWithPadding(tokenizer), 8, ("logits",))
values, predictions = evaluation.score(task, examples, features, outputs, cfg)
if accelerator.is_main_process:
    json.dump({"metrics": values, "predictions": predictions, "rows": len(outputs["logits"]),
               "processes": accelerator.num_processes}, open(out, "w"))
accelerator.end_training()  # release the process group: gloo aborts at exit otherwise
