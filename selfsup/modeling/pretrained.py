"""``SelfsupPreTrainedModel``: what the bert, gpt and seq2seq models share on top of
transformers' ``PreTrainedModel``.

- the attention implementation, read once from the config (``attention_implementation``);
- the initialisation: transformers' normal(0, ``initializer_range``) for linear and embedding
  weights, ones/zeros for norms, and the sinusoidal and rotary tables recomputed (a model
  built on the meta device by ``from_pretrained`` has them empty);
- the input and output embedding accessors (``embeddings.word_embeddings`` of the base model,
  and the head named by ``_output_embeddings``);
- the config checked again when a model is built, for a config edited after it was made;
- whether a decoder caches (``cache_enabled``).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import logging

from .embeddings import SinusoidalPositions
from .rotary import RotaryPositions

logger = logging.get_logger(__name__)


class SelfsupPreTrainedModel(PreTrainedModel):
    """Base of every selfsup model. Subclasses set ``config_class``, ``base_model_prefix`` and,
    when their output projection is not ``lm_head``, ``_output_embeddings`` (None: no LM head)."""

    supports_gradient_checkpointing = True
    _supports_sdpa = True
    # Dotted path of the vocabulary projection tied to the input embeddings.
    _output_embeddings: str | None = "lm_head"

    def __init__(self, config, *inputs, **kwargs):
        # The config checked itself when it was built; fields set afterwards (from_pretrained's
        # keyword overrides, a user's edit) are checked here.
        config.validate_architecture()
        super().__init__(config, *inputs, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, (SinusoidalPositions, RotaryPositions)):
            module.reset_table()

    @property
    def attention_implementation(self) -> str:
        """"sdpa" (``F.scaled_dot_product_attention``) unless the config asks for "eager" (explicit
        softmax, which can return the probabilities): ``attn_implementation`` as transformers sets it."""
        return "eager" if getattr(self.config, "_attn_implementation", None) == "eager" else "sdpa"

    def cache_enabled(self, use_cache: bool | None, stack: nn.Module) -> bool:
        """``use_cache`` (None: the config's), but off while ``stack`` (a core Decoder) trains with
        gradient checkpointing: its recomputed forward would append to the cache a second time."""
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and stack.checkpointing_active():
            logger.warning_once("use_cache=True is incompatible with gradient checkpointing in training: "
                                "setting use_cache=False")
            return False
        return use_cache

    def get_input_embeddings(self) -> nn.Embedding:
        return self.base_model.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.base_model.embeddings.word_embeddings = value

    def get_output_embeddings(self) -> nn.Module | None:
        return self.get_submodule(self._output_embeddings) if self._output_embeddings else None

    def set_output_embeddings(self, value: nn.Module) -> None:
        parent, _, name = self._output_embeddings.rpartition(".")
        setattr(self.get_submodule(parent), name, value)
