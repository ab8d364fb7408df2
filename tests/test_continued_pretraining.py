"""Continued pretraining of real BERT checkpoints: ``scripts/pretrain.py --model_name_or_path DIR``.

A transformers BERT folder is converted to selfsup-bert with its weights unchanged, the heads
it lacks are initialised and named, and its own tokenizer is used."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import (
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
)

import selfsup  # noqa: F401  (registers selfsup-bert)
from selfsup.errors import InputError
from selfsup.modeling import SelfsupBertForMaskedLM, SelfsupBertForPreTraining
from selfsup.pretrain.config import ModelConfig
from selfsup.pretrain.starting_model import starting_model, starting_tokenizer
from selfsup.pretrain.tokenizer import train_wordpiece
from selfsup.provenance import read_card_metrics

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("pretrain_script", ROOT / "scripts" / "pretrain.py")
pretrain = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pretrain)

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "A short one.",
             "Transformers read whole sentences at once, attending to every token in both directions."]
CORPUS = "\n\n".join("\n".join(f"The {thing} number {i} is {colour} and it sits on the table {j}." for j in range(4))
                     for i, (thing, colour) in enumerate([("cup", "red"), ("book", "blue"), ("lamp", "green"),
                                                          ("chair", "white"), ("box", "black"), ("pen", "grey")]))


def _start(path, tokenizer_name=None, max_seq_length=32):
    logs = []
    tokenizer = starting_tokenizer(tokenizer_name, str(path))
    model, info = starting_model(ModelConfig(model_name_or_path=str(path)), tokenizer, max_seq_length,
                                 log=logs.append)
    return model.eval(), info, logs


def test_minilm_converts_exactly_and_names_the_heads_it_adds(minilm_path):
    torch.manual_seed(0)
    ours, info, logs = _start(minilm_path)
    assert isinstance(ours, SelfsupBertForPreTraining)
    # A bare BertModel: the pooler is the checkpoint's, the MLM and NSP heads are new.
    assert info["initialized"] == ["MLM head", "NSP head"]
    assert {"cls.dense.weight", "cls.norm.weight", "cls.bias", "nsp.weight"} <= set(info["initialized_parameters"])
    assert any("MLM head" in line and "NSP head" in line and "cls.dense.weight" in line for line in logs), logs
    assert ours.cls.decoder.weight.data_ptr() == ours.bert.embeddings.word_embeddings.weight.data_ptr()
    original = load_file(minilm_path / "model.safetensors")
    assert torch.equal(ours.bert.pooler.weight, original["pooler.dense.weight"])

    tok = AutoTokenizer.from_pretrained(minilm_path)
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any(), "the batch must contain padding"
    reference = BertModel.from_pretrained(minilm_path).eval()
    with torch.no_grad():
        expected = reference(**batch, output_hidden_states=True).hidden_states
        got = ours.bert(**batch, output_hidden_states=True).hidden_states
    real = batch["attention_mask"].bool()
    assert len(got) == len(expected) == 7
    for layer, (a, b) in enumerate(zip(got, expected)):
        torch.testing.assert_close(a[real], b[real], atol=1e-5, rtol=1e-5, msg=f"layer {layer}")


def test_a_few_steps_of_continued_pretraining_through_the_script(minilm_path, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    summary = pretrain.main([
        "--corpus", str(corpus), "--model_name_or_path", str(minilm_path), "--output_dir", str(tmp_path / "run"),
        "--max_seq_length", "32", "--max_steps", "3", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "4", "--learning_rate", "5e-5", "--eval_documents", "2",
        "--report_to", "none", "--logging_steps", "1", "--eval_steps", "3", "--save_steps", "1000"])
    assert summary["steps"] == 3
    card = read_card_metrics(summary["model_dir"])  # the model card's scores are summary.json's
    assert card[0]["metrics"] == json.loads((tmp_path / "run" / "summary.json").read_text())["eval"] != {}
    meta = yaml.safe_load((Path(summary["model_dir"]) / "README.md").read_text().split("---\n")[1])
    assert meta["library_name"] == "transformers" and "base_model" not in meta  # a local path is no Hub id
    recorded = json.loads((tmp_path / "run" / "summary.json").read_text())["starting_model"]
    assert recorded["initialized"] == ["MLM head", "NSP head"] and recorded["converted_to_selfsup_bert"]
    assert "cls.dense.weight" in recorded["initialized_parameters"]
    # MiniLM's own vocabulary: no tokenizer was trained on the corpus.
    assert not (tmp_path / "run" / "tokenizer").exists()
    model_dir = Path(summary["model_dir"])
    assert len(AutoTokenizer.from_pretrained(model_dir)) == len(AutoTokenizer.from_pretrained(minilm_path)) == 30522

    mlm = AutoModelForMaskedLM.from_pretrained(model_dir)
    assert isinstance(mlm, SelfsupBertForMaskedLM) and mlm.config.hidden_size == 384
    # Continued, not restarted: three small steps away from MiniLM's weights.
    start = load_file(minilm_path / "model.safetensors")["embeddings.word_embeddings.weight"]
    now = mlm.bert.embeddings.word_embeddings.weight.detach()
    assert 0 < (now - start).abs().max() < 0.01


def _tiny_bert(cls, folder: Path, tokenizer) -> torch.nn.Module:
    torch.manual_seed(0)
    model = cls(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=37, max_position_embeddings=64)).eval()
    with torch.no_grad():  # no zero biases or unit norms: every tensor must carry over
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


@pytest.mark.parametrize("cls, added", [(BertForPreTraining, []), (BertForMaskedLM, ["pooler", "NSP head"])])
def test_heads_of_tiny_transformers_berts_carry_over_exactly(cls, added, minilm_path, tmp_path):
    hf = _tiny_bert(cls, tmp_path / "hf", AutoTokenizer.from_pretrained(minilm_path))
    ours, info, _ = _start(tmp_path / "hf")
    assert info["initialized"] == added
    ids = torch.randint(1000, 30000, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    labels = torch.full_like(ids, -100)
    labels[0, [1, 4, 9]] = ids[0, [1, 4, 9]]
    labels[1, [2, 5]] = ids[1, [2, 5]]
    with torch.no_grad():
        theirs = hf(ids, attention_mask=mask)
        got = ours(ids, attention_mask=mask, labels=labels)
    expected = (theirs.prediction_logits if cls is BertForPreTraining else theirs.logits)[labels != -100]
    torch.testing.assert_close(got.masked_logits, expected, atol=1e-5, rtol=1e-5)
    if cls is BertForPreTraining:
        torch.testing.assert_close(got.seq_relationship_logits, theirs.seq_relationship_logits, atol=1e-5, rtol=1e-5)
        # And a selfsup-bert folder loads as is: nothing added, nothing changed.
        ours.save_pretrained(tmp_path / "ours")
        AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path / "ours")
        again, info, _ = _start(tmp_path / "ours")
        assert info["initialized"] == [] and info["model_type"] == "selfsup-bert"
        for name, tensor in ours.state_dict().items():
            assert torch.equal(tensor, again.state_dict()[name]), name


def _run_args(tmp_path, *extra):
    (tmp_path / "corpus.txt").write_text(CORPUS)
    return ["--corpus", str(tmp_path / "corpus.txt"), "--output_dir", str(tmp_path / "run"), "--max_steps", "1",
            "--report_to", "none", *extra]


def test_another_model_family_is_refused_naming_both(tmp_path):
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32)).save_pretrained(
        tmp_path / "gpt2")
    with pytest.raises(InputError, match="gpt2") as error:
        pretrain.main(_run_args(tmp_path, "--model_name_or_path", str(tmp_path / "gpt2")))
    message = str(error.value)
    assert "GPT2LMHeadModel" in message and "'bert'" in message and "selfsup-bert" in message
    assert "config.json" in message and "model_type" in message


def test_a_tokenizer_of_another_size_is_refused_naming_both(minilm_path, tmp_path):
    small = train_wordpiece(CORPUS.split("\n"), vocab_size=100)
    small.save_pretrained(tmp_path / "small")
    with pytest.raises(InputError, match=f"has {len(small)} tokens .* has 30522") as error:
        pretrain.main(_run_args(tmp_path, "--model_name_or_path", str(minilm_path),
                                "--tokenizer_name", str(tmp_path / "small")))
    assert "vocab_size" in str(error.value)


def test_a_checkpoint_without_a_tokenizer_needs_one_named(minilm_path, tmp_path):
    BertForMaskedLM(BertConfig(vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32)).save_pretrained(tmp_path / "bare")
    with pytest.raises(InputError, match="tokenizer_name"):
        starting_tokenizer(None, str(tmp_path / "bare"))
    with pytest.raises(InputError, match="model_name_or_path"):
        starting_tokenizer(None, str(tmp_path / "no-such-folder"))


def test_a_missing_checkpoint_folder_is_named_as_such(tmp_path):
    from selfsup.pretrain.starting_model import checkpoint_folder

    for missing in (tmp_path / "runs" / "model", "./model"):
        with pytest.raises(InputError, match="not found locally, and not a valid Hub id"):
            checkpoint_folder(missing)
