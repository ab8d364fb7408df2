"""scripts/pretrain_gpt.py: run_clm packing, held-out perplexity, a model that writes through the
pipeline, resume ≡ uninterrupted, and the refusals."""
from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, pipeline

import selfsup  # noqa: F401
from selfsup.errors import InputError
from selfsup.pretrain.clm import build_clm_data, group_texts, train_byte_level_bpe

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from tiny_corpus import CORPUS  # noqa: E402

spec = importlib.util.spec_from_file_location("pretrain_gpt_script", ROOT / "scripts" / "pretrain_gpt.py")
pretrain_gpt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pretrain_gpt)

TINY = ["--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4", "--intermediate_size", "64",
        "--vocab_size", "300", "--block_size", "16", "--per_device_train_batch_size", "8", "--report_to", "none",
        "--logging_steps", "5", "--learning_rate", "3e-3", "--warmup_ratio", "0"]


def test_blocks_are_documents_joined_with_eos_then_cut_without_padding():
    docs = [[1, 2, 3], [4, 5], [6], [7, 8, 9, 10]]
    assert group_texts(docs, 0, 4) == [[1, 2, 3, 0], [4, 5, 0, 6], [0, 7, 8, 9]]  # "10, EOS" dropped


def test_packed_data_covers_the_training_documents_in_order_and_holds_out_whole_documents(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    tokenizer = train_byte_level_bpe([CORPUS], 300)
    data = build_clm_data(str(corpus), tokenizer, 16, eval_documents=1, seed=3)
    assert data.num_documents == 6 and len(data.eval) > 0
    train_blocks, held_out_blocks = list(data.train["input_ids"]), list(data.eval["input_ids"])
    assert all(len(b) == 16 for b in train_blocks + held_out_blocks)
    train = [t for block in train_blocks for t in block]
    held_out = [t for block in held_out_blocks for t in block]
    train_docs = tokenizer.decode(train).split(tokenizer.eos_token)
    held_docs = tokenizer.decode(held_out).split(tokenizer.eos_token)
    assert len(train_docs) >= 5  # 5 training documents, the last maybe cut
    documents = [" ".join(d.splitlines()) for d in CORPUS.split("\n\n")]
    assert all(d in documents for d in train_docs[:-1]) and all(d in documents for d in held_docs[:-1])
    assert not set(train_docs[:-1]) & set(held_docs)  # a held-out document is never trained on


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain_gpt")
    (out / "corpus.txt").write_text(CORPUS)
    summary = pretrain_gpt.main(["--corpus", str(out / "corpus.txt"), "--output_dir", str(out / "run"),
                                 "--eval_documents", "1", "--max_steps", "150", "--eval_steps", "50", *TINY])
    return out, summary


def test_held_out_perplexity_falls_far_below_the_vocabulary(trained):
    out, summary = trained
    evals = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    perplexities = [e["eval/perplexity"] for e in evals if "eval/perplexity" in e]
    assert len(perplexities) == 3 and perplexities[-1] < perplexities[0]
    # a uniform guess over 300 tokens has perplexity 300; the held-out document repeats the others' pattern
    assert summary["eval"]["perplexity"] < 30, perplexities
    from selfsup.provenance import read_card_metrics

    card = read_card_metrics(summary["model_dir"])  # the model card's scores are summary.json's
    assert [c["metrics"] for c in card] == [json.loads((out / "run" / "summary.json").read_text())["eval"]]
    assert math.isclose(summary["eval"]["perplexity"], math.exp(summary["eval"]["loss"]), rel_tol=1e-6)


def test_the_model_writes_through_the_text_generation_pipeline(trained):
    out, summary = trained
    model_dir = summary["model_dir"]
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        assert (Path(model_dir) / name).exists(), name
    generate = pipeline("text-generation", model=model_dir)
    text = generate("The colour of the", do_sample=False, max_new_tokens=8)[0]["generated_text"]
    assert text.startswith("The colour of the") and len(text) > len("The colour of the") + 5
    assert "sky" in text  # the corpus says "The colour of the sky is blue."


def test_resumed_run_ends_with_the_weights_of_the_uninterrupted_one(tmp_path):
    (tmp_path / "corpus.txt").write_text(CORPUS)
    args = ["--corpus", str(tmp_path / "corpus.txt"), "--eval_documents", "0", "--max_steps", "6", "--save_steps", "3",
            "--hidden_dropout_prob", "0.1", *TINY]
    pretrain_gpt.main([*args, "--output_dir", str(tmp_path / "a")])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "tokenizer").symlink_to(tmp_path / "a" / "tokenizer")
    pretrain_gpt.main([*args, "--output_dir", str(tmp_path / "b"), "--resume_from_checkpoint",
                       str(tmp_path / "a" / "checkpoints" / "step-00000003")])
    a, b = (load_file(tmp_path / d / "model" / "model.safetensors") for d in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_block_longer_than_the_models_positions_is_refused_before_training(tmp_path):
    config = AutoConfig.for_model("selfsup-gpt", vocab_size=300, hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=4, intermediate_size=37, max_position_embeddings=8)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "model")
    train_byte_level_bpe([CORPUS], 300).save_pretrained(tmp_path / "model")
    (tmp_path / "corpus.txt").write_text(CORPUS)
    with pytest.raises(InputError, match="block_size.*16 is above the 8 positions"):
        pretrain_gpt.main(["--corpus", str(tmp_path / "corpus.txt"), "--model_name_or_path", str(tmp_path / "model"),
                           "--output_dir", str(tmp_path / "run"), *TINY])
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    assert AutoTokenizer.from_pretrained(tmp_path / "model").eos_token == "<|endoftext|>"


def test_continued_pretraining_starts_from_the_checkpoint_with_its_own_tokenizer(trained, tmp_path):
    out, summary = trained
    start = summary["model_dir"]
    # Size and vocabulary flags are the checkpoint's; only the loop's settings are given.
    loop = ["--block_size", "16", "--per_device_train_batch_size", "8", "--report_to", "none", "--warmup_ratio", "0"]
    continued = pretrain_gpt.main(["--corpus", str(out / "corpus.txt"), "--model_name_or_path", start,
                                   "--output_dir", str(tmp_path / "run"), "--eval_documents", "1",
                                   "--max_steps", "5", "--learning_rate", "1e-4", *loop])
    assert continued["starting_model"] == start
    # No new vocabulary: the saved tokenizer is the checkpoint's, token for token.
    assert (Path(continued["model_dir"]) / "tokenizer.json").read_text() == (Path(start) / "tokenizer.json").read_text()
    # Five small steps from the trained weights stay near its perplexity (< 30); from fresh weights
    # they would be near the uniform 300.
    assert continued["eval"]["perplexity"] < 1.2 * summary["eval"]["perplexity"], (continued["eval"], summary["eval"])
