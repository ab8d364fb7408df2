"""What a pretraining run starts from: a new selfsup-bert, a selfsup-bert folder, or a
transformers BERT checkpoint (``BertModel``, ``BertForMaskedLM``, ``BertForPreTraining``)
converted to selfsup-bert with its weights unchanged; and the tokenizer that goes with it.

Continuing from a checkpoint keeps the checkpoint's own vocabulary: a tokenizer of another
size is refused, since new token ids would index rows of the embedding trained for others.
Heads the checkpoint lacks (the MLM head of a bare ``BertModel``, the NSP head and pooler
of a ``BertForMaskedLM``) are initialised as BERT does, under the run's seed, and named in
a log line and in the returned info (which the run summary records). The MLM decoder is
tied to the word embeddings, as in BERT, unless a new model's config says
``tie_word_embeddings: false`` or a selfsup-bert checkpoint was saved untied.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from ..errors import InputError
from ..modeling import SelfsupBertConfig, SelfsupBertForPreTraining
from ..modeling.convert_bert import (
    config_from_hf,
    hf_to_selfsup_pretraining,
    is_derived,
    read_config_json,
    read_state_dict,
)
from ..modeling.electra import SelfsupBertForReplacedTokenDetection
from ..resources import require_model
from .tokenizer import load_tokenizer

SUPPORTED = ("model_type 'selfsup-bert', or 'bert' (transformers' BertModel, BertForMaskedLM or "
             "BertForPreTraining; converted to selfsup-bert)")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")
# Parts of SelfsupBertForPreTraining a checkpoint may lack, by parameter-name prefix.
_PARTS = (("pooler", "bert.pooler."), ("MLM head", "cls."), ("NSP head", "nsp."))
_TIED = "cls.decoder.weight"  # the word embeddings, never stored on its own


def checkpoint_folder(name_or_path: str | Path) -> Path:
    """A local folder as is; otherwise a Hub id, fetched (config, safetensors weights and
    tokenizer files only) or read from the local Hub cache."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    text = str(name_or_path)
    if path.exists():
        raise InputError("not a folder (a checkpoint is a folder with config.json and model.safetensors)",
                         path=name_or_path, field="model_name_or_path")
    require_model(text)  # a path that is not there, and could not be a Hub id either
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(text, allow_patterns=["*.json", "*.safetensors", "vocab.txt"]))
    except Exception as e:  # offline, unknown id, gated...: one message that says which input
        raise InputError(f"not a local folder, and not available from the Hugging Face Hub "
                         f"({type(e).__name__}: {e})", path=name_or_path, field="model_name_or_path") from e


def read_config(folder: Path) -> dict:
    """config.json of a supported checkpoint, else an error naming what it is and what is supported."""
    path = folder / "config.json"
    config = read_config_json(folder)
    model_type = config.get("model_type")
    if model_type not in (SelfsupBertConfig.model_type, "bert"):
        what = f" ({', '.join(config['architectures'])})" if config.get("architectures") else ""
        raise InputError(f"model_type is {model_type!r}{what}; continued pretraining supports {SUPPORTED}",
                         path=path, field="model_type")
    return config


def check_vocabulary(tokenizer, config: dict, folder: Path, tokenizer_source) -> None:
    if len(tokenizer) != config.get("vocab_size"):
        raise InputError(
            f"the tokenizer ({tokenizer_source}) has {len(tokenizer)} tokens but the model's vocabulary has "
            f"{config.get('vocab_size')}: continuing from a checkpoint needs its own vocabulary (leave out "
            "--tokenizer_name to use the checkpoint's tokenizer)", path=folder / "config.json", field="vocab_size")


def starting_tokenizer(tokenizer_name: str | None, model_name_or_path: str | None):
    """``--tokenizer_name`` if given, else the checkpoint's own tokenizer when continuing
    from one (checked against its vocabulary size), else None: train a new vocabulary."""
    if not model_name_or_path:
        return load_tokenizer(tokenizer_name) if tokenizer_name else None
    folder = checkpoint_folder(model_name_or_path)
    config = read_config(folder)
    if not tokenizer_name and not any((folder / name).exists() for name in TOKENIZER_FILES):
        raise InputError(f"the checkpoint has no tokenizer ({' or '.join(TOKENIZER_FILES)}); pass "
                         "--tokenizer_name with the tokenizer it was trained with", path=folder,
                         field="tokenizer_name")
    tokenizer = load_tokenizer(tokenizer_name or folder)
    check_vocabulary(tokenizer, config, folder, tokenizer_name or folder)
    return tokenizer


def starting_model(model_cfg, tokenizer, max_seq_length: int, log: Callable[[str], None] = print
                   ) -> tuple[SelfsupBertForPreTraining, dict]:
    """The SelfsupBertForPreTraining to train, and what it was made from (for the run summary):
    a new model of ``model_cfg``'s size, or ``model_cfg.model_name_or_path`` loaded (selfsup-bert)
    or converted (bert). Call after seeding: initialised heads depend on the seed."""
    from transformers import AutoModelForPreTraining

    electra = model_cfg.objective == "electra"
    if not model_cfg.model_name_or_path:
        fields = {k: v for k, v in asdict(model_cfg).items() if k not in ("model_name_or_path", "objective")}
        config = SelfsupBertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                   max_position_embeddings=max(512, max_seq_length), **fields)
        model = SelfsupBertForReplacedTokenDetection(config) if electra else AutoModelForPreTraining.from_config(config)
        return model, {"source": None, "initialized": ["all (a new model)"]}
    if electra:
        raise InputError("--objective electra starts from a new model: continuing ELECTRA pretraining from a "
                         "checkpoint is not supported (its generator is not saved in a fine-tuned or BERT folder)",
                         field="model_name_or_path")

    folder = checkpoint_folder(model_cfg.model_name_or_path)
    hf_config = read_config(folder)
    check_vocabulary(tokenizer, hf_config, folder, getattr(tokenizer, "name_or_path", "given"))
    if max_seq_length > hf_config.get("max_position_embeddings", 512):
        raise InputError(f"max_seq_length {max_seq_length} is longer than the checkpoint's "
                         f"max_position_embeddings {hf_config.get('max_position_embeddings', 512)}",
                         path=folder / "config.json", field="max_position_embeddings")
    if hf_config["model_type"] == SelfsupBertConfig.model_type:
        model, loading = AutoModelForPreTraining.from_pretrained(folder, dtype=torch.float32, use_safetensors=True,
                                                                 output_loading_info=True)
        missing, unused = list(loading["missing_keys"]), sorted(loading["unexpected_keys"])
    else:
        config = config_from_hf(hf_config)
        state, unused = hf_to_selfsup_pretraining(read_state_dict(folder), config.num_hidden_layers, folder)
        model = SelfsupBertForPreTraining(config)  # every part initialised, then the checkpoint's copied in
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected:
            raise InputError(f"weights do not match config.json: unexpected {unexpected[:8]}", path=folder)
        model.tie_weights()
    missing = sorted(k for k in missing if k != _TIED and not is_derived(k))
    initialized = {}
    for part, prefix in _PARTS:
        names = [k for k in missing if k.startswith(prefix)]
        if names:
            initialized[part] = names
    encoder = [k for k in missing if not any(k.startswith(p) for _, p in _PARTS)]
    if encoder:
        raise InputError(f"weights do not match config.json: missing {encoder[:8]}", path=folder)

    kind = "selfsup-bert" if hf_config["model_type"] == SelfsupBertConfig.model_type else "transformers BERT"
    what = f"{kind} {', '.join(hf_config.get('architectures') or [])}".strip()
    info = {"source": str(model_cfg.model_name_or_path), "folder": str(folder), "model_type": hf_config["model_type"],
            "architectures": hf_config.get("architectures"), "converted_to_selfsup_bert": kind != "selfsup-bert",
            "initialized": list(initialized), "initialized_parameters": [k for v in initialized.values() for k in v],
            "unused_tensors": unused,
            "mlm_decoder": "tied to the word embeddings" if model.config.tie_word_embeddings else "untied",
            "config": {k: getattr(model.config, k) for k in (
                "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "hidden_act")}}
    log(f"Continuing from {what} at {folder}"
        + (" (converted to selfsup-bert, weights unchanged)" if info["converted_to_selfsup_bert"] else "")
        + "; size, dropout and vocabulary are the checkpoint's.")
    if initialized:
        log("Initialised, not in the checkpoint: "
            + "; ".join(f"{part} ({', '.join(names)})" for part, names in initialized.items()))
    if unused:
        log(f"Not used (no such part in pretraining): {', '.join(unused)}")
    return model, info
