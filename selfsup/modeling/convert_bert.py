"""Weight compatibility with Hugging Face BERT checkpoints, both ways.

A name mapping plus one concatenation: our self-attention fuses query/key/value into one
``qkv`` projection, BERT keeps three. Nothing else changes, so a round trip is exact.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import InputError
from .configuration import SelfsupBertConfig

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

# (HF name, our name) inside one encoder layer, and outside the layers.
_LAYER = [
    ("attention.output.dense", "attention.out"),
    ("attention.output.LayerNorm", "attention_sublayer.norm"),
    ("intermediate.dense", "ffn.fc_in"),
    ("output.dense", "ffn.fc_out"),
    ("output.LayerNorm", "ffn_sublayer.norm"),
]
_GLOBAL = [
    ("embeddings.word_embeddings", "embeddings.word_embeddings"),
    ("embeddings.position_embeddings", "embeddings.position_embeddings"),
    ("embeddings.token_type_embeddings", "embeddings.token_type_embeddings"),
    ("embeddings.LayerNorm", "embeddings.norm"),
    ("pooler.dense", "pooler"),
]
_HEADS = [
    ("cls.predictions.transform.dense", "cls.dense"),
    ("cls.predictions.transform.LayerNorm", "cls.norm"),
    ("cls.seq_relationship", "nsp"),
]
# Buffers and tied copies that carry no information of their own.
_DERIVED = re.compile(r"(^|\.)(position_ids|token_type_ids)$|^cls\.predictions\.decoder\.(weight|bias)$")


def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder (single or sharded safetensors)."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    state = {}
    for name in files:
        path = folder / name
        if not path.exists():
            bins = [p.name for p in folder.glob("*.bin")]
            hint = f" (found {bins}: pickled weights are not loaded; re-save them as safetensors)" if bins else ""
            raise InputError(f"no safetensors weights{hint}", path=path)
        try:
            state.update(load_file(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise InputError(f"corrupt or unreadable safetensors file: {e}", path=path) from e
    return state


def _split_prefix(state: dict[str, torch.Tensor], prefix: str) -> tuple[dict, dict]:
    """(encoder tensors with ``prefix`` stripped, head tensors)."""
    body, heads = {}, {}
    for k, v in state.items():
        if k.startswith(prefix):
            body[k[len(prefix):]] = v
        else:
            heads[k] = v
    return body, heads


def hf_to_selfsup(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """HF BERT names (with or without the ``bert.`` prefix and pretraining heads) → ours.
    The result is prefixed with ``bert.`` when heads are present (our ForPreTraining)."""
    state = {k: v for k, v in state.items() if not _DERIVED.search(k)}
    body, heads = _split_prefix(state, "bert.") if any(k.startswith("bert.") for k in state) else (
        {k: v for k, v in state.items() if not k.startswith("cls.")},
        {k: v for k, v in state.items() if k.startswith("cls.")})
    out = {}
    for hf, ours in _GLOBAL:
        for suffix in ("weight", "bias"):
            if f"{hf}.{suffix}" in body:
                out[f"{ours}.{suffix}"] = body.pop(f"{hf}.{suffix}")
    for i in range(num_layers):
        hf_p, our_p = f"encoder.layer.{i}.", f"encoder.layers.{i}."
        for suffix in ("weight", "bias"):
            out[f"{our_p}attention.qkv.{suffix}"] = torch.cat(
                [body.pop(f"{hf_p}attention.self.{n}.{suffix}") for n in ("query", "key", "value")])
            for hf, ours in _LAYER:
                out[f"{our_p}{ours}.{suffix}"] = body.pop(f"{hf_p}{hf}.{suffix}")
    if heads:
        out = {f"bert.{k}": v for k, v in out.items()}
        for hf, ours in _HEADS:
            for suffix in ("weight", "bias"):
                out[f"{ours}.{suffix}"] = heads.pop(f"{hf}.{suffix}")
        out["cls.bias"] = heads.pop("cls.predictions.bias")
    leftover = sorted(body) + sorted(heads)
    if leftover:
        raise InputError(f"unexpected tensors not mapped (not a plain BERT checkpoint?): {leftover[:8]}")
    return out


def selfsup_to_hf(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """Our names → HF BERT names (``bert.``-prefixed + ``cls.*`` when heads are present)."""
    heads_present = any(k.startswith("cls.") for k in state)
    body = {k.removeprefix("bert."): v for k, v in state.items() if not k.startswith(("cls.", "nsp."))}
    out = {}
    for hf, ours in _GLOBAL:
        for suffix in ("weight", "bias"):
            if f"{ours}.{suffix}" in body:
                out[f"{hf}.{suffix}"] = body[f"{ours}.{suffix}"]
    for i in range(num_layers):
        hf_p, our_p = f"encoder.layer.{i}.", f"encoder.layers.{i}."
        for suffix in ("weight", "bias"):
            q, k, v = body[f"{our_p}attention.qkv.{suffix}"].chunk(3)
            for name, t in zip(("query", "key", "value"), (q, k, v)):
                out[f"{hf_p}attention.self.{name}.{suffix}"] = t.contiguous()
            for hf, ours in _LAYER:
                out[f"{hf_p}{hf}.{suffix}"] = body[f"{our_p}{ours}.{suffix}"]
    if heads_present:
        out = {f"bert.{k}": v for k, v in out.items()}
        for hf, ours in _HEADS:
            for suffix in ("weight", "bias"):
                if f"{ours}.{suffix}" in state:
                    out[f"{hf}.{suffix}"] = state[f"{ours}.{suffix}"]
        out["cls.predictions.bias"] = state["cls.bias"]
        out["cls.predictions.decoder.weight"] = out["bert.embeddings.word_embeddings.weight"]
        out["cls.predictions.decoder.bias"] = state["cls.bias"]
    return out


_SHARED_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                  "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                  "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "classifier_dropout")


def config_from_hf(hf: dict) -> SelfsupBertConfig:
    if hf.get("model_type") != "bert":
        raise InputError(f"model_type is {hf.get('model_type')!r}, expected 'bert'", field="model_type")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise InputError(f"position_embedding_type {hf['position_embedding_type']!r} is not supported "
                         "(only absolute/learned positions)", field="position_embedding_type")
    kwargs = {k: hf[k] for k in _SHARED_FIELDS if k in hf}
    for k in ("id2label", "label2id"):
        if k in hf:
            kwargs[k] = hf[k]
    return SelfsupBertConfig(position_embedding_type="learned", pre_layer_norm=False, **kwargs)


def config_to_hf(config: SelfsupBertConfig):
    from transformers import BertConfig

    if config.pre_layer_norm or config.position_embedding_type != "learned":
        raise InputError("only post-LN models with learned positions have a BERT equivalent",
                         field="pre_layer_norm/position_embedding_type")
    d = config.to_dict()
    return BertConfig(**{k: d[k] for k in _SHARED_FIELDS if k in d},
                      **({"id2label": config.id2label, "label2id": config.label2id} if "id2label" in d else {}))


def read_config_json(folder: Path) -> dict:
    """A model folder's config.json; a missing file or invalid JSON is an error naming it."""
    path = Path(folder) / "config.json"
    if not path.exists():
        raise InputError("no config.json: not a Hugging Face model folder", path=path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e}", path=path, line=e.lineno) from e


def convert(src: str | Path, dst: str | Path, to_hf: bool) -> Path:
    """Convert a checkpoint folder; tokenizer files are copied along. Returns ``dst``."""
    from transformers import BertForPreTraining, BertModel

    from .bert import SelfsupBertForPreTraining, SelfsupBertModel

    src, dst = Path(src), Path(dst)
    config_path = src / "config.json"
    config_dict = read_config_json(src)
    expected_type = SelfsupBertConfig.model_type if to_hf else "bert"
    if config_dict.get("model_type") != expected_type:
        raise InputError(f"model_type is {config_dict.get('model_type')!r}, expected {expected_type!r}",
                         path=config_path, field="model_type")
    state = read_state_dict(src)
    if to_hf:
        config = SelfsupBertConfig.from_dict(config_dict)
        mapped = selfsup_to_hf(state, config.num_hidden_layers)
        heads = any(k.startswith("cls.") for k in mapped)
        model = (BertForPreTraining if heads else BertModel)(config_to_hf(config))
        if heads:  # BertForPreTraining's decoder is tied; the bias lives once in the file
            mapped.pop("cls.predictions.decoder.weight")
            mapped.pop("cls.predictions.decoder.bias")
    else:
        config = config_from_hf(config_dict)
        mapped = hf_to_selfsup(state, config.num_hidden_layers)
        heads = any(k.startswith("cls.") for k in mapped)
        model = (SelfsupBertForPreTraining if heads else SelfsupBertModel)(config)
        mapped.pop("cls.decoder.weight", None)
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    # Non-persistent buffers and tied weights are not in a checkpoint by design.
    missing = [k for k in missing if not _DERIVED.search(k) and not k.endswith(
        ("cls.decoder.weight", "cls.predictions.decoder.weight", "cls.predictions.decoder.bias"))]
    if missing or unexpected:
        raise InputError(f"weights do not match the config: missing {missing[:8]}, unexpected {unexpected[:8]}",
                         path=src)
    model.tie_weights()
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst)
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)
    return dst
