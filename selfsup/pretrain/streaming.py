"""Streamed pretraining data (``--streaming``): documents read as training goes, for corpora
larger than memory; what is held at any time is a buffer of documents and a batch.

* Documents come through a 🤗 ``IterableDataset`` (:func:`stream_documents`): files read
  line by line in their layout, Hub datasets through ``load_dataset(..., streaming=True)``.
* The first ``eval_documents`` documents of the stream are held out, built into evaluation
  sequences once as in the map-style path, and skipped by training.
* The rest is split across processes with ``split_dataset_by_node`` by examples: every
  process reads the stream in the same order and keeps every ``world_size``-th document, so
  the shards are disjoint and differ by one document at most. (Split by shards, i.e. files,
  each process would read less, but none would know which documents are the stream's
  first, held-out ones, nor could a corpus of one file be split.)
* Sequences are built as documents arrive by the map-style path's own code
  (:func:`instances.document_instances`), each document's RNG seeded by its position in the
  stream; NSP draws its random B from a bounded buffer (:class:`StreamedInstances`).
* Each sequence carries an ``index``, so its masks come from (seed, epoch, index) as in the
  map-style path and a resumed run masks as the uninterrupted one did.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from datasets import Dataset, IterableDataset
from datasets.distributed import split_dataset_by_node
from torch.utils.data import IterableDataset as TorchIterableDataset

from ..errors import InputError
from ..training.config import TrainingConfig
from .config import DataConfig, ModelConfig
from .corpus import hub_stream
from .instances import InstanceConfig, build_instances, document_instances, tokenize_documents, tokenize_sentences
from .sources import Source, parse_corpus


def check_streaming(data: DataConfig, model: ModelConfig, training: TrainingConfig) -> None:
    """Refuses, before anything is read, what a stream cannot give: what needs the corpus's
    length or a whole pass over it."""
    if training.max_steps <= 0:
        raise InputError("--streaming: a stream's length is unknown, so epochs cannot be counted; give the number "
                         "of optimizer steps", field="max_steps")
    if not (data.tokenizer_name or model.model_name_or_path):
        raise InputError("--streaming: training a WordPiece vocabulary needs the whole corpus; give an existing "
                         "tokenizer (or --model_name_or_path, whose own is used)", field="tokenizer_name")
    if data.eval_documents != int(data.eval_documents):
        raise InputError(f"--streaming holds out the first documents of the stream: give a count, not the fraction "
                         f"{data.eval_documents} (the stream's length is unknown)", field="eval_documents")
    if data.sentence_objective == "nsp" and data.streaming_buffer_documents < 2:
        raise InputError("NSP's random B comes from another document of the buffer: it needs at least 2",
                         field="streaming_buffer_documents")
    if training.dataloader_num_workers:
        # Each worker would read the whole stream, and NSP's buffer spans documents.
        raise InputError("--streaming builds sequences in the training process: set 0",
                         field="dataloader_num_workers")


def _documents(sources: list[Source], data_dir: str | None) -> Iterator[dict]:
    for source in sources:
        for sentences in source.stream(data_dir):
            yield {"sentences": sentences}


def stream_documents(corpus: str, layout: str = "sentences", *, allow_eval_splits: bool = False,
                     data_dir: str | Path | None = None) -> IterableDataset:
    """Documents of every source of ``corpus`` in order, read as they are iterated: a 🤗
    IterableDataset of ``sentences`` rows. Hub sources are opened here, so one that is missing
    or has no ``text`` column fails now, not when the stream reaches it."""
    sources = parse_corpus(corpus, layout, allow_eval_splits)
    for source in sources:
        if source.kind == "hub":
            hub_stream(source.name)
    data_dir = None if data_dir is None else str(data_dir)
    return IterableDataset.from_generator(_documents, gen_kwargs={"sources": sources, "data_dir": data_dir})


class StreamedInstances(TorchIterableDataset):
    """This process's training sequences, built from its shard of the document stream as it is
    read; each iteration is one pass over the shard (the Trainer's epoch). Rows are those of
    :func:`instances.build_instances` without ``source``, plus ``index``.

    The k-th document of the shard is document ``first_position + k * world_size`` of the
    stream, which seeds its RNG; the n-th sequence gets ``index`` ``rank + n * world_size``,
    unique across processes.

    NSP's random B comes from the other documents of a buffer of the ``buffer_documents``
    most recent ones (tokenized: the memory bound of the stream). google-research/bert draws
    from the whole corpus, which a stream cannot hold; any other document serves as well
    unless neighbours in the stream continue each other. The first documents wait until
    the buffer is full, so they too draw among ``buffer_documents - 1`` others; a stream
    shorter than the buffer draws among all its documents, as the map-style path does.
    SOP and MLM-only sequences need only their own document: nothing is buffered.
    """

    def __init__(self, documents: IterableDataset, tokenizer, config: InstanceConfig, buffer_documents: int = 1000,
                 *, first_position: int = 0, rank: int = 0, world_size: int = 1):
        self.documents, self.tokenizer, self.config = documents, tokenizer, config
        self.buffer_documents = buffer_documents if config.sentence_objective == "nsp" else 1
        self.first_position, self.rank, self.world_size = first_position, rank, world_size
        self.last_pass: dict | None = None  # documents and sequences of the last complete pass

    def __iter__(self) -> Iterator[dict]:
        recent: deque[tuple[int, dict]] = deque(maxlen=self.buffer_documents)  # (position, tokens and words)
        waiting = sequences = read = 0  # waiting: the last documents of `recent` not yet made into sequences

        def sequences_of(slots: range) -> Iterator[dict]:
            nonlocal sequences
            for slot in slots:
                position, doc = recent[slot]

                def other_document(rng):
                    if len(recent) < 2:
                        raise InputError("next sentence prediction needs at least 2 documents in this process's "
                                         "share of the stream")
                    other = rng.randrange(len(recent) - 1)
                    return recent[other + (other >= slot)]

                for instance in document_instances(position, doc["tokens"], doc["words"], other_document,
                                                   self.config, self.tokenizer.cls_token_id,
                                                   self.tokenizer.sep_token_id):
                    del instance["source"]
                    instance["index"] = self.rank + sequences * self.world_size
                    sequences += 1
                    yield instance

        for row in self.documents:
            position = self.first_position + read * self.world_size
            read += 1
            tokens, words = tokenize_sentences(row["sentences"], self.tokenizer)
            if not tokens:  # nothing to train on, nor to draw a B from
                continue
            recent.append((position, {"tokens": tokens, "words": words}))
            waiting += 1
            if len(recent) == self.buffer_documents:
                yield from sequences_of(range(len(recent) - waiting, len(recent)))
                waiting = 0
        yield from sequences_of(range(len(recent) - waiting, len(recent)))
        self.last_pass = {"documents": read, "sequences": sequences}


@dataclass
class StreamedPretrainingData:
    train: StreamedInstances
    eval: Dataset
    held_out: int  # documents: the first of the stream


def build_streamed_data(corpus: str, tokenizer, config: InstanceConfig, layout: str = "sentences",
                        eval_documents: int = 0, buffer_documents: int = 1000, *, rank: int = 0, world_size: int = 1,
                        allow_eval_splits: bool = False, data_dir: str | Path | None = None
                        ) -> StreamedPretrainingData:
    """The held-out sequences (of the stream's first ``eval_documents`` documents) and this
    process's (``rank`` of ``world_size``) stream of training sequences, from the rest."""
    documents = stream_documents(corpus, layout, allow_eval_splits=allow_eval_splits, data_dir=data_dir)
    held_out = [row["sentences"] for row in documents.take(eval_documents)] if eval_documents else []
    if len(held_out) < eval_documents:
        raise InputError(f"the stream has {len(held_out)} documents, fewer than the {eval_documents} to hold out",
                         path=corpus, field="eval_documents")
    eval_rows = Dataset.from_dict({})
    if held_out:
        tokenized = tokenize_documents(Dataset.from_dict({"sentences": held_out}), tokenizer)
        eval_rows = build_instances(tokenized, tokenizer, config, source_name=corpus)
    shard = split_dataset_by_node(documents.skip(len(held_out)) if held_out else documents, rank=rank,
                                  world_size=world_size, strategy="examples")
    train = StreamedInstances(shard, tokenizer, config, buffer_documents, first_position=len(held_out) + rank,
                              rank=rank, world_size=world_size)
    return StreamedPretrainingData(train, eval_rows, len(held_out))
