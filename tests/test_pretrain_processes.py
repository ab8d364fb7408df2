"""Pretraining is correct at any process count: 2 processes × batch B train and evaluate
what 1 process × 2B does, masks, sentence pairs, epochs and held-out scores included."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from tiny_corpus import CORPUS, word_level_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_two_processes_pretrain_and_evaluate_as_one_with_twice_the_batch(tmp_path, accelerate_launch):
    corpus, tokenizer = tmp_path / "corpus.txt", tmp_path / "tokenizer"
    # 27 four-sentence documents, one sequence each (no short sequences, length 64): 3 held
    # out (an odd count: uneven evaluation slices) and 24 to train on, a multiple of the
    # global batch, so no process pads its last batch with repeated rows.
    corpus.write_text("\n\n".join((CORPUS.split("\n\n") * 5)[:27]))
    word_level_tokenizer(CORPUS).save_pretrained(tokenizer)
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    summaries = {}
    for processes, batch in ((1, 8), (2, 4)):
        out = tmp_path / f"p{processes}"
        # Trained by epochs; dropout off so the two runs can agree to float precision.
        cmd = [*accelerate_launch(processes), str(ROOT / "scripts" / "pretrain.py"), "--corpus", str(corpus),
               "--tokenizer_name", str(tokenizer), "--output_dir", str(out), "--max_seq_length", "64",
               "--short_seq_prob", "0",
               "--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "2",
               "--intermediate_size", "64", "--hidden_dropout_prob", "0", "--attention_probs_dropout_prob", "0",
               "--sentence_objective", "sop", "--eval_documents", "3", "--num_train_epochs", "4",
               "--per_device_train_batch_size", str(batch), "--learning_rate", "3e-3", "--eval_steps", "2",
               "--report_to", "none", "--cpu_threads", "1"]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        summaries[processes] = json.loads((out / "summary.json").read_text())
    one, two = summaries[1], summaries[2]
    assert one["train_sequences"] == 24 and one["train_samples"] == two["train_samples"] == 4 * 24
    assert two["num_processes"] == 2 and one["steps"] == two["steps"] == 12 and one["epoch"] == two["epoch"] == 4.0
    assert one["eval"]["sequences"] % 2 == 1 and one["eval"]["sequences"] == two["eval"]["sequences"]
    for key in ("mlm_loss", "mlm_accuracy", "sop_accuracy"):
        assert abs(one["eval"][key] - two["eval"][key]) < 1e-3, key  # float sums in another order
    a, b = (load_file(tmp_path / p / "model" / "model.safetensors") for p in ("p1", "p2"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4, msg=key)
