"""Fine-tune an encoder on GLUE, SQuAD or CoNLL-2003 with the shared Accelerate loop.

    accelerate launch scripts/finetune.py --task glue/sst2 --model_name_or_path path/or/hub-id
    accelerate launch scripts/finetune.py --config configs/finetune/rte.yaml --learning_rate 3e-5
    accelerate launch scripts/finetune.py --task glue/all --model_name_or_path ...   # one table
    accelerate launch scripts/finetune.py --task squad/dev_split --model_name_or_path ... --lora_r 8

The model may be a selfsup-bert folder or any Hugging Face encoder (BERT, MiniLM, …).
Writes <output_dir>/best (model, tokenizer, labels), metrics.json and predictions.
"""
from __future__ import annotations

from dataclasses import replace

from accelerate import PartialState

from selfsup.cli import parse_config, run_script
from selfsup.errors import InputError, SplitNotFound
from selfsup.finetune.config import FinetuneConfig
from selfsup.finetune.run import run
from selfsup.finetune.tasks import finetune_tasks, get_finetune_task
from selfsup.training import TrainingConfig

DEFAULTS = {"output_dir": "outputs/finetune", "learning_rate": 5e-5, "num_train_epochs": 3.0,
            "warmup_ratio": 0.1, "per_device_train_batch_size": 32, "adam_epsilon": 1e-8, "logging_steps": 50}


def main(args: list[str] | None = None) -> list[dict]:
    cfg, train_cfg = parse_config((FinetuneConfig, TrainingConfig), args, __doc__, defaults=DEFAULTS)
    if cfg.task != "glue/all":
        results = [run(cfg, train_cfg)]
        PartialState().destroy_process_group()  # gloo aborts at exit otherwise
        return results
    get_finetune_task("glue/sst2")  # loads the task definitions
    results, skipped = [], []
    for name in finetune_tasks.names():
        if not name.startswith("glue/"):
            continue
        try:
            results.append(run(replace(cfg, task=name),
                               replace(train_cfg, output_dir=f"{train_cfg.output_dir}/{name.split('/')[1]}")))
        except SplitNotFound as e:  # only a split that is not there; any other error stops the run
            print(f"skipping {name}: {e}")
            skipped.append(name)
    if not results:
        raise InputError(f"no GLUE task ran: the train or dev split of each is missing ({', '.join(skipped)})",
                         field="data_dir")
    print(f"\n{'task':<22}{'metric':<12}{'value':>8}")
    for r in results:
        for k, v in r["best"].items():
            print(f"{r['task']:<22}{k:<12}{v:>8.4f}")
    PartialState().destroy_process_group()  # gloo aborts at exit otherwise
    return results


if __name__ == "__main__":
    run_script(main)
