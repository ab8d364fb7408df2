"""Encoder–decoder pieces around ``selfsup-seq2seq`` (whose copy head and coverage live in
``selfsup.modeling.copy_head``): scheduled sampling (Bengio et al., 2015; two-pass for
transformers, Mihaylova & Martins, 2019), decoding, the word-level tokenizer with
per-example extended ids, and jsonl reading."""
