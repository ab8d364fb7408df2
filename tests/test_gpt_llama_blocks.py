"""selfsup-gpt's Llama options (rotary positions, RMSNorm, SwiGLU, grouped-query attention,
tied or untied embeddings, biases on or off) against transformers' LlamaForCausalLM with the
same weights, and each option alone on the GPT-2 default against its own reference."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

import selfsup  # noqa: F401  (registers selfsup-gpt)
from selfsup.modeling import SelfsupGPTConfig, SelfsupGPTForCausalLM
from selfsup.modeling.blocks import RMSNorm
from selfsup.modeling.convert_llama import config_from_hf, hf_to_selfsup, load_into
from selfsup.modeling.rotary import RotaryPositions, apply_rotary

TINY_LLAMA = dict(vocab_size=101, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=40, max_position_embeddings=64, rms_norm_eps=1e-5, initializer_range=0.3,
                  rope_parameters={"rope_type": "default", "rope_theta": 500.0}, tie_word_embeddings=True)
LLAMAS = {
    "gqa-tied-nobias": dict(),
    "untied": dict(tie_word_embeddings=False),
    "mha-biases": dict(num_key_value_heads=4, attention_bias=True, mlp_bias=True),
    "multi-query": dict(num_key_value_heads=1, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
}


def tiny_llama(**overrides) -> LlamaForCausalLM:
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{**TINY_LLAMA, **overrides})).eval()
    with torch.no_grad():  # norms start at 1 and biases at 0: move them, so a mix-up would show
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.2)
    return model


def as_selfsup(llama: LlamaForCausalLM, **config_overrides) -> SelfsupGPTForCausalLM:
    config = config_from_hf(llama.config)
    for k, v in config_overrides.items():
        setattr(config, k, v)
    ours = SelfsupGPTForCausalLM(config).eval()
    load_into(ours, hf_to_selfsup(llama.state_dict(), config.num_hidden_layers), path="test")
    return ours


def padded_batch():
    """Rows of 9, 6 and 3 real tokens: the first row unpadded, the second left-padded, the third right-padded."""
    torch.manual_seed(1)
    ids = torch.randint(3, 101, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    mask[2, 3:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("name", LLAMAS)
def test_logits_equal_llama_with_the_same_weights_on_a_padded_batch(name, implementation):
    llama = tiny_llama(**LLAMAS[name])
    ours = as_selfsup(llama)
    ours.config._attn_implementation = implementation
    ids, mask, positions = padded_batch()
    with torch.no_grad():
        expected = llama(ids, attention_mask=mask, position_ids=positions).logits
        got = ours(ids, attention_mask=mask, position_ids=positions, use_cache=False).logits
        implicit = ours(ids, attention_mask=mask, use_cache=False).logits  # positions from the mask
    real = mask.bool()
    assert (got[real] - expected[real]).abs().max() < 1e-5
    assert (implicit[real] - expected[real]).abs().max() < 1e-5
    assert expected[real].std() > 0.5  # logits that differ enough to tell a wrong mapping


@pytest.mark.parametrize("name", LLAMAS)
def test_greedy_generate_equals_llama_on_a_left_padded_batch(name):
    llama = tiny_llama(**{"initializer_range": 0.5, **LLAMAS[name]})  # wider: varied greedy tokens
    ours = as_selfsup(llama)
    ids = torch.tensor([[11, 12, 13, 14, 15, 16], [0, 0, 0, 21, 22, 23]])
    mask = (ids != 0).long()
    kwargs = dict(attention_mask=mask, do_sample=False, max_new_tokens=10, pad_token_id=0)
    expected = llama.generate(ids, **kwargs)
    assert ours.generate(ids, **kwargs).tolist() == expected.tolist()
    assert len(set(expected[:, 6:].flatten().tolist())) > 2


def test_the_cache_holds_only_the_key_value_heads():
    ours = as_selfsup(tiny_llama(num_key_value_heads=1))
    out = ours(torch.randint(0, 101, (2, 5)), use_cache=True)
    assert out.cache.keys[0].shape == (2, 1, 5, 8)


def test_tied_and_untied_embeddings_survive_save_and_load(tmp_path):
    for tie in (True, False):
        model = as_selfsup(tiny_llama(tie_word_embeddings=tie))
        assert (model.lm_head.weight is model.embeddings.word_embeddings.weight) == tie
        model.save_pretrained(tmp_path / str(tie))
        loaded = AutoModelForCausalLM.from_pretrained(tmp_path / str(tie)).eval()
        assert (loaded.lm_head.weight is loaded.embeddings.word_embeddings.weight) == tie
        torch.testing.assert_close(loaded.lm_head.weight, model.lm_head.weight, atol=0, rtol=0)
        ids = torch.randint(0, 101, (2, 7))
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, atol=0, rtol=0)


def test_biases_off_means_no_bias_parameters():
    model = as_selfsup(tiny_llama())
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]
    with_bias = as_selfsup(tiny_llama(attention_bias=True, mlp_bias=True))
    assert len([n for n, _ in with_bias.named_parameters() if n.endswith("bias")]) == 2 * 4  # qkv, out, fc_in, fc_out


# Each option alone on the GPT-2 default, checked against its own reference.

def test_rmsnorm_equals_torch_rms_norm_and_keeps_float32_in_bf16():
    torch.manual_seed(0)
    norm, x = RMSNorm(16, eps=1e-5), torch.randn(3, 5, 16) * 3
    with torch.no_grad():
        norm.weight.normal_(1, 0.3)
    torch.testing.assert_close(norm(x), F.rms_norm(x, (16,), norm.weight, 1e-5), atol=1e-6, rtol=0)
    assert norm(x.bfloat16()).dtype == torch.float32  # the weight's dtype, as Llama's


def test_rotary_scores_depend_only_on_the_distance_between_positions():
    torch.manual_seed(0)
    rope, q, k = RotaryPositions(8, theta=100.0), torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(m, n):
        cos_q, sin_q = rope(torch.tensor([[m]]), torch.float32)
        cos_k, sin_k = rope(torch.tensor([[n]]), torch.float32)
        return (apply_rotary(q, cos_q, sin_q) * apply_rotary(k, cos_k, sin_k)).sum()

    torch.testing.assert_close(score(7, 3), score(27, 23), atol=1e-5, rtol=0)
    assert abs(score(7, 3) - score(7, 4)) > 1e-3
    torch.testing.assert_close(score(5, 5), (q * k).sum(), atol=1e-5, rtol=0)  # distance 0: no rotation


OPTIONS = {
    "rope": dict(position_embedding_type="rope", rope_theta=1000.0),
    "rmsnorm": dict(norm_type="rmsnorm"),
    "swiglu": dict(gated_mlp=True, hidden_act="silu"),
    "gqa": dict(num_key_value_heads=2),
    "untied": dict(tie_word_embeddings=False),
    "no-biases": dict(attention_bias=False, mlp_bias=False),
}


def tiny_gpt(**overrides) -> SelfsupGPTForCausalLM:
    torch.manual_seed(0)
    config = AutoConfig.for_model("selfsup-gpt", vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
                                  **overrides)
    return AutoModelForCausalLM.from_config(config).eval()


@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_decodes_with_a_cache_as_without_and_eager_as_sdpa(option):
    model = tiny_gpt(**OPTIONS[option])
    ids, mask, _ = padded_batch()
    ids = ids[:2] % 99  # the unpadded and the left-padded row
    mask = mask[:2]
    with torch.no_grad():
        full = model(ids, attention_mask=mask, use_cache=False).logits
        out = model(ids[:, :4], attention_mask=mask[:, :4], use_cache=True)
        steps = [out.logits]
        for t in range(4, ids.shape[1]):
            out = model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], cache=out.cache, use_cache=True)
            steps.append(out.logits)
        model.config._attn_implementation = "eager"
        eager = model(ids, attention_mask=mask, use_cache=False).logits
    real = mask.bool()
    assert (torch.cat(steps, 1)[real] - full[real]).abs().max() < 1e-5
    assert (eager[real] - full[real]).abs().max() < 1e-5


@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_trains_with_a_loss_and_gradients_everywhere(option):
    model = tiny_gpt(**OPTIONS[option]).train()
    ids = torch.randint(0, 99, (2, 8))
    loss = model(ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None and p.grad.abs().sum() > 0
                                        for p in model.parameters())


def test_config_refuses_shapes_the_blocks_cannot_build():
    with pytest.raises(Exception, match="num_key_value_heads"):
        SelfsupGPTConfig(hidden_size=32, num_attention_heads=4, num_key_value_heads=3)
    with pytest.raises(Exception, match="norm_type"):
        SelfsupGPTConfig(norm_type="batchnorm")
    with pytest.raises(Exception, match="position_embedding_type"):
        SelfsupGPTConfig(position_embedding_type="alibi")
