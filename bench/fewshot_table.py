"""A few-shot table of several models from their scripts/icl_eval.py output folders, on the
examples every folder scored (the first n of each split: demonstrations are seeded per
example, so a --limit run and a full run give the same prompts for those examples; checked).

    python bench/fewshot_table.py --runs gpt-default=bench/results/icl-gpt-vs-smollm2/gpt-default \\
        smollm2=bench/results/icl-smollm2-full --tasks copa,arc_easy,piqa --shots 0,4 \\
        --output bench/results/icl-gpt-vs-smollm2/table.json

Accuracy (``acc``: the choice of highest log-likelihood) with its bootstrap standard error,
recomputed from the per-example logs (``samples_<task>_<k>shot.jsonl[.gz]``), beside the
accuracy of always picking the shortest choice (in characters).
"""
from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from selfsup.icl.metrics import bootstrap_stderr, icl_metrics


def read_samples(folder: Path, task: str, shots: int) -> list[dict]:
    path = folder / f"samples_{task}_{shots}shot.jsonl"
    if not path.exists():
        path = path.with_name(path.name + ".gz")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return sorted((json.loads(line) for line in f if line.strip()), key=lambda r: r["index"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, help="name=folder of scripts/icl_eval.py output")
    p.add_argument("--tasks", default="copa,arc_easy,piqa")
    p.add_argument("--shots", default="0,4")
    p.add_argument("--metric", default="acc")
    p.add_argument("--output", type=Path, default=None)
    args = p.parse_args()
    runs = dict(r.split("=", 1) for r in args.runs)
    table, rows = {}, []
    for task in args.tasks.split(","):
        for k in map(int, args.shots.split(",")):
            samples = {name: read_samples(Path(folder), task, k) for name, folder in runs.items()}
            n = min(len(s) for s in samples.values())
            first = {name: s[:n] for name, s in samples.items()}
            ids = {name: [(r["doc_id"], r["fewshot_ids"]) for r in s] for name, s in first.items()}
            if len({json.dumps(v) for v in ids.values()}) != 1:
                raise SystemExit(f"{task} {k}-shot: the runs scored different examples or demonstrations")
            cell = {}
            for name, records in first.items():
                values = [icl_metrics.get(args.metric)(r) for r in records]
                cell[name] = {args.metric: sum(values) / n, "stderr": bootstrap_stderr(values, 1000, 1234)}
            # What a model that only prefers short answers gets (summed log-likelihoods favour them).
            records = next(iter(first.values()))
            shortest = sum(min(range(len(r["choices"])), key=lambda i: len(r["choices"][i])) == r["gold"]
                           for r in records) / n
            table[f"{task} {k}-shot"] = {"n": n, "shortest_choice": shortest} | cell
            scores = [f"{cell[name][args.metric]:.3f} ± {cell[name]['stderr']:.3f}" for name in runs]
            rows.append(f"| {task} | {k} | {n} | {' | '.join(scores)} | {shortest:.2f} |")
    header = f"| task | shots | n | {' | '.join(runs)} | shortest choice |\n|---|---|---|" + "---|" * (len(runs) + 1)
    print(header + "\n" + "\n".join(rows))
    if args.output:
        args.output.write_text(json.dumps({"metric": args.metric, "runs": runs, "table": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
