"""Settings of a causal-LM pretraining run (scripts/pretrain_gpt.py); the loop's own are in
selfsup.training.TrainingConfig. Flag names follow transformers' run_clm.py."""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import CorpusConfig


@dataclass
class CLMDataConfig(CorpusConfig):
    tokenizer_name: str | None = field(default=None, metadata={
        "help": "an existing fast tokenizer with an EOS token; default: the model's, else a byte-level BPE "
                "trained on the corpus"})
    vocab_size: int = field(default=4096, metadata={"help": "of a tokenizer trained on the corpus"})
    block_size: int = field(default=128, metadata={
        "help": "tokens per training sequence: documents are joined with EOS and cut into blocks of this size"})
    eval_documents: float = field(default=0.05, metadata={
        "help": "held-out documents for perplexity: a fraction, or a count if >= 1"})
    preprocessing_num_workers: int | None = None


@dataclass
class GPTModelConfig:
    model_name_or_path: str | None = field(default=None, metadata={
        "help": "continue pretraining a causal LM folder (e.g. SmolLM2 converted by scripts/convert_llama.py); "
                "default: a new selfsup-gpt of the size and blocks below"})
    # Small enough that the embedded default trains in minutes on 2 CPU cores.
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int | None = None
    intermediate_size: int = 512
    hidden_act: str = "gelu_new"
    hidden_dropout_prob: float = 0.0  # one pass over a small corpus: nothing to regularise yet
    attention_probs_dropout_prob: float = 0.0
    position_embedding_type: str = field(default="learned", metadata={"help": "learned, sinusoidal or rope"})
    rope_theta: float = 10000.0
    norm_type: str = field(default="layernorm", metadata={"help": "layernorm or rmsnorm"})
    gated_mlp: bool = field(default=False, metadata={"help": "SwiGLU with --hidden_act silu"})
    attention_bias: bool = True
    mlp_bias: bool = True
    tie_word_embeddings: bool = True
