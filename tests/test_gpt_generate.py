"""selfsup-gpt under transformers' ``generate()``: greedy equals an argmax loop over full
forwards, the cache works under both of its keywords, sampling is reproducible, beam search
scores what it returns, and the text-generation pipeline loads a saved folder."""
from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast, pipeline

import selfsup  # noqa: F401  (registers selfsup-gpt)

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, initializer_range=0.2)  # a wide init: peaked, varied next tokens
VARIANTS = {"gpt2": dict(),
            "llama": dict(position_embedding_type="rope", norm_type="rmsnorm", gated_mlp=True, hidden_act="silu",
                          num_key_value_heads=2, attention_bias=False, mlp_bias=False)}


def tiny_gpt(**overrides):
    torch.manual_seed(0)
    config = AutoConfig.for_model("selfsup-gpt", **{**TINY, **overrides})
    return AutoModelForCausalLM.from_config(config).eval()


def left_padded_batch():
    """Two prompts (5 and 3 tokens), the short one left-padded with id 0."""
    ids = torch.tensor([[11, 12, 13, 14, 15], [0, 0, 21, 22, 23]])
    return ids, (ids != 0).long()


def argmax_loop(model, ids, mask, steps):
    """Greedy decoding with a full forward (no cache) per token."""
    for _ in range(steps):
        logits = model(ids, attention_mask=mask, use_cache=False).logits[:, -1]
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], 1)
        mask = torch.cat([mask, mask.new_ones(len(ids), 1)], 1)
    return ids


@pytest.mark.parametrize("variant", VARIANTS)
def test_greedy_generate_equals_an_argmax_loop_over_full_forwards(variant):
    model = tiny_gpt(**VARIANTS[variant])
    ids, mask = left_padded_batch()
    expected = argmax_loop(model, ids, mask, 8)
    out = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=8, pad_token_id=0)
    assert out.tolist() == expected.tolist()
    assert len(set(expected[:, 5:].flatten().tolist())) > 2  # the check means something: varied tokens


@pytest.mark.parametrize("keyword", ["cache", "past_key_values"])
def test_forward_takes_the_cache_under_either_keyword(keyword):
    model = tiny_gpt()
    ids = torch.randint(1, 99, (2, 9))
    full = model(ids, use_cache=False).logits
    out = model(ids[:, :4], use_cache=True)
    steps, cache = [out.logits], out.cache
    for t in range(4, 9):
        out = model(ids[:, t:t + 1], use_cache=True, **{keyword: cache})
        steps.append(out.logits)
    assert out.cache is cache and cache.get_seq_length() == 9
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="not both"):
        model(ids[:, :1], cache=cache, past_key_values=cache)


@pytest.mark.parametrize("variant", VARIANTS)
def test_sampling_is_reproducible_with_a_seed_and_the_cache_changes_nothing(variant):
    model = tiny_gpt(**VARIANTS[variant])
    ids, mask = left_padded_batch()

    def sample(seed, use_cache=True):
        torch.manual_seed(seed)
        return model.generate(ids, attention_mask=mask, do_sample=True, top_k=0, max_new_tokens=12,
                              pad_token_id=0, use_cache=use_cache).tolist()

    assert sample(1) == sample(1) == sample(1, use_cache=False)
    assert sample(1) != sample(2)


@pytest.mark.parametrize("variant", VARIANTS)
def test_beam_search_returns_its_best_beam_with_the_score_a_full_forward_gives(variant):
    model = tiny_gpt(**VARIANTS[variant])
    ids, mask = left_padded_batch()
    kwargs = dict(attention_mask=mask, num_beams=3, max_new_tokens=6, min_new_tokens=6, length_penalty=0.0,
                  pad_token_id=0, return_dict_in_generate=True, output_scores=True)
    out = model.generate(ids, **kwargs)
    assert out.sequences.tolist() == model.generate(ids, use_cache=False, **kwargs).sequences.tolist()
    # length_penalty 0: a beam's score is the sum of its tokens' log-probabilities
    full_mask = torch.cat([mask, mask.new_ones(2, 6)], 1)
    logp = model(out.sequences, attention_mask=full_mask, use_cache=False).logits.log_softmax(-1)
    picked = logp[:, 4:-1].gather(-1, out.sequences[:, 5:, None]).squeeze(-1).sum(-1)
    torch.testing.assert_close(out.sequences_scores, picked, atol=1e-4, rtol=0)


def byte_tokenizer():
    """Byte-level, no merges: 256 byte tokens + an end-of-sequence token."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)} | {"<eos>": 256}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>")


def test_text_generation_pipeline_loads_a_saved_folder_and_continues_greedily(tmp_path):
    model, tokenizer = tiny_gpt(vocab_size=257, eos_token_id=256), byte_tokenizer()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    generator = pipeline("text-generation", model=str(tmp_path))
    text = generator("Hello", do_sample=False, max_new_tokens=10, return_full_text=False)[0]["generated_text"]
    ids = tokenizer("Hello", return_tensors="pt").input_ids
    expected = argmax_loop(model, ids, torch.ones_like(ids), 10)[0, ids.shape[1]:]
    expected = expected[:(expected == 256).nonzero()[0, 0]] if (expected == 256).any() else expected
    assert text == tokenizer.decode(expected) and len(text) > 0
