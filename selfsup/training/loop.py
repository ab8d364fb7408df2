"""The training loop shared by every selfsup script, on Accelerate.

What it guarantees (each is a test in tests/test_training_loop.py):

* **Token-normalised accumulation**: the loss of an optimizer step is the sum of
  per-target losses over the whole accumulation window on all processes, divided by
  the number of targets in that window; so k micro-batches of B ≡ one batch of k·B, and
  2 processes × B ≡ 1 process × 2B.
* **One update per window under every backend**: windows run inside
  ``accelerator.accumulate``, so DDP and FSDP reduce gradients once, DeepSpeed's engine
  steps once, and clipping goes through ``accelerator.clip_grad_norm_`` (DeepSpeed clips
  inside its engine, with ``max_grad_norm`` written into its config).
* **Epochs as in transformers**: an epoch is one pass over the data by all processes
  together; steps, the schedule, per-epoch evaluation and the logged ``epoch`` are
  computed from the loader *after* Accelerate has sharded it.
* **Streams in lockstep**: a torch or 🤗 ``IterableDataset``, already split across
  processes (``split_dataset_by_node``), is read as it comes and never sharded again;
  ``max_steps`` is required, an epoch is one pass over this process's shard, and a window
  runs on into the next pass, so every process takes the same optimizer steps of the same
  number of batches (the same collectives) however long its shard. A resumed run re-reads
  the current pass up to where it was.
* **Schedules in optimizer steps**, identical whatever the number of processes (the
  scheduler is stepped once per optimizer step, not once per process).
* **Resume ≡ uninterrupted, bit for bit**: model, optimizer, scheduler, best-model
  tracking and the position in the (seeded) data order are restored, and the random
  numbers of optimizer step n (dropout, and anything else drawn from the global
  generators while computing it) come from generators seeded by (seed, n, process), so
  they do not depend on where the run was interrupted. Data-side randomness (dynamic
  masking) is the collator's: a collator with ``set_epoch`` is told the epoch and should
  derive its draws from (seed, epoch, example index), as ``MaskingCollator`` does.
* **Non-finite loss stops training** with a clear error before the backward pass (so
  before any update, DeepSpeed's included), on every process at once, so nothing built on
  a NaN is ever saved.

A task plugs in with small functions: ``count_fn(batch) -> {name: tensor}`` (the
normalisers of the window, e.g. target tokens), ``loss_fn(model, batch, counts, state) ->
(loss, outputs)`` where ``loss`` is this micro-batch's share of the window's loss, and
``evaluate_fn(model, accelerator, state) -> metrics``; ``state`` is the loop's
:class:`LoopState` (step, epoch, best metric so far).
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Callable, Iterator

import torch
from accelerate import Accelerator
from accelerate.utils import (
    DataLoaderConfiguration,
    DistributedType,
    GradientAccumulationPlugin,
    InitProcessGroupKwargs,
    send_to_device,
    set_seed,
)
from safetensors.torch import load_file
from torch.utils.data import DataLoader, IterableDataset
from tqdm.auto import tqdm

from ..errors import InputError
from .checkpoint import latest_checkpoint, save_checkpoint
from .config import TrainingConfig
from .optim import build_optimizer

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Raised when the loss is NaN or infinite; nothing is saved after it."""


def count_target_tokens(batch: dict) -> dict[str, torch.Tensor]:
    """Default normaliser: positions whose label is not -100."""
    return {"tokens": (batch["labels"] != -100).sum()}


def model_loss(model, batch: dict, counts: dict[str, torch.Tensor], state=None):
    """Default loss: the model's own, token-normalised over the window (HF's
    ``num_items_in_batch`` convention)."""
    out = model(**batch, num_items_in_batch=counts["tokens"].clamp(min=1))
    return out.loss, out


@dataclass
class LoopState:
    """Where training is: saved with every checkpoint, and passed to the task's hooks."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


def make_accelerator(config: TrainingConfig) -> Accelerator:
    log_with = None if config.report_to in ("none", "", None) else config.report_to
    # The loop hands Accelerate whole windows and says where each ends, so the plugin must
    # not end a window at the end of the data on its own (the window was read in full first).
    accumulation = GradientAccumulationPlugin(num_steps=config.gradient_accumulation_steps, sync_with_dataloader=False)
    handlers = []
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true" and not torch.cuda.is_available():
        # Accelerate picks no process-group backend for DeepSpeed on a host without GPUs, and
        # every rank then believes it is alone (DeepSpeed's batch-size check fails): say gloo.
        handlers.append(InitProcessGroupKwargs(backend="gloo"))
    accelerator = Accelerator(mixed_precision=config.mixed_precision, log_with=log_with, project_dir=config.output_dir,
                              gradient_accumulation_plugin=accumulation, kwargs_handlers=handlers,
                              dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True,
                                                                        data_seed=config.seed))
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        # DeepSpeed accumulates and clips inside its engine, from its own config: make that
        # config say what the loop was told, not what an accelerate YAML file said.
        ds_config = accelerator.state.deepspeed_plugin.deepspeed_config
        ds_config["gradient_accumulation_steps"] = config.gradient_accumulation_steps
        ds_config["gradient_clipping"] = config.max_grad_norm
        # prepare() reads the micro-batch from a loader passed with the model; ours is prepared first.
        ds_config["train_micro_batch_size_per_gpu"] = config.per_device_train_batch_size
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


def step_seed(seed: int, step: int) -> int:
    """The seed of optimizer step ``step``'s random numbers (before the process offset)."""
    return (seed * 1_000_003 + step) % 2**31


class Trainer:
    """Trains ``model`` on ``train_dataset`` (a map-style dataset, or a stream: an
    ``IterableDataset`` holding this process's shard) with ``collate_fn``.

    ``evaluate_fn(model, accelerator, state) -> dict`` is called on the prepared (wrapped)
    model every ``eval_steps`` (or every epoch) and at the end, on every process (it must
    gather/reduce its own counts); its numbers are logged, and with
    ``config.metric_for_best_model`` the best model so far is kept in ``output_dir/best``.
    ``tokenizer`` is saved beside every model the Trainer writes.
    """

    def __init__(self, model: torch.nn.Module, config: TrainingConfig, train_dataset, collate_fn: Callable,
                 *, loss_fn: Callable = model_loss, count_fn: Callable = count_target_tokens,
                 evaluate_fn: Callable | None = None, accelerator: Accelerator | None = None,
                 hparams: dict | None = None, tokenizer=None):
        self.config = config
        self.accelerator = accelerator or make_accelerator(config)
        if self.accelerator.gradient_accumulation_steps != config.gradient_accumulation_steps:
            raise InputError(f"the Accelerator accumulates {self.accelerator.gradient_accumulation_steps} batches, the "
                             f"config {config.gradient_accumulation_steps}: build it with make_accelerator(config)",
                             field="gradient_accumulation_steps")
        set_seed(config.seed)
        if config.gradient_checkpointing:
            # transformers 5.24 renamed it (the old name warns); earlier 5.x have only the old one
            enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            enable()
        # A stream (a torch or 🤗 IterableDataset) comes already split across processes
        # (split_dataset_by_node) and without a length: its loader is not prepared, since
        # Accelerate would shard it a second time; its batches are moved to the device as read.
        self.streaming = isinstance(train_dataset, IterableDataset)
        if self.streaming and config.max_steps <= 0:
            raise InputError("a stream has no length to count epochs in: give the number of optimizer steps",
                             field="max_steps")
        if self.streaming and config.eval_strategy == "epoch":
            raise InputError("each process ends its passes over a stream at its own step: evaluate every "
                             "eval_steps instead", field="eval_strategy")
        loader = DataLoader(train_dataset, batch_size=config.per_device_train_batch_size, shuffle=not self.streaming,
                            collate_fn=collate_fn, num_workers=config.dataloader_num_workers)
        self.collate_fn = collate_fn
        self.loader = loader if self.streaming else self.accelerator.prepare(loader)
        # Counted from the prepared loader: it holds this process's share of every epoch, so
        # N processes take 1/N of the steps of one (transformers' Trainer does the same).
        self.steps_per_epoch = None if self.streaming else max(
            1, math.ceil(len(self.loader) / config.gradient_accumulation_steps))
        self.total_steps = config.max_steps if config.max_steps > 0 else max(
            1, math.ceil(config.num_train_epochs * self.steps_per_epoch))
        # FSDP2 and DeepSpeed need the model and its optimizer in one prepare() call (each
        # rebuilds the optimizer around the parameters it shards), so the optimizer is built
        # on the model as it comes. The scheduler is not prepared: Accelerate would step it
        # once per process.
        optimizer, self.scheduler = build_optimizer(model, config, self.total_steps)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.state = LoopState()
        self.accelerator.register_for_checkpointing(self.scheduler, self.state)
        self.loss_fn, self.count_fn, self.evaluate_fn = loss_fn, count_fn, evaluate_fn
        self.tokenizer = tokenizer
        self.hparams = hparams or {}
        self.metrics_path = Path(config.output_dir) / "metrics.jsonl"
        self.best_dir = Path(config.output_dir) / "best"
        self.history: list[dict] = []
        self.best_metrics: dict | None = None
        self.samples_seen = self.tokens_seen = 0
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
        """Runs ``evaluate_fn``, logs its metrics and, when ``metric_for_best_model`` improved,
        saves the model to ``output_dir/best`` (a loadable Hub-style folder)."""
        if self.evaluate_fn is None:
            return {}
        self.model.eval()
        with torch.no_grad():
            metrics = self.evaluate_fn(self.model, self.accelerator, self.state)
        self.model.train()
        self.log({f"eval/{k}": v for k, v in metrics.items()}, self.state.step)
        key = self.config.metric_for_best_model
        if key:
            name = key.removeprefix("eval/").removeprefix("eval_")
            if name not in metrics:
                raise InputError(f"evaluation gave no {name!r}; it gives {sorted(metrics)}",
                                 field="metric_for_best_model")
            value, best = float(metrics[name]), self.state.best_metric
            if best is None or (value > best if self.config.greater_is_better else value < best):
                self.state.best_metric, self.state.best_step = value, self.state.step
                self.best_metrics = {**metrics, "step": self.state.step}
                self.save_model(self.best_dir)
        return metrics

    # -- the loop ----------------------------------------------------------------------
    def _window_counts(self, window: list[dict]) -> dict[str, torch.Tensor]:
        counts: dict[str, torch.Tensor] = {}
        for batch in window:
            for k, v in self.count_fn(batch).items():
                counts[k] = counts.get(k, 0) + v
        return self.accelerator.reduce(counts, reduction="sum")

    def _resume(self) -> None:
        option = self.config.resume_from_checkpoint
        if option in (None, False, "", "false", "False", "no"):
            return
        if option in (True, "true", "True", "yes", "latest"):
            ckpt = latest_checkpoint(self.config.output_dir)
            if ckpt is None:
                raise InputError(f"--resume_from_checkpoint {option}: no checkpoint in "
                                 f"{Path(self.config.output_dir) / 'checkpoints'} (nothing was saved there; "
                                 "train without it, or give a checkpoint folder)", field="resume_from_checkpoint")
        else:
            ckpt = Path(option)
            if not ckpt.is_dir():
                raise InputError("checkpoint folder not found", path=ckpt)
        self.accelerator.load_state(str(ckpt))
        if self.state.best_step is not None and self.accelerator.is_main_process and not self.best_dir.is_dir():
            logger.warning("the best model of step %s is not in %s any more", self.state.best_step, self.best_dir)
        self.accelerator.print(f"resumed from {ckpt} at step {self.state.step}")

    def train(self) -> dict:
        config, acc = self.config, self.accelerator
        Path(config.output_dir).mkdir(parents=True, exist_ok=True)
        self._resume()
        if config.report_to not in ("none", "", None):
            acc.init_trackers("selfsup", config={k: v if isinstance(v, (int, float, str, bool)) else str(v)
                                                 for k, v in {**asdict(config), **self.hparams}.items()})
        progress = tqdm(total=self.total_steps, initial=self.state.step, desc="training",
                        disable=not acc.is_local_main_process, dynamic_ncols=True)
        self.model.train()
        self._start = start = time.time()
        samples_at_start, tokens_at_start = self.samples_seen, self.tokens_seen
        while self.state.step < self.total_steps:
            if self.streaming:
                batches = self._stream()  # endless: the loop below ends at total_steps
            else:
                self.loader.set_epoch(self.state.epoch)
                if hasattr(self.collate_fn, "set_epoch"):
                    self.collate_fn.set_epoch(self.state.epoch)
                batches = iter(acc.skip_first_batches(self.loader, self.state.batches_in_epoch)
                               if self.state.batches_in_epoch else self.loader)
            while self.state.step < self.total_steps and (
                    window := list(islice(batches, config.gradient_accumulation_steps))):
                self._optimizer_step(window)
                progress.update(1)
                step = self.state.step
                if config.eval_strategy == "steps" and config.eval_steps and step % config.eval_steps == 0 \
                        and step < self.total_steps:
                    self.evaluate()
                if config.save_steps and step % config.save_steps == 0:
                    save_checkpoint(acc, config.output_dir, step, config.save_total_limit,
                                    write_also=lambda folder: self.save_model(folder / "model"))
            if not self.streaming and self.state.step < self.total_steps:  # the epoch ran out of data
                self.state.epoch += 1
                self.state.batches_in_epoch = 0
                if config.eval_strategy == "epoch" and self.state.step < self.total_steps:
                    self.evaluate()
        progress.close()
        final_eval = self.evaluate()
        train_seconds = time.time() - start
        if config.load_best_model_at_end and self.state.best_step not in (None, self.state.step):
            self.load_best_model()
        samples, tokens = acc.reduce(torch.stack([torch.as_tensor(x, device=acc.device).long() for x in (
            self.samples_seen - samples_at_start, self.tokens_seen - tokens_at_start)]), reduction="sum").tolist()
        summary = {"steps": self.state.step, "epoch": self._epoch_progress(), "train_seconds": train_seconds,
                   "train_samples": samples, "train_samples_per_second": samples / max(train_seconds, 1e-9),
                   # real (unpadded) tokens, when batches carry an attention mask
                   "train_tokens": tokens, "train_tokens_per_second": tokens / max(train_seconds, 1e-9),
                   "train_loss": next((h["loss"] for h in reversed(self.history) if "loss" in h), None),
                   "eval": final_eval, "best": self.best_metrics, "mixed_precision": acc.mixed_precision,
                   "num_processes": acc.num_processes}
        # Trackers only: Accelerator.end_training() would also destroy the process group,
        # and save_model() and evaluation after train() still need it.
        for tracker in acc.trackers:
            tracker.finish()
        return summary

    def _epoch_progress(self) -> float:
        if self.streaming:  # a pass's length is known only once it has ended
            return float(self.state.epoch)
        return self.state.epoch + self.state.batches_in_epoch / max(1, len(self.loader))

    def _stream(self) -> Iterator[dict]:
        """This process's batches of a stream on the device, pass after pass (an epoch is one
        pass over this process's shard), from where the state stands: a resumed run re-reads
        the current pass and skips the batches already consumed (a stream cannot seek).
        Endless, so a window runs on into the next pass: every process takes windows of
        ``gradient_accumulation_steps`` batches, and so the same collectives at every step,
        however long its shard."""
        while True:
            for target in (self.loader.dataset, self.collate_fn):
                if hasattr(target, "set_epoch"):
                    target.set_epoch(self.state.epoch)
            for batch in islice(self.loader, self.state.batches_in_epoch, None):
                self.state.batches_in_epoch += 1
                yield send_to_device(batch, self.accelerator.device)
            if self.state.batches_in_epoch == 0:  # would loop for ever
                raise InputError("a pass over the training stream gave no batch: this process's share of it is "
                                 "empty")
            self.state.epoch += 1
            self.state.batches_in_epoch = 0

    def _optimizer_step(self, window: list[dict]) -> None:
        config, acc = self.config, self.accelerator
        # Step n's dropout (and any other draw from the global generators) depends on the
        # seed, n and the process only, so a resumed run draws what the uninterrupted one did.
        set_seed(step_seed(config.seed, self.state.step), device_specific=True)
        counts = self._window_counts(window)
        window_loss = torch.zeros((), device=acc.device)
        # Accelerate ends a window when its step counter reaches the accumulation count;
        # starting the counter this far in makes a short last window of an epoch end on its
        # own last batch too.
        acc.step = acc.gradient_accumulation_steps - len(window)
        grad_norm = lr = None
        for batch in window:
            with acc.accumulate(self.model):
                loss, _ = self.loss_fn(self.model, batch, counts, self.state)
                self._stop_if_not_finite(loss)
                window_loss += loss.detach().float()
                # DDP, FSDP and DeepSpeed average gradients over processes, and backward()
                # divides by the accumulation count; the loss is already this batch's share of
                # the window's global sum, so scale both back up.
                acc.backward(loss * acc.num_processes * acc.gradient_accumulation_steps)
                if acc.sync_gradients:
                    if config.max_grad_norm > 0:
                        grad_norm = acc.clip_grad_norm_(self.model.parameters(), config.max_grad_norm)
                    lr = self.scheduler.get_last_lr()[0]  # the rate this update used (logged as the Trainer does)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
        self.samples_seen += sum(_batch_size(b) for b in window)  # this process's; summed at the end
        for b in window:  # summed on the device: no synchronisation per batch
            if "attention_mask" in b:
                self.tokens_seen = self.tokens_seen + b["attention_mask"].sum()
        self.state.step += 1
        if not self.streaming:  # a stream counts its batches as they are read (_stream)
            self.state.batches_in_epoch += len(window)
        if self.state.step % max(1, config.logging_steps) == 0 or self.state.step == self.total_steps:
            window_loss = acc.reduce(window_loss, reduction="sum")
            metrics = {"loss": window_loss.item(), "learning_rate": lr, "epoch": self._epoch_progress()}
            if grad_norm is not None:
                metrics["grad_norm"] = float(grad_norm)
            self.log(metrics, self.state.step)

    def _stop_if_not_finite(self, loss: torch.Tensor) -> None:
        """Every process learns that one of them saw a non-finite loss, so all stop together
        (a lone raise would leave the others waiting in the next collective)."""
        bad = self.accelerator.reduce((~torch.isfinite(loss.detach())).float().reshape(1), reduction="sum")
        if bad.item() > 0:
            raise NonFiniteLossError(
                f"loss is {loss.item()} at optimizer step {self.state.step + 1} (on {int(bad.item())} process(es)); "
                "stopped before the update, nothing was saved (lower the learning_rate, check the data, or "
                "disable fp16)")

    def save_model(self, path: str | Path, tokenizer=None) -> Path:
        """A plain Hub-style folder (safetensors + config [+ tokenizer]). Every process takes
        part (FSDP and ZeRO-3 gather the full weights collectively); the main one writes.
        LoRA adapters are merged into a copy first: an adapter-only folder would reload the
        base config (no fine-tuned head labels) and need peft to be usable."""
        path = Path(path)
        acc = self.accelerator
        acc.wait_for_everyone()
        state_dict = acc.get_state_dict(self.model)
        if acc.is_main_process:
            model = acc.unwrap_model(self.model)
            if hasattr(model, "merge_and_unload"):
                copy.deepcopy(model).merge_and_unload().save_pretrained(path, safe_serialization=True)
            else:
                model.save_pretrained(path, state_dict=state_dict, safe_serialization=True)
            tokenizer = tokenizer if tokenizer is not None else self.tokenizer
            if tokenizer is not None:
                tokenizer.save_pretrained(path)
        acc.wait_for_everyone()
        return path

    def load_best_model(self) -> None:
        """Loads the weights of ``output_dir/best`` into the model being trained."""
        model = self.accelerator.unwrap_model(self.model)
        if hasattr(model, "merge_and_unload"):
            raise InputError("--load_best_model_at_end does not take LoRA models: the best folder holds merged "
                             "weights (load it with from_pretrained instead)", field="load_best_model_at_end")
        weights = load_file(self.best_dir / "model.safetensors", device=str(self.accelerator.device))
        missing, unexpected = model.load_state_dict(weights, strict=False)
        tied = set(getattr(model, "_tied_weights_keys", None) or {})
        if unexpected or set(missing) - tied:
            raise InputError(f"the best model does not fit the trained one: missing {missing}, unexpected "
                             f"{unexpected}", path=self.best_dir)
        self.accelerator.print(f"loaded the best model (step {self.state.best_step}, "
                               f"{self.config.metric_for_best_model} {self.state.best_metric:.4f})")


def _batch_size(batch: dict) -> int:
    first = next(v for v in batch.values() if isinstance(v, torch.Tensor))
    return int(first.shape[0])
