"""A word-level vocabulary trained on the train split, with per-example extended ids.

The vocabulary is capped (``vocab_size``) so rare words — names above all — really are
out of vocabulary; those in a source get ids ``vocab_size + k`` for that example, which
the copy head can produce and the loss can score. Saved as a ``PreTrainedTokenizerFast``
(``tokenizer.json``), so a Hub folder loads with ``AutoTokenizer``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SPECIALS = [PAD, UNK, BOS, EOS]
MASK = "[MASK]"  # denoising pretraining's mask (selfsup.seq2seq.noising); after the four above, so their ids stay 0-3


@dataclass
class EncodedSource:
    """``input_ids``: vocabulary ids, OOV words as ``[UNK]`` (what the encoder sees);
    ``extended_ids``: the same with OOV words as ``vocab_size + k``; ``oovs``: the k-th
    OOV word string, in order of first appearance."""

    input_ids: list[int]
    extended_ids: list[int]
    oovs: list[str]


class WordTokenizer:
    """Whitespace/punctuation-split words looked up in a capped vocabulary."""

    def __init__(self, hf_tokenizer: PreTrainedTokenizerFast):
        self.hf = hf_tokenizer
        self.vocab = hf_tokenizer.get_vocab()
        self.id_to_word = {i: w for w, i in self.vocab.items()}
        self.pad_id, self.unk_id = self.vocab[PAD], self.vocab[UNK]
        self.bos_id, self.eos_id = self.vocab[BOS], self.vocab[EOS]
        self.mask_id = self.vocab.get(MASK)  # None: a vocabulary trained without it (fine-tuning only)
        self._split = pre_tokenizers.Whitespace()

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 1,
              mask: bool = False) -> "WordTokenizer":
        """The ``vocab_size`` most frequent words of ``texts`` (specials included; ``[MASK]``
        too when ``mask``)."""
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.decoder = decoders.WordPiece()  # joins with spaces; no '##' pieces in a word vocabulary
        tok.train_from_iterator(texts, trainers.WordLevelTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIALS + [MASK] * mask,
            show_progress=False))
        return cls(PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK,
                                           bos_token=BOS, eos_token=EOS, **({"mask_token": MASK} if mask else {})))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "WordTokenizer":
        """The folder's tokenizer: word level, or a :class:`~selfsup.seq2seq.subword.SubwordTokenizer`
        when its model is not a word vocabulary (WordPiece, from training or a checkpoint)."""
        return cls.wrap(AutoTokenizer.from_pretrained(path))

    @classmethod
    def wrap(cls, hf: PreTrainedTokenizerFast) -> "WordTokenizer":
        """A loaded transformers tokenizer (e.g. a pipeline's) as :meth:`from_pretrained` would give it."""
        if cls is WordTokenizer and not isinstance(hf.backend_tokenizer.model, models.WordLevel):
            from .subword import SubwordTokenizer  # it subclasses this one
            return SubwordTokenizer(hf)
        return cls(hf)

    def save_pretrained(self, path: str | Path) -> None:
        self.hf.save_pretrained(path)

    def __len__(self) -> int:
        return len(self.vocab)

    def words(self, text: str) -> list[str]:
        return [w for w, _ in self._split.pre_tokenize_str(text)]

    def join(self, words: list[str]) -> str:
        return " ".join(words)

    def normalize(self, text: str) -> str:
        """The text as the model reads and writes it: words joined by single spaces."""
        return self.join(self.words(text))

    def encode_source(self, text: str, max_length: int | None = None) -> EncodedSource:
        words = self.words(text)[:max_length]
        ids, ext, oovs = [], [], []
        for w in words:
            i = self.vocab.get(w)
            if i is None:
                if w not in oovs:
                    oovs.append(w)
                ids.append(self.unk_id)
                ext.append(len(self.vocab) + oovs.index(w))
            else:
                ids.append(i)
                ext.append(i)
        return EncodedSource(ids, ext, oovs)

    def encode_target(self, text: str, oovs: list[str] | None = None, max_length: int | None = None) -> list[int]:
        """Target ids ending in ``[EOS]``: OOV words that occur in the source (``oovs``)
        get their extended id (copy on), any other OOV word ``[UNK]``."""
        oovs = oovs or []
        words = self.words(text)[: None if max_length is None else max_length - 1]
        return [self.vocab.get(w, len(self.vocab) + oovs.index(w) if w in oovs else self.unk_id)
                for w in words] + [self.eos_id]

    def encode_batch(self, texts: list[str], max_length: int | None = None) -> tuple[dict, list[list[str]]]:
        """Sources for ``model.generate(**inputs, generation_config=...)``: ``input_ids``,
        ``attention_mask`` and ``source_extended_ids`` (batch, src_len), right-padded, and each
        source's OOV words for :meth:`batch_decode`. ``tokenizer.hf(texts)`` alone gives no
        extended ids, so a copy model could not write the source's OOV words back."""
        import torch
        encoded = [self.encode_source(t, max_length) for t in texts]
        width = max(len(e.input_ids) for e in encoded)
        pad = lambda ids: ids + [self.pad_id] * (width - len(ids))  # noqa: E731
        inputs = {"input_ids": torch.tensor([pad(e.input_ids) for e in encoded]),
                  "attention_mask": torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids))
                                                  for e in encoded]),
                  "source_extended_ids": torch.tensor([pad(e.extended_ids) for e in encoded])}
        return inputs, [e.oovs for e in encoded]

    def batch_decode(self, sequences, oovs: list[list[str]]) -> list[str]:
        """``generate()``'s sequences (batch, len), start token first, → text, copied OOV ids
        written as the words of each row's source (``oovs`` from :meth:`encode_batch`)."""
        return [self.decode(row, row_oovs) for row, row_oovs in zip(sequences.tolist(), oovs)]

    def decode(self, ids: Iterable[int], oovs: list[str] | None = None) -> str:
        """Ids (extended ones mapped back to the example's source words) → text; stops at
        ``[EOS]``, drops ``[BOS]``/``[PAD]``."""
        oovs = oovs or []
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.bos_id, self.pad_id):
                continue
            if i >= len(self.vocab):
                k = i - len(self.vocab)
                if k >= len(oovs):
                    raise ValueError(f"extended id {i} but the source has only {len(oovs)} OOV words")
                out.append(oovs[k])
            else:
                out.append(self.id_to_word[i])
        return self.join(out)
