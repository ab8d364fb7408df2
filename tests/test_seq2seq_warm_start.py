"""Warm-starting selfsup-seq2seq from BERT checkpoints (BERT2BERT, Rothe et al. 2020): the
encoder computes what the BERT computes, the decoder blocks carry the BERT's weights, the
cross-attention is new, mismatches are named, and the result trains and saves."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, BertConfig, BertModel

from selfsup.errors import InputError
from selfsup.modeling import SelfsupBertConfig, SelfsupBertForPreTraining
from selfsup.seq2seq.tokenizer import WordTokenizer
from selfsup.seq2seq.warm_start import WarmStartArguments, warm_started_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "scripts"))
import train_seq2seq  # noqa: E402
from tiny_corpus import CORPUS, word_level_tokenizer  # noqa: E402

SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             max_position_embeddings=64)


def _jitter(model: torch.nn.Module) -> None:
    """No zero biases or unit norms: every tensor must be seen to carry over."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)


def transformers_bert(folder: Path, **overrides) -> BertModel:
    """A tiny transformers BertModel (post-LN) saved with a WordPiece tokenizer."""
    tok = word_level_tokenizer(CORPUS)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tok), **(SIZES | overrides))).eval()
    _jitter(model)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model


def selfsup_bert(folder: Path, **overrides) -> SelfsupBertForPreTraining:
    """A tiny pre-LN selfsup-bert with its MLM and NSP heads, as scripts/pretrain.py saves it."""
    tok = word_level_tokenizer(CORPUS)
    torch.manual_seed(0)
    model = SelfsupBertForPreTraining(SelfsupBertConfig(vocab_size=len(tok), pre_layer_norm=True,
                                                        **(SIZES | overrides))).eval()
    _jitter(model)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model


def _batch(tok: WordTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    inputs, _ = tok.encode_batch(["The sky is blue.", "Ask anyone about the taste of the lemon , everyone knows"])
    return inputs["input_ids"], inputs["attention_mask"]


@pytest.mark.parametrize("kind", ["bert", "selfsup-bert"])
def test_the_encoder_computes_what_the_bert_computes_and_the_decoder_carries_its_blocks(kind, tmp_path):
    bert = (transformers_bert if kind == "bert" else selfsup_bert)(tmp_path / "bert")
    tok = WordTokenizer.from_pretrained(tmp_path / "bert")
    model, info = warm_started_model(WarmStartArguments(str(tmp_path / "bert"), str(tmp_path / "bert")), tok)
    model.eval()
    ids, mask = _batch(tok)
    with torch.no_grad():
        expected = (bert(input_ids=ids, attention_mask=mask) if kind == "bert"
                    else bert.bert(input_ids=ids, attention_mask=mask)).last_hidden_state
        torch.testing.assert_close(model.encode(ids, mask)[mask.bool()], expected[mask.bool()], atol=1e-5, rtol=1e-5)
    # The decoder's self-attention and feed-forward are the BERT's, tensor for tensor.
    layer = model.encoder.layers[1]
    for name, p in model.decoder.layers[1].named_parameters():
        if not name.startswith("cross_"):
            assert torch.equal(p, layer.get_parameter(name)), name
    # Cross-attention is new: initialised as the model initialises (N(0, 0.02), zero biases, unit norms).
    cross = model.decoder.layers[0].cross_attention
    assert info["initialized"] == ["decoder cross-attention"]
    assert set(info["initialized_parameters"]) == {f"decoder.layers.{i}.{n}" for i in range(2)
                                                   for n, _ in model.decoder.layers[i].named_parameters()
                                                   if n.startswith("cross_")}
    assert 0.015 < cross.kv.weight.std().item() < 0.025 and not cross.kv.bias.any()
    assert model.lm_head.weight is model.embeddings.word_embeddings.weight
    assert model.config.pre_layer_norm == (kind == "selfsup-bert") and model.config.vocab_size == len(tok)
    assert info["encoder"]["converted_to_selfsup_bert"] == (kind == "bert")
    assert "pooler.weight" in info["encoder"]["unused_tensors"]
    assert "embeddings.word_embeddings.weight" in info["decoder"]["unused_tensors"]  # shared with the encoder


def test_without_decoder_from_the_decoder_is_new_and_of_the_bert_size(tmp_path):
    selfsup_bert(tmp_path / "bert")
    tok = WordTokenizer.from_pretrained(tmp_path / "bert")
    model, info = warm_started_model(WarmStartArguments(str(tmp_path / "bert")), tok, copy=True)
    assert info["decoder"] is None and info["initialized"] == ["decoder", "copy head"]
    assert len(model.decoder.layers) == 2 and model.config.use_copy
    assert not any(k.startswith(("encoder.", "embeddings.")) for k in info["initialized_parameters"])


@pytest.mark.parametrize("overrides, message", [
    (dict(intermediate_size=40), "field 'decoder_from': tensor 'decoder.layers.0.ffn.fc_in.bias' has shape "
                                 "\\(40,\\), the seq2seq model's is \\(48,\\)"),
    (dict(num_attention_heads=2), "field 'num_attention_heads': num_attention_heads is 2, the encoder's"),
])
def test_a_decoder_bert_of_another_size_is_refused_naming_what_differs(overrides, message, tmp_path):
    selfsup_bert(tmp_path / "enc")
    selfsup_bert(tmp_path / "dec", **overrides)
    tok = WordTokenizer.from_pretrained(tmp_path / "enc")
    with pytest.raises(InputError, match=message):
        warm_started_model(WarmStartArguments(str(tmp_path / "enc"), str(tmp_path / "dec")), tok)


def test_sequences_longer_than_the_bert_positions_are_refused(tmp_path):
    selfsup_bert(tmp_path / "bert")
    tok = WordTokenizer.from_pretrained(tmp_path / "bert")
    with pytest.raises(InputError, match="max_position_embeddings.*100 tokens.*64 positions"):
        warm_started_model(WarmStartArguments(str(tmp_path / "bert")), tok, max_length=100)


def test_train_seq2seq_warm_starts_trains_and_records_where_each_part_came_from(tmp_path, one_thread):
    selfsup_bert(tmp_path / "bert")
    rows = [{"src": f"The {b} is {c}.", "tgt": f"{c} {b}"} for b, c in (("sky", "blue"), ("bell", "loud"),
                                                                        ("lemon", "sour"), ("ball", "round"))]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows * 4))
    out = tmp_path / "run"
    summary = train_seq2seq.main([
        "--encoder_from", str(tmp_path / "bert"), "--decoder_from", str(tmp_path / "bert"), "--copy",
        "--train_file", str(tmp_path / "train.jsonl"), "--validation_file", str(tmp_path / "train.jsonl"),
        "--max_source_length", "16", "--max_target_length", "8", "--max_steps", "4",
        "--per_device_train_batch_size", "8", "--learning_rate", "1e-3", "--output_dir", str(out),
        "--report_to", "none", "--save_steps", "0", "--max_new_tokens", "4"])
    record = json.loads((out / "results.json").read_text())["warm_start"]
    assert record == json.loads(json.dumps(summary["warm_start"]))
    assert record["encoder"]["folder"] == record["decoder"]["folder"] == str(tmp_path / "bert")
    assert record["initialized"] == ["decoder cross-attention", "copy head"]
    assert summary["train"]["steps"] == 4 and torch.isfinite(torch.tensor(summary["train"]["train_loss"]))
    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    # trained: four steps moved the BERT's weights, and the folder keeps the BERT's WordPiece vocabulary
    start = SelfsupBertForPreTraining.from_pretrained(tmp_path / "bert").bert.encoder.layers[0].ffn.fc_in.weight
    assert 0 < (model.encoder.layers[0].ffn.fc_in.weight - start).abs().max() < 0.1
    assert WordTokenizer.from_pretrained(out).vocab == WordTokenizer.from_pretrained(tmp_path / "bert").vocab


@pytest.mark.parametrize("flags, message", [
    (["--decoder_from", "x"], "--decoder_from needs --encoder_from"),
    (["--encoder_from", "x", "--tokenizer_name", "y"], "cannot be combined"),
    (["--encoder_from", "BERT", "--hidden_size", "64"], "field 'hidden_size': --hidden_size 64, but .* \\(32\\)"),
])
def test_warm_start_flags_that_cannot_work_are_refused(flags, message, tmp_path):
    selfsup_bert(tmp_path / "bert")
    flags = [str(tmp_path / "bert") if f == "BERT" else f for f in flags]
    (tmp_path / "t.jsonl").write_text(json.dumps({"src": "the sky", "tgt": "blue"}) + "\n")
    with pytest.raises(InputError, match=message):
        train_seq2seq.main(["--train_file", str(tmp_path / "t.jsonl"), "--output_dir", str(tmp_path / "o"),
                            "--max_source_length", "16", "--max_target_length", "8", *flags])


def test_minilm_warm_starts_with_its_encoder_unchanged(minilm_path):
    """A real transformers BERT (MiniLM, 6 x 384): its tokenizer pads and truncates to 128 in
    tokenizer.json, which the seq2seq tokenizer must not inherit."""
    tok = WordTokenizer.from_pretrained(minilm_path)
    long = " ".join(["word"] * 300)
    assert tok.words(long) == ["word"] * 300
    model, info = warm_started_model(WarmStartArguments(str(minilm_path)), tok)
    model.eval()
    bert = BertModel.from_pretrained(minilm_path).eval()
    ids, mask = _batch(tok)
    with torch.no_grad():
        expected = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        torch.testing.assert_close(model.encode(ids, mask)[mask.bool()], expected[mask.bool()], atol=1e-4, rtol=1e-4)
    assert info["config"]["hidden_size"] == 384 and info["config"]["num_decoder_layers"] == 6
