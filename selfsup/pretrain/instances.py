"""Documents → tokenized sentences → NSP training instances, with 🤗 datasets.

Pair building follows google-research/bert's ``create_instances_from_document``: a target
length of ``max_seq_length - 3`` (shorter with probability ``short_seq_prob``), segment A
= a random number of leading sentences of the chunk, segment B = the rest ("is next") or,
with probability ``nsp_probability``, sentences from another document ("random"; the
unused sentences go back to be reused), and the longer side truncated from a random end.

One deliberate difference: the random document is drawn uniformly among the *other*
documents (google's retries 10 times and may keep the same one), so a "random" pair is
never secretly consecutive. Each document has its own RNG seeded from (seed, index), so
the result does not depend on batching or ``num_proc``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from datasets import Dataset

from ..errors import InputError

IS_NEXT, IS_RANDOM = 0, 1  # BERT's and transformers' convention


@dataclass
class InstanceConfig:
    max_seq_length: int = 128
    # BERT: 10% of sequences get a shorter random length, to reduce pretrain/finetune mismatch.
    short_seq_prob: float = 0.1
    # Probability that segment B is random; 0 turns NSP off (single-segment sequences).
    nsp_probability: float = 0.5
    seed: int = 12345


def tokenize_documents(documents: Dataset, tokenizer, num_proc: int | None = None) -> Dataset:
    """``sentences`` (list[str]) → ``tokens`` (list[list[int]]) and ``words`` (word index of
    each token within its sentence), empty sentences dropped."""

    def tokenize(batch):
        tokens, words = [], []
        for sentences in batch["sentences"]:
            enc = tokenizer(sentences, add_special_tokens=False, verbose=False)
            doc_tokens, doc_words = [], []
            for i in range(len(sentences)):
                if enc["input_ids"][i]:
                    doc_tokens.append(enc["input_ids"][i])
                    doc_words.append(enc.word_ids(i))
            tokens.append(doc_tokens)
            words.append(doc_words)
        return {"tokens": tokens, "words": words}

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


def document_instances(index: int, tokens: list[list[int]], words: list[list[int]], documents: Dataset,
                       config: InstanceConfig, cls_id: int, sep_id: int) -> list[dict]:
    """All instances of document ``index``; ``documents`` gives random access for B."""
    rng = random.Random(config.seed * 1_000_003 + index)
    nsp = config.nsp_probability > 0
    max_tokens = config.max_seq_length - (3 if nsp else 2)
    target = max_tokens if rng.random() >= config.short_seq_prob else rng.randint(2, max_tokens)
    instances, chunk, length, i = [], [], 0, 0
    while i < len(tokens):
        chunk.append(i)
        length += len(tokens[i])
        if i == len(tokens) - 1 or length >= target:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 and nsp else len(chunk)
            a, next_word = _flatten([tokens[j] for j in chunk[:a_end]], [words[j] for j in chunk[:a_end]], 0)
            b, label, source_b = [], -100, (-1, -1, -1)
            if nsp and (len(chunk) == 1 or rng.random() < config.nsp_probability):
                if len(documents) < 2:
                    raise InputError("next sentence prediction needs at least 2 documents")
                other = rng.randrange(len(documents) - 1)
                other += other >= index
                other_doc = documents[other]
                start = rng.randrange(len(other_doc["tokens"]))
                end = start
                while end < len(other_doc["tokens"]) and len(b) < target - len(a):
                    part, next_word = _flatten([other_doc["tokens"][end]], [other_doc["words"][end]], next_word)
                    b.extend(part)
                    end += 1
                label, source_b = IS_RANDOM, (other, start, end)
                i -= len(chunk) - a_end  # put the unused sentences back
            elif nsp:
                b, _ = _flatten([tokens[j] for j in chunk[a_end:]], [words[j] for j in chunk[a_end:]], next_word)
                label, source_b = IS_NEXT, (index, chunk[a_end], chunk[-1] + 1)
            _truncate_pair(a, b, max_tokens, rng)
            if a and (b or not nsp):
                ids = [cls_id] + [t for t, _ in a] + [sep_id]
                wids = [-1] + [w for _, w in a] + [-1]
                types = [0] * len(ids)
                if nsp:
                    ids += [t for t, _ in b] + [sep_id]
                    wids += [w for _, w in b] + [-1]
                    types += [1] * (len(b) + 1)
                instance = {"input_ids": ids, "token_type_ids": types, "word_ids": wids,
                            "source": [index, chunk[0], chunk[0] + a_end, *source_b]}
                if nsp:
                    instance["next_sentence_label"] = label
                instances.append(instance)
            chunk, length = [], 0
        i += 1
    return instances


def build_instances(tokenized: Dataset, tokenizer, config: InstanceConfig, num_proc: int | None = None,
                    source_name: str = "corpus") -> Dataset:
    """One row per training sequence: ``input_ids``, ``token_type_ids``, ``word_ids`` (-1 for
    special tokens; unique per word within the row, for whole-word masking),
    ``next_sentence_label`` (when NSP is on) and ``source`` = [doc, a_start, a_end,
    b_doc, b_start, b_end] sentence indices (provenance; b_* = -1 without B)."""
    if config.max_seq_length < 8:
        raise InputError(f"max_seq_length {config.max_seq_length} is too short", field="max_seq_length")
    if config.nsp_probability > 0 and len(tokenized) < 2:
        raise InputError(f"next sentence prediction needs at least 2 documents, found {len(tokenized)} "
                         "(set nsp_probability 0 to train MLM only)", path=source_name)

    def make(batch, indices):
        rows = [inst for idx, toks, wds in zip(indices, batch["tokens"], batch["words"])
                for inst in document_instances(idx, toks, wds, tokenized, config,
                                               tokenizer.cls_token_id, tokenizer.sep_token_id)]
        keys = ["input_ids", "token_type_ids", "word_ids", "source"] + (
            ["next_sentence_label"] if config.nsp_probability > 0 else [])
        return {k: [r[k] for r in rows] for k in keys}

    instances = tokenized.map(make, batched=True, with_indices=True, num_proc=num_proc,
                              remove_columns=tokenized.column_names, desc="building instances")
    if len(instances) == 0:
        raise InputError("no training instance could be built: documents are too short or empty "
                         f"(NSP needs documents of at least 2 sentences or 2 documents)", path=source_name)
    return instances
