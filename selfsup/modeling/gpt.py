"""Decoder-only LM on the from-scratch core: GPT-2 blocks by default, Llama-family blocks
(rotary positions, RMSNorm, SwiGLU, grouped-query attention) by config; usable with ``generate()``."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin
from transformers.modeling_outputs import CausalLMOutputWithPast

from .cache import KVCache
from .cache_kwargs import OUTPUT_FIELD, accepts_past_key_values
from .configuration import SelfsupGPTConfig
from .embeddings import Embeddings
from .pretrained import SelfsupPreTrainedModel
from .rotary import RotaryPositions
from .stacks import Decoder


class SelfsupGPTForCausalLM(SelfsupPreTrainedModel, GenerationMixin):
    """Embeddings → causal pre-LN decoder → LM head (tied to the input embeddings unless
    ``config.tie_word_embeddings`` is False)."""

    config_class = SelfsupGPTConfig
    base_model_prefix = "transformer"
    _tied_weights_keys = {"lm_head.weight": "embeddings.word_embeddings.weight"}

    def __init__(self, config: SelfsupGPTConfig):
        super().__init__(config)
        self.embeddings = Embeddings(
            config.vocab_size, config.hidden_size, config.max_position_embeddings, 0,
            config.position_embedding_type, config.layer_norm_eps, config.hidden_dropout_prob,
            norm=not config.pre_layer_norm)
        self.decoder = Decoder(
            config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size,
            activation=config.hidden_act, dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob, eps=config.layer_norm_eps,
            pre_norm=config.pre_layer_norm, num_kv_heads=config.num_key_value_heads, norm=config.norm_type,
            gated_mlp=config.gated_mlp, attention_bias=config.attention_bias, mlp_bias=config.mlp_bias)
        self.rotary = (RotaryPositions(config.hidden_size // config.num_attention_heads, config.rope_theta)
                       if config.position_embedding_type == "rope" else None)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @accepts_past_key_values
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache=None,
                use_cache: bool | None = None, labels: torch.Tensor | None = None,
                num_items_in_batch: int | torch.Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False, return_dict: bool | None = None,
                logits_to_keep: int = 0, **kwargs) -> CausalLMOutputWithPast:
        """``input_ids``: (batch, new_len), the tokens after what ``cache`` holds
        (``past_key_values=`` is the same argument, see ``cache_kwargs``).
        ``attention_mask``: (batch, past_len + new_len) over all positions, 1 = token; or a custom
        additive mask (batch, 1, new_len, past_len + new_len), used as given (pass ``position_ids``).
        ``position_ids``: (batch, new_len); derived from ``attention_mask`` when omitted so
        that left padding does not shift positions. ``labels`` are shifted inside (as in
        transformers). ``logits_to_keep``: project only the last n positions (0 = all).
        """
        use_cache = self.cache_enabled(use_cache, self.decoder)
        cache = (cache if cache is not None else KVCache()) if use_cache else None
        past = cache.get_seq_length() if cache is not None else 0
        if position_ids is None and attention_mask is not None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, past:]
        x = self.embeddings(input_ids, position_ids=position_ids, past_length=past)
        rotary = None
        if self.rotary is not None:
            if position_ids is None:
                position_ids = torch.arange(past, past + input_ids.shape[1], device=input_ids.device)[None]
            rotary = self.rotary(position_ids, x.dtype)
        out = self.decoder(x, attention_mask, cache=cache, implementation=self.attention_implementation,
                           rotary=rotary,
                           output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        hidden = out.hidden_states if not logits_to_keep else out.hidden_states[:, -logits_to_keep:]
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            # Shift the labels, not the logits (as transformers' ForCausalLMLoss does): slicing the
            # logits would copy a (batch x length x vocabulary) tensor every step; the padded last
            # label is -100, ignored, so the mean runs over the same tokens.
            shift_logits = logits.float().view(-1, logits.shape[-1])
            shift_labels = F.pad(labels, (0, 1), value=-100)[:, 1:].reshape(-1)
            if num_items_in_batch is None:
                loss = F.cross_entropy(shift_logits, shift_labels)
            else:
                loss = F.cross_entropy(shift_logits, shift_labels, reduction="sum") / num_items_in_batch
        result = CausalLMOutputWithPast(loss=loss, logits=logits, **{OUTPUT_FIELD: cache},
                                        hidden_states=out.all_hidden_states, attentions=out.attentions)
        return result if return_dict is not False else result.to_tuple()


AutoConfig.register(SelfsupGPTConfig.model_type, SelfsupGPTConfig, exist_ok=True)
AutoModelForCausalLM.register(SelfsupGPTConfig, SelfsupGPTForCausalLM, exist_ok=True)
