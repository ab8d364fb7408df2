"""Warm-starting ``selfsup-seq2seq`` from BERT encoders (BERT2BERT; Rothe et al., 2020).

``--encoder_from`` copies a BERT checkpoint (selfsup-bert, or a transformers ``bert`` folder,
converted on the fly with its weights unchanged) into the encoder and the shared
embeddings; ``--decoder_from`` copies one into the decoder's self-attention and
feed-forward blocks, which become causal. Each decoder block's cross-attention has no
counterpart in BERT and starts fresh (Rothe et al.'s choice), as does a decoder with no
``--decoder_from`` (their BERT2RND) and the copy head.

The model takes the BERT's architecture (width, heads, feed-forward size, activation,
pre-/post-LN, norm epsilon, dropout, positions) and its WordPiece vocabulary: the
tokenizer comes from the ``--encoder_from`` folder. Three parts of BERT change places:

* the token-type embedding: a seq2seq source is one segment, so BERT always adds row 0;
  it is folded into every position embedding, which leaves the encoder's outputs equal to
  the BERT's (tested against the BERT itself);
* the output layer is tied to the word embeddings, as in Rothe et al.; BERT's MLM
  transform and bias, its pooler and NSP head have no place and are listed as unused;
* the decoder shares the encoder's embeddings (selfsup-seq2seq has one table), so a
  ``--decoder_from`` checkpoint's embeddings are unused, and its vocabulary must be the
  encoder's.

What came from where is returned (``info``) in the shape of
``selfsup.pretrain.starting_model``'s record, and the run summary keeps it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from selfsup.errors import InputError
from selfsup.modeling import SelfsupBertConfig
from selfsup.modeling.convert_bert import config_from_hf, hf_to_selfsup_pretraining, read_state_dict
from selfsup.modeling.seq2seq import SelfsupSeq2SeqConfig, SelfsupSeq2SeqForConditionalGeneration
from selfsup.pretrain.starting_model import checkpoint_folder, read_config

from .tokenizer import WordTokenizer

# Config fields the seq2seq model takes from the BERT, and that a --decoder_from BERT must share.
ARCHITECTURE = ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size", "hidden_act",
                "layer_norm_eps", "pre_layer_norm", "position_embedding_type")
# Parts of a decoder block that BERT has (the rest, cross-attention, starts fresh).
_DECODER_PARTS = ("attention.", "attention_sublayer.", "ffn.", "ffn_sublayer.")


@dataclass
class WarmStartArguments:
    encoder_from: str | None = field(default=None, metadata={
        "help": "a selfsup-bert (or transformers BERT) folder: the encoder, the embeddings and the tokenizer start "
                "from it, and the model takes its sizes (BERT2BERT, Rothe et al. 2020)"})
    decoder_from: str | None = field(default=None, metadata={
        "help": "a BERT folder (usually the same) for the decoder's self-attention and feed-forward; its "
                "cross-attention starts fresh. Default: a new decoder of the encoder's size"})


@dataclass
class BertWeights:
    """A BERT checkpoint read as selfsup-bert encoder tensors (no ``bert.`` prefix)."""

    folder: Path
    source: str
    config: SelfsupBertConfig
    model_type: str
    architectures: list[str] | None
    encoder: dict[str, torch.Tensor]  # embeddings.* and encoder.*
    unused: list[str]  # pooler and heads: no place in an encoder–decoder


def read_bert(name_or_path: str, flag: str) -> BertWeights:
    """The encoder tensors and config of a selfsup-bert or transformers BERT folder (any head)."""
    folder = checkpoint_folder(name_or_path)
    raw = read_config(folder)
    if raw["model_type"] == SelfsupBertConfig.model_type:
        config = SelfsupBertConfig.from_pretrained(folder)
        state = read_state_dict(folder)
        if any(k.startswith("bert.") for k in state):
            state = {k.removeprefix("bert."): v for k, v in state.items() if k.startswith("bert.")} | {
                k: v for k, v in state.items() if not k.startswith("bert.")}
    else:
        config = config_from_hf(raw)
        converted, _ = hf_to_selfsup_pretraining(read_state_dict(folder), config.num_hidden_layers, folder)
        state = {k.removeprefix("bert."): v for k, v in converted.items()}
    encoder = {k: v for k, v in state.items() if k.startswith(("embeddings.", "encoder."))}
    if "embeddings.word_embeddings.weight" not in encoder:
        raise InputError("no embeddings.word_embeddings.weight: not a BERT encoder's weights", path=folder,
                         field=flag)
    if config.position_embedding_type != "learned":
        raise InputError(f"position_embedding_type {config.position_embedding_type!r}: warm starting folds BERT's "
                         "token-type embedding into learned positions, so it needs 'learned'",
                         path=folder / "config.json", field="position_embedding_type")
    return BertWeights(folder, str(name_or_path), config, raw["model_type"], raw.get("architectures"), encoder,
                       sorted(k for k in state if k not in encoder))


def seq2seq_config(bert: SelfsupBertConfig, decoder_layers: int, tokenizer: WordTokenizer, copy: bool,
                   coverage: bool, coverage_loss_weight: float) -> SelfsupSeq2SeqConfig:
    """The seq2seq config of a BERT's architecture, with ``decoder_layers`` decoder blocks."""
    return SelfsupSeq2SeqConfig(
        **{k: getattr(bert, k) for k in ARCHITECTURE}, num_hidden_layers=bert.num_hidden_layers,
        num_decoder_layers=decoder_layers, hidden_dropout_prob=bert.hidden_dropout_prob,
        attention_probs_dropout_prob=bert.attention_probs_dropout_prob,
        max_position_embeddings=bert.max_position_embeddings, initializer_range=bert.initializer_range,
        use_copy=copy, use_coverage=coverage, coverage_loss_weight=coverage_loss_weight,
        pad_token_id=tokenizer.pad_id, unk_token_id=tokenizer.unk_id, bos_token_id=tokenizer.bos_id,
        eos_token_id=tokenizer.eos_id, decoder_start_token_id=tokenizer.bos_id)


def encoder_state(bert: BertWeights) -> dict[str, torch.Tensor]:
    """BERT's embeddings and encoder under seq2seq names, token type 0 folded into the positions."""
    state = {k: v for k, v in bert.encoder.items() if not k.startswith("embeddings.token_type_embeddings.")}
    types = bert.encoder.get("embeddings.token_type_embeddings.weight")
    if types is not None:
        state["embeddings.position_embeddings.weight"] = state["embeddings.position_embeddings.weight"] + types[0]
    return state


def decoder_state(bert: BertWeights) -> dict[str, torch.Tensor]:
    """BERT's encoder blocks as decoder blocks (self-attention, feed-forward, their norms and,
    pre-LN, the final norm)."""
    return {"decoder." + k.removeprefix("encoder."): v for k, v in bert.encoder.items()
            if k.startswith("encoder.final_norm.")
            or (k.startswith("encoder.layers.") and k.split(".", 3)[3].startswith(_DECODER_PARTS))}


def _check_shapes(model: torch.nn.Module, state: dict[str, torch.Tensor], bert: BertWeights, flag: str) -> None:
    params = model.state_dict()
    for name, tensor in state.items():
        if name not in params:
            raise InputError(f"tensor {name!r} has no place in the seq2seq model", path=bert.folder, field=flag)
        if params[name].shape != tensor.shape:
            raise InputError(f"tensor {name!r} has shape {tuple(tensor.shape)}, the seq2seq model's is "
                             f"{tuple(params[name].shape)}", path=bert.folder, field=flag)


def warm_started_model(args: WarmStartArguments, tokenizer: WordTokenizer, copy: bool = False,
                       coverage: bool = False, coverage_loss_weight: float = 1.0, max_length: int = 0
                       ) -> tuple[SelfsupSeq2SeqForConditionalGeneration, dict]:
    """A seq2seq model whose encoder (and decoder) come from BERT checkpoints, and the record of
    what came from where. ``tokenizer``: the ``encoder_from`` folder's (checked against its
    vocabulary). ``max_length``: the longest source or target, checked against BERT's
    positions. Call after seeding: the fresh parts depend on the seed."""
    enc = read_bert(args.encoder_from, "encoder_from")
    if len(tokenizer) != enc.config.vocab_size:
        raise InputError(f"the tokenizer has {len(tokenizer)} tokens but the BERT's vocabulary has "
                         f"{enc.config.vocab_size}", path=enc.folder / "config.json", field="vocab_size")
    if max_length > enc.config.max_position_embeddings:
        raise InputError(f"sequences of up to {max_length} tokens, but the BERT has "
                         f"{enc.config.max_position_embeddings} positions (lower --max_source_length / "
                         "--max_target_length)", path=enc.folder / "config.json", field="max_position_embeddings")
    dec = read_bert(args.decoder_from, "decoder_from") if args.decoder_from else None
    layers = (dec or enc).config.num_hidden_layers
    model = SelfsupSeq2SeqForConditionalGeneration(
        seq2seq_config(enc.config, layers, tokenizer, copy, coverage, coverage_loss_weight))
    state = encoder_state(enc)
    _check_shapes(model, state, enc, "encoder_from")
    if dec is not None:
        from_decoder = decoder_state(dec)
        _check_shapes(model, from_decoder, dec, "decoder_from")  # sizes: the tensor that differs is named
        for key in ARCHITECTURE:  # what no tensor shape shows (heads, activation, norm placement)
            if getattr(dec.config, key) != getattr(enc.config, key):
                raise InputError(f"{key} is {getattr(dec.config, key)!r}, the encoder's ({enc.folder}) is "
                                 f"{getattr(enc.config, key)!r}: the decoder blocks must be the encoder's kind",
                                 path=dec.folder / "config.json", field=key)
        if _has_tokenizer(dec.folder) and WordTokenizer.from_pretrained(dec.folder).vocab != tokenizer.vocab:
            raise InputError("its vocabulary differs from the encoder's: the decoder shares the encoder's "
                             "embeddings, so both need one tokenizer", path=dec.folder, field="decoder_from")
        state |= from_decoder
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    fresh = sorted(k for k in model.state_dict() if k not in state and k != "lm_head.weight")
    info = {"encoder": _record(enc, sorted(k for k in state if not k.startswith("decoder."))),
            "decoder": _record(dec, sorted(k for k in state if k.startswith("decoder."))) if dec else None,
            "initialized": _parts(fresh), "initialized_parameters": fresh,
            "lm_head": "tied to the word embeddings",
            "token_type_embedding": "row 0 folded into the position embeddings (a source is one segment)",
            "config": {k: getattr(model.config, k) for k in (*ARCHITECTURE, "num_hidden_layers",
                                                             "num_decoder_layers", "max_position_embeddings")}}
    return model, info


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).exists() for name in ("tokenizer.json", "vocab.txt"))


def _record(bert: BertWeights, parameters: list[str]) -> dict:
    unused = bert.unused + ([k for k in bert.encoder if k.startswith("embeddings.")] if parameters and
                            parameters[0].startswith("decoder.") else [])
    return {"source": bert.source, "folder": str(bert.folder), "model_type": bert.model_type,
            "architectures": bert.architectures, "converted_to_selfsup_bert": bert.model_type != "selfsup-bert",
            "parameters": parameters, "unused_tensors": sorted(unused)}


def _parts(names: list[str]) -> list[str]:
    """Fresh parameters as parts, for the record and the log line: 'decoder' (all of it, when no
    checkpoint gave it), else 'decoder cross-attention'; 'copy head'."""
    parts = set()
    for name in names:
        if name.startswith("decoder.layers.") and ".cross_" in name:
            parts.add("decoder cross-attention")
        elif name.startswith("decoder."):
            parts.add("decoder")
        elif name.startswith(("embeddings.", "encoder.")):
            parts.add("encoder")
        else:
            parts.add("copy head")
    if "decoder" in parts:
        parts.discard("decoder cross-attention")
    return [p for p in ("encoder", "decoder", "decoder cross-attention", "copy head") if p in parts]
