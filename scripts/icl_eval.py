"""Few-shot (in-context) evaluation of a causal LM on registered tasks or task YAML files.

    python scripts/icl_eval.py --model PATH_OR_HUB_ID [--gguf_file F] --tasks copa,arc_easy \\
        --num_fewshot 0,4 --seed 1234 --limit 100 --batch_size 8 --output_dir runs/icl
    accelerate launch scripts/icl_eval.py ...   # data-parallel: each example scored once
    python scripts/icl_eval.py --model M --tasks my_group --include_path my_tasks/ \
        --apply_chat_template --system_instruction "Answer briefly."   # lm-eval task YAML, chat models

Each (task, shots) result is saved in --output_dir as soon as it is done; running the same
command again skips those (an interrupted run resumes), and a result saved with other
settings is an error unless --overwrite_output_dir is given.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from accelerate import Accelerator

from selfsup.cli import parse_config, run_script
from selfsup.icl.config import ICLArguments
from selfsup.icl.harness import evaluate_task
from selfsup.icl.models import load_model
from selfsup.icl.requests import ChatFormat
from selfsup.icl.results import package_versions, plot_curve, table, write_results
from selfsup.icl.resume import load_result, result_path, result_settings, save_result
from selfsup.icl.tasks import get_icl_tasks


def main(argv: list[str] | None = None) -> list:
    (args,) = parse_config((ICLArguments,), argv, description=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shots = [int(s) for s in args.num_fewshot.split(",")] if args.num_fewshot is not None else None
    tasks = {t.name: t for t in get_icl_tasks(args.tasks, args.include_path)}
    # Without --num_fewshot each task runs at its own num_fewshot (lm-eval's rule), else 0.
    shots_of = {name: shots if shots is not None else [t.num_fewshot or 0] for name, t in tasks.items()}
    chat = ChatFormat(args.apply_chat_template, args.system_instruction, args.fewshot_as_multiturn)
    if args.output_dir and len({k for ks in shots_of.values() for k in ks}) > 1:
        import matplotlib  # noqa: F401  fail now, not after hours of scoring
    out = Path(args.output_dir) if args.output_dir else None
    runs = [(task, k, result_settings(args, task, k)) for task in tasks.values() for k in shots_of[task.name]]
    # Every process reads what earlier runs saved before anything is scored: a result saved with
    # other settings stops the run now, not hours later, and all processes skip the same ones.
    saved = {}
    if out is not None and not args.overwrite_output_dir:
        saved = {(task.name, k): r for task, k, settings in runs
                 if (r := load_result(out, task.name, k, settings)) is not None}
    accelerator = Accelerator()
    start = time.perf_counter()
    model = tokenizer = None
    if len(saved) < len(runs):
        model, tokenizer = load_model(args.model, args.gguf_file, args.peft, args.dtype)
        model.to(accelerator.device)
    provenance = {"batch_size": args.batch_size, "num_processes": accelerator.num_processes,
                  "device": str(accelerator.device)}
    results = []
    for task, k, settings in runs:
        if (task.name, k) in saved:
            if accelerator.is_main_process:
                print(f"{task.name} {k}-shot: already in {result_path(out, task.name, k)} with the same settings, "
                      "not scored again")
            results.append(saved[task.name, k])
            continue
        result = evaluate_task(model, tokenizer, task, k, seed=args.seed, limit=args.limit,
                               batch_size=args.batch_size, scorer=args.scorer, calibrate=args.calibrate,
                               max_length=args.max_length, bootstrap_iters=args.bootstrap_iters,
                               accelerator=accelerator, progress=accelerator.is_main_process, chat=chat)
        if out is not None and accelerator.is_main_process:
            save_result(out, result, settings, provenance | {"packages": package_versions()})
        results.append(result)
    if accelerator.is_main_process:
        print(table(results))
        wall = time.perf_counter() - start
        print(f"wall time: {wall:.1f}s")
        if out is not None:
            run = {"model": args.model, "gguf_file": args.gguf_file, "peft": args.peft, "dtype": args.dtype,
                   "num_fewshot": shots if shots is not None else shots_of, "seed": args.seed,
                   "limit": args.limit, "scorer": args.scorer,
                   "calibrate": args.calibrate, "max_length": args.max_length,
                   "apply_chat_template": args.apply_chat_template, "system_instruction": args.system_instruction,
                   "fewshot_as_multiturn": args.fewshot_as_multiturn, "include_path": args.include_path,
                   "bootstrap_iters": args.bootstrap_iters, "wall_seconds": round(wall, 1),
                   # the wall time covers only what this run scored
                   "reused": [f"{name} {k}-shot" for name, k in saved]}
            print(f"wrote {write_results(out, results, tasks, run | provenance)}")
            if len({k for ks in shots_of.values() for k in ks}) > 1:
                print(f"wrote {plot_curve(results, out / 'fewshot_curve.png')}")
    accelerator.end_training()  # release the process group: gloo aborts at exit otherwise
    return results


if __name__ == "__main__":
    run_script(main)
