"""The shared training loop's invariants: the bugs users of training loops report most."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM

import selfsup  # noqa: F401  (registers the Auto classes)
from selfsup.errors import InputError
from selfsup.modeling import SelfsupBertForMaskedLM
from selfsup.training import NonFiniteLossError, Trainer
from selfsup.training.checkpoint import latest_checkpoint, list_checkpoints
from selfsup.training.config import TrainingConfig
from selfsup.training.loop import cpu_threads, make_accelerator
from selfsup.training.optim import lr_lambda, parameter_groups

sys.path.insert(0, str(Path(__file__).parent))
from tiny_training import collate, make_trainer, tiny_dataset, tiny_model  # noqa: E402

HERE = Path(__file__).parent


def weights(trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.accelerator.unwrap_model(trainer.model).state_dict().items()}


def assert_same_weights(a: dict, b: dict, atol: float = 1e-6):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=1e-5, msg=k)


def test_accumulating_k_batches_equals_one_batch_k_times_larger(tmp_path):
    big = make_trainer(tmp_path / "big", per_device_batch=16, accumulation=1, steps=3)
    big.train()
    small = make_trainer(tmp_path / "small", per_device_batch=4, accumulation=4, steps=3)
    small.train()
    assert_same_weights(weights(big), weights(small))
    # The rows carry 1-4 targets each, so a mean of per-batch means would differ: the
    # equality above holds only because the loss is normalised by the window's tokens.


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    straight = make_trainer(tmp_path / "a", per_device_batch=8, accumulation=1, steps=10)
    straight.train()
    first = make_trainer(tmp_path / "b", per_device_batch=8, accumulation=1, steps=10, save_steps=4)
    first.total_steps = 6  # "interrupted" after 6 steps; checkpoints at 4 (and none after)
    first.train()
    assert [p.name for p in list_checkpoints(tmp_path / "b")] == ["step-00000004"]
    resumed = make_trainer(tmp_path / "b", per_device_batch=8, accumulation=1, steps=10, save_steps=4,
                           resume_from_checkpoint=True)
    resumed.train()
    assert resumed.state.step == 10
    assert_same_weights(weights(straight), weights(resumed), atol=1e-7)
    # Data crosses an epoch boundary (64 rows / 8 = 8 batches per epoch): the order is seeded.
    assert resumed.state.epoch == 1


def test_checkpoints_are_atomic_and_only_the_last_k_are_kept(tmp_path):
    trainer = make_trainer(tmp_path, per_device_batch=8, accumulation=1, steps=6, save_steps=2, save_total_limit=2)
    trainer.train()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000004", "step-00000006"]
    assert not list((tmp_path / "checkpoints").glob(".*tmp"))
    (tmp_path / "checkpoints" / ".step-00000008.tmp").mkdir()  # a save that crashed half-way
    assert latest_checkpoint(tmp_path).name == "step-00000006"


def test_non_finite_loss_stops_before_the_update_and_saves_nothing(tmp_path):
    trainer = make_trainer(tmp_path, per_device_batch=8, accumulation=1, steps=5, save_steps=1)
    before = weights(trainer)
    model = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[5:] = float("nan")
    nan_weights = weights(trainer)
    with pytest.raises(NonFiniteLossError, match="step 1"):
        trainer.train()
    assert latest_checkpoint(tmp_path) is None
    assert before.keys() == nan_weights.keys()
    torch.testing.assert_close(weights(trainer)["cls.dense.weight"], nan_weights["cls.dense.weight"])


def test_schedules_warm_up_then_decay_in_optimizer_steps():
    linear, cosine = lr_lambda("linear", 10, 110), lr_lambda("cosine", 10, 110)
    assert [linear(s) for s in (0, 5, 10, 60, 110)] == [0.0, 0.5, 1.0, 0.5, 0.0]
    assert cosine(10) == 1.0 and abs(cosine(60) - 0.5) < 1e-12 and abs(cosine(110)) < 1e-12
    with pytest.raises(KeyError, match="did you mean 'cosine'"):
        lr_lambda("cosin", 0, 10)


def test_no_weight_decay_on_biases_and_layer_norms():
    model = tiny_model()
    decay, no_decay = parameter_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith("weight") and p.ndim == 2 for p in decay["params"])
    assert any("norm" in names[id(p)] for p in no_decay["params"])
    assert all(p.ndim == 1 for p in no_decay["params"])


def test_embedding_lr_ratio_moves_the_input_table_that_many_times_further(tmp_path):
    # Adam's first update is lr * g / (|g| + eps): a step of the peak rate (to eps) on every weight
    # with a gradient. With ratio 10 the input table (tied to the MLM decoder here) steps 10x.
    trainer = make_trainer(tmp_path, per_device_batch=8, accumulation=1, steps=1, warmup_steps=0,
                           weight_decay=0.0, embedding_lr_ratio=10.0)
    before = weights(trainer)
    trainer.train()
    after = weights(trainer)
    step = {k: (after[k] - before[k]).abs().max().item() for k in before}
    assert step["bert.embeddings.word_embeddings.weight"] == pytest.approx(0.1, rel=5e-3)
    assert step["bert.embeddings.position_embeddings.weight"] == pytest.approx(0.01, rel=5e-3)  # only the table
    assert step["bert.encoder.layers.0.attention.qkv.weight"] == pytest.approx(0.01, rel=5e-3)
    assert [g["lr"] for g in trainer.optimizer.optimizer.param_groups] == [0.0, 0.0, 0.0]  # one schedule, ended


def test_embedding_lr_ratio_refuses_what_it_cannot_apply():
    with pytest.raises(InputError, match="embedding_lr_ratio"):
        TrainingConfig(embedding_lr_ratio=0.0)
    model = tiny_model()
    model.get_input_embeddings().weight.requires_grad_(False)
    with pytest.raises(InputError, match="frozen"):
        parameter_groups(model, 0.01, embedding_lr=1e-3)


def _launch(launch, out: Path, processes: int, batch: int, steps: int, epochs: float = 1.0,
            accumulation: int = 1) -> dict:
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cmd = [*launch(processes), str(HERE / "tiny_training.py"), str(out), str(batch), str(accumulation), str(steps),
           str(epochs)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "run.json").read_text())


def test_two_processes_equal_one_process_with_twice_the_batch(tmp_path, accelerate_launch):
    one = _launch(accelerate_launch, tmp_path / "one", processes=1, batch=16, steps=4)
    two = _launch(accelerate_launch, tmp_path / "two", processes=2, batch=8, steps=4)
    assert one["num_processes"] == 1 and two["num_processes"] == 2  # really two processes
    assert (tmp_path / "two" / "model" / "model.safetensors").exists()  # saving works after a 2-process train()
    assert one["learning_rates"] == two["learning_rates"]  # LR at step n, whatever the process count
    # and it is the rate each update used: linear warmup over 2 steps from 0, then linear decay to 0 at step 4
    assert one["learning_rates"] == pytest.approx([0.0, 5e-3, 1e-2, 5e-3])
    assert_same_weights(load_file(tmp_path / "one" / "weights.safetensors"),
                        load_file(tmp_path / "two" / "weights.safetensors"), atol=1e-5)


def test_an_epoch_is_one_pass_over_the_data_by_all_processes_together(tmp_path, accelerate_launch):
    # Trained by epochs, as users do: 64 rows, 2 epochs. One process at batch 16 takes 4
    # steps an epoch; two processes at batch 8 each read half the rows and must take the
    # same 4 (not 8, as when steps were counted before Accelerate sharded the loader).
    one = _launch(accelerate_launch, tmp_path / "one", processes=1, batch=16, steps=-1, epochs=2)
    two = _launch(accelerate_launch, tmp_path / "two", processes=2, batch=8, steps=-1, epochs=2)
    assert two["num_processes"] == 2
    assert one["steps"] == two["steps"] == 8
    assert one["train_samples"] == two["train_samples"] == 128  # examples/s counts every process's rows
    assert one["epochs"] == two["epochs"] == [0.25 * s for s in range(1, 9)]
    assert one["learning_rates"] == two["learning_rates"]
    assert_same_weights(load_file(tmp_path / "one" / "weights.safetensors"),
                        load_file(tmp_path / "two" / "weights.safetensors"), atol=1e-5)


def test_an_epoch_that_does_not_fill_the_last_window_still_steps_once_for_it(tmp_path):
    # 64 rows at batch 8 are 8 batches; windows of 3 are 3 + 3 + 2: three updates an epoch,
    # the last over 2 batches, normalised by that window's own targets.
    trainer = make_trainer(tmp_path, per_device_batch=8, accumulation=3, steps=-1, num_train_epochs=2)
    summary = trainer.train()
    assert trainer.steps_per_epoch == 3 and summary["steps"] == 6 and summary["epoch"] == 2.0
    assert summary["train_samples"] == 128
    adam_steps = {int(state["step"]) for state in trainer.optimizer.optimizer.state.values()}
    assert adam_steps == {6}  # one update per window, none per micro-batch


def test_bf16_mixed_precision_trains_with_a_loss_close_to_fp32(tmp_path):
    # In a subprocess each: Accelerate fixes the precision once per process.
    runs = {}
    for precision in ("no", "bf16"):
        out = tmp_path / precision
        subprocess.run([sys.executable, str(HERE / "tiny_training.py"), str(out), "16", "1", "6", "1", precision],
                       check=True, capture_output=True, timeout=300)
        runs[precision] = json.loads((out / "run.json").read_text())["losses"]
    assert len(runs["bf16"]) == 6 and all(math.isfinite(x) for x in runs["bf16"])
    assert runs["bf16"] != runs["no"]  # bf16 really ran
    for fp32, bf16 in zip(runs["no"], runs["bf16"]):
        assert abs(bf16 - fp32) <= 0.05 * fp32


def _scripted_evaluation(scores: dict[int, float], seen: dict):
    """An evaluate_fn whose score at step n is ``scores[n]``; it records the weights it saw."""
    def evaluate(model, accelerator, state):
        seen[state.step] = {k: v.clone() for k, v in accelerator.unwrap_model(model).state_dict().items()}
        return {"accuracy": scores[state.step]}
    return evaluate


def test_the_best_model_is_kept_and_loaded_at_the_end(tmp_path):
    seen = {}
    trainer = make_trainer(tmp_path, per_device_batch=8, accumulation=1, steps=4, eval_steps=1,
                           metric_for_best_model="accuracy", load_best_model_at_end=True)
    trainer.evaluate_fn = _scripted_evaluation({1: 0.5, 2: 0.9, 3: 0.7, 4: 0.6}, seen)
    summary = trainer.train()
    assert (trainer.state.best_step, trainer.state.best_metric) == (2, 0.9)
    assert summary["best"] == {"accuracy": 0.9, "step": 2} and summary["eval"] == {"accuracy": 0.6}
    assert_same_weights(weights(trainer), seen[2], atol=0)  # loaded at the end
    best = SelfsupBertForMaskedLM.from_pretrained(tmp_path / "best")
    assert_same_weights({k: v for k, v in best.state_dict().items()}, seen[2], atol=0)


def test_lower_is_better_metrics_and_missing_metrics(tmp_path):
    trainer = make_trainer(tmp_path / "a", per_device_batch=8, accumulation=1, steps=3, eval_steps=1,
                           metric_for_best_model="eval/accuracy", greater_is_better=False)
    trainer.evaluate_fn = _scripted_evaluation({1: 0.5, 2: 0.9, 3: 0.7}, {})
    trainer.train()
    assert trainer.state.best_step == 1
    trainer = make_trainer(tmp_path / "b", per_device_batch=8, accumulation=1, steps=1,
                           metric_for_best_model="f1")
    trainer.evaluate_fn = _scripted_evaluation({1: 0.5}, {})
    with pytest.raises(ValueError, match="evaluation gave no 'f1'; it gives \\['accuracy'\\]"):
        trainer.train()
    with pytest.raises(ValueError, match="load_best_model_at_end.*needs --metric_for_best_model"):
        TrainingConfig(load_best_model_at_end=True)


def test_every_checkpoint_holds_a_model_that_loads_with_from_pretrained(tmp_path):
    trainer = make_trainer(tmp_path, per_device_batch=8, accumulation=1, steps=4, save_steps=2)
    trainer.train()
    for checkpoint in list_checkpoints(tmp_path):
        assert isinstance(AutoModelForMaskedLM.from_pretrained(checkpoint / "model"), SelfsupBertForMaskedLM)
    final = AutoModelForMaskedLM.from_pretrained(latest_checkpoint(tmp_path) / "model")
    assert_same_weights(final.state_dict(), weights(trainer), atol=0)


def test_gradient_checkpointing_trains_the_same_weights(tmp_path):
    plain = make_trainer(tmp_path / "plain", per_device_batch=8, accumulation=1, steps=3)
    plain.train()
    checkpointed = make_trainer(tmp_path / "ckpt", per_device_batch=8, accumulation=1, steps=3,
                                gradient_checkpointing=True)
    assert checkpointed.accelerator.unwrap_model(checkpointed.model).bert.encoder.gradient_checkpointing
    checkpointed.train()
    assert_same_weights(weights(plain), weights(checkpointed), atol=1e-6)


def test_cpu_training_uses_this_process_share_of_its_cores_unless_told(monkeypatch, tmp_path):
    # `accelerate launch` without --cpu exports OMP_NUM_THREADS=1: a CPU run would use one core.
    cores = len(os.sched_getaffinity(0))
    assert cpu_threads(0, 1) == cores and cpu_threads(0, cores + 1) == 1 and cpu_threads(3, 2) == 3
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        make_accelerator(TrainingConfig(output_dir=str(tmp_path), report_to="none"))
        assert torch.get_num_threads() == cores
        make_accelerator(TrainingConfig(output_dir=str(tmp_path), report_to="none", cpu_threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


class _Stream(torch.utils.data.IterableDataset):
    """The tiny rows as a stream: no length, read in order, one pass per iteration."""

    def __init__(self, rows: int):
        self.rows = tiny_dataset(rows)

    def __iter__(self):
        return iter(self.rows)


class _EpochRecorder:
    """Collates as ``collate`` does, recording the epoch it was told for each batch."""

    def __init__(self):
        self.epoch, self.epochs = 0, []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, rows: list[dict]) -> dict:
        self.epochs.append(self.epoch)
        return collate(rows)


def _stream_trainer(out, steps: int, collator=collate, **overrides):
    config = TrainingConfig(output_dir=str(out), per_device_train_batch_size=4, gradient_accumulation_steps=2,
                            max_steps=steps, learning_rate=1e-2, warmup_steps=2, logging_steps=1, report_to="none",
                            seed=7, **overrides)
    return Trainer(tiny_model(), config, _Stream(10), collator)


def test_a_stream_is_read_pass_after_pass_with_windows_running_on_into_the_next_pass(tmp_path):
    # 10 rows at batch 4 are passes of 3 batches (4, 4, 2); 5 steps of 2 batches read 10
    # batches: three whole passes and the first batch of a fourth, each told its epoch.
    recorder = _EpochRecorder()
    trainer = _stream_trainer(tmp_path, steps=5, collator=recorder)
    summary = trainer.train()
    assert recorder.epochs == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert (trainer.state.epoch, trainer.state.batches_in_epoch) == (3, 1)
    assert summary["steps"] == 5 and summary["train_samples"] == 3 * 10 + 4 and summary["epoch"] == 3.0
    adam_steps = {int(state["step"]) for state in trainer.optimizer.optimizer.state.values()}
    assert adam_steps == {5}  # one update per window, also for the windows that span two passes


def test_a_stream_needs_max_steps_and_evaluation_by_steps(tmp_path):
    with pytest.raises(ValueError, match="max_steps"):
        _stream_trainer(tmp_path, steps=-1)
    with pytest.raises(ValueError, match="eval_strategy"):
        _stream_trainer(tmp_path, steps=4, eval_strategy="epoch")


def test_a_resumed_stream_equals_the_uninterrupted_run(tmp_path):
    straight = _stream_trainer(tmp_path / "a", steps=10)
    straight.train()
    first = _stream_trainer(tmp_path / "b", steps=10, save_steps=4)
    first.total_steps = 6  # "interrupted" after 6 steps; checkpoint at 4: 8 batches read, 2 into the third pass
    first.train()
    resumed = _stream_trainer(tmp_path / "b", steps=10, save_steps=4, resume_from_checkpoint=True)
    resumed.train()
    assert resumed.state.step == 10
    assert_same_weights(weights(straight), weights(resumed), atol=1e-7)
