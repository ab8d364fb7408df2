"""Train a BERT WordPiece tokenizer on a corpus with `tokenizers`, or reuse a folder.

A tokenizer trained by a run is saved with what it was trained on (``TRAINED_ON``: the
corpus sources' fingerprints and ``vocab_size``), so a later run in the same output folder
reuses it only for the same corpus and size: another vocabulary under old token ids would
silently scramble a resumed model, and a new corpus deserves its own vocabulary.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from ..errors import InputError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TRAINED_ON = "selfsup_trained_on.json"


def training_record(corpus: str, corpus_layout: str, allow_eval_splits: bool, data_dir: str | None,
                    vocab_size: int) -> dict:
    """What a tokenizer trained by ``scripts/pretrain.py`` depends on, as JSON gives it back."""
    from .sources import parse_corpus

    sources = parse_corpus(corpus, corpus_layout, allow_eval_splits)
    record = {"corpus": corpus, "sources": [s.fingerprint(data_dir) for s in sources], "vocab_size": vocab_size}
    return json.loads(json.dumps(record, default=str))


def save_trained(tokenizer, folder: Path, record: dict) -> None:
    tokenizer.save_pretrained(folder)
    (Path(folder) / TRAINED_ON).write_text(json.dumps(record, indent=2))


def check_trained(folder: Path, record: dict, log=print) -> None:
    """Refuse a tokenizer ``folder`` trained on another corpus or with another vocab_size."""
    path = Path(folder) / TRAINED_ON
    if not path.exists():  # saved before runs recorded it: nothing to compare, so say so
        log(f"warning: {folder} holds a tokenizer that does not record what it was trained on; reusing it as is "
            "(delete the folder to train one on this corpus)")
        return
    saved = json.loads(path.read_text())
    for key, what in (("vocab_size", "--vocab_size"), ("corpus", "--corpus"), ("sources", "the corpus files")):
        if saved.get(key) != record[key]:
            was, now = (saved.get(key), record[key]) if key != "sources" else ("other contents", "these")
            raise InputError(f"this tokenizer was trained with {what} {was!r}, this run has {now!r}: delete the "
                             "folder to train a new one, or use another --output_dir", path=folder, field=key)


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
