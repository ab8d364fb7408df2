"""`tie_word_embeddings: false` in a pretraining config: the MLM output layer is a matrix of its
own, from the new model through save and load, and a conversion that would tie it is refused."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForPreTraining

import selfsup  # noqa: F401  (registers selfsup-bert)
from selfsup.errors import InputError
from selfsup.modeling.convert_bert import convert
from selfsup.pretrain.config import ModelConfig
from selfsup.pretrain.starting_model import starting_model
from selfsup.pretrain.tokenizer import train_wordpiece

TEXT = ["the quick brown fox jumps over the lazy dog", "a slow green turtle walks under the busy bridge"] * 20


def new_model(tie: bool):
    tokenizer = train_wordpiece(TEXT, vocab_size=120)
    torch.manual_seed(0)
    model, info = starting_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=32, tie_word_embeddings=tie), tokenizer, 32,
                                 log=lambda _: None)
    return model, tokenizer


@pytest.mark.parametrize("tie", [True, False])
def test_the_flag_decides_whether_the_decoder_is_the_embedding_table(tie):
    model, _ = new_model(tie)
    decoder, words = model.get_output_embeddings().weight, model.get_input_embeddings().weight
    assert (decoder.data_ptr() == words.data_ptr()) is tie
    assert model.config.tie_word_embeddings is tie


def test_an_untied_decoder_trains_apart_and_survives_save_and_load(tmp_path):
    model, _ = new_model(tie=False)
    ids = torch.randint(5, 100, (2, 12))
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    before = model.get_input_embeddings().weight.detach().clone()
    model(ids, labels=labels).loss.backward()
    with torch.no_grad():  # one SGD step on the output layer alone
        model.get_output_embeddings().weight -= model.get_output_embeddings().weight.grad
    assert torch.equal(model.get_input_embeddings().weight, before)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForPreTraining.from_pretrained(tmp_path)
    assert torch.equal(loaded.get_output_embeddings().weight, model.get_output_embeddings().weight)
    assert not torch.equal(loaded.get_output_embeddings().weight, loaded.get_input_embeddings().weight)


def test_converting_an_untied_model_to_bert_is_refused_not_tied(tmp_path):
    model, tokenizer = new_model(tie=False)
    model.save_pretrained(tmp_path / "ours")
    with pytest.raises(InputError, match="tie_word_embeddings.*untied"):
        convert(tmp_path / "ours", tmp_path / "hf", to_hf=True)
