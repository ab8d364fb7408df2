"""Corpus → train/held-out instance datasets, cached by 🤗 datasets."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict
from datasets.exceptions import DatasetGenerationError

from ..errors import InputError
from .instances import InstanceConfig, build_instances, tokenize_documents
from .sources import Source, SourceCount, count_sources, parse_corpus


def _documents(sources: list[Source], data_dir: str | None, fingerprint: list):
    for source in sources:
        for sentences in source.documents(data_dir):
            yield {"sentences": sentences, "source": source.name}


def load_documents(corpus: str, layout: str = "sentences", *, allow_eval_splits: bool = False,
                   data_dir: str | Path | None = None) -> Dataset:
    """Documents of every source of ``corpus`` (comma-separated, see
    :mod:`selfsup.pretrain.sources`) as a dataset with ``sentences`` and ``source`` (its
    item of the list) columns, cached on disk by every source's fingerprint."""
    sources = parse_corpus(corpus, layout, allow_eval_splits)
    data_dir = None if data_dir is None else str(data_dir)
    kwargs = {"sources": sources, "data_dir": data_dir, "fingerprint": [s.fingerprint(data_dir) for s in sources]}
    try:
        return Dataset.from_generator(_documents, gen_kwargs=kwargs)
    except DatasetGenerationError as e:
        if isinstance(e.__cause__, InputError):
            raise e.__cause__ from None
        raise


@dataclass
class PretrainingData:
    train: Dataset
    eval: Dataset
    num_documents: int
    sources: list[SourceCount]  # documents and words each corpus item gave, in corpus order


def build_pretraining_data(corpus: str, tokenizer, config: InstanceConfig, layout: str = "sentences",
                           eval_documents: float | int = 0.05, num_proc: int | None = None, *,
                           allow_eval_splits: bool = False, data_dir: str | Path | None = None) -> PretrainingData:
    """Held-out *documents* (not sequences) go to evaluation, so no evaluated sentence was
    ever seen in training. ``eval_documents``: a fraction (< 1) or a count."""
    documents = load_documents(corpus, layout, allow_eval_splits=allow_eval_splits, data_dir=data_dir)
    counts = count_sources(documents, parse_corpus(corpus, layout, allow_eval_splits))
    n_eval = int(round(len(documents) * eval_documents)) if eval_documents < 1 else int(eval_documents)
    if n_eval >= len(documents) or (eval_documents and n_eval == 0 and len(documents) < 2):
        raise InputError(f"{len(documents)} document(s) cannot be split into train and {eval_documents} held-out",
                         path=corpus)
    split = documents.train_test_split(test_size=n_eval, seed=config.seed, shuffle=True) if n_eval else \
        DatasetDict(train=documents, test=documents.select([]))
    out = {}
    for name, docs in (("train", split["train"]), ("eval", split["test"])):
        if len(docs) == 0:
            out[name] = docs
            continue
        tokenized = tokenize_documents(docs, tokenizer, num_proc)
        out[name] = build_instances(tokenized, tokenizer, config, num_proc, source_name=corpus)
    return PretrainingData(out["train"], out["eval"], len(documents), counts)
