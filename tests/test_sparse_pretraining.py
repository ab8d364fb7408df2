"""Training computes only what its losses read, and gets the same numbers as computing all.

Two shortcuts, each checked against the plain computation: the last encoder layer runs only
where a loss reads it (``output_positions``: the masked positions and [CLS] in pretraining,
[CLS] alone for sequence classification), and the vocabulary projection's cross-entropy runs
vocabulary-major with a reused softmax buffer (``vocab_loss.py``).
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from selfsup.modeling import (
    SelfsupBertConfig,
    SelfsupBertForMaskedLM,
    SelfsupBertForPreTraining,
    SelfsupBertForSequenceClassification,
    SelfsupBertModel,
)
from selfsup.modeling.attention import MultiHeadAttention
from selfsup.modeling.bert import prediction_positions
from selfsup.modeling.vocab_loss import SoftmaxBuffer, vocab_cross_entropy

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64)


def batch(seed: int = 0):
    """Padded rows, one with nothing masked, and labels only on real tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 99, (4, 20), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 15:], mask[3, 7:] = 0, 0
    labels = torch.where(torch.rand(4, 20, generator=g) < 0.2, ids, torch.full_like(ids, -100))
    labels[mask == 0] = -100
    labels[2] = -100
    labels[:, 0] = -100  # [CLS] is never masked
    return ids, mask, labels


def test_prediction_positions_lists_labelled_positions_in_order_and_pads_with_unlabelled_ones():
    labels = torch.tensor([[-100, 5, -100, 6, -100],
                           [-100, -100, -100, -100, 7]])
    positions, at = prediction_positions(labels, with_first=True)
    assert positions.tolist() == [[0, 1, 3], [0, 4, 1]]  # row 1 is short: padded with an unlabelled position
    assert at.tolist() == [[-100, 5, 6], [-100, 7, -100]]
    assert at[at != -100].tolist() == labels[labels != -100].tolist()  # same tokens, same order
    positions, at = prediction_positions(labels, with_first=False)
    assert positions.tolist() == [[1, 3], [4, 0]]
    assert prediction_positions(torch.full((2, 3), -100), with_first=False)[0].shape == (2, 1)


@pytest.mark.parametrize("pre_norm", [False, True])
def test_output_positions_give_the_full_outputs_at_those_positions(pre_norm):
    torch.manual_seed(0)
    model = SelfsupBertModel(SelfsupBertConfig(**TINY, pre_layer_norm=pre_norm)).eval()
    ids, mask, labels = batch()
    positions, _ = prediction_positions(labels, with_first=True)
    full = model(ids, attention_mask=mask)
    some = model(ids, attention_mask=mask, output_positions=positions)
    expected = full.last_hidden_state.gather(1, positions[..., None].expand(-1, -1, 32))
    assert some.last_hidden_state.shape == (4, positions.shape[1], 32)
    torch.testing.assert_close(some.last_hidden_state, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(some.pooler_output, full.pooler_output, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cls", [SelfsupBertForPreTraining, SelfsupBertForMaskedLM])
def test_pretraining_losses_logits_and_every_gradient_equal_the_full_computation(cls):
    torch.manual_seed(0)
    model = cls(SelfsupBertConfig(**TINY)).eval()
    ids, mask, labels = batch()
    inputs = dict(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=torch.tensor(50))
    if cls is SelfsupBertForPreTraining:
        inputs["next_sentence_label"] = torch.tensor([0, 1, 1, 0])

    def run(**extra):
        model.zero_grad()
        out = model(**inputs, **extra)
        out.loss.backward()
        return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    sparse, sparse_grads = run()
    full, full_grads = run(output_hidden_states=True)  # per-layer outputs: the last layer runs everywhere
    # The reference loss from dense logits at every position, by the published definition.
    dense = model(ids, attention_mask=mask)
    dense_logits = dense.prediction_logits if cls is SelfsupBertForPreTraining else dense.logits
    mlm = F.cross_entropy(dense_logits.view(-1, 99), labels.view(-1), reduction="sum") / 50
    torch.testing.assert_close(sparse.loss, full.loss)
    torch.testing.assert_close(getattr(sparse, "mlm_loss", sparse.loss), mlm)
    name = "masked_logits" if cls is SelfsupBertForPreTraining else "logits"
    torch.testing.assert_close(getattr(sparse, name), dense_logits[labels != -100], atol=1e-5, rtol=0)
    if cls is SelfsupBertForPreTraining:
        torch.testing.assert_close(sparse.seq_relationship_logits, dense.seq_relationship_logits)
    assert sparse_grads.keys() == full_grads.keys() == {n for n, _ in model.named_parameters()}
    for n in full_grads:
        torch.testing.assert_close(sparse_grads[n], full_grads[n], atol=1e-6, rtol=1e-5, msg=n)


def test_sequence_classification_runs_the_last_layer_at_cls_only_with_the_same_logits_and_gradients():
    torch.manual_seed(0)
    model = SelfsupBertForSequenceClassification(SelfsupBertConfig(**TINY, num_labels=3)).eval()
    ids, mask, _ = batch()
    labels = torch.tensor([0, 2, 1, 2])

    def run(**extra):
        model.zero_grad()
        out = model(ids, attention_mask=mask, labels=labels, **extra)
        out.loss.backward()
        return out.logits, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    logits, grads = run()
    full_logits, full_grads = run(output_hidden_states=True)  # the last layer runs everywhere
    torch.testing.assert_close(logits, full_logits, atol=1e-6, rtol=0)
    assert grads.keys() == full_grads.keys()
    for n in full_grads:
        torch.testing.assert_close(grads[n], full_grads[n], atol=1e-6, rtol=1e-5, msg=n)


def test_query_positions_are_only_for_bidirectional_attention_without_a_cache():
    attention = MultiHeadAttention(32, 4)
    x, positions = torch.randn(2, 5, 32), torch.zeros(2, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="bidirectional"):
        attention(x, is_causal=True, query_positions=positions)


def reference(hidden, weight, bias, targets, divisor=None):
    logits = F.linear(hidden, weight, bias)
    if divisor is None:
        return F.cross_entropy(logits, targets), logits
    return F.cross_entropy(logits, targets, reduction="sum") / divisor, logits


def leaves(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 16, generator=g).requires_grad_(), torch.randn(100, 16, generator=g).requires_grad_(),
            torch.randn(100, generator=g).requires_grad_(), torch.randint(0, 100, (n,), generator=g))


@pytest.mark.parametrize("divisor", [None, 50, torch.tensor(64)])
def test_vocab_cross_entropy_equals_linear_then_cross_entropy_with_gradients(divisor):
    hidden, weight, bias, targets = leaves(37)
    upstream = torch.randn(37, 100)  # a second use of the logits must get its gradient too
    loss, logits = vocab_cross_entropy(hidden, weight, bias, targets, divisor, SoftmaxBuffer())
    ours = torch.autograd.grad(loss + (logits * upstream).sum(), (hidden, weight, bias))
    ref_loss, ref_logits = reference(hidden, weight, bias, targets, divisor)
    theirs = torch.autograd.grad(ref_loss + (ref_logits * upstream).sum(), (hidden, weight, bias))
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(logits, ref_logits)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)


def test_vocab_cross_entropy_gradient_is_right_when_the_buffer_was_reused_or_backward_repeats():
    buffer = SoftmaxBuffer()
    hidden, weight, bias, targets = leaves(20)
    first, _ = vocab_cross_entropy(hidden, weight, bias, targets, None, buffer)
    second, _ = vocab_cross_entropy(hidden * 2, weight, bias, targets, None, buffer)  # claims the buffer
    expected = torch.autograd.grad(reference(hidden, weight, bias, targets)[0], (hidden, weight, bias))
    for _ in range(2):  # the second time after retain_graph: the buffer was used up by the first
        got = torch.autograd.grad(first, (hidden, weight, bias), retain_graph=True)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b)
    expected = torch.autograd.grad(reference(hidden * 2, weight, bias, targets)[0], (hidden, weight, bias))
    for a, b in zip(torch.autograd.grad(second, (hidden, weight, bias)), expected):
        torch.testing.assert_close(a, b)


def test_vocab_cross_entropy_of_no_targets_is_zero_and_keeps_a_graph():
    hidden, weight, bias, targets = leaves(0)
    loss, logits = vocab_cross_entropy(hidden, weight, bias, targets, None, SoftmaxBuffer())
    assert loss.item() == 0.0 and logits.shape == (0, 100)
    loss.backward()
    assert weight.grad.abs().sum() == 0


def test_a_copied_head_gets_its_own_softmax_buffer():
    model = SelfsupBertForPreTraining(SelfsupBertConfig(**TINY))
    ids, mask, labels = batch()
    model(ids, attention_mask=mask, labels=labels)
    twin = copy.deepcopy(model)
    assert twin.cls.softmax_buffer is not model.cls.softmax_buffer and twin.cls.softmax_buffer._flat is None
