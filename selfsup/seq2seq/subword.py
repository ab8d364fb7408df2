"""A subword (WordPiece) vocabulary for ``selfsup-seq2seq`` with the word tokenizer's
interface, so the copy head, extended ids and decoding work unchanged.

The model's units are WordPiece pieces: the copy head copies any source piece (a name
split into pieces is copied piece by piece). A word WordPiece cannot spell (a character
the vocabulary never saw) is ``[UNK]`` to the encoder and, as with the word tokenizer,
gets an extended id ``vocab_size + k`` holding its surface text, so it can still be
copied and comes back as written. Trained with ``selfsup.pretrain.tokenizer``'s
deterministic WordPiece recipe (case kept: names are copied as written), or taken from a
checkpoint's tokenizer, whose ``[CLS]``/``[SEP]`` serve as ``[BOS]``/``[EOS]`` when it has
none.
"""
from __future__ import annotations

from typing import Iterable

from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from selfsup.errors import InputError
from selfsup.pretrain.tokenizer import train_wordpiece

from .tokenizer import WordTokenizer


class SubwordTokenizer(WordTokenizer):
    """WordPiece pieces looked up in their vocabulary; unknown words as their surface text."""

    def __init__(self, hf_tokenizer: PreTrainedTokenizerFast):
        self.hf = hf_tokenizer
        self.vocab = hf_tokenizer.get_vocab()
        self.id_to_word = {i: w for w, i in self.vocab.items()}
        # A checkpoint's tokenizer.json may pad and truncate every encoding (MiniLM's: 128):
        # words() needs every piece of the text and no [PAD], so it reads a copy without either.
        self._pieces = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
        self._pieces.no_padding()
        self._pieces.no_truncation()

        def special(*names: str) -> int | None:
            token = next((getattr(hf_tokenizer, n) for n in names if getattr(hf_tokenizer, n, None)), None)
            return None if token is None else self.vocab[token]

        self.pad_id, self.unk_id = special("pad_token"), special("unk_token")
        self.bos_id, self.eos_id = special("bos_token", "cls_token"), special("eos_token", "sep_token")
        self.mask_id = special("mask_token")
        for name in ("pad_id", "unk_id", "bos_id", "eos_id"):
            if getattr(self, name) is None:
                raise InputError(f"the tokenizer has no {name[:-3]} token (nor [CLS]/[SEP] for bos/eos)",
                                 path=getattr(hf_tokenizer, "name_or_path", None))

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> "SubwordTokenizer":
        """WordPiece of ``vocab_size`` pieces (its alphabet always included) on ``texts``, case
        kept; ``[CLS]``/``[SEP]`` are the start and end tokens, ``[MASK]`` is always there."""
        return cls(train_wordpiece(texts, vocab_size, lowercase=False, min_frequency=min_frequency))

    def words(self, text: str) -> list[str]:
        """The pieces of ``text`` (``##`` marks a continuation), an unknown word as its text."""
        # the Rust tokenizer directly: 3x faster than the transformers wrapper's BatchEncoding
        enc = self._pieces.encode(text, add_special_tokens=False)
        return [text[start:end] if i == self.unk_id else self.id_to_word[i]
                for i, (start, end) in zip(enc.ids, enc.offsets)]

    def join(self, pieces: list[str]) -> str:
        return self.hf.convert_tokens_to_string(pieces)


TOKENIZER_TYPES = ("word", "wordpiece")


def load_or_train_tokenizer(name: str | None, kind: str, texts: Iterable[str], vocab_size: int, min_frequency: int,
                            mask: bool = False) -> WordTokenizer:
    """The tokenizer of folder ``name`` if given (word level or subword, as it says), else one
    of ``kind`` trained on ``texts`` (``mask``: with ``[MASK]``, for denoising; WordPiece
    always has it)."""
    if kind not in TOKENIZER_TYPES:
        raise InputError(f"must be one of {', '.join(TOKENIZER_TYPES)}, got {kind!r}", field="tokenizer_type")
    if name is not None:
        return WordTokenizer.from_pretrained(name)
    if kind == "wordpiece":
        return SubwordTokenizer.train(texts, vocab_size, min_frequency)
    return WordTokenizer.train(texts, vocab_size, min_frequency, mask=mask)
