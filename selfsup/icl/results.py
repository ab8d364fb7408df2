"""Outputs: stdout table, results.json with provenance, few-shot curve PNG (the per-example
JSONL of each (task, shots) is written by ``resume.save_result`` as soon as it is done)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..provenance import command, package_versions
from .harness import TaskResult
from .resume import write_atomic
from .tasks import ICLTask


def task_provenance(task: ICLTask) -> dict:
    return {k: v for k, v in dataclasses.asdict(task).items()}


def table(results: list[TaskResult]) -> str:
    lines = [f"{'task':<15} {'shots':>5} {'metric':<15} {'value':>7} {'stderr':>7} {'n':>6}", "-" * 60]
    for r in results:
        for name, value in r.metrics.items():
            if name == "n" or name.endswith("_stderr"):
                continue
            lines.append(f"{r.task:<15} {r.num_fewshot:>5} {name:<15} {value:>7.4f} "
                         f"{r.metrics[name + '_stderr']:>7.4f} {r.metrics['n']:>6}")
    return "\n".join(lines)


def write_results(output_dir: Path, results: list[TaskResult], tasks: dict[str, ICLTask], provenance: dict) -> Path:
    """``results.json``: provenance, task specs and the metrics of every (task, shots). The
    per-example ``samples_*.jsonl`` are written as each result is done (``resume.save_result``)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = {"provenance": provenance | {"packages": package_versions(), "command": command()},
               "tasks": {name: task_provenance(spec) for name, spec in tasks.items()},
               "results": {}}
    for r in results:
        summary["results"].setdefault(r.task, {})[str(r.num_fewshot)] = r.metrics | {"seconds": round(r.seconds, 2)}
    path = output_dir / "results.json"
    write_atomic(path, json.dumps(summary, indent=2, ensure_ascii=False))
    return path


def primary_metric(result: TaskResult) -> str:
    """The task's first reported metric: acc, or exact_match for generate_until tasks."""
    return next(name for name in result.metrics if name != "n" and not name.endswith("_stderr"))


def plot_curve(results: list[TaskResult], path: Path, metric: str | None = None) -> Path:
    """``metric`` (default: each task's primary metric) against number of shots, one line
    per task, error bars = bootstrap stderr."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("the few-shot curve needs matplotlib: pip install 'selfsup[plot]'") from None
    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for task in sorted({r.task for r in results}):
        runs = [r for r in results if r.task == task]
        name = metric or primary_metric(runs[0])
        points = sorted((r.num_fewshot, r.metrics[name], r.metrics[f"{name}_stderr"]) for r in runs)
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points], marker="o",
                    capsize=3, label=f"{task} ({name})")
    ax.set_xticks(sorted({r.num_fewshot for r in results}))  # the shots run, not fractions between them
    ax.set_xlabel("demonstrations (shots)")
    ax.set_ylabel(metric or "score")
    # beside the axes: ten tasks cover the lines
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
