"""Documents → tokenized sentences → training instances (NSP, SOP or single segments), with 🤗 datasets.

Chunking follows google-research/bert's ``create_instances_from_document``: a target
length of ``max_seq_length - 3`` (shorter with probability ``short_seq_prob``), segment A
= a random number of leading sentences of the chunk, and the longer side truncated from
a random end. What segment B is depends on ``sentence_objective``:

* ``nsp`` (BERT): the rest of the chunk ("is next") or, with probability
  ``nsp_probability``, sentences from another document ("random"; the unused sentences
  go back to be reused). One deliberate difference: the random document is drawn
  uniformly among the *other* documents (google's retries 10 times and may keep the same
  one), so a "random" pair is never secretly consecutive. The other documents are the
  whole corpus here (:func:`other_in_corpus`), and a bounded buffer of the stream's
  recent documents when streaming (:mod:`selfsup.pretrain.streaming`).
* ``sop`` (ALBERT's sentence-order prediction, Lan et al., 2020): the rest of the chunk,
  and with probability ``nsp_probability`` the two segments swapped. B never comes from
  another document: unlike google-research/albert, which falls back to a random document
  for a one-sentence chunk, a chunk here takes a second sentence even past the target
  length, and a document's lone last sentence gives no instance.
* ``none``: no B; the whole chunk is one segment (MLM only).

Each document has its own RNG seeded from (seed, index), so the result does not depend
on batching or ``num_proc``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from datasets import Dataset

from ..errors import InputError

IS_NEXT, IS_RANDOM = 0, 1  # BERT's and transformers' convention
# ALBERT's and transformers' convention (AlbertForPreTraining's ``sentence_order_label``:
# 0 = original order, 1 = switched). Both land in the ``next_sentence_label`` column that
# the NSP head reads: label 0 means "B is the natural continuation of A" in both tasks.
IN_ORDER, SWAPPED = 0, 1
SENTENCE_OBJECTIVES = ("nsp", "sop", "none")


# Draws NSP's random document with the document's RNG: its index and its ``tokens`` and ``words``.
OtherDocument = Callable[[random.Random], tuple[int, dict]]


@dataclass
class InstanceConfig:
    max_seq_length: int = 128
    # BERT: 10% of sequences get a shorter random length, to reduce pretrain/finetune mismatch.
    short_seq_prob: float = 0.1
    # nsp: the probability that segment B is random; sop: that the segments are swapped.
    nsp_probability: float = 0.5
    seed: int = 12345
    sentence_objective: str = "nsp"  # one of SENTENCE_OBJECTIVES

    def __post_init__(self):
        if self.sentence_objective not in SENTENCE_OBJECTIVES:
            raise InputError(f"must be one of {', '.join(SENTENCE_OBJECTIVES)}, got {self.sentence_objective!r}",
                             field="sentence_objective")
        # 0 once meant "no NSP"; now that is --sentence_objective none. Either end of the
        # range makes the 2-way task one class, which a model learns by ignoring its input.
        if self.paired and not 0 < self.nsp_probability < 1:
            raise InputError(f"must be strictly between 0 and 1 for {self.sentence_objective}, got "
                             f"{self.nsp_probability} (--sentence_objective none trains MLM only)",
                             field="nsp_probability")

    @property
    def paired(self) -> bool:
        """Sequences are [CLS] A [SEP] B [SEP] with a ``next_sentence_label``."""
        return self.sentence_objective != "none"


def tokenize_sentences(sentences: list[str], tokenizer) -> tuple[list[list[int]], list[list[int]]]:
    """One document's sentences → token ids and word ids (word index of each token within its
    sentence) per sentence, empty sentences dropped."""
    enc = tokenizer(sentences, add_special_tokens=False, verbose=False)
    tokens, words = [], []
    for i in range(len(sentences)):
        if enc["input_ids"][i]:
            tokens.append(enc["input_ids"][i])
            words.append(enc.word_ids(i))
    return tokens, words


def tokenize_documents(documents: Dataset, tokenizer, num_proc: int | None = None) -> Dataset:
    """``sentences`` (list[str]) → ``tokens`` (list[list[int]]) and ``words`` (word index of
    each token within its sentence), empty sentences dropped."""

    def tokenize(batch):
        pairs = [tokenize_sentences(sentences, tokenizer) for sentences in batch["sentences"]]
        return {"tokens": [tokens for tokens, _ in pairs], "words": [words for _, words in pairs]}

    return documents.map(tokenize, batched=True, num_proc=num_proc, remove_columns=documents.column_names,
                         desc="tokenizing")


def _truncate_pair(a: list, b: list, max_tokens: int, rng: random.Random) -> None:
    """Trim the longer side, from the front or the back at random (google's truncate_seq_pair)."""
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        longer.pop(0) if rng.random() < 0.5 else longer.pop()


def _flatten(sentences: list[list[int]], words: list[list[int]], start_word: int) -> tuple[list, int]:
    """Concatenate sentences as (token, unique word id) pairs."""
    out, offset = [], start_word
    for toks, wids in zip(sentences, words):
        out.extend((t, offset + w) for t, w in zip(toks, wids))
        offset += max(wids) + 1 if wids else 0
    return out, offset


def document_instances(index: int, tokens: list[list[int]], words: list[list[int]], other_document: OtherDocument,
                       config: InstanceConfig, cls_id: int, sep_id: int) -> list[dict]:
    """All instances of document ``index``; ``other_document`` draws NSP's random B."""
    rng = random.Random(config.seed * 1_000_003 + index)
    objective, paired = config.sentence_objective, config.paired
    max_tokens = config.max_seq_length - (3 if paired else 2)
    target = max_tokens if rng.random() >= config.short_seq_prob else rng.randint(2, max_tokens)
    other_doc = None

    def sentences(span: tuple[int, int, int]) -> tuple[list, list]:
        doc, start, end = span
        source = {"tokens": tokens, "words": words} if doc == index else other_doc
        return source["tokens"][start:end], source["words"][start:end]

    instances, chunk, length, i = [], [], 0, 0
    while i < len(tokens):
        chunk.append(i)
        length += len(tokens[i])
        # SOP takes both segments from the chunk, so it takes a second sentence even past the target.
        full = length >= target and (objective != "sop" or len(chunk) >= 2)
        if i == len(tokens) - 1 or full:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 and paired else len(chunk)
            first = (index, chunk[0], chunk[0] + a_end)
            second, label = None, None
            if objective == "nsp" and (len(chunk) == 1 or rng.random() < config.nsp_probability):
                other, other_doc = other_document(rng)
                start = end = rng.randrange(len(other_doc["tokens"]))
                budget = target - sum(len(tokens[j]) for j in chunk[:a_end])
                taken = 0
                while end < len(other_doc["tokens"]) and taken < budget:
                    taken += len(other_doc["tokens"][end])
                    end += 1
                second, label = (other, start, end), IS_RANDOM
                i -= len(chunk) - a_end  # put the unused sentences back
            elif objective == "nsp":
                second, label = (index, chunk[a_end], chunk[-1] + 1), IS_NEXT
            elif objective == "sop" and len(chunk) >= 2:
                second, label = (index, chunk[a_end], chunk[-1] + 1), IN_ORDER
                if rng.random() < config.nsp_probability:
                    first, second, label = second, first, SWAPPED
            # else: sop with a document's lone last sentence (no order to predict), or none.
            if objective != "sop" or second is not None:
                a, next_word = _flatten(*sentences(first), 0)
                b, _ = _flatten(*sentences(second), next_word) if second else ([], next_word)
                _truncate_pair(a, b, max_tokens, rng)
                if a and (b or not paired):
                    ids = [cls_id] + [t for t, _ in a] + [sep_id]
                    wids = [-1] + [w for _, w in a] + [-1]
                    types = [0] * len(ids)
                    if paired:
                        ids += [t for t, _ in b] + [sep_id]
                        wids += [w for _, w in b] + [-1]
                        types += [1] * (len(b) + 1)
                    instance = {"input_ids": ids, "token_type_ids": types, "word_ids": wids,
                                "source": [*first, *(second or (-1, -1, -1))]}
                    if paired:
                        instance["next_sentence_label"] = label
                    instances.append(instance)
            chunk, length = [], 0
        i += 1
    return instances


def other_in_corpus(documents: Dataset, index: int) -> OtherDocument:
    """NSP's random document for document ``index``: uniform among all the other documents."""

    def draw(rng: random.Random) -> tuple[int, dict]:
        if len(documents) < 2:
            raise InputError("next sentence prediction needs at least 2 documents")
        other = rng.randrange(len(documents) - 1)
        other += other >= index
        return other, documents[other]

    return draw


def build_instances(tokenized: Dataset, tokenizer, config: InstanceConfig, num_proc: int | None = None,
                    source_name: str = "corpus") -> Dataset:
    """One row per training sequence: ``input_ids``, ``token_type_ids``, ``word_ids`` (-1 for
    special tokens; unique per word within the row, for whole-word masking),
    ``next_sentence_label`` (NSP's or SOP's label; absent for ``none``) and ``source`` =
    [doc, a_start, a_end, b_doc, b_start, b_end]: the sentence indices of the first and
    the second segment as they stand in the sequence (provenance; b_* = -1 without B)."""
    if config.max_seq_length < 8:
        raise InputError(f"max_seq_length {config.max_seq_length} is too short", field="max_seq_length")
    if config.sentence_objective == "nsp" and len(tokenized) < 2:
        raise InputError(f"next sentence prediction needs at least 2 documents, found {len(tokenized)} "
                         "(--sentence_objective sop pairs sentences within a document; none trains MLM only)",
                         path=source_name)

    def make(batch, indices):
        rows = [inst for idx, toks, wds in zip(indices, batch["tokens"], batch["words"])
                for inst in document_instances(idx, toks, wds, other_in_corpus(tokenized, idx), config,
                                               tokenizer.cls_token_id, tokenizer.sep_token_id)]
        keys = ["input_ids", "token_type_ids", "word_ids", "source"] + (
            ["next_sentence_label"] if config.paired else [])
        return {k: [r[k] for r in rows] for k in keys}

    instances = tokenized.map(make, batched=True, with_indices=True, num_proc=num_proc,
                              remove_columns=tokenized.column_names, desc="building instances")
    if len(instances) == 0:
        need = {"nsp": "NSP needs documents of at least 2 sentences or 2 documents",
                "sop": "SOP needs documents of at least 2 sentences",
                "none": "every document is empty"}[config.sentence_objective]
        raise InputError(f"no training instance could be built: documents are too short or empty ({need})",
                         path=source_name)
    return instances
