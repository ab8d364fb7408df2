"""``selfsup-seq2seq``: an encoder–decoder on the core stacks with an optional
pointer-generator copy head (See et al., 2017) and coverage (``copy_head``).

The core's cross-attention (multi-head, inside each decoder block) builds the decoder
states; the copy head mixes the vocabulary distribution with a copy distribution over the
source. With copy on, ``logits`` are log-probabilities over the extended vocabulary
``vocab_size + num_extra`` (per-example source OOVs, see ``selfsup.seq2seq.tokenizer``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSeq2SeqLM, GenerationMixin
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import ModelOutput

from .cache import KVCache
from .cache_kwargs import accepts_past_key_values
from .configuration import SelfsupSeq2SeqConfig
from .copy_head import CopyHead, num_extra_ids
from .embeddings import Embeddings
from .pretrained import SelfsupPreTrainedModel
from .stacks import Decoder, Encoder

# Pre-CopyHead checkpoint names → today's (regex on the key, as transformers' key_mapping takes).
LEGACY_COPY_HEAD_NAMES = {r"^copy_query\.": "copy_head.query.", r"^copy_key\.": "copy_head.key.",
                          r"^p_gen\.": "copy_head.p_gen.", r"^coverage_weight$": "copy_head.coverage_weight"}


@dataclass
class Seq2SeqCopyOutput(ModelOutput):
    """``logits``: (batch, tgt_len, vocab [+ num_extra]) — log-probabilities when copy is on.
    ``copy_attention``: (batch, tgt_len, src_len); ``p_gen``: (batch, tgt_len, 1).
    ``nll_loss`` / ``coverage_loss``: the two parts of ``loss``."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    # ``cache``, as transformers >= 5.24 names it (its ModelOutput constructors rename
    # ``past_key_values=`` to ``cache=``); ``past_key_values`` below reads it on every 5.x.
    cache: object | None = None
    encoder_last_hidden_state: torch.Tensor | None = None
    copy_attention: torch.Tensor | None = None
    p_gen: torch.Tensor | None = None
    nll_loss: torch.Tensor | None = None
    coverage_loss: torch.Tensor | None = None

    @property
    def past_key_values(self):
        return self.cache


class Seq2SeqCache(KVCache):
    """The core's KV cache plus the copy head's state: projected encoder keys
    (batch, src_len, hidden) and coverage (batch, src_len)."""

    def __init__(self):
        super().__init__()
        self.copy_keys: torch.Tensor | None = None
        self.coverage: torch.Tensor | None = None

    def reorder(self, index: torch.Tensor) -> None:
        super().reorder(index)
        if self.copy_keys is not None:
            self.copy_keys = self.copy_keys.index_select(0, index)
        if self.coverage is not None:
            self.coverage = self.coverage.index_select(0, index)

    def reorder_cache(self, beam_idx: torch.Tensor) -> None:
        """transformers' beam search calls this name."""
        self.reorder(beam_idx)


class _EncoderView(nn.Module):
    """What ``generate()`` calls as the encoder: source ids → ``BaseModelOutput``. It holds the
    model without registering it, so no parameter is seen twice."""

    main_input_name = "input_ids"

    def __init__(self, model: "SelfsupSeq2SeqForConditionalGeneration"):
        super().__init__()
        object.__setattr__(self, "model", model)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs) -> BaseModelOutput:
        return BaseModelOutput(last_hidden_state=self.model.encode(input_ids, attention_mask))


class SelfsupSeq2SeqForConditionalGeneration(SelfsupPreTrainedModel, GenerationMixin):
    """Shared embeddings → encoder; decoder with cross-attention → LM head (tied), mixed
    with a copy distribution when ``config.use_copy``."""

    config_class = SelfsupSeq2SeqConfig
    base_model_prefix = "model"
    _tied_weights_keys = {"lm_head.weight": "embeddings.word_embeddings.weight"}

    def __init__(self, config: SelfsupSeq2SeqConfig):
        super().__init__(config)
        c = config
        # One embedding table for source and target: same vocabulary, and copying means
        # a source word and the same generated word should look alike.
        self.embeddings = Embeddings(c.vocab_size, c.hidden_size, c.max_position_embeddings, 0,
                                     c.position_embedding_type, c.layer_norm_eps, c.hidden_dropout_prob,
                                     norm=not c.pre_layer_norm)
        stack = dict(activation=c.hidden_act, dropout=c.hidden_dropout_prob,
                     attention_dropout=c.attention_probs_dropout_prob, eps=c.layer_norm_eps, pre_norm=c.pre_layer_norm)
        self.encoder = Encoder(c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size, **stack)
        self.encoder.main_input_name = "input_ids"  # generate() asks the encoder what its input is called
        self.decoder = Decoder(c.num_decoder_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size,
                               cross_attention=True, **stack)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.copy_head = CopyHead(c.hidden_size, coverage=c.use_coverage) if c.use_copy else None
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, CopyHead) and module.coverage_weight is not None:
            init.zeros_(module.coverage_weight)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # Folders saved before the copy head was a module name its parameters copy_query.*,
        # copy_key.*, p_gen.* and coverage_weight; they load under copy_head.*.
        kwargs.setdefault("key_mapping", LEGACY_COPY_HEAD_NAMES)
        return super().from_pretrained(*args, **kwargs)

    def save_pretrained(self, *args, save_original_format: bool = False, **kwargs):
        # One layout on disk (copy_head.*), whichever a model was loaded from: transformers would
        # otherwise write a legacy folder back in the legacy names, which the training loop's
        # plain load_state_dict (best model, resume) would not match.
        return super().save_pretrained(*args, save_original_format=save_original_format, **kwargs)

    # -- transformers' generate(): encoder, cache and decoder inputs --------------------
    def get_encoder(self, modality: str | None = None) -> nn.Module:
        return _EncoderView(self)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # The copy head keeps its keys and coverage beside the KV cache: forward builds a
        # Seq2SeqCache at the first step and generate() carries it on from the outputs.
        return False

    def prepare_inputs_for_generation(self, input_ids: torch.Tensor, *args, **kwargs) -> dict:
        inputs = super().prepare_inputs_for_generation(input_ids, *args, **kwargs)
        # A copied OOV word (an extended id) is read back as [UNK]: the embedding has no row for it.
        ids = inputs["decoder_input_ids"]
        inputs["decoder_input_ids"] = ids.masked_fill(ids >= self.config.vocab_size, self.config.unk_token_id)
        return inputs

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, src_len) → encoder states (batch, src_len, hidden)."""
        return self.encoder(self.embeddings(input_ids), attention_mask,
                            implementation=self.attention_implementation).hidden_states

    def shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        """Decoder inputs from labels (batch, tgt_len): start token, then labels[:-1], with
        -100 → pad and extended (copied OOV) ids → ``[UNK]`` (the embedding has no row for them)."""
        c = self.config
        inputs = torch.cat([labels.new_full((labels.shape[0], 1), c.decoder_start_token_id), labels[:, :-1]], 1)
        inputs = inputs.masked_fill(inputs == -100, c.pad_token_id)
        return inputs.masked_fill(inputs >= c.vocab_size, c.unk_token_id)

    @accepts_past_key_values
    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                decoder_input_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                source_extended_ids: torch.Tensor | None = None, encoder_outputs: torch.Tensor | None = None,
                cache: Seq2SeqCache | None = None, use_cache: bool | None = None,
                num_items_in_batch: int | torch.Tensor | None = None, return_dict: bool | None = None,
                **kwargs) -> Seq2SeqCopyOutput:
        """``input_ids``/``attention_mask``: source (batch, src_len), OOV words as ``[UNK]``.
        ``source_extended_ids``: (batch, src_len), OOV words as ``vocab_size + k`` (copy only;
        defaults to ``input_ids``). ``labels``: (batch, tgt_len), extended ids allowed with
        copy, -100 ignored. ``decoder_input_ids``: (batch, new_len), the target tokens after
        what ``cache`` holds (default: ``labels`` shifted right; ``past_key_values=`` is the same
        argument, see ``cache_kwargs``).
        ``encoder_outputs``: precomputed encoder states (batch, src_len, hidden).
        Loss: summed NLL (+ weighted coverage loss) / ``num_items_in_batch`` (default: the
        number of labelled tokens)."""
        c = self.config
        memory = self._memory(input_ids, attention_mask, encoder_outputs)
        if attention_mask is None:
            attention_mask = torch.ones(memory.shape[:2], dtype=torch.long, device=memory.device)
        if decoder_input_ids is None:
            decoder_input_ids = self.shift_right(labels)
        cache = self._cache(cache, use_cache)
        x = self.embeddings(decoder_input_ids, past_length=cache.get_seq_length() if cache is not None else 0)
        states = self.decoder(x, None, memory=memory, memory_mask=attention_mask, cache=cache,
                              implementation=self.attention_implementation).hidden_states
        vocab_logits = self.vocab_logits(states)
        copied = None
        if self.copy_head is None:
            logits = vocab_logits
        else:
            source = input_ids if source_extended_ids is None else source_extended_ids
            copied = self.copy_head(vocab_logits, states, x, memory, attention_mask, source,
                                    num_extra_ids(source, c.vocab_size, labels), cache)
            logits = copied.probs.log()  # -inf where nothing can be produced (e.g. another example's OOV slots)
        loss = nll = cov_loss = None
        if labels is not None:
            nll, cov_loss = self.copy_head.loss(copied, labels) if copied is not None else (_nll(logits, labels), None)
            loss = nll if cov_loss is None else nll + c.coverage_loss_weight * cov_loss
            denom = (labels != -100).sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
            loss = loss / denom
        out = Seq2SeqCopyOutput(loss=loss, logits=logits, cache=cache, encoder_last_hidden_state=memory,
                                copy_attention=copied.attention if copied else None,
                                p_gen=copied.p_gen if copied else None, nll_loss=nll, coverage_loss=cov_loss)
        return out if return_dict is not False else out.to_tuple()

    def _memory(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None,
                encoder_outputs: torch.Tensor | BaseModelOutput | None) -> torch.Tensor:
        """Encoder states (batch, src_len, hidden): ``encoder_outputs`` when given (a tensor, or
        the ``BaseModelOutput`` generate() passes), else the encoded source."""
        if encoder_outputs is None:
            return self.encode(input_ids, attention_mask)
        return encoder_outputs if isinstance(encoder_outputs, torch.Tensor) else encoder_outputs[0]

    def _cache(self, cache: Seq2SeqCache | None, use_cache: bool | None) -> Seq2SeqCache | None:
        """The cache to fill: the one given, a new one at the first step, or None without caching."""
        use_cache = self.cache_enabled(use_cache, self.decoder)
        return (cache if cache is not None else Seq2SeqCache()) if use_cache else None

    def vocab_logits(self, states: torch.Tensor) -> torch.Tensor:
        """(batch, tgt_len, hidden) → fp32 logits (batch, tgt_len, vocab); [PAD] and the start
        token are never outputs."""
        logits = self.lm_head(states).float()
        logits[..., self.config.pad_token_id] = float("-inf")
        logits[..., self.config.decoder_start_token_id] = float("-inf")
        return logits


def _nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed NLL of ``labels`` (batch, tgt_len; -100 ignored) under ``logits`` (batch, tgt_len, vocab)."""
    flat = labels.reshape(-1)
    picked = logits.reshape(-1, logits.shape[-1]).log_softmax(-1).gather(1, flat.clamp(min=0)[:, None]).squeeze(1)
    return -torch.where(flat != -100, picked, 0.0).sum()  # where, not ×: ignored positions may be -inf


AutoConfig.register(SelfsupSeq2SeqConfig.model_type, SelfsupSeq2SeqConfig, exist_ok=True)
AutoModelForSeq2SeqLM.register(SelfsupSeq2SeqConfig, SelfsupSeq2SeqForConditionalGeneration, exist_ok=True)
