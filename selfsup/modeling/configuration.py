"""Configs for the from-scratch models, as typed `PreTrainedConfig` dataclasses.

Size fields use `BertConfig`'s names so users' habits (and converted checkpoints) carry
over. `attn_implementation` ("sdpa" or "eager") is read from the config, as transformers 5
does for its own models.

Each config checks its fields when it is built and raises a ``ValueError`` naming the field
(a size that is not positive, a dropout outside [0, 1], heads that do not divide the hidden
size, an unknown choice). ``@strict`` type-checks every field and runs the same checks
again on ``validate()`` and ``save_pretrained``, as transformers' own configs do; the models
run them once more, for a config edited after it was built.
"""
from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .blocks import ACTIVATIONS


class SelfsupConfig(PreTrainedConfig):
    """The checks every selfsup config shares; each subclass names its fields in the tuples below."""

    # Fields that must be > 0, >= 0, in [0, 1] (None allowed), and the allowed position embeddings.
    _positive = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "max_position_embeddings", "layer_norm_eps")
    _non_negative = ("initializer_range",)
    _probabilities = ("hidden_dropout_prob", "attention_probs_dropout_prob")
    _position_embedding_types = ("learned", "sinusoidal")

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # Here as well as in @strict's validate(): a bad value then raises a plain ValueError
        # naming the field, not the wrapper error validate() raises.
        self.validate_architecture()

    def validate_architecture(self):
        """Refuse a value the model cannot be built with, naming the field."""
        super().validate_architecture()
        for name in self._positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in self._non_negative:
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in self._probabilities:
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act must be one of {sorted(ACTIVATIONS)}, got {self.hidden_act!r}")
        if self.position_embedding_type not in self._position_embedding_types:
            raise ValueError(f"position_embedding_type must be one of {list(self._position_embedding_types)}, "
                             f"got {self.position_embedding_type!r}")


@strict  # type-checks the fields and runs validate_architecture, as transformers' own configs
class SelfsupBertConfig(SelfsupConfig):
    """A BERT-style bidirectional encoder (post-LN by default, as in BERT).

    Args:
        vocab_size (`int`, defaults to 30522): rows of the token embedding (and MLM output) table.
        hidden_size (`int`, defaults to 768): width of every layer; divisible by ``num_attention_heads``.
        num_hidden_layers (`int`, defaults to 12): transformer blocks in the encoder.
        num_attention_heads (`int`, defaults to 12): attention heads per block.
        intermediate_size (`int`, defaults to 3072): width of the feed-forward layer inside each block.
        hidden_act (`str`, defaults to "gelu"): feed-forward activation, one of
            ``selfsup.modeling.blocks.ACTIVATIONS`` ("gelu" is BERT's exact erf GELU).
        hidden_dropout_prob (`float`, defaults to 0.1): dropout on embeddings and on every sublayer's output.
        attention_probs_dropout_prob (`float`, defaults to 0.1): dropout on the attention probabilities.
        max_position_embeddings (`int`, defaults to 512): the longest input, in tokens.
        type_vocab_size (`int`, defaults to 2): segment (token type) ids; 0 = no segment embedding.
        initializer_range (`float`, defaults to 0.02): standard deviation of the normal initialisation.
        layer_norm_eps (`float`, defaults to 1e-12): LayerNorm epsilon (BERT's value).
        pad_token_id (`int`, defaults to 0): its embedding row starts at zero.
        pre_layer_norm (`bool`, defaults to False): LayerNorm before each sublayer instead of after it.
            BERT is post-LN; pre-LN trains more stably without warmup (Xiong et al., 2020).
        position_embedding_type (`str`, defaults to "learned"): "learned" (BERT) or "sinusoidal"
            (Vaswani et al.; no parameters, extrapolates).
        classifier_dropout (`float`, *optional*): dropout before a fine-tuning head's classifier;
            None = ``hidden_dropout_prob``.
        tie_word_embeddings (`bool`, defaults to True): the MLM output matrix is the token embedding.
        generator_num_hidden_layers (`int`, defaults to 1): ELECTRA pretraining only
            (``SelfsupBertForReplacedTokenDetection``): blocks of the generator, a masked LM that
            shares the embeddings; ELECTRA keeps it smaller than the discriminator, or its
            replacements become too hard to detect.
        generator_intermediate_size (`int`, *optional*): the generator's feed-forward width;
            None = ``intermediate_size``.
        rtd_loss_weight (`float`, defaults to 50.0): ELECTRA's lambda, the weight of the
            replaced-token-detection loss against the generator's MLM loss.
    """

    model_type = "selfsup-bert"
    _positive = (*SelfsupConfig._positive, "generator_num_hidden_layers")
    _non_negative = (*SelfsupConfig._non_negative, "type_vocab_size", "rtd_loss_weight")
    _probabilities = (*SelfsupConfig._probabilities, "classifier_dropout")

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    pre_layer_norm: bool = False
    position_embedding_type: str = "learned"
    classifier_dropout: float | int | None = None
    tie_word_embeddings: bool = True
    generator_num_hidden_layers: int = 1
    generator_intermediate_size: int | None = None
    rtd_loss_weight: float | int = 50.0


@strict
class SelfsupGPTConfig(SelfsupConfig):
    """A decoder-only language model. The defaults are GPT-2's (pre-LN, learned positions,
    LayerNorm, GELU MLP, full multi-head attention, biases, tied embeddings); a Llama-family
    model (SmolLM2) is ``position_embedding_type="rope"``, ``norm_type="rmsnorm"``,
    ``gated_mlp=True`` with ``hidden_act="silu"``, ``num_key_value_heads`` < heads and no biases
    (``selfsup.modeling.convert_llama`` maps a LlamaConfig to these).

    Args:
        vocab_size (`int`, defaults to 50257): rows of the token embedding and LM head.
        hidden_size (`int`, defaults to 768): width of every layer; divisible by ``num_attention_heads``.
        num_hidden_layers (`int`, defaults to 12): transformer blocks.
        num_attention_heads (`int`, defaults to 12): query heads per block.
        num_key_value_heads (`int`, *optional*): key/value heads that the query heads share
            (grouped-query attention, Ainslie et al., 2023), which shrinks the KV cache; it must
            divide ``num_attention_heads``. None = ``num_attention_heads`` (multi-head attention).
        intermediate_size (`int`, defaults to 3072): width of the MLP inside each block.
        hidden_act (`str`, defaults to "gelu_new"): MLP activation (GPT-2's tanh GELU; "silu" for SwiGLU).
        gated_mlp (`bool`, defaults to False): down(act(gate(x)) * up(x)) instead of down(act(up(x))):
            SwiGLU with ``hidden_act="silu"`` (Shazeer, 2020), which Llama-family models use.
        hidden_dropout_prob (`float`, defaults to 0.1): dropout on embeddings and sublayer outputs.
        attention_probs_dropout_prob (`float`, defaults to 0.1): dropout on the attention probabilities.
        max_position_embeddings (`int`, defaults to 1024): the longest sequence, cache included.
        initializer_range (`float`, defaults to 0.02): standard deviation of the normal initialisation.
        norm_type (`str`, defaults to "layernorm"): "layernorm" (GPT-2) or "rmsnorm" (Llama: no
            centring, no bias; its rms_norm_eps goes in ``layer_norm_eps``).
        layer_norm_eps (`float`, defaults to 1e-5): the norms' epsilon.
        pre_layer_norm (`bool`, defaults to True): the norm before each sublayer (GPT-2, Llama).
        position_embedding_type (`str`, defaults to "learned"): "learned" (GPT-2), "sinusoidal", or
            "rope": rotary positions (Su et al., 2021), relative, with no embedding table.
        rope_theta (`float`, defaults to 10000.0): base of the rotary frequencies (Llama 10,000;
            SmolLM2 100,000); rope needs an even head dimension.
        attention_bias (`bool`, defaults to True): biases on the q/k/v/output projections (GPT-2 yes, Llama no).
        mlp_bias (`bool`, defaults to True): biases on the MLP (GPT-2 yes, Llama no).
        bos_token_id, eos_token_id, pad_token_id (`int`, *optional*): special tokens, for ``generate()``.
        tie_word_embeddings (`bool`, defaults to True): the LM head is the input embedding matrix
            (GPT-2, SmolLM2); False gives it its own (Llama 2).
        use_cache (`bool`, defaults to True): ``forward`` returns the KV cache.
    """

    model_type = "selfsup-gpt"
    _positive = (*SelfsupConfig._positive, "num_key_value_heads", "rope_theta")
    _position_embedding_types = ("learned", "sinusoidal", "rope")

    vocab_size: int = 50257
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_key_value_heads: int | None = None
    intermediate_size: int = 3072
    hidden_act: str = "gelu_new"
    gated_mlp: bool = False
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 1024
    initializer_range: float = 0.02
    norm_type: str = "layernorm"
    layer_norm_eps: float = 1e-5
    pre_layer_norm: bool = True
    position_embedding_type: str = "learned"
    rope_theta: float = 10000.0
    attention_bias: bool = True
    mlp_bias: bool = True
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    tie_word_embeddings: bool = True
    use_cache: bool = True

    def __post_init__(self, **kwargs):
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        super().validate_architecture()
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_key_value_heads {self.num_key_value_heads} does not divide "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.norm_type not in ("layernorm", "rmsnorm"):
            raise ValueError(f"norm_type must be 'layernorm' or 'rmsnorm', got {self.norm_type!r}")
        if self.position_embedding_type == "rope" and (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError("position_embedding_type 'rope' needs an even head dimension "
                             f"(hidden_size / num_attention_heads), got {self.hidden_size // self.num_attention_heads}")


@strict
class SelfsupSeq2SeqConfig(SelfsupConfig):
    """An encoder–decoder (``BertConfig`` names for the shared sizes; the decoder depth is
    ``num_decoder_layers``) with the pointer-generator copy head and coverage as options.
    Source and target share one vocabulary and one embedding table.

    Args:
        vocab_size (`int`, defaults to 8000): rows of the shared embedding and LM head; copied
            source words outside it get extended ids ``vocab_size + k``.
        hidden_size (`int`, defaults to 256): width of every layer; divisible by ``num_attention_heads``.
        num_hidden_layers (`int`, defaults to 3): encoder blocks.
        num_decoder_layers (`int`, defaults to 3): decoder blocks (each with cross-attention).
        num_attention_heads (`int`, defaults to 4): attention heads per block, self and cross.
        intermediate_size (`int`, defaults to 1024): width of the feed-forward layer inside each block.
        hidden_act (`str`, defaults to "gelu"): feed-forward activation (``blocks.ACTIVATIONS``).
        hidden_dropout_prob (`float`, defaults to 0.1): dropout on embeddings and sublayer outputs.
        attention_probs_dropout_prob (`float`, defaults to 0.1): dropout on the attention probabilities.
        max_position_embeddings (`int`, defaults to 512): the longest source or target, in tokens.
        initializer_range (`float`, defaults to 0.02): standard deviation of the normal initialisation.
        layer_norm_eps (`float`, defaults to 1e-5): LayerNorm epsilon.
        pre_layer_norm (`bool`, defaults to True): pre-LN trains from scratch without a long
            warmup (Xiong et al., 2020).
        position_embedding_type (`str`, defaults to "learned"): "learned" or "sinusoidal".
        use_copy (`bool`, defaults to False): the pointer-generator copy head (See et al., 2017;
            ``selfsup.modeling.copy_head``).
        use_coverage (`bool`, defaults to False): coverage on the copy attention; needs ``use_copy``.
        coverage_loss_weight (`float`, defaults to 1.0): weight of the coverage loss (See et al.
            use 1 and switch coverage on for a short final phase).
        pad_token_id, unk_token_id, bos_token_id, eos_token_id, decoder_start_token_id (`int`):
            special tokens (0-3, the start token is [BOS]); a copied OOV word fed back reads as [UNK].
        is_encoder_decoder (`bool`, defaults to True): tells ``generate()`` to run the encoder once
            and decode from ``decoder_start_token_id``.
        tie_word_embeddings (`bool`, defaults to True): the LM head is the shared embedding matrix.
        use_cache (`bool`, defaults to True): ``forward`` returns the cache (KV, copy keys, coverage).
    """

    model_type = "selfsup-seq2seq"
    _positive = (*SelfsupConfig._positive, "num_decoder_layers")
    _non_negative = (*SelfsupConfig._non_negative, "coverage_loss_weight")

    vocab_size: int = 8000
    hidden_size: int = 256
    num_hidden_layers: int = 3
    num_decoder_layers: int = 3
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5
    pre_layer_norm: bool = True
    position_embedding_type: str = "learned"
    use_copy: bool = False
    use_coverage: bool = False
    coverage_loss_weight: float | int = 1.0
    pad_token_id: int | None = 0
    unk_token_id: int | None = 1
    bos_token_id: int | None = 2
    eos_token_id: int | None = 3
    decoder_start_token_id: int | None = 2
    is_encoder_decoder: bool = True
    tie_word_embeddings: bool = True
    use_cache: bool = True

    def validate_architecture(self):
        super().validate_architecture()
        if self.use_coverage and not self.use_copy:
            raise ValueError("use_coverage needs use_copy: coverage accumulates the copy attention")
