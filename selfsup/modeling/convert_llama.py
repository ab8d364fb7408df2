"""Llama-family checkpoints (Llama, SmolLM2) to ``selfsup-gpt`` and back.

A name mapping plus two concatenations: our self-attention fuses q/k/v into one ``qkv``
projection and our SwiGLU fuses gate/up into one ``fc_in``; Llama keeps them apart. Our
rotary positions pair the two halves of each head as transformers' Llama does, so no
weight is permuted and a round trip is exact. A GGUF file is dequantised by transformers
(``from_pretrained(gguf_file=...)``), which also undoes llama.cpp's q/k permutation.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

from ..errors import InputError
from .blocks import ACTIVATIONS
from .configuration import SelfsupGPTConfig
from .convert_bert import read_config_json, read_state_dict

# Copied along unchanged (the generation config carries the chat model's stop tokens).
COPIED_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "generation_config.json", "chat_template.jinja")
# Families whose checkpoints are Llama blocks under Llama's tensor names.
LLAMA_FAMILY = ("llama",)

# (HF name, our name), inside layer i and outside the layers.
_LAYER = [
    ("input_layernorm", "attention_sublayer.norm"),
    ("self_attn.o_proj", "attention.out"),
    ("post_attention_layernorm", "ffn_sublayer.norm"),
    ("mlp.down_proj", "ffn.fc_out"),
]
# (HF names concatenated in this order, our fused name), inside layer i.
_FUSED = [
    (("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), "attention.qkv"),
    (("mlp.gate_proj", "mlp.up_proj"), "ffn.fc_in"),
]
_GLOBAL = [
    ("model.embed_tokens", "embeddings.word_embeddings"),
    ("model.norm", "decoder.final_norm"),
    ("lm_head", "lm_head"),
]


def _names(num_layers: int):
    """Every (HF names, our name) pair; one HF name unless fused."""
    for hf, ours in _GLOBAL:
        yield (hf,), ours
    for i in range(num_layers):
        for hf, ours in _LAYER:
            yield (f"model.layers.{i}.{hf}",), f"decoder.layers.{i}.{ours}"
        for hfs, ours in _FUSED:
            yield tuple(f"model.layers.{i}.{h}" for h in hfs), f"decoder.layers.{i}.{ours}"


def hf_to_selfsup(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """Llama names → ours. A tied checkpoint may or may not store ``lm_head.weight``."""
    state = dict(state)
    out = {}
    for hfs, ours in _names(num_layers):
        for suffix in ("weight", "bias"):
            keys = [f"{h}.{suffix}" for h in hfs]
            if all(k in state for k in keys):
                parts = [state.pop(k) for k in keys]
                out[f"{ours}.{suffix}"] = parts[0] if len(parts) == 1 else torch.cat(parts)
            elif any(k in state for k in keys):
                raise InputError(f"{[k for k in keys if k not in state]} missing beside {keys[0]}")
    leftover = sorted(k for k in state if not k.endswith("rotary_emb.inv_freq"))
    if leftover:
        raise InputError(f"unexpected tensors not mapped (not a plain Llama checkpoint?): {leftover[:8]}")
    return out


def selfsup_to_hf(state: dict[str, torch.Tensor], config: SelfsupGPTConfig) -> dict[str, torch.Tensor]:
    """Our names → Llama names; the fused projections are split by the config's sizes."""
    head_dim = config.hidden_size // config.num_attention_heads
    kv_dim = config.num_key_value_heads * head_dim
    sizes = {"attention.qkv": [config.hidden_size, kv_dim, kv_dim],
             "ffn.fc_in": [config.intermediate_size, config.intermediate_size]}
    out = {}
    for hfs, ours in _names(config.num_hidden_layers):
        for suffix in ("weight", "bias"):
            if f"{ours}.{suffix}" not in state:
                continue
            tensor = state[f"{ours}.{suffix}"]
            if len(hfs) == 1:
                out[f"{hfs[0]}.{suffix}"] = tensor
            else:
                parts = tensor.split(sizes[ours.split(".", 3)[-1]])
                out.update({f"{h}.{suffix}": p.contiguous() for h, p in zip(hfs, parts)})
    return out


def config_from_hf(hf, path: Path | None = None) -> SelfsupGPTConfig:
    """A ``LlamaConfig`` (or its dict) → the equivalent ``SelfsupGPTConfig``; what has no
    equivalent here (scaled RoPE, a head_dim other than hidden/heads) is an error naming it."""
    from transformers import LlamaConfig

    model_type = hf.get("model_type") if isinstance(hf, dict) else hf.model_type
    if model_type not in LLAMA_FAMILY:
        raise InputError(f"model_type {model_type!r} is not a Llama-family model "
                         f"(supported: {', '.join(LLAMA_FAMILY)})",
                         path=path, field="model_type")
    if isinstance(hf, dict):
        hf = LlamaConfig.from_dict(hf)
    rope = hf.rope_parameters or {}
    if rope.get("rope_type", "default") != "default":
        raise InputError(f"rope_type {rope['rope_type']!r} is not supported (only unscaled rotary positions)",
                         path=path, field="rope_parameters")
    if hf.head_dim != hf.hidden_size // hf.num_attention_heads:
        raise InputError(f"head_dim {hf.head_dim} != hidden_size / num_attention_heads "
                         f"({hf.hidden_size} / {hf.num_attention_heads}) is not supported", path=path, field="head_dim")
    if hf.hidden_act not in ACTIVATIONS:
        raise InputError(f"hidden_act {hf.hidden_act!r} is not supported; choose from {sorted(ACTIVATIONS)}",
                         path=path, field="hidden_act")
    return SelfsupGPTConfig(
        vocab_size=hf.vocab_size, hidden_size=hf.hidden_size, num_hidden_layers=hf.num_hidden_layers,
        num_attention_heads=hf.num_attention_heads, num_key_value_heads=hf.num_key_value_heads,
        intermediate_size=hf.intermediate_size, hidden_act=hf.hidden_act, gated_mlp=True,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=float(hf.attention_dropout),
        max_position_embeddings=hf.max_position_embeddings, initializer_range=hf.initializer_range,
        norm_type="rmsnorm", layer_norm_eps=hf.rms_norm_eps, pre_layer_norm=True,
        position_embedding_type="rope", rope_theta=float(rope.get("rope_theta", 10000.0)),
        attention_bias=hf.attention_bias, mlp_bias=hf.mlp_bias, bos_token_id=hf.bos_token_id,
        eos_token_id=hf.eos_token_id, pad_token_id=hf.pad_token_id, tie_word_embeddings=hf.tie_word_embeddings)


def config_to_hf(config: SelfsupGPTConfig):
    from transformers import LlamaConfig

    llama_blocks = dict(position_embedding_type="rope", norm_type="rmsnorm", gated_mlp=True, pre_layer_norm=True)
    differ = [f"{k}={getattr(config, k)!r}" for k, v in llama_blocks.items() if getattr(config, k) != v]
    if differ:
        raise InputError(f"only Llama blocks ({llama_blocks}) have a Llama equivalent; this model has "
                         f"{', '.join(differ)}", field="position_embedding_type/norm_type/gated_mlp")
    return LlamaConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, num_key_value_heads=config.num_key_value_heads,
        intermediate_size=config.intermediate_size, hidden_act=config.hidden_act,
        attention_dropout=config.attention_probs_dropout_prob, max_position_embeddings=config.max_position_embeddings,
        initializer_range=config.initializer_range, rms_norm_eps=config.layer_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        attention_bias=config.attention_bias, mlp_bias=config.mlp_bias, bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id,
        tie_word_embeddings=config.tie_word_embeddings)


def check_shapes(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path | str) -> None:
    """A source tensor whose shape is not the one the config needs is an error naming it."""
    for name, tensor in state.items():
        if name in expected and tensor.shape != expected[name].shape:
            raise InputError(f"tensor {name!r} has shape {tuple(tensor.shape)}, the config needs "
                             f"{tuple(expected[name].shape)}", path=path)


def load_into(model: torch.nn.Module, mapped: dict[str, torch.Tensor], path: Path | str) -> None:
    """Copy ``mapped`` (target names) into ``model``; a missing or unexpected tensor is an error.
    A tied model's LM head is the embedding, whether or not the checkpoint stores it."""
    tied, head = model.config.tie_word_embeddings, "lm_head.weight"
    if tied:
        mapped.pop(head, None)
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    missing = [k for k in missing if not (tied and k == head)]
    if missing or unexpected:
        raise InputError(f"weights do not match the config: missing {missing[:8]}, unexpected {unexpected[:8]}",
                         path=path)
    if tied:
        model.tie_weights()


def convert(src: str | Path, dst: str | Path, to_hf: bool, gguf_file: str | None = None) -> Path:
    """Convert a checkpoint folder (or a GGUF file in ``src``, dequantised to float32);
    tokenizer files are copied along. Returns ``dst``."""
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM
    from transformers.initialization import no_init_weights

    from .gpt import SelfsupGPTForCausalLM

    src, dst = Path(src), Path(dst)
    if gguf_file is not None:
        if to_hf:
            raise InputError("--gguf_file reads a Llama GGUF checkpoint; --to-hf writes one from selfsup-gpt")
        if not (src / gguf_file).exists():
            raise InputError("no such GGUF file", path=src / gguf_file)
        hf_config = AutoConfig.from_pretrained(src, gguf_file=gguf_file)
        config = config_from_hf(hf_config, path=src / gguf_file)
        hf_model = LlamaForCausalLM.from_pretrained(src, gguf_file=gguf_file, dtype=torch.float32)
        state = hf_model.state_dict()
    else:
        config_dict = read_config_json(src)
        if to_hf:
            if config_dict.get("model_type") != SelfsupGPTConfig.model_type:
                raise InputError(f"model_type is {config_dict.get('model_type')!r}, expected "
                                 f"{SelfsupGPTConfig.model_type!r}", path=src / "config.json", field="model_type")
            config = SelfsupGPTConfig.from_dict(config_dict)
        else:
            config = config_from_hf(config_dict, path=src / "config.json")
        state = read_state_dict(src)
    # Every weight is loaded next (a missing one is an error): skip the random init (seconds at 135M).
    with no_init_weights():
        model = LlamaForCausalLM(config_to_hf(config)) if to_hf else SelfsupGPTForCausalLM(config)
    if to_hf:
        check_shapes(state, hf_to_selfsup(model.state_dict(), config.num_hidden_layers), src)
        mapped = selfsup_to_hf(state, config)
    else:
        check_shapes(state, selfsup_to_hf(model.state_dict(), config), src)
        mapped = hf_to_selfsup(state, config.num_hidden_layers)
    dtypes = {t.dtype for t in mapped.values()}
    model.to(dtypes.pop() if len(dtypes) == 1 else torch.float32)  # keep a bf16 checkpoint bf16
    load_into(model, mapped, src)
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst)
    if gguf_file is not None:
        AutoTokenizer.from_pretrained(src, gguf_file=gguf_file).save_pretrained(dst)
        hf_model.generation_config.save_pretrained(dst)
    else:
        for name in COPIED_FILES:
            if (src / name).exists():
                shutil.copy2(src / name, dst / name)
    return dst
