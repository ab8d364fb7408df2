"""scripts/pretrain.py end to end: learns, saves a Hub-style folder, rejects bad input."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoModelForPreTraining, AutoTokenizer, BertForPreTraining, pipeline

import selfsup  # noqa: F401
from selfsup.errors import InputError
from selfsup.modeling import SelfsupBertForMaskedLM, SelfsupBertForPreTraining

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from tiny_corpus import CORPUS, FACTS, word_level_tokenizer  # noqa: E402

spec = importlib.util.spec_from_file_location("pretrain_script", ROOT / "scripts" / "pretrain.py")
pretrain = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pretrain)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    corpus = out / "corpus.txt"
    corpus.write_text(CORPUS)
    word_level_tokenizer(CORPUS).save_pretrained(out / "tokenizer")
    summary = pretrain.main([
        "--corpus", str(corpus), "--output_dir", str(out / "run"), "--tokenizer_name", str(out / "tokenizer"),
        "--max_seq_length", "32", "--sentence_objective", "nsp",
        "--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "2", "--intermediate_size", "64",
        "--hidden_dropout_prob", "0", "--attention_probs_dropout_prob", "0", "--eval_documents", "0",
        "--max_steps", "600", "--learning_rate", "3e-3", "--per_device_train_batch_size", "8",
        "--report_to", "none", "--logging_steps", "10", "--save_steps", "200"])
    return out, summary


def test_a_tiny_model_overfits_a_tiny_corpus(trained):
    out, summary = trained
    losses = [json.loads(line)["loss"] for line in (out / "run" / "metrics.jsonl").read_text().splitlines()
              if '"loss"' in line]
    assert losses[0] > 3.0 and losses[-1] < 0.4 * losses[0], losses


def test_the_result_is_a_hub_style_folder_loadable_by_auto_classes(trained):
    out, summary = trained
    model_dir = Path(summary["model_dir"])
    for name in ("model.safetensors", "config.json", "tokenizer.json", "README.md"):
        assert (model_dir / name).exists(), name
    assert isinstance(AutoModelForPreTraining.from_pretrained(model_dir), SelfsupBertForPreTraining)
    assert isinstance(AutoModelForMaskedLM.from_pretrained(model_dir), SelfsupBertForMaskedLM)
    fill = pipeline("fill-mask", model=str(model_dir), top_k=len(AutoTokenizer.from_pretrained(model_dir)))
    # It learned something of the corpus: over 24 probes (each fact's adjective and noun
    # masked), the right word gets on average well above the uniform 1/vocab probability.
    # (The 600-step fixture does not memorise the facts: the right word is rarely the top one.)
    probes = [(f"the {a} of the {b} is [MASK].", c) for a, b, c in FACTS] + \
             [(f"everyone knows the {b} is [MASK].", c) for a, b, c in FACTS] + \
             [(f"a {c} [MASK] is common.", b) for a, b, c in FACTS] + \
             [(f"the {a} of the [MASK] is {c}.", b) for a, b, c in FACTS]
    right = [next(r["score"] for r in fill(text) if r["token_str"] == word) for text, word in probes]
    assert sum(right) / len(right) > 1.5 / len(fill.tokenizer), right
    recorded = json.loads((out / "run" / "summary.json").read_text())
    assert recorded["steps"] == 600
    assert recorded["versions"]["torch"] == torch.__version__  # provenance, also in the model card
    assert torch.__version__ in (model_dir / "README.md").read_text()
    assert (out / "run" / "checkpoints" / "step-00000600").is_dir()
    # checkpoints taken during the run are models too, tokenizer included (the embryology curve fine-tunes them)
    early = out / "run" / "checkpoints" / "step-00000400" / "model"
    assert isinstance(AutoModelForMaskedLM.from_pretrained(early), SelfsupBertForMaskedLM)
    assert len(AutoTokenizer.from_pretrained(early)) == len(fill.tokenizer)


def test_the_result_converts_to_vanilla_bert(trained, tmp_path):
    _, summary = trained
    subprocess.run([sys.executable, str(ROOT / "scripts" / "convert_bert.py"), "--to-hf", summary["model_dir"],
                    "--out", str(tmp_path)], check=True, capture_output=True)
    ours = AutoModelForPreTraining.from_pretrained(summary["model_dir"]).eval()
    theirs = BertForPreTraining.from_pretrained(tmp_path).eval()
    ids = torch.tensor([[2, 10, 11, 12, 4, 13, 3]])
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).prediction_logits, theirs(ids).prediction_logits, atol=1e-4, rtol=0)


def test_missing_corpus_fails_naming_the_file(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(InputError, match="nope.txt"):
        pretrain.main(["--corpus", str(missing), "--output_dir", str(tmp_path / "run"), "--report_to", "none"])


def test_the_same_seed_and_tokenizer_give_the_same_model(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    runs = []
    # Run a trains its WordPiece vocabulary, run b reuses it: retraining could differ, as
    # tokenizers' WordPiece trainer breaks merge ties in hash order.
    for name, tokenizer in (("a", []), ("b", ["--tokenizer_name", str(tmp_path / "a" / "tokenizer")])):
        summary = pretrain.main([
            "--corpus", str(corpus), "--output_dir", str(tmp_path / name), "--vocab_size", "200", *tokenizer,
            "--max_seq_length", "32", "--hidden_size", "32", "--num_hidden_layers", "1", "--num_attention_heads", "2",
            "--intermediate_size", "64", "--eval_documents", "0", "--max_steps", "3", "--report_to", "none"])
        runs.append(load_file(Path(summary["model_dir"]) / "model.safetensors"))
    assert runs[0].keys() == runs[1].keys()
    for key in runs[0]:
        torch.testing.assert_close(runs[0][key], runs[1][key], atol=0, rtol=0, msg=key)


def test_a_tokenizer_left_in_output_dir_is_reused_only_for_the_same_corpus_and_size(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    args = ["--corpus", str(corpus), "--output_dir", str(tmp_path / "run"), "--max_seq_length", "32",
            "--hidden_size", "32", "--num_hidden_layers", "1", "--num_attention_heads", "2", "--intermediate_size",
            "64", "--eval_documents", "0", "--max_steps", "1", "--report_to", "none"]
    pretrain.main(args + ["--vocab_size", "200"])
    trained = (tmp_path / "run" / "tokenizer" / "tokenizer.json").read_text()
    with pytest.raises(InputError, match="--vocab_size 200.*300") as err:
        pretrain.main(args + ["--vocab_size", "300"])
    assert str(tmp_path / "run" / "tokenizer") in str(err.value)
    corpus.write_text(CORPUS + "\nA new document about something else entirely.\n")
    with pytest.raises(InputError, match="the corpus files"):
        pretrain.main(args + ["--vocab_size", "200"])
    assert (tmp_path / "run" / "tokenizer" / "tokenizer.json").read_text() == trained  # refused, not overwritten
