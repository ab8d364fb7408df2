"""What a result or a saved model folder records about how it was made, written once for
every script: package versions, the command, and the model card (``README.md``) with the
Hub's metadata block, so a number in a folder can be traced to the run that made it.
"""
from __future__ import annotations

import importlib
import json
import platform
import shlex
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

# Every package a selfsup result can depend on; absent optional ones are recorded as None.
PACKAGES = ("selfsup", "torch", "transformers", "tokenizers", "accelerate", "datasets", "peft", "gguf", "numpy")


def package_versions() -> dict[str, str | None]:
    """Versions of ``PACKAGES`` and Python. Read from the module when it is imported (a checkout
    on PYTHONPATH has no installed metadata), else from the installed metadata, else None."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        module = sys.modules.get(name)
        if module is None and name == "selfsup":
            module = importlib.import_module(name)
        if module is not None and getattr(module, "__version__", None):
            out[name] = str(module.__version__)
            continue
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def command() -> str:
    """The command line of this process, as a user would type it again."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(".py"):
        script = Path(argv[0]).resolve()
        try:
            argv[0] = str(script.relative_to(Path.cwd()))
        except ValueError:
            argv[0] = str(script)
        return "python " + shlex.join(argv)
    return shlex.join([Path(argv[0]).name, *argv[1:]]) if argv else ""


def _is_hub_id(name: str | None) -> bool:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not name or Path(name).expanduser().exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def write_model_card(folder: str | Path, *, title: str, summary: str, load: str, pipeline_tag: str | None = None,
                     tags: tuple[str, ...] = (), datasets: tuple[str, ...] = (), base_model: str | None = None,
                     results: list[dict] | None = None, details: dict | None = None,
                     command_line: str | None = None) -> Path:
    """``folder/README.md``: Hub metadata (library, tags, datasets, base model, ``model-index``
    results), then what the folder is, the command that made it, how to load it, and
    ``details`` as JSON sections. ``results``: ``{"task": type, "dataset": {name, type, config?,
    split}, "metrics": {name: value}}`` entries; their values are the run's, not re-measured."""
    folder = Path(folder)
    meta: dict = {"library_name": "transformers", "tags": ["selfsup", *tags]}
    if pipeline_tag:
        meta["pipeline_tag"] = pipeline_tag
    if datasets:
        meta["datasets"] = list(datasets)
    if _is_hub_id(base_model):  # the Hub accepts only ids here; a local path goes in the text
        meta["base_model"] = base_model
    if results:
        meta["model-index"] = [{"name": folder.name, "results": [
            {"task": {"type": r["task"]}, "dataset": r["dataset"],
             "metrics": [{"type": k, "name": k, "value": float(v)} for k, v in r["metrics"].items()]}
            for r in results]}]
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", f"# {title}", "", summary, ""]
    if base_model:
        lines += [f"Started from `{base_model}`.", ""]
    lines += ["## Command", "", "```bash", command_line if command_line is not None else command(), "```", "",
              "## How to load", "", "```python", load.strip(), "```", ""]
    for r in results or []:
        split = r["dataset"].get("split", "")
        lines += [f"## Results: {r['dataset']['name']} {split}".rstrip(), "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {float(v):.4f} |" for k, v in r["metrics"].items()] + [""]
    for heading, value in (details or {}).items():
        lines += [f"## {heading}", "", "```json", json.dumps(value, indent=2, default=str), "```", ""]
    path = folder / "README.md"
    path.write_text("\n".join(lines))
    return path


def read_card_metrics(folder: str | Path) -> list[dict]:
    """The ``model-index`` results of ``folder/README.md`` as ``{"dataset", "metrics": {name: value}}``."""
    text = (Path(folder) / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    return [{"task": r["task"]["type"], "dataset": r["dataset"],
             "metrics": {m["type"]: m["value"] for m in r["metrics"]}}
            for entry in meta.get("model-index", []) for r in entry["results"]]

