"""Resumable runs: each (task, shots) result is saved as soon as it is done, and a later run
with the same settings reuses it instead of scoring again.

Per (task, shots) the output folder holds ``samples_<task>_<k>shot.jsonl`` (per-example
records) and ``result_<task>_<k>shot.json`` (settings, metrics, provenance). Each is written
to a temporary file and renamed, the result file last: it exists only once both are complete,
so an interrupted run leaves either a whole result or none.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

from ..errors import InputError
from ..jsonl import read_jsonl
from .harness import TaskResult
from .models import weights_fingerprint
from .tasks import ICLTask

# The flags a result depends on. Not batch_size, the process count or the device: they change
# log-likelihoods by float noise only (fast == naive within 1e-4 at any batch size, tested).
SETTINGS = ("model", "gguf_file", "peft", "dtype", "seed", "limit", "max_length", "scorer", "calibrate",
            "bootstrap_iters", "apply_chat_template", "system_instruction", "fewshot_as_multiturn")


def result_settings(args, task: ICLTask, num_fewshot: int) -> dict:
    """What a (task, shots) result depends on, as JSON would give it back. ``args``: ICLArguments."""
    # where the YAML lies is not what it says
    spec = {k: v for k, v in dataclasses.asdict(task).items() if k != "source"}
    settings = {name: getattr(args, name) for name in SETTINGS} | {"num_fewshot": num_fewshot, "task": spec}
    # The path alone would reuse the results of a model since retrained and saved at the same path.
    settings["weights_sha256"] = weights_fingerprint(args.model, args.gguf_file, args.peft)
    return json.loads(json.dumps(settings))  # tuples -> lists, so it compares equal to a saved copy


def result_path(output_dir: Path, task: str, num_fewshot: int) -> Path:
    return output_dir / f"result_{task}_{num_fewshot}shot.json"


def samples_path(output_dir: Path, task: str, num_fewshot: int) -> Path:
    return output_dir / f"samples_{task}_{num_fewshot}shot.jsonl"


def _differences(saved, current, prefix: str = "") -> list[tuple[str, object, object]]:
    """``(dotted field, saved value, current value)`` for every field that differs."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [d for key in sorted(set(saved) | set(current), key=str)
                for d in _differences(saved.get(key), current.get(key), f"{prefix}{key}.")]
    return [] if saved == current else [(prefix.rstrip("."), saved, current)]


def load_result(output_dir: Path, task: str, num_fewshot: int, settings: dict) -> TaskResult | None:
    """The saved result of (task, shots), or None if there is none. A result saved with other
    settings raises InputError naming the file and the first differing field."""
    path = result_path(output_dir, task, num_fewshot)
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON ({e.msg}); delete it or pass --overwrite_output_dir", path=path) from None
    if not isinstance(saved, dict) or not isinstance(saved.get("settings"), dict):
        raise InputError("not a result file of scripts/icl_eval.py (no settings); delete it or pass "
                         "--overwrite_output_dir", path=path)
    if diffs := _differences(saved.get("settings"), settings):
        field, was, now = diffs[0]
        more = f" (and {len(diffs) - 1} more fields)" if len(diffs) > 1 else ""
        raise InputError(f"saved with {was!r}, this run has {now!r}{more}; pass --overwrite_output_dir to score "
                         "again and replace it, or use another --output_dir", path=path, field=field)
    records = [row for _, row in read_jsonl(samples_path(output_dir, task, num_fewshot))]
    if len(records) != saved["metrics"]["n"]:
        raise InputError(f"{len(records)} records for n={saved['metrics']['n']}; delete it or pass "
                         "--overwrite_output_dir", path=samples_path(output_dir, task, num_fewshot))
    return TaskResult(task, num_fewshot, saved["metrics"], records, saved["seconds"])


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the whole new one, never a part (rename is atomic)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_result(output_dir: Path, result: TaskResult, settings: dict, provenance: dict) -> Path:
    """Samples first, then the result file that marks them complete; returns the result file."""
    output_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(samples_path(output_dir, result.task, result.num_fewshot),
                  "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.records))
    path = result_path(output_dir, result.task, result.num_fewshot)
    saved = {"task": result.task, "num_fewshot": result.num_fewshot, "settings": settings, "metrics": result.metrics,
             "seconds": round(result.seconds, 2),
             "provenance": provenance | {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}}
    write_atomic(path, json.dumps(saved, indent=2, ensure_ascii=False))
    return path
