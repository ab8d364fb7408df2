"""Exact resume: a run killed with SIGKILL after a checkpoint and resumed ends with the
same weights, bit for bit, as the run that was never interrupted, with dynamic masking,
NSP pair sampling (or ELECTRA's sampled replacements) and dropout all on, across epoch
boundaries, whether the sequences were built first or are streamed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from selfsup.training import Trainer, TrainingConfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from tiny_corpus import CORPUS, word_level_tokenizer  # noqa: E402
from tiny_training import collate, tiny_dataset, tiny_model  # noqa: E402


def _pretrain_command(corpus: Path, tokenizer: Path, out: Path, *extra: str) -> list[str]:
    # Dropout on, random masking on, NSP on; ~13 sequences at batch 4 is 4 batches an epoch,
    # so the 240 steps cross 60 epoch boundaries, each with fresh masks.
    return [sys.executable, str(ROOT / "scripts" / "pretrain.py"), "--corpus", str(corpus),
            "--tokenizer_name", str(tokenizer), "--output_dir", str(out), "--max_seq_length", "32",
            "--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "2",
            "--intermediate_size", "64", "--eval_documents", "2", "--num_train_epochs", "60",
            "--sentence_objective", "nsp",
            "--per_device_train_batch_size", "4", "--learning_rate", "3e-3", "--warmup_ratio", "0.1",
            "--save_steps", "40", "--logging_steps", "5", "--report_to", "none", "--cpu_threads", "1", *extra]


def _losses(out: Path) -> dict[int, float]:
    import json
    return {r["step"]: r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if "loss" in r}


# 4 training documents stream ~9 sequences a pass: batches of 4, 4 and 1, so windows of 2
# run on into the next pass; NSP's random B comes from a buffer of 3 documents.
STREAMED = ("--streaming", "--max_steps", "120", "--gradient_accumulation_steps", "2",
            "--streaming_buffer_documents", "3")
# SOP, the embedded default's objective, pairs segments of one document only: fewer sequences
# an epoch, so more epochs to run past the checkpoint at step 80.


# ELECTRA adds the generator's samples, drawn from the global generator that each step seeds;
# single segments, as with SOP, so more epochs to run past step 80.
ELECTRA = ("--objective", "electra", "--sentence_objective", "none", "--num_train_epochs", "150")


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), STREAMED, ("--sentence_objective", "sop", "--num_train_epochs", "150"),
                                   ELECTRA], ids=["built", "streamed", "sop", "electra"])
def test_pretraining_killed_with_sigkill_and_resumed_equals_the_uninterrupted_run(tmp_path, extra):
    corpus, tokenizer = tmp_path / "corpus.txt", tmp_path / "tokenizer"
    corpus.write_text(CORPUS)
    word_level_tokenizer(CORPUS).save_pretrained(tokenizer)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    straight = tmp_path / "straight"
    subprocess.run(_pretrain_command(corpus, tokenizer, straight, *extra), check=True, capture_output=True, env=env,
                   timeout=600)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_pretrain_command(corpus, tokenizer, killed, *extra), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "step-00000040").is_dir():
        assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (killed / "model").exists()  # really interrupted, not finished

    resumed = subprocess.run(_pretrain_command(corpus, tokenizer, killed, *extra, "--resume_from_checkpoint", "true"),
                             check=True, capture_output=True, text=True, env=env, timeout=600)
    assert "resumed from" in resumed.stdout + resumed.stderr

    a, b = load_file(straight / "model" / "model.safetensors"), load_file(killed / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0, msg=key)
    # and the losses logged after the resume are the uninterrupted run's
    after = {s: v for s, v in _losses(killed).items() if s > 80}
    assert after and all(_losses(straight)[s] == v for s, v in after.items())


def test_resume_true_without_a_checkpoint_says_so(tmp_path):
    config = TrainingConfig(output_dir=str(tmp_path), max_steps=2, report_to="none", resume_from_checkpoint="true",
                            per_device_train_batch_size=8)
    trainer = Trainer(tiny_model(), config, tiny_dataset(), collate)
    with pytest.raises(ValueError, match="no checkpoint in .*checkpoints"):
        trainer.train()


def test_resume_from_a_named_checkpoint_folder(tmp_path):
    config = TrainingConfig(output_dir=str(tmp_path / "a"), max_steps=4, save_steps=2, report_to="none",
                            per_device_train_batch_size=8, learning_rate=1e-2)
    straight = Trainer(tiny_model(), config, tiny_dataset(), collate)
    straight.train()
    config.output_dir = str(tmp_path / "b")
    config.resume_from_checkpoint = str(tmp_path / "a" / "checkpoints" / "step-00000002")
    resumed = Trainer(tiny_model(), config, tiny_dataset(), collate)
    resumed.train()
    assert resumed.state.step == 4
    for (k, v), w in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(v, w, atol=0, rtol=0, msg=k)
    config.resume_from_checkpoint = str(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="nowhere: checkpoint folder not found"):
        Trainer(tiny_model(), config, tiny_dataset(), collate).train()
