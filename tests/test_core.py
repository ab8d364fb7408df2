"""The from-scratch core: masks, caches, attention paths and Hub-style persistence."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForPreTraining

import selfsup  # noqa: F401
from selfsup.modeling import (
    SelfsupBertConfig,
    SelfsupBertForMaskedLM,
    SelfsupBertForPreTraining,
    SelfsupBertModel,
    SelfsupGPTForCausalLM,
)
from selfsup.modeling.cache import KVCache
from selfsup.modeling.stacks import Decoder

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64)
VARIANTS = [dict(), dict(pre_layer_norm=True), dict(position_embedding_type="sinusoidal")]


def tiny_bert(**overrides) -> SelfsupBertModel:
    torch.manual_seed(0)
    return AutoModel.from_config(AutoConfig.for_model("selfsup-bert", **TINY, **overrides)).eval()


def tiny_gpt(**overrides) -> SelfsupGPTForCausalLM:
    torch.manual_seed(0)
    config = AutoConfig.for_model("selfsup-gpt", **TINY, **overrides)
    return AutoModelForCausalLM.from_config(config).eval()


@pytest.mark.parametrize("overrides", VARIANTS)
def test_padding_does_not_change_real_positions(overrides):
    model = tiny_bert(**overrides)
    ids = torch.randint(1, 99, (1, 6))
    alone = model(ids).last_hidden_state
    padded_ids = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 6 + [0] * 4])
    padded = model(padded_ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(padded[:, :6], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("overrides", VARIANTS)
def test_future_tokens_never_change_earlier_outputs(overrides):
    model = tiny_gpt(**overrides)
    ids = torch.randint(0, 99, (2, 10))
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 99
    a, b = model(ids, use_cache=False).logits, model(changed, use_cache=False).logits
    torch.testing.assert_close(a[:, :6], b[:, :6], atol=1e-6, rtol=0)
    assert (a[:, 6:] - b[:, 6:]).abs().max() > 1e-3  # and the changed positions do change


@pytest.mark.parametrize("overrides", VARIANTS)
def test_cached_incremental_decoding_equals_full_forward(overrides):
    model = tiny_gpt(**overrides)
    ids = torch.randint(0, 99, (2, 12))
    full = model(ids, use_cache=False).logits
    out = model(ids[:, :5], use_cache=True)
    steps, cache = [out.logits], out.past_key_values
    for t in range(5, 12):
        out = model(ids[:, t:t + 1], past_key_values=cache, use_cache=True)
        steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)


def test_left_padded_batch_decodes_like_unpadded_sequences():
    model = tiny_gpt()
    short, long = torch.randint(1, 99, (1, 4)), torch.randint(1, 99, (1, 7))
    batch = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), short], 1), long])
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [1] * 7])
    logits = model(batch, attention_mask=mask, use_cache=False).logits
    torch.testing.assert_close(logits[0, 3:], model(short, use_cache=False).logits[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(logits[1], model(long, use_cache=False).logits[0], atol=1e-5, rtol=0)


def test_decoder_cross_attention_cache_equals_full_pass():
    torch.manual_seed(0)
    decoder = Decoder(2, 32, 4, 37, cross_attention=True, dropout=0.0, attention_dropout=0.0).eval()
    memory, memory_mask = torch.randn(2, 5, 32), torch.tensor([[1, 1, 1, 0, 0], [1] * 5])
    x = torch.randn(2, 6, 32)
    full = decoder(x, memory=memory, memory_mask=memory_mask).hidden_states
    cache = KVCache()
    steps = [decoder(x[:, t:t + 1], memory=memory, memory_mask=memory_mask, cache=cache).hidden_states
             for t in range(6)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=0)
    # Padded source positions get no attention.
    probs = decoder(x, memory=memory, memory_mask=memory_mask, output_attentions=True).cross_attentions
    assert all(p[0, :, :, 3:].abs().max() == 0 for p in probs)


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_equals_eager_and_eager_returns_probabilities(causal):
    ids = torch.randint(1, 99, (3, 9))
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    if causal:
        sdpa = tiny_gpt()
        eager = tiny_gpt(attn_implementation="eager")
        kw = dict(use_cache=False)
    else:
        sdpa, eager = tiny_bert(), tiny_bert(attn_implementation="eager")
        kw = {}
    assert eager.config._attn_implementation == "eager"
    out_sdpa = sdpa(ids, attention_mask=mask, **kw)
    out_eager = eager(ids, attention_mask=mask, output_attentions=True, **kw)
    a = out_sdpa.logits if causal else out_sdpa.last_hidden_state
    b = out_eager.logits if causal else out_eager.last_hidden_state
    torch.testing.assert_close(a[mask.bool()], b[mask.bool()], atol=1e-5, rtol=0)
    probs = out_eager.attentions
    assert len(probs) == 2 and probs[0].shape == (3, 4, 9, 9)
    torch.testing.assert_close(probs[0].sum(-1), torch.ones(3, 4, 9))
    assert probs[0][0, :, :, 5:].max() == 0  # no mass on padding
    if causal:
        assert torch.triu(probs[0][1], diagonal=1).max() == 0  # no mass on the future


@pytest.mark.parametrize("auto_class,model_type,cls", [
    (AutoModel, "selfsup-bert", SelfsupBertModel),
    (AutoModelForPreTraining, "selfsup-bert", SelfsupBertForPreTraining),
    (AutoModelForMaskedLM, "selfsup-bert", SelfsupBertForMaskedLM),
    (AutoModelForCausalLM, "selfsup-gpt", SelfsupGPTForCausalLM),
])
def test_save_and_load_through_auto_classes_is_bit_exact(tmp_path, auto_class, model_type, cls):
    torch.manual_seed(0)
    model = auto_class.from_config(AutoConfig.for_model(model_type, **TINY)).eval()
    assert type(model) is cls
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "config.json").exists()
    loaded = auto_class.from_pretrained(tmp_path).eval()
    assert type(loaded) is cls
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    ids = torch.randint(0, 99, (2, 7))
    assert torch.equal(model(ids)[0], loaded(ids)[0])
    if hasattr(model, "get_output_embeddings") and model.get_output_embeddings() is not None:
        assert loaded.get_output_embeddings().weight is loaded.get_input_embeddings().weight  # still tied


@pytest.mark.parametrize("overrides", [dict(), dict(pre_layer_norm=True)])
def test_gradients_match_finite_differences(overrides):
    config = SelfsupBertConfig(vocab_size=11, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=12, max_position_embeddings=8, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0, **overrides)
    torch.manual_seed(0)
    model = SelfsupBertModel(config).double()
    ids, mask = torch.randint(0, 11, (2, 5)), torch.tensor([[1, 1, 1, 1, 0], [1] * 5])
    x = model.embeddings(ids).detach().requires_grad_(True)

    def f(inp):
        return model.encoder(inp, mask).hidden_states

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)


def test_sparse_mlm_loss_equals_dense_loss_and_each_loss_needs_only_its_labels():
    torch.manual_seed(0)
    model = SelfsupBertForPreTraining(SelfsupBertConfig(**TINY)).eval()
    ids = torch.randint(0, 99, (2, 8))
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 5], labels[1, 6] = 7, 8, 9
    out = model(ids, labels=labels)
    dense = model(ids).prediction_logits
    expected = torch.nn.functional.cross_entropy(dense.view(-1, 99), labels.view(-1))
    torch.testing.assert_close(out.mlm_loss, expected)
    torch.testing.assert_close(out.masked_logits, dense[labels != -100])
    assert out.nsp_loss is None and torch.equal(out.loss, out.mlm_loss)
    nsp_only = model(ids, next_sentence_label=torch.tensor([0, 1]))
    assert nsp_only.mlm_loss is None and nsp_only.loss is not None


def test_too_long_input_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="max_position_embeddings=64"):
        tiny_bert()(torch.zeros(1, 65, dtype=torch.long))


# -- dropout: torch's semantics, fewer passes on the CPU -------------------------------------
def test_dropout_drops_each_element_with_probability_p_and_scales_the_rest():
    from selfsup.modeling.dropout import dropout
    torch.manual_seed(0)
    x = torch.rand(1000, 1000) + 0.5  # no zeros, so a zero in the output means "dropped"
    y = dropout(x, 0.1)
    dropped = (y == 0).double().mean().item()
    assert abs(dropped - 0.1) < 4 * (0.1 * 0.9 / x.numel()) ** 0.5  # binomial, 4 standard errors
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.9, rtol=1e-6, atol=0)


def test_dropout_gradient_uses_the_forward_mask_and_scale():
    from selfsup.modeling.dropout import dropout
    torch.manual_seed(1)
    x = (torch.rand(64, 33) + 0.5).requires_grad_()
    weight = torch.randn(64, 33)
    y = dropout(x, 0.3)
    (y * weight).sum().backward()
    torch.testing.assert_close(x.grad, torch.where(y != 0, weight / 0.7, torch.zeros(())), rtol=1e-6, atol=0)


def test_dropout_is_the_identity_in_eval_and_a_function_of_the_seed_in_training():
    from selfsup.modeling.dropout import Dropout
    layer, x = Dropout(0.5), torch.randn(8, 16)
    torch.manual_seed(3)
    first = layer(x)
    torch.manual_seed(3)
    torch.testing.assert_close(layer(x), first, rtol=0, atol=0)
    assert torch.equal(layer.eval()(x), x)


def test_attention_dropout_in_training_keeps_rows_summing_to_one_in_expectation():
    """The explicit CPU path drops attention probabilities (not outputs): with v = 1 every
    output is the kept mass of a row, whose mean over many rows is 1."""
    from selfsup.modeling.attention import MultiHeadAttention
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 2, dropout=0.25).train()
    with torch.no_grad():
        attn.qkv.weight.zero_(), attn.qkv.bias.zero_()
        attn.qkv.bias[32:] = 1.0                      # v = 1, uniform attention
        attn.out.weight.copy_(torch.eye(16)), attn.out.bias.zero_()
        y, _ = attn(torch.randn(64, 40, 16))
    assert abs(y.mean().item() - 1.0) < 0.01
    assert (y != 1.0).any()                           # it did drop something
