"""Encoder–decoder pieces around ``selfsup-seq2seq``: the pointer-generator copy mixture
(See et al., 2017), coverage, scheduled sampling (Bengio et al., 2015; two-pass for
transformers, Mihaylova & Martins, 2019), decoding, the word-level tokenizer with
per-example extended ids, and jsonl reading."""
