"""Corpus → train/held-out instance datasets, cached by 🤗 datasets."""
from __future__ import annotations

from dataclasses import dataclass

from datasets import Dataset, DatasetDict
from datasets.exceptions import DatasetGenerationError

from ..errors import InputError
from .corpus import corpus_fingerprint, load_corpus
from .instances import InstanceConfig, build_instances, tokenize_documents


def _documents(source: str, layout: str, fingerprint: list):
    for sentences in load_corpus(source, layout):
        yield {"sentences": sentences}


def load_documents(source: str, layout: str = "sentences") -> Dataset:
    """Documents as a dataset with a ``sentences`` column, cached on disk by the source,
    its layout and its files' sizes and modification times."""
    kwargs = {"source": source, "layout": layout, "fingerprint": corpus_fingerprint(source)}
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


def build_pretraining_data(source: str, tokenizer, config: InstanceConfig, layout: str = "sentences",
                           eval_documents: float | int = 0.05, num_proc: int | None = None) -> PretrainingData:
    """Held-out *documents* (not sequences) go to evaluation, so no evaluated sentence was
    ever seen in training. ``eval_documents``: a fraction (< 1) or a count."""
    documents = load_documents(source, layout)
    n_eval = int(round(len(documents) * eval_documents)) if eval_documents < 1 else int(eval_documents)
    if n_eval >= len(documents) or (eval_documents and n_eval == 0 and len(documents) < 2):
        raise InputError(f"{len(documents)} document(s) cannot be split into train and {eval_documents} held-out",
                         path=source)
    split = documents.train_test_split(test_size=n_eval, seed=config.seed, shuffle=True) if n_eval else \
        DatasetDict(train=documents, test=documents.select([]))
    out = {}
    for name, docs in (("train", split["train"]), ("eval", split["test"])):
        if len(docs) == 0:
            out[name] = docs
            continue
        tokenized = tokenize_documents(docs, tokenizer, num_proc)
        out[name] = build_instances(tokenized, tokenizer, config, num_proc, source_name=source)
    return PretrainingData(out["train"], out["eval"], len(documents))
