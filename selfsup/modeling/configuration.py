"""Configs for the from-scratch models, as typed `PreTrainedConfig` dataclasses.

Size fields use `BertConfig`'s names so users' habits (and converted checkpoints) carry
over. `attn_implementation` ("sdpa" or "eager") is read from the config, as transformers 5
does for its own models.
"""
from __future__ import annotations

from huggingface_hub.dataclasses import strict
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


@strict  # type-checks the fields and runs validate_architecture, as transformers' own configs
class SelfsupGPTConfig(PreTrainedConfig):
    """A decoder-only language model. The defaults are GPT-2's (pre-LN, learned positions,
    LayerNorm, GELU MLP, full multi-head attention, biases, tied embeddings); a Llama-family
    model (SmolLM2) is ``position_embedding_type="rope"``, ``norm_type="rmsnorm"``,
    ``gated_mlp=True`` with ``hidden_act="silu"``, ``num_key_value_heads`` < heads and no biases
    (``selfsup.modeling.convert_llama`` maps a LlamaConfig to these)."""

    model_type = "selfsup-gpt"

    vocab_size: int = 50257
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    # Grouped-query attention (Ainslie et al., 2023): query heads share this many key/value
    # heads, which shrinks the KV cache. None = num_attention_heads (multi-head attention).
    num_key_value_heads: int | None = None
    intermediate_size: int = 3072
    hidden_act: str = "gelu_new"
    # down(act(gate(x)) * up(x)) instead of down(act(up(x))): SwiGLU with hidden_act "silu"
    # (Shazeer, 2020), which Llama-family models use.
    gated_mlp: bool = False
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 1024
    initializer_range: float = 0.02
    # "layernorm" (GPT-2) or "rmsnorm" (Llama: no centring, no bias; its rms_norm_eps goes here).
    norm_type: str = "layernorm"
    layer_norm_eps: float = 1e-5
    pre_layer_norm: bool = True
    # "learned" (GPT-2), "sinusoidal", or "rope": rotary positions (Su et al., 2021), relative,
    # with no embedding table; rope_theta is the base of their frequencies (Llama 10,000; SmolLM2 100,000).
    position_embedding_type: str = "learned"
    rope_theta: float = 10000.0
    # Biases on the q/k/v/output projections and on the MLP (GPT-2 has both, Llama neither).
    attention_bias: bool = True
    mlp_bias: bool = True
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    # Tied: the LM head is the input embedding matrix (GPT-2, SmolLM2); untied: its own (Llama 2).
    tie_word_embeddings: bool = True
    use_cache: bool = True

    def __post_init__(self, **kwargs):
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Called by transformers' config validation: refuse a shape the blocks cannot build."""
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads {self.num_attention_heads} is not divisible by "
                             f"num_key_value_heads {self.num_key_value_heads}")
        if self.norm_type not in ("layernorm", "rmsnorm"):
            raise ValueError(f"norm_type must be 'layernorm' or 'rmsnorm', got {self.norm_type!r}")
        if self.position_embedding_type not in ("learned", "sinusoidal", "rope"):
            raise ValueError(f"position_embedding_type must be 'learned', 'sinusoidal' or 'rope', "
                             f"got {self.position_embedding_type!r}")
        if self.position_embedding_type == "rope" and (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError("rotary positions need an even head dimension (hidden_size / num_attention_heads)")
