"""Settings of a pretraining run (the loop's own are in selfsup.training.TrainingConfig)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataConfig:
    corpus: str = field(default="stdlib", metadata={
        "help": "a text file, a folder of them, a Hub dataset name, or 'stdlib' (Python's docstrings, embedded)"})
    corpus_layout: str = field(default="sentences", metadata={
        "help": "sentences (one per line, blank line between documents), documents (one per line) or wikitext"})
    tokenizer_name: str | None = field(default=None, metadata={
        "help": "an existing fast tokenizer (folder or Hub id); default: train WordPiece on the corpus"})
    vocab_size: int = 8000
    max_seq_length: int = 128
    short_seq_prob: float = 0.1
    nsp_probability: float = field(default=0.5, metadata={"help": "0 turns next-sentence prediction off"})
    mlm_probability: float = 0.15
    max_predictions_per_seq: int | None = None
    whole_word_mask: bool = False
    eval_documents: float = field(default=0.05, metadata={"help": "held-out documents: a fraction, or a count if >= 1"})
    preprocessing_num_workers: int | None = None


@dataclass
class ModelConfig:
    model_name_or_path: str | None = field(default=None, metadata={
        "help": "continue from a selfsup-bert folder; default: a new model of the size below"})
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 512
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    pre_layer_norm: bool = False
    position_embedding_type: str = "learned"
