"""Denoising pretraining data for ``selfsup-seq2seq`` (BART; Lewis et al., 2020): corpus
documents → chunks of whole sentences → (noised source, original target) pairs, noised in
the collator afresh every epoch.

A chunk's noise is drawn from a generator seeded by (seed, epoch, chunk index), as
``MaskingCollator`` draws its masks: the same whatever the batch it lands in, the process
that reads it or the point a run was resumed from. Held-out chunks are noised once, by
(seed, index), so every evaluation scores the same inputs.

Ids are per-chunk *extended* ids (``selfsup.seq2seq.tokenizer``): a word outside the
vocabulary is ``vocab_size + k`` in the chunk, ``[UNK]`` in ``input_ids``. With copy on,
a label keeps its extended id when the word is still in the noised source (it can be
copied) and becomes ``[UNK]`` when the noise removed it; with copy off every such word
is ``[UNK]``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from selfsup.errors import InputError
from selfsup.pretrain.config import CorpusConfig
from selfsup.pretrain.masking import row_seed

from .noising import NoiseConfig, apply_noise
from .tokenizer import WordTokenizer

# BART's choice for its released models: 30% of the tokens in Poisson(3) spans, every
# sentence shuffled (Lewis et al., 2020, §5.1)
DEFAULT_NOISE = "text_infilling=0.3,sentence_permutation=1.0"


@dataclass
class DenoisingDataArguments(CorpusConfig):
    noise: str = field(default=DEFAULT_NOISE, metadata={
        "help": "comma-separated name=rate: token_masking, token_deletion, text_infilling, sentence_permutation, "
                "document_rotation (and poisson_lambda, text infilling's mean span length)"})
    tokenizer_type: str = field(default="word", metadata={
        "help": "word (a capped word vocabulary, rare words copied through extended ids) or wordpiece (subwords)"})
    tokenizer_name: str | None = field(default=None, metadata={
        "help": "a tokenizer folder with [MASK] (word level or WordPiece, e.g. a BERT checkpoint's); default: one "
                "of --tokenizer_type trained on the corpus"})
    vocab_size: int = 8000
    min_frequency: int = 2
    # Chunks are whole sentences up to this many tokens (a longer sentence is cut); the target
    # adds [EOS], the source at most the inserted masks of text infilling.
    max_source_length: int = 128
    eval_documents: float = field(default=0.05, metadata={"help": "held-out documents: a fraction, or a count if >= 1"})


def chunk_document(sentences: list[list[int]], max_tokens: int) -> list[list[list[int]]]:
    """Consecutive sentences packed greedily into chunks of at most ``max_tokens`` tokens; a
    sentence longer than that is cut into pieces of ``max_tokens`` (each its own sentence)."""
    chunks, current, size = [], [], 0
    for sentence in sentences:
        for start in range(0, len(sentence), max_tokens):
            piece = sentence[start:start + max_tokens]
            if size + len(piece) > max_tokens and current:
                chunks.append(current)
                current, size = [], 0
            current.append(piece)
            size += len(piece)
    if current:
        chunks.append(current)
    return chunks


def extended_chunk(chunk: list[list[str]], tokenizer: WordTokenizer) -> tuple[list[list[int]], list[str]]:
    """Word sentences → id sentences, out-of-vocabulary words as ``vocab_size + k`` (k: order
    of first appearance in the chunk); returns the ids and the OOV words."""
    oovs: dict[str, int] = {}
    ids = [[tokenizer.vocab.get(w) if w in tokenizer.vocab else len(tokenizer) + oovs.setdefault(w, len(oovs))
            for w in sentence] for sentence in chunk]
    return ids, list(oovs)


class DenoisingChunks(Dataset):
    """Chunks of a list of documents (each a list of sentence strings): rows
    ``{"sentences": [[extended ids]], "index": i}``; ``oovs[i]`` are chunk i's OOV words."""

    def __init__(self, documents, tokenizer: WordTokenizer, max_tokens: int):
        self.rows, self.oovs = [], []
        for doc in documents:
            words = [w for w in (tokenizer.words(s) for s in doc) if w]
            for chunk in chunk_document(words, max_tokens):
                ids, oovs = extended_chunk(chunk, tokenizer)
                self.rows.append({"sentences": ids, "index": len(self.rows)})
                self.oovs.append(oovs)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


@dataclass
class DenoisingCollator:
    """Noises each row and pads: ``input_ids`` (noised, OOV as ``[UNK]``), ``attention_mask``,
    ``labels`` (the original tokens then ``[EOS]``, -100 padding) and, with ``copy``,
    ``source_extended_ids`` (batch, src_len). Draws come from (seed, epoch, row index)."""

    noise: NoiseConfig
    vocab_size: int
    pad_id: int
    unk_id: int
    eos_id: int
    mask_id: int
    copy: bool = False
    seed: int = 0
    max_source_length: int | None = None  # text infilling's inserted masks may lengthen a source
    epoch: int = 0

    @classmethod
    def for_tokenizer(cls, tokenizer: WordTokenizer, noise: NoiseConfig, **kwargs) -> "DenoisingCollator":
        if tokenizer.mask_id is None:
            raise InputError("the tokenizer has no [MASK] token: train one with WordTokenizer.train(..., mask=True)",
                             field="tokenizer_name")
        return cls(noise, len(tokenizer), tokenizer.pad_id, tokenizer.unk_id, tokenizer.eos_id, tokenizer.mask_id,
                   **kwargs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def example(self, sentences: list[list[int]], seed: int) -> dict[str, list[int]]:
        """One (source, target) pair of a chunk, noised by a generator seeded by ``seed``."""
        source = apply_noise(sentences, self.noise, self.mask_id, np.random.default_rng(seed))
        source = source[:self.max_source_length] if self.max_source_length else source
        target = [t for s in sentences for t in s]
        in_source = set(source)
        labels = [t if t < self.vocab_size or (self.copy and t in in_source) else self.unk_id for t in target]
        return {"input_ids": [self.unk_id if t >= self.vocab_size else t for t in source],
                "source_extended_ids": source, "labels": labels + [self.eos_id]}

    def pad(self, examples: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        def padded(key, value):
            width = max(len(e[key]) for e in examples)
            return torch.tensor([e[key] + [value] * (width - len(e[key])) for e in examples])
        batch = {"input_ids": padded("input_ids", self.pad_id), "labels": padded("labels", -100)}
        batch["attention_mask"] = torch.zeros_like(batch["input_ids"])
        for i, e in enumerate(examples):
            batch["attention_mask"][i, :len(e["input_ids"])] = 1
        if self.copy:
            batch["source_extended_ids"] = padded("source_extended_ids", self.pad_id)
        return batch

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        return self.pad([self.example(r["sentences"], row_seed(self.seed, self.epoch, r["index"])) for r in rows])


def make_evaluate_fn(chunks: DenoisingChunks, collator: DenoisingCollator, batch_size: int, seed: int):
    """Held-out reconstruction: the decoder's loss per target token, its teacher-forced
    accuracy (argmax = label) and perplexity, from counts summed over processes. Each
    chunk is noised once (seeded by (seed, index), never by the epoch) and scored by
    exactly one process, so the scores do not depend on batch size or process count."""
    examples = None

    def evaluate(model, accelerator, state=None) -> dict[str, float]:
        nonlocal examples
        if examples is None:
            examples = [collator.example(r["sentences"], row_seed(seed, -1, r["index"])) for r in chunks]
        mine = examples[accelerator.process_index::accelerator.num_processes]
        device = accelerator.device
        sums = torch.zeros(3, dtype=torch.float64, device=device)  # NLL, correct, tokens
        # The wrapped model runs collectives in its forward (DDP syncs buffers, FSDP gathers
        # parameters): every process runs as many batches; one whose slice is over runs its
        # first examples again and counts nothing.
        batches = math.ceil(math.ceil(len(examples) / accelerator.num_processes) / batch_size)
        for b in range(batches):
            counted = mine[b * batch_size:(b + 1) * batch_size]
            batch = {k: v.to(device) for k, v in collator.pad(counted or examples[:batch_size]).items()}
            out = model(**batch, use_cache=False)
            if not counted:
                continue
            keep = batch["labels"] != -100
            sums[0] += out.nll_loss.double()
            sums[1] += (out.logits.argmax(-1) == batch["labels"])[keep].sum()
            sums[2] += keep.sum()
        loss, correct, tokens = accelerator.reduce(sums, reduction="sum").tolist()
        loss = loss / max(tokens, 1)
        return {"reconstruction_loss": loss, "reconstruction_accuracy": correct / max(tokens, 1),
                "perplexity": math.exp(min(loss, 50.0)), "target_tokens": tokens, "chunks": len(examples)}

    return evaluate
