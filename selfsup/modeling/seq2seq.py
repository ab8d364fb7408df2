"""``selfsup-seq2seq``: an encoder–decoder on the core stacks with an optional
pointer-generator copy head (See et al., 2017) and coverage.

The core's cross-attention (multi-head, inside each decoder block) builds the decoder
states; the copy head adds one single-head *copy attention* over the encoder states on
top, whose distribution is both what gets copied and what coverage accumulates. With
copy on, ``logits`` are log-probabilities over the extended vocabulary
``vocab_size + num_extra`` (per-example source OOVs, see ``selfsup.seq2seq.tokenizer``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSeq2SeqLM, GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import ModelOutput, logging

from selfsup.seq2seq.copy import copy_distribution
from selfsup.seq2seq.coverage import coverage_attention, coverage_loss

from .cache import KVCache
from .cache_kwargs import accepts_past_key_values
from .embeddings import Embeddings, SinusoidalPositions
from .stacks import Decoder, Encoder

logger = logging.get_logger(__name__)


class SelfsupSeq2SeqConfig(PreTrainedConfig):
    """Encoder–decoder sizes (``BertConfig`` names; the decoder depth is
    ``num_decoder_layers``) plus the copy/coverage options."""

    model_type = "selfsup-seq2seq"

    vocab_size: int = 8000
    hidden_size: int = 256
    num_hidden_layers: int = 3
    num_decoder_layers: int = 3
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5
    # Pre-LN: trains from scratch without a long warmup (Xiong et al., 2020).
    pre_layer_norm: bool = True
    position_embedding_type: str = "learned"
    use_copy: bool = False
    use_coverage: bool = False
    # See et al. weight the coverage loss by 1 and switch it on for a short final phase.
    coverage_loss_weight: float = 1.0
    pad_token_id: int | None = 0
    unk_token_id: int | None = 1
    bos_token_id: int | None = 2
    eos_token_id: int | None = 3
    decoder_start_token_id: int | None = 2
    is_encoder_decoder: bool = True
    tie_word_embeddings: bool = True
    use_cache: bool = True


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


class SelfsupSeq2SeqForConditionalGeneration(PreTrainedModel, GenerationMixin):
    """Shared embeddings → encoder; decoder with cross-attention → LM head (tied), mixed
    with a copy distribution when ``config.use_copy``."""

    config_class = SelfsupSeq2SeqConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
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
        if c.use_copy:
            self.copy_query = nn.Linear(c.hidden_size, c.hidden_size)
            self.copy_key = nn.Linear(c.hidden_size, c.hidden_size)
            # p_gen from [decoder state; copy context; decoder input] (See et al., eq. 8)
            self.p_gen = nn.Linear(3 * c.hidden_size, 1)
            if c.use_coverage:
                self.coverage_weight = nn.Parameter(torch.zeros(()))
        elif c.use_coverage:
            raise ValueError("use_coverage needs use_copy: coverage accumulates the copy attention")
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, SinusoidalPositions):
            module.reset_table()
        if module is self and self.config.use_coverage:
            init.zeros_(self.coverage_weight)

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def get_output_embeddings(self):
        return self.lm_head

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

    def set_output_embeddings(self, value):
        self.lm_head = value

    def _implementation(self) -> str:
        return "eager" if getattr(self.config, "_attn_implementation", None) == "eager" else "sdpa"

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, src_len) → encoder states (batch, src_len, hidden)."""
        return self.encoder(self.embeddings(input_ids), attention_mask,
                            implementation=self._implementation()).hidden_states

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
        use_cache = c.use_cache if use_cache is None else use_cache
        if use_cache and self.decoder.checkpointing_active():
            logger.warning_once("use_cache=True is incompatible with gradient checkpointing in training: "
                                "setting use_cache=False")
            use_cache = False
        if encoder_outputs is not None and not isinstance(encoder_outputs, torch.Tensor):
            encoder_outputs = encoder_outputs[0]  # a BaseModelOutput, as generate() passes it
        memory = self.encode(input_ids, attention_mask) if encoder_outputs is None else encoder_outputs
        if attention_mask is None:
            attention_mask = torch.ones(memory.shape[:2], dtype=torch.long, device=memory.device)
        if decoder_input_ids is None:
            decoder_input_ids = self.shift_right(labels)
        cache = (cache if cache is not None else Seq2SeqCache()) if use_cache else None
        past = cache.get_seq_length() if cache is not None else 0
        x = self.embeddings(decoder_input_ids, past_length=past)
        states = self.decoder(x, None, memory=memory, memory_mask=attention_mask, cache=cache,
                              implementation=self._implementation()).hidden_states
        vocab_logits = self.lm_head(states).float()
        # [PAD] and the start token are never outputs.
        vocab_logits[..., c.pad_token_id] = float("-inf")
        vocab_logits[..., c.decoder_start_token_id] = float("-inf")
        attn = p_gen = cov_loss = None
        if not c.use_copy:
            logits = vocab_logits
        else:
            src_ext = input_ids if source_extended_ids is None else source_extended_ids
            num_extra = max(0, int(src_ext.max()) + 1 - c.vocab_size)
            if labels is not None:
                num_extra = max(num_extra, int(labels.max()) + 1 - c.vocab_size)
            keys = cache.copy_keys if cache is not None and cache.copy_keys is not None else self.copy_key(memory)
            scores = (self.copy_query(states) @ keys.transpose(1, 2)).float() / math.sqrt(c.hidden_size)
            if c.use_coverage:
                prior = cache.coverage if cache is not None else None
                attn, cov_before, cov_after = coverage_attention(scores, attention_mask, self.coverage_weight, prior)
            else:
                attn = scores.masked_fill(~attention_mask[:, None, :].bool(), torch.finfo(scores.dtype).min).softmax(-1)
            if cache is not None:
                cache.copy_keys = keys
                if c.use_coverage:
                    cache.coverage = cov_after
            context = attn.to(memory.dtype) @ memory
            p_gen = torch.sigmoid(self.p_gen(torch.cat([states, context, x], -1))).float()
            final = copy_distribution(vocab_logits.softmax(-1), attn, p_gen, src_ext, num_extra, attention_mask)
            logits = final.log()  # -inf where nothing can be produced (e.g. another example's OOV slots)
        loss = nll = None
        if labels is not None:
            flat = labels.reshape(-1)
            keep = flat != -100
            index = flat.clamp(min=0)[:, None]
            if c.use_copy:
                # log of the picked probability only: log(0) elsewhere would make 0·inf = NaN gradients.
                # The floor gives a target with no mass (an OOV absent from the source) a finite loss.
                picked = final.reshape(-1, final.shape[-1]).gather(1, index).squeeze(1).clamp_min(1e-30).log()
            else:
                picked = logits.reshape(-1, logits.shape[-1]).log_softmax(-1).gather(1, index).squeeze(1)
            nll = -torch.where(keep, picked, 0.0).sum()  # where, not ×: ignored positions may be -inf
            loss = nll
            if c.use_coverage:
                cov_loss = coverage_loss(attn, cov_before, labels != -100)
                loss = loss + c.coverage_loss_weight * cov_loss
            denom = keep.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
            loss = loss / denom
        out = Seq2SeqCopyOutput(loss=loss, logits=logits, cache=cache, encoder_last_hidden_state=memory,
                                copy_attention=attn, p_gen=p_gen, nll_loss=nll, coverage_loss=cov_loss)
        return out if return_dict is not False else out.to_tuple()


AutoConfig.register(SelfsupSeq2SeqConfig.model_type, SelfsupSeq2SeqConfig, exist_ok=True)
AutoModelForSeq2SeqLM.register(SelfsupSeq2SeqConfig, SelfsupSeq2SeqForConditionalGeneration, exist_ok=True)
