"""Weight compatibility with Hugging Face BERT checkpoints, both ways.

A name mapping plus one concatenation: our self-attention fuses query/key/value into one
``qkv`` projection, BERT keeps three. Nothing else changes, so a round trip is exact. Every
architecture in ``ARCHITECTURES`` converts with its heads; a tensor with no place on the
other side is an error, so no head is ever dropped silently.
"""
from __future__ import annotations

import json
import os
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
_TASK_HEADS = [("classifier", "classifier"), ("qa_outputs", "qa_outputs")]
_MLM_BIAS = ("cls.predictions.bias", "cls.bias")
_HF_HEAD_PREFIXES = ("cls.", "classifier.", "qa_outputs.")
_OUR_HEAD_PREFIXES = ("cls.", "nsp.", "classifier.", "qa_outputs.")
# Buffers and tied copies that carry no information of their own.
_DERIVED = re.compile(r"(^|\.)(position_ids|token_type_ids)$|^cls\.predictions\.decoder\.(weight|bias)$")


def is_derived(name: str) -> bool:
    """A buffer or tied copy in a BERT state dict: nothing is lost when it is missing or dropped."""
    return bool(_DERIVED.search(name))

# Every BERT architecture both libraries have: (transformers class, selfsup class).
ARCHITECTURES = {
    "model": ("BertModel", "SelfsupBertModel"),
    "pretraining": ("BertForPreTraining", "SelfsupBertForPreTraining"),
    "masked_lm": ("BertForMaskedLM", "SelfsupBertForMaskedLM"),
    "sequence_classification": ("BertForSequenceClassification", "SelfsupBertForSequenceClassification"),
    "token_classification": ("BertForTokenClassification", "SelfsupBertForTokenClassification"),
    "question_answering": ("BertForQuestionAnswering", "SelfsupBertForQuestionAnswering"),
}
# The Auto class that loads each, on either side.
AUTO_CLASSES = {"model": "AutoModel", "pretraining": "AutoModelForPreTraining", "masked_lm": "AutoModelForMaskedLM",
                "sequence_classification": "AutoModelForSequenceClassification",
                "token_classification": "AutoModelForTokenClassification",
                "question_answering": "AutoModelForQuestionAnswering"}


def architecture(names, declared: list[str] | None) -> str:
    """Which of ``ARCHITECTURES`` a selfsup-named state dict is. The tensors decide (a Hub
    ``BertForMaskedLM`` may carry the NSP head too, and all of it is kept); only a
    ``classifier`` is ambiguous: config.json's ``architectures`` says sequence or token, and
    without it the pooler does (sequence classification uses it, token classification has none)."""
    names = set(names)
    if "qa_outputs.weight" in names:
        return "question_answering"
    if "classifier.weight" in names:
        for kind in ("sequence_classification", "token_classification"):
            if any(a.endswith("For" + ARCHITECTURES[kind][0].removeprefix("BertFor")) for a in declared or []):
                return kind
        return "sequence_classification" if "bert.pooler.weight" in names else "token_classification"
    if "nsp.weight" in names:
        return "pretraining"
    return "masked_lm" if "cls.bias" in names else "model"


def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder (single or sharded safetensors)."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    files = (sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists()
             else ["model.safetensors"])
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


def _split_heads(state: dict[str, torch.Tensor], head_prefixes: tuple[str, ...]) -> tuple[dict, dict]:
    """(encoder tensors without the ``bert.`` prefix, head tensors). A model with heads
    prefixes its encoder with ``bert.``; a bare encoder has neither."""
    if any(k.startswith("bert.") for k in state):
        return _split_prefix(state, "bert.")
    return ({k: v for k, v in state.items() if not k.startswith(head_prefixes)},
            {k: v for k, v in state.items() if k.startswith(head_prefixes)})


def _map_heads(heads: dict[str, torch.Tensor], pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Moves every head tensor named in ``pairs`` (source, target) out of ``heads``."""
    out = {}
    for src, dst in pairs:
        for suffix in ("weight", "bias"):
            if f"{src}.{suffix}" in heads:
                out[f"{dst}.{suffix}"] = heads.pop(f"{src}.{suffix}")
    return out


def hf_to_selfsup(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """HF BERT names (with or without the ``bert.`` prefix, with any heads of ``ARCHITECTURES``)
    → ours. The result is prefixed with ``bert.`` when heads are present. A tensor that
    has no place is an error, never dropped."""
    state = {k: v for k, v in state.items() if not _DERIVED.search(k)}
    body, heads = _split_heads(state, _HF_HEAD_PREFIXES)
    out = {}
    for hf, ours in _GLOBAL:
        for suffix in ("weight", "bias"):
            if f"{hf}.{suffix}" in body:
                out[f"{ours}.{suffix}"] = body.pop(f"{hf}.{suffix}")
    for i in range(num_layers):
        hf_p, our_p = f"encoder.layer.{i}.", f"encoder.layers.{i}."
        for suffix in ("weight", "bias"):
            try:
                out[f"{our_p}attention.qkv.{suffix}"] = torch.cat(
                    [body.pop(f"{hf_p}attention.self.{n}.{suffix}") for n in ("query", "key", "value")])
                for hf, ours in _LAYER:
                    out[f"{our_p}{ours}.{suffix}"] = body.pop(f"{hf_p}{hf}.{suffix}")
            except KeyError as e:
                raise InputError(f"encoder tensor {e.args[0]!r} missing: the weights do not match the config "
                                 f"({num_layers} layers)") from None
    if heads:
        out = {f"bert.{k}": v for k, v in out.items()}
        out.update(_map_heads(heads, _HEADS + _TASK_HEADS))
        if _MLM_BIAS[0] in heads:
            out[_MLM_BIAS[1]] = heads.pop(_MLM_BIAS[0])
    leftover = sorted(body) + sorted(heads)
    if leftover:
        raise InputError(f"tensors with no place in a selfsup-bert model (not a BERT architecture selfsup has: "
                         f"{', '.join(a for a, _ in ARCHITECTURES.values())}): {leftover[:8]}")
    return out


def hf_to_selfsup_pretraining(state: dict[str, torch.Tensor], num_layers: int, folder: str | os.PathLike | None = None
                              ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A transformers BERT state dict (any of BertModel, BertForMaskedLM, BertForPreTraining)
    → SelfsupBertForPreTraining names, with whichever heads it has; and the tensors not
    used (e.g. a fine-tuning classifier), which, unlike :func:`hf_to_selfsup`, are returned rather
    than refused: continuing pretraining from a fine-tuned BERT keeps its encoder. ``folder``
    names the checkpoint in errors."""
    state = {k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias"): v
             for k, v in state.items()}  # the names of checkpoints converted from TensorFlow
    prefixed = any(k.startswith("bert.") for k in state)
    body = {k.removeprefix("bert."): v for k, v in state.items()
            if (k.startswith("bert.") if prefixed else not k.startswith("cls."))}
    heads = {k: v for k, v in state.items() if (not k.startswith("bert.") if prefixed else k.startswith("cls."))}
    words = body.get("embeddings.word_embeddings.weight")
    for name, tied_to in (("cls.predictions.decoder.weight", words),
                          ("cls.predictions.decoder.bias", heads.get("cls.predictions.bias"))):
        if name in heads and tied_to is not None and not torch.equal(heads[name], tied_to):
            raise InputError(f"{name} differs from the tensor it is tied to in BERT; selfsup-bert ties the MLM "
                             "decoder to the word embeddings and cannot keep an untied one", path=folder,
                             field="tie_word_embeddings")
    try:
        out = {f"bert.{k}": v for k, v in hf_to_selfsup(body, num_layers).items()}
    except KeyError as e:
        raise InputError(f"encoder tensor {e.args[0]!r} missing: the weights do not match config.json",
                         path=folder) from e
    except InputError as e:
        raise InputError(str(e), path=folder) from e
    out.update(_map_heads(heads, _HEADS))
    if _MLM_BIAS[0] in heads:
        out[_MLM_BIAS[1]] = heads.pop(_MLM_BIAS[0])
    return out, sorted(k for k in heads if not is_derived(k))


def selfsup_to_hf(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """Our names → HF BERT names (``bert.``-prefixed when heads are present). A tensor that
    has no place in a transformers BERT is an error, never dropped."""
    body, heads = _split_heads({k: v for k, v in state.items() if k != "cls.decoder.weight"}, _OUR_HEAD_PREFIXES)
    out = {}
    for hf, ours in _GLOBAL:
        for suffix in ("weight", "bias"):
            if f"{ours}.{suffix}" in body:
                out[f"{hf}.{suffix}"] = body.pop(f"{ours}.{suffix}")
    for i in range(num_layers):
        hf_p, our_p = f"encoder.layer.{i}.", f"encoder.layers.{i}."
        for suffix in ("weight", "bias"):
            q, k, v = body.pop(f"{our_p}attention.qkv.{suffix}").chunk(3)
            for name, t in zip(("query", "key", "value"), (q, k, v)):
                out[f"{hf_p}attention.self.{name}.{suffix}"] = t.contiguous()
            for hf, ours in _LAYER:
                out[f"{hf_p}{hf}.{suffix}"] = body.pop(f"{our_p}{ours}.{suffix}")
    if heads:
        out = {f"bert.{k}": v for k, v in out.items()}
        out.update(_map_heads(heads, [(ours, hf) for hf, ours in _HEADS + _TASK_HEADS]))
        if "cls.bias" in heads:  # BERT's MLM decoder: tied to the word embeddings, its bias kept twice
            out[_MLM_BIAS[0]] = out["cls.predictions.decoder.bias"] = heads.pop("cls.bias")
            out["cls.predictions.decoder.weight"] = out["bert.embeddings.word_embeddings.weight"]
    leftover = sorted(body) + sorted(heads)
    if leftover:
        raise InputError(f"tensors with no place in a transformers BERT model: {leftover[:8]}")
    return out


_SHARED_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                  "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                  "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "classifier_dropout")


# What a fine-tuned head's config says about its outputs (num_labels follows from id2label).
_HEAD_FIELDS = ("id2label", "label2id", "problem_type")


def config_from_hf(hf: dict) -> SelfsupBertConfig:
    if hf.get("model_type") != "bert":
        raise InputError(f"model_type is {hf.get('model_type')!r}, expected 'bert'", field="model_type")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise InputError(f"position_embedding_type {hf['position_embedding_type']!r} is not supported "
                         "(only absolute/learned positions)", field="position_embedding_type")
    kwargs = {k: hf[k] for k in _SHARED_FIELDS if k in hf}
    for k in _HEAD_FIELDS:
        if k in hf:
            kwargs[k] = hf[k]
    return SelfsupBertConfig(position_embedding_type="learned", pre_layer_norm=False, **kwargs)


def config_to_hf(config: SelfsupBertConfig):
    from transformers import BertConfig

    if config.pre_layer_norm or config.position_embedding_type != "learned":
        raise InputError("only post-LN models with learned positions have a BERT equivalent",
                         field="pre_layer_norm/position_embedding_type")
    if not config.tie_word_embeddings:  # selfsup_to_hf writes BERT's tied decoder; an untied one would be lost
        raise InputError("the MLM decoder is untied from the word embeddings; conversion to BERT keeps only a "
                         "tied one", field="tie_word_embeddings")
    d = config.to_dict()
    return BertConfig(**{k: d[k] for k in _SHARED_FIELDS + _HEAD_FIELDS if k in d})


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
    """Convert a checkpoint folder of any architecture in ``ARCHITECTURES``, keeping its heads;
    tokenizer files are copied along. Returns ``dst``."""
    import transformers

    from .. import modeling

    src, dst = Path(src), Path(dst)
    config_path = src / "config.json"
    config_dict = read_config_json(src)
    expected_type = SelfsupBertConfig.model_type if to_hf else "bert"
    if config_dict.get("model_type") != expected_type:
        raise InputError(f"model_type is {config_dict.get('model_type')!r}, expected {expected_type!r}",
                         path=config_path, field="model_type")
    state = read_state_dict(src)
    try:
        if to_hf:
            config = SelfsupBertConfig.from_dict(config_dict)
            kind = architecture(state, config_dict.get("architectures"))
            mapped = selfsup_to_hf(state, config.num_hidden_layers)
            # transformers ties the MLM decoder itself: its weight is the word embeddings, its bias stored once
            mapped = {k: v for k, v in mapped.items() if not _DERIVED.search(k)}
            model = getattr(transformers, ARCHITECTURES[kind][0])(config_to_hf(config))
        else:
            config = config_from_hf(config_dict)
            mapped = hf_to_selfsup(state, config.num_hidden_layers)
            kind = architecture(mapped, config_dict.get("architectures"))
            model = getattr(modeling, ARCHITECTURES[kind][1])(config)
    except InputError as e:
        if e.path is not None:
            raise
        raise InputError(str(e), path=src / "model.safetensors") from e
    try:
        missing, unexpected = model.load_state_dict(mapped, strict=False)
    except RuntimeError as e:  # shapes that disagree with config.json
        raise InputError(f"weights do not match the config: {' '.join(str(e).split())}", path=src) from e
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
    _write_card(src, dst, type(model).__name__, AUTO_CLASSES[kind], to_hf)
    return dst


def _write_card(src: Path, dst: Path, class_name: str, auto_class: str, to_hf: bool) -> None:
    """The converted folder's card. The weights are the source's, unchanged, so the source
    card's results (if it has any) are the converted model's too, and are carried over."""
    from ..provenance import read_card_metrics, write_model_card

    try:
        results = read_card_metrics(src) if (src / "README.md").exists() else []
    except (IndexError, AttributeError, KeyError, TypeError, ValueError):  # a card without selfsup's metadata
        results = []
    source = "selfsup-bert" if to_hf else "transformers BERT"
    write_model_card(
        dst, title=f"{class_name}, converted from {source}", tags=("converted", "bert" if to_hf else "selfsup-bert"),
        base_model=str(src),
        summary=f"`{src}` converted by `scripts/convert_bert.py` to {class_name}: the same weights under "
                f"{'transformers' if to_hf else 'selfsup'} names (query/key/value {'split' if to_hf else 'fused'}), "
                "heads included." + (" Results: the source folder's card, measured before conversion."
                                     if results else ""),
        load=("" if to_hf else "import selfsup  # registers selfsup-bert\n")
             + f"from transformers import {auto_class}\nmodel = {auto_class}.from_pretrained(\"{dst}\")",
        results=[{"task": r["task"], "dataset": r["dataset"], "metrics": r["metrics"]} for r in results] or None)
