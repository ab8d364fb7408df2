"""Few-shot (in-context) evaluation of a causal LM on registered tasks or task YAML files.

    python scripts/icl_eval.py --model PATH_OR_HUB_ID [--gguf_file F] --tasks copa,arc_easy \\
        --num_fewshot 0,4 --seed 1234 --limit 100 --batch_size 8 --output_dir runs/icl
    accelerate launch scripts/icl_eval.py ...   # data-parallel: each example scored once
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from accelerate import Accelerator

from selfsup.cli import parse_config
from selfsup.icl.config import ICLArguments
from selfsup.icl.harness import evaluate_task
from selfsup.icl.models import load_model
from selfsup.icl.results import plot_curve, table, write_results
from selfsup.icl.tasks import get_task


def main(argv: list[str] | None = None) -> list:
    (args,) = parse_config((ICLArguments,), argv, description=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shots = [int(s) for s in args.num_fewshot.split(",")]
    tasks = {t.name: t for t in map(get_task, args.tasks.split(","))}
    if args.output_dir and len(shots) > 1:
        import matplotlib  # noqa: F401  fail now, not after hours of scoring
    accelerator = Accelerator()
    start = time.perf_counter()
    model, tokenizer = load_model(args.model, args.gguf_file, args.peft, args.dtype)
    model.to(accelerator.device)
    results = [evaluate_task(model, tokenizer, task, k, seed=args.seed, limit=args.limit,
                             batch_size=args.batch_size, scorer=args.scorer, calibrate=args.calibrate,
                             max_length=args.max_length, bootstrap_iters=args.bootstrap_iters,
                             accelerator=accelerator, progress=accelerator.is_main_process)
               for task in tasks.values() for k in shots]
    if accelerator.is_main_process:
        print(table(results))
        wall = time.perf_counter() - start
        print(f"wall time: {wall:.1f}s")
        if args.output_dir:
            out = Path(args.output_dir)
            provenance = {"model": args.model, "gguf_file": args.gguf_file, "peft": args.peft, "dtype": args.dtype,
                          "num_fewshot": shots, "seed": args.seed, "limit": args.limit, "batch_size": args.batch_size,
                          "scorer": args.scorer, "calibrate": args.calibrate, "max_length": args.max_length,
                          "bootstrap_iters": args.bootstrap_iters, "num_processes": accelerator.num_processes,
                          "device": str(accelerator.device), "wall_seconds": round(wall, 1)}
            print(f"wrote {write_results(out, results, tasks, provenance)}")
            if len(shots) > 1:
                print(f"wrote {plot_curve(results, out / 'fewshot_curve.png')}")
    accelerator.end_training()  # release the process group: gloo aborts at exit otherwise
    return results


if __name__ == "__main__":
    main()
