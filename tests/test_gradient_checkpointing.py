"""Gradient checkpointing trades memory for recomputation and changes nothing else.

Enabled through transformers' public ``gradient_checkpointing_enable()`` (what the Trainer
calls), it reaches every stack of every selfsup model, and a training step with dropout on
gives the loss and gradients of the same step without it, to float32 rounding: torch's
checkpoint restores the RNG state before recomputing, so every dropout mask is drawn again
identically. The blocks really are recomputed, so none of this can hold vacuously.
"""
from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSeq2SeqLM,
)

import selfsup  # noqa: F401
from selfsup.modeling.blocks import Block
from selfsup.modeling.cache import KVCache
from selfsup.modeling.stacks import Decoder, Stack

# transformers 5.24 renamed it activation_checkpointing_enable(); the old name, which works on
# every 5.x, is what the Trainer calls.
pytestmark = [pytest.mark.usefixtures("one_thread"),  # tiny matrices: one intra-op thread (conftest)
              pytest.mark.filterwarnings("ignore:`gradient_checkpointing_(en|dis)able` is deprecated:FutureWarning")]

V = 99
# Dropout well above zero: checkpointing must reproduce the masks, not merely the weights.
TINY = dict(vocab_size=V, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)


def encoder_batch(with_nsp: bool) -> dict:
    """Padded rows with MLM labels at random real positions (the sparse path: the last layer
    runs only where a label is), [CLS] never masked."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, V, (4, 20), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 15:], mask[3, 7:] = 0, 0
    labels = torch.where(torch.rand(4, 20, generator=g) < 0.2, ids, torch.full_like(ids, -100))
    labels[mask == 0] = -100
    labels[:, 0] = -100
    batch = dict(input_ids=ids, attention_mask=mask, labels=labels)
    if with_nsp:
        batch["next_sentence_label"] = torch.tensor([0, 1, 1, 0])
    return batch


def causal_batch() -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, V, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[2, 8:] = 0
    return dict(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100))


def seq2seq_batch() -> dict:
    """Source and target with padding; the copy case adds source OOVs, one of them a target."""
    g = torch.Generator().manual_seed(0)
    ext = torch.randint(4, V, (3, 9), generator=g)
    ext[0, 2], ext[1, 5] = V, V + 1
    mask = torch.ones_like(ext)
    mask[2, 6:] = 0
    ext = ext.masked_fill(mask == 0, 0)
    labels = torch.randint(4, V, (3, 6), generator=g)
    labels[0, 1] = V
    labels[2, 4:] = -100
    return dict(input_ids=ext.masked_fill(ext >= V, 1), attention_mask=mask, source_extended_ids=ext, labels=labels)


def bert_pretraining():
    return AutoModelForPreTraining.from_config(AutoConfig.for_model("selfsup-bert", **TINY)), encoder_batch(True)


def bert_masked_lm():
    return AutoModelForMaskedLM.from_config(AutoConfig.for_model("selfsup-bert", **TINY)), encoder_batch(False)


def gpt():
    # use_cache stays at the config's True, as in training: checkpointing must switch it off.
    return AutoModelForCausalLM.from_config(AutoConfig.for_model("selfsup-gpt", **TINY)), causal_batch()


def seq2seq(**copy):
    config = AutoConfig.for_model("selfsup-seq2seq", **TINY, num_decoder_layers=2, **copy)
    batch = seq2seq_batch()
    if not copy:
        batch["labels"] = batch["labels"].masked_fill(batch["labels"] >= V, 1)
        del batch["source_extended_ids"]
    return AutoModelForSeq2SeqLM.from_config(config), batch


MODELS = {
    "bert-pretraining": bert_pretraining,
    "bert-masked-lm": bert_masked_lm,
    "gpt": gpt,
    "seq2seq": seq2seq,
    "seq2seq-copy-coverage": lambda: seq2seq(use_copy=True, use_coverage=True),
}
STACKS = {"bert-pretraining": 1, "bert-masked-lm": 1, "gpt": 1, "seq2seq": 2, "seq2seq-copy-coverage": 2}


def build(name: str):
    torch.manual_seed(0)
    model, batch = MODELS[name]()
    return model.train(), batch


def training_step(model, batch, seed: int = 1):
    """Loss, every parameter's gradient, and how many times a block ran."""
    calls = []
    hooks = [m.register_forward_pre_hook(lambda *_: calls.append(1)) for m in model.modules() if isinstance(m, Block)]
    try:
        torch.manual_seed(seed)
        loss = model(**batch).loss
        loss.backward()
    finally:
        for hook in hooks:
            hook.remove()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters()}, len(calls)


@pytest.mark.parametrize("name", MODELS)
def test_enabling_reaches_every_stack_and_disabling_clears_it(name):
    model, _ = build(name)
    stacks = [m for m in model.modules() if isinstance(m, Stack)]
    assert len(stacks) == STACKS[name]
    model.gradient_checkpointing_enable()
    assert all(s.gradient_checkpointing for s in stacks)
    model.gradient_checkpointing_disable()
    assert not any(s.gradient_checkpointing for s in stacks)


@pytest.mark.parametrize("use_reentrant", [False, True], ids=["non-reentrant", "reentrant"])
@pytest.mark.parametrize("name", MODELS)
def test_checkpointed_step_has_the_loss_and_gradients_of_a_plain_step_with_dropout_on(name, use_reentrant):
    plain, batch = build(name)
    loss, grads, plain_calls = training_step(plain, batch)
    assert training_step(build(name)[0], batch, seed=2)[0] != loss  # dropout really is on

    model, _ = build(name)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})
    checkpointed_loss, checkpointed_grads, calls = training_step(model, batch)

    assert calls == 2 * plain_calls  # every block ran again in backward
    torch.testing.assert_close(checkpointed_loss, loss, rtol=0, atol=1e-6)
    assert checkpointed_grads.keys() == grads.keys()
    for n, g in grads.items():
        assert g is not None, n
        torch.testing.assert_close(checkpointed_grads[n], g, rtol=1e-5, atol=1e-6, msg=n)


@pytest.mark.parametrize("name", ["gpt", "seq2seq-copy-coverage"])
def test_a_cache_asked_for_in_checkpointed_training_is_dropped(name):
    """As in transformers: the recomputation would append to the cache a second time."""
    plain, batch = build(name)
    _, grads, _ = training_step(plain, dict(batch, use_cache=False))
    model, _ = build(name)
    model.gradient_checkpointing_enable()
    torch.manual_seed(1)
    out = model(**batch, use_cache=True)
    out.loss.backward()
    assert out.past_key_values is None
    for n, g in grads.items():
        torch.testing.assert_close(model.get_parameter(n).grad, g, rtol=1e-5, atol=1e-6, msg=n)


def test_without_gradients_a_training_mode_model_still_fills_its_cache():
    """Nothing is recomputed without a backward pass, so decoding keeps its cache."""
    model, batch = build("gpt")
    model.gradient_checkpointing_enable()
    with torch.no_grad():
        out = model(batch["input_ids"], use_cache=True)
    assert out.past_key_values.get_seq_length() == batch["input_ids"].shape[1]


def test_a_checkpointing_stack_refuses_to_fill_a_cache():
    stack = Decoder(2, 32, 4, 37).train()
    stack.gradient_checkpointing = True
    with pytest.raises(ValueError, match="cache"):
        stack(torch.randn(2, 5, 32, requires_grad=True), cache=KVCache())
