"""Raw text → documents (lists of sentences), one source at a time.

Local layouts, as google-research/bert expects and as most corpora come:

* ``sentences``: one sentence per line, a blank line between documents;
* ``documents``: one document per line, split into sentences here;
* ``paragraphs``: one paragraph per line, a blank line between documents, each paragraph
  split into sentences here (``pretrain/python-docs.txt`` of the shared data);
* ``wikitext``: WikiText's layout, an article per top-level `` = Title = `` heading, one
  paragraph per line (sub-headings dropped), split into sentences here;
* ``conll``: CoNLL column files, a news document per ``-DOCSTART-``, a sentence per
  blank-line-separated block (its first column joined by spaces);
* ``dialogue_jsonl``: one JSON object per line with a ``dialogue`` field (DialogSum), a
  document per dialogue and a sentence per turn.

Every layout is read line by line (:func:`read_lines`, :func:`parse_documents`), so a
streamed run (``--streaming``) reads files of any size lazily, with the same reader.

A path may be a file or a folder (every ``*.txt``/``*.tokens`` file in it, sorted); one
named as an evaluation split is refused unless asked for (:func:`corpus_files`). A name
that is not a local path may be a Hub dataset (``name`` or ``name:config``) for online
users, one document per row of its ``text`` column, loaded whole or streamed
(:func:`hub_stream`). ``selfsup.pretrain.sources`` reads a list of such sources.
"""
from __future__ import annotations

import ast
import json
import re
import sys
import sysconfig
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import InputError

# A sentence ends at . ! or ? followed by space and an upper-case letter, digit or quote.
# Simple on purpose: NSP needs plausible sentence boundaries, not linguistic perfection.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
TEXT_SUFFIXES = (".txt", ".tokens", ".raw", ".jsonl")
LAYOUTS = ("sentences", "documents", "paragraphs", "wikitext", "conll", "dialogue_jsonl")
_WIKI_TITLE = re.compile(r"^= [^=].*[^=] =$")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def read_lines(path: str | Path) -> Iterator[str]:
    """The lines of a UTF-8 text file, read lazily (as ``str.splitlines`` splits them), so a
    file larger than memory can be streamed; a binary file or bad UTF-8 is refused naming
    the file (and the line)."""
    path = Path(path)
    if not path.exists():
        raise InputError("corpus file not found", path=path)
    with open(path, "rb") as f:
        if b"\x00" in f.read(8192):
            raise InputError("looks like a binary file, not text (NUL bytes)", path=path)
        f.seek(0)
        for number, raw in enumerate(f, 1):
            try:
                yield from raw.decode("utf-8").splitlines()
            except UnicodeDecodeError as e:
                raise InputError(f"not valid UTF-8 text ({e.reason})", path=path, line=number) from e


def parse_documents(lines: Iterable[str], layout: str = "sentences", path: str | Path | None = None
                    ) -> Iterator[list[str]]:
    """Documents, each a list of sentences (empty ones dropped), of the ``lines`` of a file in
    ``layout``, as they are read: streamed and in-memory corpora share this one reader.
    ``path`` names the file in errors."""
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {LAYOUTS}, got {layout!r}", field="layout")
    if layout == "documents":
        yield from filter(None, (split_sentences(line) for line in lines))
        return
    if layout == "dialogue_jsonl":
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                dialogue = json.loads(line)["dialogue"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InputError(f"expected a JSON object with a 'dialogue' field ({e})", path=path,
                                 line=number) from e
            turns = [turn.strip() for turn in dialogue.splitlines() if turn.strip()]
            if turns:
                yield turns
        return
    doc, sentence = [], []  # the document being read; conll: the sentence being read
    for line in lines:
        if layout in ("sentences", "paragraphs"):
            if line.strip():
                doc.extend([line.strip()] if layout == "sentences" else split_sentences(line))
                continue
        elif layout == "wikitext":
            line = line.strip()
            if not _WIKI_TITLE.match(line):
                if line and not line.startswith("="):
                    doc.extend(split_sentences(line))
                continue
        else:  # conll
            if not line.startswith("-DOCSTART-"):
                if line.strip():
                    sentence.append(line.split()[0])
                elif sentence:
                    doc.append(" ".join(sentence))
                    sentence = []
                continue
        if doc:  # the line ends a document: a blank line, a wikitext title, a -DOCSTART-
            yield doc
        doc = []
    if sentence:
        doc.append(" ".join(sentence))
    if doc:
        yield doc


def read_documents(path: str | Path, layout: str = "sentences") -> list[list[str]]:
    """Documents of one local file, each a list of sentences (empty documents dropped)."""
    docs = list(parse_documents(read_lines(path), layout, path))
    if not docs:
        raise InputError("corpus is empty (no non-blank lines)", path=path)
    return docs


# Words that name an evaluation split in a file or folder name: dev.tsv, valid.txt,
# wiki.test.tokens, eng.testa (CoNLL's dev), dev_matched.tsv, validation/.
EVAL_SPLIT_WORDS = frozenset({"dev", "val", "valid", "validation", "test", "testa", "testb", "eval", "evaluation",
                              "heldout"})


TRAIN_SPLIT_WORDS = frozenset({"train", "training"})


def names_eval_split(name: str) -> bool:
    """Whether a word of ``name`` (split at punctuation) names an evaluation split. Whole
    words only: ``latest.txt`` and ``contest.txt`` are not test files."""
    return not EVAL_SPLIT_WORDS.isdisjoint(re.split(r"[^a-z0-9]+", name.lower()))


def names_train_split(name: str) -> bool:
    """Whether a word of ``name`` names the training split (``wiki.train.tokens``, ``eng.train``)."""
    return not TRAIN_SPLIT_WORDS.isdisjoint(re.split(r"[^a-z0-9]+", name.lower()))


def corpus_files(path: str | Path, allow_eval_splits: bool = False) -> list[Path]:
    """The text files of a file or folder path. A path named as an evaluation split, or a
    folder holding such files (train + valid + test side by side), is refused naming them
    unless ``allow_eval_splits``: text trained on makes every later score on it meaningless.
    A folder holding a training file beside evaluation-split files is refused even then:
    the opt-in is for evaluation text (WikiText-2's valid and test, where shared data has no
    train), and reading such a folder whole would mix the splits without anyone choosing
    to; naming the files in ``--corpus`` is that choice.
    Only the name given and the names below it are checked; the folders above say nothing
    about the split (pytest's temporary folders are named ``test_*``)."""
    path = Path(path)
    if not path.exists():
        raise InputError("corpus file or folder not found", path=path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES) if path.is_dir() \
        else [path]
    if path.is_dir() and not files:
        raise InputError(f"no text files ({', '.join(TEXT_SUFFIXES)}) in folder", path=path)
    below = [f.relative_to(path) for f in files] if path.is_dir() else []
    marked = [str(f) for f in below if any(names_eval_split(part) for part in f.parts)]
    training = [str(f) for f in below if str(f) not in marked and any(names_train_split(p) for p in f.parts)]
    if marked and training:
        raise InputError(f"folder holds several splits (training: {', '.join(training)}; evaluation: "
                         f"{', '.join(marked)}), which would be mixed into one corpus: name the file(s) to "
                         "read in --corpus", path=path)
    if allow_eval_splits:
        return files
    if names_eval_split(path.name):
        raise InputError("named as an evaluation split (dev, valid, test...): a model pretrained on it is no "
                         "longer fairly evaluated on it; --allow_eval_splits reads it anyway", path=path)
    if marked:
        raise InputError(f"folder holds evaluation split files ({', '.join(marked)}), which would be mixed "
                         "into the corpus: name the training file(s) in --corpus instead, or pass "
                         "--allow_eval_splits to read them all", path=path)
    return files


def is_local(source: str) -> bool:
    """A path (existing, absolute, relative with ./ or ../, or with a text suffix) rather
    than a Hub dataset name like ``user/name``."""
    return (Path(source).exists() or source.startswith(("/", ".", "~"))
            or Path(source).suffix in TEXT_SUFFIXES)


def files_fingerprint(files: list[Path]) -> list:
    """Each file's path, size and modification time, so an edited corpus is re-read."""
    return [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def _load_hub(name: str, streaming: bool):
    from datasets import load_dataset

    dataset_name, _, config = name.partition(":")
    try:
        return load_dataset(dataset_name, config or None, split="train", streaming=streaming)
    except Exception as e:
        raise InputError(f"not a local file or folder nor a registered fine-tuning task, and loading it from the "
                         f"Hub failed: {e}", path=name) from e


def _check_text_column(columns: list[str], name: str) -> None:
    if "text" not in columns:
        raise InputError(f"dataset has no 'text' column (its columns: {', '.join(columns) or 'none'})", path=name,
                         field="text")


def hub_documents(name: str) -> list[list[str]]:  # pragma: no cover - needs the Hub
    ds = _load_hub(name, streaming=False)
    _check_text_column(ds.column_names, name)
    return [s for s in (split_sentences(t) for t in ds["text"]) if s]


def hub_stream(name: str):
    """The train split of a Hub dataset (``name`` or ``name:config``, or anything else
    ``load_dataset`` reads, such as a local folder of JSON lines) as a 🤗 IterableDataset,
    checked to have a ``text`` column. A stream may not declare its columns: then its first
    row says what they are."""
    ds = _load_hub(name, streaming=True)
    columns = ds.column_names
    if columns is None:
        columns = list(next(iter(ds), {}))
    _check_text_column(columns, name)
    return ds


def stdlib_docstrings(min_sentences: int = 2) -> list[list[str]]:
    """The embedded default corpus: docstrings of Python's own standard library.

    Present on every Python installation, real English, written by the Python authors;
    each module/class/function docstring with ≥ ``min_sentences`` sentences is a document.
    Deterministic: files sorted, nodes in source order.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = ("test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "ensurepip", "turtledemo")
    docs = []
    for path in sorted(root.rglob("*.py")):
        if any(part in skip for part in path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if not doc:
                    continue
                # Paragraphs of prose only: drop doctest, code and option-table lines.
                prose = " ".join(line.strip() for line in doc.splitlines()
                                 if line.strip() and not line.strip().startswith((">>>", "...", "-", "*", "|")))
                sentences = split_sentences(prose)
                if len(sentences) >= min_sentences:
                    docs.append(sentences)
    if not docs:
        raise InputError(f"found no docstrings in the standard library at {root} (Python {sys.version.split()[0]})")
    return docs
