"""The ``--corpus`` list: its sources, their documents, cache fingerprints and counts.

Each comma-separated item is one source, recognised in this order:

* ``stdlib``: the embedded default, Python's own docstrings;
* a local file or folder, read in its ``corpus_layout``; names of evaluation splits are
  refused unless ``allow_eval_splits`` (:func:`corpus.corpus_files`);
* a registered fine-tuning task (``glue/sst2``, ``ner/conll2003``, ``squad/dev_split``):
  the text of its *training* split only, through the task's ``read_text`` (labels are
  never read, so a file with a broken label column still gives its text);
* anything else: a Hub dataset (``name`` or ``name:config``), its train split.
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from datasets import Dataset

from ..errors import InputError
from ..finetune.tasks import get_finetune_task
from .corpus import (
    LAYOUTS,
    corpus_files,
    files_fingerprint,
    hub_documents,
    hub_stream,
    is_local,
    parse_documents,
    read_documents,
    read_lines,
    split_sentences,
    stdlib_docstrings,
)

# Sentences per pseudo-document of one-sentence examples (SST-2 phrases, CoLA sentences).
# NSP and SOP need documents of several sentences; consecutive examples grouped in file
# order give them that (CoLA's rows run by source publication, so neighbours share a
# topic; SST-2's are shuffled, so there only masked LM learns much). About one
# 128-token sequence of SST-2 phrases.
PSEUDO_DOCUMENT_SENTENCES = 8


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # "stdlib", "files", "task" or "hub"
    layout: str = "sentences"  # files only
    allow_eval_splits: bool = False  # files only

    def documents(self, data_dir: str | Path | None = None) -> list[list[str]]:
        if self.kind == "stdlib":
            return stdlib_docstrings()
        if self.kind == "files":
            files = corpus_files(self.name, self.allow_eval_splits)
            return [doc for f in files for doc in read_documents(f, self.layout)]
        if self.kind == "task":
            return task_documents(self.name, data_dir)
        return hub_documents(self.name)

    def stream(self, data_dir: str | Path | None = None) -> Iterator[list[str]]:
        """The documents one by one, read as they are needed from files and the Hub (the
        embedded and task sources are small: read whole)."""
        if self.kind == "files":
            for f in corpus_files(self.name, self.allow_eval_splits):
                yield from parse_documents(read_lines(f), self.layout, f)
        elif self.kind == "hub":
            for row in hub_stream(self.name):
                if sentences := split_sentences(row["text"] or ""):
                    yield sentences
        else:
            yield from self.documents(data_dir)

    def fingerprint(self, data_dir: str | Path | None = None) -> list:
        """What the cached documents depend on: the files' sizes and modification times, the
        Python version for ``stdlib``, the task's training text itself (its files are the
        task's business, and reading them is cheap next to tokenizing them), the Hub name."""
        if self.kind == "stdlib":
            return [self.kind, sys.version]
        if self.kind == "files":
            return [self.kind, self.layout, files_fingerprint(corpus_files(self.name, self.allow_eval_splits))]
        if self.kind == "task":
            text = json.dumps(task_documents(self.name, data_dir)).encode()
            return [self.kind, self.name, get_finetune_task(self.name).version, hashlib.sha256(text).hexdigest()]
        return [self.kind, self.name]


def _is_task(name: str) -> bool:
    try:
        get_finetune_task(name)
    except KeyError:
        return False
    return True


def parse_corpus(corpus: str, layout: str = "sentences", allow_eval_splits: bool = False) -> list[Source]:
    """``corpus``: comma-separated sources; ``layout``: one layout for every file source, or
    one per item (ignored for the items that are not files). Local paths are checked here,
    evaluation splits included, so a bad item fails before anything is read."""
    names = [n.strip() for n in corpus.split(",")]
    if not all(names):
        raise InputError(f"empty item in the corpus list {corpus!r}", field="corpus")
    duplicates = [n for n, c in Counter(names).items() if c > 1]
    if duplicates:  # its documents would count twice and could land on both sides of the held-out split
        raise InputError(f"listed twice: {', '.join(duplicates)}", field="corpus")
    layouts = [x.strip() for x in layout.split(",")]
    if len(layouts) == 1:
        layouts *= len(names)
    if len(layouts) != len(names):
        raise InputError(f"{len(layouts)} layouts for {len(names)} corpus items: give one, or one per item",
                         field="corpus_layout")
    for x in layouts:
        if x not in LAYOUTS:
            raise InputError(f"layout must be one of {LAYOUTS}, got {x!r}", field="corpus_layout")
    sources = []
    for name, item_layout in zip(names, layouts):
        if name == "stdlib":
            kind = "stdlib"
        elif is_local(name):
            kind = "files"
            corpus_files(name, allow_eval_splits)
        elif _is_task(name):
            kind = "task"
        else:
            kind = "hub"
        sources.append(Source(name, kind, item_layout, allow_eval_splits))
    return sources


def task_documents(name: str, data_dir: str | Path | None = None) -> list[list[str]]:
    """The training split's text of a fine-tuning task as documents. Only ``train`` is
    ever read, so a task source cannot bring its evaluation split into pretraining.

    The task gives one list of sentences per example or document (an example's text and
    text_pair as two sentences; a CoNLL document; a SQuAD article's contexts). Lists of
    two sentences or more stay documents; one-sentence examples are grouped, in file
    order, into pseudo-documents of :data:`PSEUDO_DOCUMENT_SENTENCES`."""
    spec = get_finetune_task(name)
    if spec.read_text is None:
        raise InputError(f"task {name} offers no text for pretraining (its spec has no read_text)", field="corpus")
    documents, pending = [], []
    for texts in spec.read_text(data_dir, "train"):
        sentences = [t.strip() for t in texts if t and t.strip()]
        if len(sentences) >= 2:
            documents.append(sentences)
        else:
            pending.extend(sentences)
            if len(pending) == PSEUDO_DOCUMENT_SENTENCES:
                documents.append(pending)
                pending = []
    if pending:
        documents.append(pending)
    if not documents:
        raise InputError(f"task {name}: its training split has no text", field="corpus")
    return documents


@dataclass(frozen=True)
class SourceCount:
    name: str
    documents: int
    words: int  # separated by white space

    def __str__(self) -> str:
        return f"{self.name}: {self.documents:,} documents, {self.words:,} words"


def count_sources(documents: Dataset, sources: list[Source]) -> list[SourceCount]:
    """Documents and words per source of a dataset with ``source`` and ``sentences``
    columns, in corpus order."""
    docs, words = Counter(), Counter()
    for batch in documents.iter(batch_size=1000):
        for name, sentences in zip(batch["source"], batch["sentences"]):
            docs[name] += 1
            words[name] += sum(len(s.split()) for s in sentences)
    return [SourceCount(s.name, docs[s.name], words[s.name]) for s in sources]
