"""The training loop shared by every selfsup script, on Accelerate.

What it guarantees (each is a test in tests/test_training_loop.py):

* **Token-normalised accumulation**: the loss of an optimizer step is the sum of
  per-target losses over the whole accumulation window on all processes, divided by
  the number of targets in that window; so k micro-batches of B ≡ one batch of k·B, and
  2 processes × B ≡ 1 process × 2B.
* **Schedules in optimizer steps**, identical whatever the number of processes (the
  scheduler is stepped once per optimizer step, not once per process).
* **Resume ≡ uninterrupted**: model, optimizer, scheduler, RNG states and the position in
  the (seeded) data order are restored.
* **Non-finite loss stops training** with a clear error before the optimizer step, so
  nothing built on a NaN is ever saved.

A task plugs in with two small functions: ``count_fn(batch) -> {name: tensor}`` (the
normalisers of the window, e.g. target tokens) and ``loss_fn(model, batch, counts) ->
(loss, outputs)`` where ``loss`` is this micro-batch's share of the window's loss.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checkpoint import latest_checkpoint, save_checkpoint
from .config import TrainingConfig
from .optim import build_optimizer


logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Raised when the loss is NaN or infinite; nothing is saved after it."""


def count_target_tokens(batch: dict) -> dict[str, torch.Tensor]:
    """Default normaliser: positions whose label is not -100."""
    return {"tokens": (batch["labels"] != -100).sum()}


def model_loss(model, batch: dict, counts: dict[str, torch.Tensor]):
    """Default loss: the model's own, token-normalised over the window (HF's
    ``num_items_in_batch`` convention)."""
    out = model(**batch, num_items_in_batch=counts["tokens"].clamp(min=1))
    return out.loss, out


@dataclass
class LoopState:
    """Where training is: saved with every checkpoint."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


def make_accelerator(config: TrainingConfig) -> Accelerator:
    log_with = None if config.report_to in ("none", "", None) else config.report_to
    accelerator = Accelerator(mixed_precision=config.mixed_precision, log_with=log_with, project_dir=config.output_dir,
                              dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed))
    if accelerator.device.type == "cpu":
        threads = cpu_threads(config.cpu_threads, int(os.environ.get("LOCAL_WORLD_SIZE", accelerator.num_processes)))
        torch.set_num_threads(threads)
        logger.info("training on the CPU with %d thread(s) per process (--cpu_threads to change)", threads)
    return accelerator


def cpu_threads(requested: int, local_processes: int) -> int:
    """``requested`` if set, else the cores this process may run on (its affinity, so
    ``taskset`` is honoured) divided among the ``local_processes`` on this machine."""
    if requested > 0:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, local_processes))


class Trainer:
    """Trains ``model`` on ``train_dataset`` (a map-style dataset) with ``collate_fn``.

    ``evaluate_fn(model, accelerator) -> dict`` is called every ``eval_steps`` and at the
    end, on every process (it must gather/reduce its own counts); its numbers are logged.
    """

    def __init__(self, model: torch.nn.Module, config: TrainingConfig, train_dataset, collate_fn: Callable,
                 *, loss_fn: Callable = model_loss, count_fn: Callable = count_target_tokens,
                 evaluate_fn: Callable | None = None, accelerator: Accelerator | None = None,
                 hparams: dict | None = None):
        self.config = config
        self.accelerator = accelerator or make_accelerator(config)
        set_seed(config.seed)
        loader = DataLoader(train_dataset, batch_size=config.per_device_train_batch_size, shuffle=True,
                            collate_fn=collate_fn, num_workers=config.dataloader_num_workers)
        self.steps_per_epoch = max(1, math.ceil(len(loader) / config.gradient_accumulation_steps))
        self.total_steps = config.max_steps if config.max_steps > 0 else max(
            1, math.ceil(config.num_train_epochs * self.steps_per_epoch))
        optimizer, self.scheduler = build_optimizer(model, config, self.total_steps)
        # The scheduler is not prepared: Accelerate would step it once per process.
        self.model, self.optimizer, self.loader = self.accelerator.prepare(model, optimizer, loader)
        self.state = LoopState()
        self.accelerator.register_for_checkpointing(self.scheduler, self.state)
        self.loss_fn, self.count_fn, self.evaluate_fn = loss_fn, count_fn, evaluate_fn
        self.hparams = hparams or {}
        self.metrics_path = Path(config.output_dir) / "metrics.jsonl"
        self.history: list[dict] = []
        self._start = time.time()

    # -- logging -------------------------------------------------------------------
    def log(self, metrics: dict, step: int) -> None:
        # Wall-clock seconds since train() started: learning curves against time, not only steps.
        record = {"step": step, "elapsed_seconds": round(time.time() - self._start, 2),
                  **{k: float(v) for k, v in metrics.items()}}
        self.history.append(record)
        if self.accelerator.is_main_process:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        # TensorBoard keeps its own wall time.
        self.accelerator.log({k: v for k, v in record.items() if k not in ("step", "elapsed_seconds")}, step=step)

    def evaluate(self) -> dict:
        if self.evaluate_fn is None:
            return {}
        self.model.eval()
        with torch.no_grad():
            metrics = self.evaluate_fn(self.model, self.accelerator)
        self.model.train()
        self.log({f"eval/{k}": v for k, v in metrics.items()}, self.state.step)
        return metrics

    # -- the loop ----------------------------------------------------------------------
    def _window_counts(self, window: list[dict]) -> dict[str, torch.Tensor]:
        counts: dict[str, torch.Tensor] = {}
        for batch in window:
            for k, v in self.count_fn(batch).items():
                counts[k] = counts.get(k, 0) + v
        return self.accelerator.reduce(counts, reduction="sum")

    def train(self) -> dict:
        config, acc = self.config, self.accelerator
        Path(config.output_dir).mkdir(parents=True, exist_ok=True)
        if config.resume_from_checkpoint and (ckpt := latest_checkpoint(config.output_dir)) is not None:
            acc.load_state(str(ckpt))
            acc.print(f"resumed from {ckpt} at step {self.state.step}")
        if config.report_to not in ("none", "", None):
            acc.init_trackers("selfsup", config={k: v if isinstance(v, (int, float, str, bool)) else str(v)
                                                 for k, v in {**asdict(config), **self.hparams}.items()})
        progress = tqdm(total=self.total_steps, initial=self.state.step, desc="training",
                        disable=not acc.is_local_main_process, dynamic_ncols=True)
        self.model.train()
        self._start = start = time.time()
        while self.state.step < self.total_steps:
            self.loader.set_epoch(self.state.epoch)
            batches = iter(acc.skip_first_batches(self.loader, self.state.batches_in_epoch)
                           if self.state.batches_in_epoch else self.loader)
            while self.state.step < self.total_steps and (
                    window := list(islice(batches, config.gradient_accumulation_steps))):
                self._optimizer_step(window)
                progress.update(1)
                step = self.state.step
                if config.eval_steps and step % config.eval_steps == 0 and step < self.total_steps:
                    self.evaluate()
                if config.save_steps and step % config.save_steps == 0:
                    save_checkpoint(acc, config.output_dir, step, config.save_total_limit)
            if self.state.step < self.total_steps:  # the epoch ran out of data
                self.state.epoch += 1
                self.state.batches_in_epoch = 0
        progress.close()
        final_eval = self.evaluate()
        train_seconds = time.time() - start
        summary = {"steps": self.state.step, "train_seconds": train_seconds,
                   "train_loss": next((h["loss"] for h in reversed(self.history) if "loss" in h), None),
                   "eval": final_eval}
        # Trackers only: Accelerator.end_training() would also destroy the process group,
        # and save_model() and evaluation after train() still need it.
        for tracker in acc.trackers:
            tracker.finish()
        return summary

    def _optimizer_step(self, window: list[dict]) -> None:
        config, acc = self.config, self.accelerator
        counts = self._window_counts(window)
        window_loss = torch.zeros((), device=acc.device)
        for i, batch in enumerate(window):
            sync = i == len(window) - 1
            with (nullcontext() if sync else acc.no_sync(self.model)), acc.autocast():
                loss, _ = self.loss_fn(self.model, batch, counts)
            window_loss += loss.detach().float()
            # DDP averages gradients over processes; the loss is already a share of the
            # global sum, so scale back up to make that average the global sum.
            acc.backward(loss * acc.num_processes)
        window_loss = acc.reduce(window_loss, reduction="sum")
        if not torch.isfinite(window_loss):
            raise NonFiniteLossError(
                f"loss is {window_loss.item()} at optimizer step {self.state.step + 1}; stopped before the "
                "update, nothing was saved (lower the learning_rate, check the data, or disable fp16)")
        grad_norm = acc.clip_grad_norm_(self.model.parameters(), config.max_grad_norm) \
            if config.max_grad_norm > 0 else None
        lr = self.scheduler.get_last_lr()[0]  # the rate this update used (logged as the Trainer does)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1
        self.state.batches_in_epoch += len(window)
        if self.state.step % max(1, config.logging_steps) == 0 or self.state.step == self.total_steps:
            metrics = {"loss": window_loss.item(), "learning_rate": lr,
                       "epoch": self.state.epoch + self.state.batches_in_epoch / max(1, len(self.loader))}
            if grad_norm is not None:
                metrics["grad_norm"] = float(grad_norm)
            self.log(metrics, self.state.step)

    def save_model(self, path: str | Path, tokenizer=None) -> Path:
        """A plain Hub-style folder (safetensors + config [+ tokenizer]) on the main process."""
        path = Path(path)
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            model = self.accelerator.unwrap_model(self.model)
            model.save_pretrained(path, safe_serialization=True)
            if tokenizer is not None:
                tokenizer.save_pretrained(path)
        self.accelerator.wait_for_everyone()
        return path
