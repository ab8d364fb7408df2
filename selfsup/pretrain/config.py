"""Settings of a pretraining run (the loop's own are in selfsup.training.TrainingConfig)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class CorpusConfig:
    """Where the text comes from: the same four flags for BERT, GPT and seq2seq pretraining."""
    corpus: str = field(default="stdlib", metadata={
        "help": "comma-separated sources, each a text file, a folder of them (e.g. ../shared/data/pretrain/), "
                "'stdlib' (Python's docstrings, embedded), a registered fine-tuning task (its training text "
                "only, e.g. glue/sst2) or a Hub dataset"})
    corpus_layout: str = field(default="sentences", metadata={
        "help": "layout of the files and folders: sentences (one per line, blank line between documents), "
                "paragraphs, documents (one per line), wikitext, conll or dialogue_jsonl; one for all, or a "
                "comma-separated list with one per corpus item"})
    # Training on a dev or test split makes every later score on it meaningless, and a
    # folder of train/valid/test files would mix them silently: refused unless asked for.
    allow_eval_splits: bool = field(default=False, metadata={
        "help": "allow files and folders named as evaluation splits (dev, valid, validation, test...); a folder "
                "holding a training file beside them is still refused (name the files)"})
    data_dir: str | None = field(default=None, metadata={
        "help": "for task sources: the folder holding glue/, squad/, conll2003/ (default: shared/data)"})


@dataclass
class DataConfig(CorpusConfig):
    tokenizer_name: str | None = field(default=None, metadata={
        "help": "an existing fast tokenizer (folder or Hub id); default: train WordPiece on the corpus"})
    vocab_size: int = 8000
    max_seq_length: int = 128
    short_seq_prob: float = 0.1
    sentence_objective: Literal["nsp", "sop", "none"] = field(default="nsp", metadata={
        "help": "nsp (BERT: is B the next segment or a random one), sop (ALBERT: are two consecutive segments "
                "in order or swapped) or none (single segments, masked LM only)"})
    nsp_probability: float = field(default=0.5, metadata={
        "help": "nsp: the rate of random segments B; sop: the rate of swapped pairs"})
    mlm_probability: float = 0.15
    max_predictions_per_seq: int | None = None
    whole_word_mask: bool = False
    eval_documents: float = field(default=0.05, metadata={
        "help": "held-out documents: a fraction, or a count if >= 1 (--streaming: a count, the stream's first)"})
    preprocessing_num_workers: int | None = None
    streaming: bool = field(default=False, metadata={
        "help": "read the corpus while training (a 🤗 IterableDataset: files line by line, Hub datasets streamed) "
                "instead of building every sequence first, so memory does not grow with the corpus; needs "
                "--max_steps, --tokenizer_name (or --model_name_or_path) and --eval_documents as a count"})
    # google-research/bert draws NSP's random B from the whole corpus, which a stream cannot
    # hold: it draws from this many recent documents, kept tokenized (the stream's memory bound).
    streaming_buffer_documents: int = field(default=1000, metadata={
        "help": "--streaming with nsp: NSP's random B comes from the other documents among this many recent ones"})


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
    # Tied (BERT): the MLM output layer is the input embedding table. Untied, the input table no
    # longer doubles as the softmax's classifier, whose gradient pushes every row toward one
    # shared direction (Gao et al. 2019; Chung et al. 2021 decouple them for better fine-tuning).
    tie_word_embeddings: bool = field(default=True, metadata={
        "help": "share the MLM output layer with the input embeddings (BERT); false: a separate output matrix"})
    # ELECTRA (Clark et al. 2020) learns from every token, not only the masked 15%: at small
    # budgets it beats masked LM for the same compute.
    objective: Literal["mlm", "electra"] = field(default="mlm", metadata={
        "help": "mlm (BERT's masked LM, plus --sentence_objective) or electra (replaced-token detection: a small "
                "generator fills the masks with its samples and the encoder learns, at every position, whether a "
                "token was replaced; needs --sentence_objective none)"})
    generator_num_hidden_layers: int = field(default=1, metadata={
        "help": "electra: blocks of the generator (same width, embeddings shared with the encoder)"})
    generator_intermediate_size: int | None = field(default=None, metadata={
        "help": "electra: the generator's feed-forward width (default: --intermediate_size)"})
    rtd_loss_weight: float = field(default=50.0, metadata={
        "help": "electra: weight of the replaced-token-detection loss against the generator's MLM loss (lambda)"})
