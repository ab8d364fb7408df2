"""Train a BERT WordPiece tokenizer on a corpus with `tokenizers`, or reuse a folder."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from ..errors import InputError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, lowercase: bool = True,
                    min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """BERT's tokenizer recipe (normaliser, whitespace/punctuation split, ``##`` WordPiece,
    ``[CLS] A [SEP] B [SEP]`` template) trained on ``texts``; the same texts give the same
    tokenizer, run after run."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    texts = list(texts)  # read twice: once for the continuing-subword alphabet, once to train
    # tokenizers' trainer numbers the "##c" tokens in hash-map order, and those numbers break
    # ties between equally frequent merges, so the vocabulary changed from run to run
    # (huggingface/tokenizers#1794). Declared up front, in sorted order, they get fixed ids;
    # they are dropped from the special tokens afterwards and stay ordinary vocabulary entries.
    subwords = _continuing_subwords(tok, texts)
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=SPECIAL_TOKENS + subwords)
    tok.train_from_iterator(texts, trainer=trainer)
    tok = _without_added_tokens(tok, set(subwords))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)


def _continuing_subwords(tok: Tokenizer, texts: list[str]) -> list[str]:
    """``##c`` for every character the trainer will meet inside a word, sorted."""
    chars = set()
    for text in texts:
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text)):
            chars.update(word[1:])
    return ["##" + c for c in sorted(chars)]


def _without_added_tokens(tok: Tokenizer, names: set[str]) -> Tokenizer:
    """``tok`` with ``names`` no longer added (special) tokens; they stay in the model's vocabulary."""
    state = json.loads(tok.to_str())
    state["added_tokens"] = [t for t in state["added_tokens"] if t["content"] not in names]
    return Tokenizer.from_str(json.dumps(state))


def load_tokenizer(path: str | Path):
    """A fast tokenizer from a folder or Hub id; MLM needs a mask token and ``word_ids``."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not tokenizer.is_fast:
        raise InputError("a fast tokenizer is needed (word_ids for whole-word masking)", path=path)
    for name in ("mask_token", "cls_token", "sep_token", "pad_token"):
        if getattr(tokenizer, name) is None:
            raise InputError(f"tokenizer has no {name}; BERT pretraining needs it", path=path, field=name)
    return tokenizer
