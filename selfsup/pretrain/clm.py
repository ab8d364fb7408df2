"""Causal-LM pretraining data, as transformers' ``run_clm.py`` builds it, and its evaluation.

Each document is tokenized without special tokens and followed by EOS (so the model learns
where a text ends, and a block that spans two documents says where one stops); the token
stream is cut into blocks of ``block_size`` and the remainder of every 1,000 documents
dropped (run_clm's ``group_texts``). No padding: every position but the first of a block
is a target (``labels`` = ``input_ids``; the model shifts them). Held-out *documents* are
packed the same way for perplexity, so no evaluated token was trained on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from datasets import Dataset, DatasetDict
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from ..errors import InputError
from .data import load_documents
from .sources import SourceCount, count_sources, parse_corpus

EOS = "<|endoftext|>"  # GPT-2's name for its one special token
GROUP_DOCUMENTS = 1000  # run_clm's map batch: the remainder of each group is dropped


def train_byte_level_bpe(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A GPT-2-style byte-level BPE: any text encodes (no unknown token) and decodes back exactly."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    # EOS also pads a batch for generate(); padded positions are masked, so the id does not matter.
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=EOS)


def document_text(sentences: list[str]) -> str:
    return " ".join(sentences)


def group_texts(token_lists: list[list[int]], eos_id: int, block_size: int) -> list[list[int]]:
    """Documents' token ids → consecutive ``block_size`` blocks of ``doc₁ EOS doc₂ EOS …``,
    the incomplete last block dropped."""
    stream = [t for ids in token_lists for t in (*ids, eos_id)]
    usable = len(stream) // block_size * block_size
    return [stream[i:i + block_size] for i in range(0, usable, block_size)]


@dataclass
class CLMData:
    train: Dataset  # input_ids: block_size tokens per row
    eval: Dataset
    num_documents: int
    sources: list[SourceCount]


def build_clm_data(corpus: str, tokenizer, block_size: int, layout: str = "sentences",
                   eval_documents: float | int = 0.05, seed: int = 42, num_proc: int | None = None, *,
                   allow_eval_splits: bool = False, data_dir: str | Path | None = None) -> CLMData:
    """``eval_documents``: a fraction (< 1) or a count of documents held out."""
    if tokenizer.eos_token_id is None:
        raise InputError("the tokenizer has no EOS token to put between documents", field="tokenizer_name")
    documents = load_documents(corpus, layout, allow_eval_splits=allow_eval_splits, data_dir=data_dir)
    counts = count_sources(documents, parse_corpus(corpus, layout, allow_eval_splits))
    n_eval = int(round(len(documents) * eval_documents)) if eval_documents < 1 else int(eval_documents)
    if n_eval >= len(documents):
        raise InputError(f"{len(documents)} document(s) cannot be split into train and {eval_documents} held-out",
                         path=corpus)
    split = documents.train_test_split(test_size=n_eval, seed=seed, shuffle=True) if n_eval else \
        DatasetDict(train=documents, test=documents.select([]))

    def tokenize_and_group(batch):
        texts = [document_text(s) for s in batch["sentences"]]
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return {"input_ids": group_texts(ids, tokenizer.eos_token_id, block_size)}

    out = {}
    for name, docs in (("train", split["train"]), ("eval", split["test"])):
        out[name] = docs.map(tokenize_and_group, batched=True, batch_size=GROUP_DOCUMENTS, num_proc=num_proc,
                             remove_columns=docs.column_names, desc=f"packing {name} blocks of {block_size}")
    if len(out["train"]) == 0:
        raise InputError(f"the training documents hold fewer than block_size={block_size} tokens", path=corpus)
    return CLMData(out["train"], out["eval"], len(documents), counts)


def collate_blocks(rows: list[dict]) -> dict[str, torch.Tensor]:
    ids = torch.tensor([r["input_ids"] for r in rows])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}


def count_next_tokens(batch: dict) -> dict[str, torch.Tensor]:
    """The window's normaliser: predicted tokens, i.e. every position but each block's first."""
    return {"tokens": (batch["labels"][:, 1:] != -100).sum()}


def make_evaluate_fn(eval_dataset: Dataset, batch_size: int):
    """Held-out loss and perplexity, exp(mean next-token NLL). Every process runs every
    held-out block (the same number of forwards on each, as DDP and FSDP need), so there is
    nothing to gather and the figure does not depend on the number of processes."""

    def evaluate(model, accelerator, state=None) -> dict[str, float]:
        nll, tokens = 0.0, 0
        for start in range(0, len(eval_dataset), batch_size):
            ids = torch.tensor(eval_dataset[start:start + batch_size]["input_ids"], device=accelerator.device)
            logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
            nll += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="sum").item()
            tokens += ids[:, 1:].numel()
        loss = nll / max(tokens, 1)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": float(tokens)}

    return evaluate
