"""The selfsup-bert heads compute what transformers' BERT heads compute, given the same weights.

transformers' ``BertFor{SequenceClassification,TokenClassification,QuestionAnswering}`` is
the independent reference: a random tiny BERT with each head is converted to selfsup-bert
names and must give the same logits and the same loss (classification, regression,
-100-masked token labels, span positions); then the head survives save → Auto reload.
"""
from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertConfig,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)

import selfsup  # noqa: F401  (registers the heads)
from selfsup.modeling import (
    SelfsupBertForQuestionAnswering,
    SelfsupBertForSequenceClassification,
    SelfsupBertForTokenClassification,
)
from selfsup.modeling.convert_bert import config_from_hf, hf_to_selfsup

LAYERS = 2


def _pair(hf_class, ours_class, **config_kwargs):
    """A random HF model with a head, and ours holding exactly its weights."""
    torch.manual_seed(0)
    hf_config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=64, **config_kwargs)
    hf = hf_class(hf_config).eval()
    state = hf.state_dict()
    body = hf_to_selfsup({k.removeprefix("bert."): v for k, v in state.items() if k.startswith("bert.")}, LAYERS)
    head = {k: v for k, v in state.items() if not k.startswith("bert.")}
    config = config_from_hf(hf_config.to_dict())
    config.problem_type = hf_config.problem_type
    ours = ours_class(config).eval()
    ours.load_state_dict({**{f"bert.{k}": v for k, v in body.items()}, **head}, strict=True)
    return hf, ours


def _batch(generator_seed: int = 1):
    g = torch.Generator().manual_seed(generator_seed)
    input_ids = torch.randint(5, 99, (3, 11), generator=g)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 7:] = 0  # a padded row
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, 6:] = 1  # a sentence pair: segment ids matter
    return dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)


@pytest.mark.parametrize("num_labels,labels", [
    (3, torch.tensor([0, 2, 1])),                 # classification (MNLI-like)
    (1, torch.tensor([0.5, 4.2, 2.0])),           # regression (STS-B): MSE
], ids=["classification", "regression"])
def test_sequence_classification_matches_transformers(num_labels, labels):
    hf, ours = _pair(BertForSequenceClassification, SelfsupBertForSequenceClassification, num_labels=num_labels)
    batch = _batch()
    with torch.no_grad():
        want, got = hf(**batch, labels=labels), ours(**batch, labels=labels)
    torch.testing.assert_close(got.logits, want.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.loss, want.loss, atol=1e-5, rtol=1e-4)
    assert got.logits.shape == (3, num_labels)


def test_token_classification_matches_transformers_and_ignores_minus_100():
    hf, ours = _pair(BertForTokenClassification, SelfsupBertForTokenClassification, num_labels=9)
    batch = _batch()
    labels = torch.randint(0, 9, (3, 11), generator=torch.Generator().manual_seed(2))
    labels[:, 0] = labels[1, 7:] = -100  # [CLS] and padding are not scored
    with torch.no_grad():
        want, got = hf(**batch, labels=labels), ours(**batch, labels=labels)
    torch.testing.assert_close(got.logits, want.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.loss, want.loss, atol=1e-5, rtol=1e-4)
    # Masking one more position changes the loss to the mean over the remaining ones.
    masked = labels.clone()
    masked[0, 1] = -100
    keep = masked != -100
    expected = torch.nn.functional.cross_entropy(got.logits[keep], masked[keep])
    with torch.no_grad():
        torch.testing.assert_close(ours(**batch, labels=masked).loss, expected)


def test_question_answering_matches_transformers():
    hf, ours = _pair(BertForQuestionAnswering, SelfsupBertForQuestionAnswering)
    batch = _batch()
    starts, ends = torch.tensor([6, 0, 8]), torch.tensor([7, 0, 10])  # 0 = [CLS] = no answer here
    with torch.no_grad():
        want = hf(**batch, start_positions=starts, end_positions=ends)
        got = ours(**batch, start_positions=starts, end_positions=ends)
    torch.testing.assert_close(got.start_logits, want.start_logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.end_logits, want.end_logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.loss, want.loss, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("auto_class,ours_class,hf_class,kwargs", [
    (AutoModelForSequenceClassification, SelfsupBertForSequenceClassification, BertForSequenceClassification,
     {"id2label": {0: "negative", 1: "positive"}, "label2id": {"negative": 0, "positive": 1}}),
    (AutoModelForTokenClassification, SelfsupBertForTokenClassification, BertForTokenClassification,
     {"id2label": {0: "O", 1: "B-PER", 2: "I-PER"}, "label2id": {"O": 0, "B-PER": 1, "I-PER": 2}}),
    (AutoModelForQuestionAnswering, SelfsupBertForQuestionAnswering, BertForQuestionAnswering, {}),
], ids=["sequence", "token", "span"])
def test_each_head_reloads_through_its_auto_class(tmp_path, auto_class, ours_class, hf_class, kwargs):
    _, ours = _pair(hf_class, ours_class, **kwargs)
    ours.save_pretrained(tmp_path)
    reloaded = auto_class.from_pretrained(tmp_path).eval()
    assert type(reloaded) is ours_class
    assert reloaded.config.id2label == ours.config.id2label
    batch = _batch()
    with torch.no_grad():
        for a, b in zip(ours(**batch).to_tuple(), reloaded(**batch).to_tuple()):
            torch.testing.assert_close(a, b)
