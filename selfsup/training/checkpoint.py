"""Atomic, resumable checkpoints on top of ``Accelerator.save_state``.

A checkpoint is written to a hidden temporary folder and renamed into place only when
every process has finished writing, so a crash mid-save never leaves a folder that looks
complete. Only the newest ``limit`` checkpoints are kept. Besides Accelerate's training
state, a checkpoint can hold anything else written into the temporary folder before the
rename (the loop writes the model as a Hub-style ``model/`` folder, so every checkpoint
loads with ``from_pretrained``).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable

_NAME = re.compile(r"^step-(\d+)$")


def checkpoint_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoint_dir(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def save_checkpoint(accelerator, output_dir: str | Path, step: int, limit: int,
                    write_also: Callable[[Path], None] | None = None) -> Path:
    """``write_also(tmp_folder)`` is called on every process after the state is written
    and before the folder is renamed into place."""
    root = checkpoint_dir(output_dir)
    final, tmp = root / f"step-{step:08d}", root / f".step-{step:08d}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    if write_also is not None:
        write_also(tmp)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for old in list_checkpoints(output_dir)[:-limit] if limit > 0 else []:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final
