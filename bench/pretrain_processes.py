"""Pretraining tokens/s on the CPU: 2 processes (gloo DDP, 1 thread each) against 1 process
with 2 threads, in the same run, on the same data and model.

    python bench/pretrain_processes.py --max_steps 150 --output bench/results/pretrain-processes.json

Both runs use scripts/pretrain.py on its embedded corpus (BERT-tiny, seq 128) with the
same global batch (1 × 32 against 2 × 16), so they train the same model; the numbers are
the Trainer's own counts of real (unpadded) tokens over its training time, tokenizer and
data preparation excluded. The single-process run goes first and also builds the shared
tokenizer and data cache.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(processes: int, threads: int, out: Path, args) -> dict:
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes),
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    if processes > 1:
        launch += ["--multi_gpu", "--main_process_port", str(_port())]
    cmd = [*launch, str(ROOT / "scripts" / "pretrain.py"), "--output_dir", str(out), "--max_steps", str(args.max_steps),
           "--per_device_train_batch_size", str(args.global_batch // processes), "--cpu_threads", str(threads),
           "--report_to", "none", "--eval_documents", "0.02", "--logging_steps", "50"]
    if args.tokenizer:
        cmd += ["--tokenizer_name", str(args.tokenizer)]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1"}
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    summary = json.loads((out / "summary.json").read_text())
    return {"processes": processes, "threads_per_process": threads, "steps": summary["steps"],
            "train_seconds": summary["train_seconds"], "train_tokens": summary["train_tokens"],
            "tokens_per_second": summary["train_tokens_per_second"], "eval": summary["eval"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max_steps", type=int, default=150)
    p.add_argument("--global_batch", type=int, default=32)
    p.add_argument("--work_dir", type=Path, default=Path("outputs/bench-processes"))
    p.add_argument("--output", type=Path, default=None)
    args = p.parse_args()
    args.tokenizer = None
    one = run(1, 2, args.work_dir / "one", args)
    args.tokenizer = args.work_dir / "one" / "tokenizer"  # the same vocabulary for both
    two = run(2, 1, args.work_dir / "two", args)
    result = {"one_process_two_threads": one, "two_processes_one_thread": two,
              "ratio_two_processes_over_one": two["tokens_per_second"] / one["tokens_per_second"],
              "load_average": os.getloadavg()}
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
