"""Configs for the from-scratch models, as typed `PreTrainedConfig` dataclasses.

Size fields use `BertConfig`'s names so users' habits (and converted checkpoints) carry
over. `attn_implementation` ("sdpa" or "eager") is read from the config, as transformers 5
does for its own models.
"""
from __future__ import annotations

from transformers import PreTrainedConfig


class SelfsupBertConfig(PreTrainedConfig):
    """A BERT-style bidirectional encoder (post-LN by default, as in BERT)."""

    model_type = "selfsup-bert"

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    # BERT is post-LN; pre-LN trains more stably without warmup (Xiong et al., 2020).
    pre_layer_norm: bool = False
    # "learned" (BERT) or "sinusoidal" (Vaswani et al.; no parameters, extrapolates).
    position_embedding_type: str = "learned"
    classifier_dropout: float | None = None
    tie_word_embeddings: bool = True


class SelfsupGPTConfig(PreTrainedConfig):
    """A GPT-style decoder-only language model (pre-LN, tied embeddings, as GPT-2)."""

    model_type = "selfsup-gpt"

    vocab_size: int = 50257
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu_new"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 1024
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5
    pre_layer_norm: bool = True
    position_embedding_type: str = "learned"
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    tie_word_embeddings: bool = True
    use_cache: bool = True
