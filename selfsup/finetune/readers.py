"""Readers for the original file formats, with errors that name the file and line.

GLUE tsv (csv with QUOTE_NONE: GLUE text has unbalanced quotes), SQuAD json (answers are
checked against their context), CoNLL column files (IOB1 or IOB2).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import InputError


def _open_text(path: Path):
    if not path.exists():
        raise InputError("file not found", path=path)
    return open(path, encoding="utf-8-sig", newline="")  # -sig: MRPC's header has a BOM


def _column(header: list[str] | None, key: str | int, path: Path) -> int:
    if isinstance(key, int):
        return key
    if header is None or key not in header:
        raise InputError(f"missing column {key!r} (header: {header})", path=path, line=1, field=key)
    return header.index(key)


def read_tsv(path: Path, *, text: str | int, pair: str | int | None = None, label: str | int | None = None,
             labels: tuple[str, ...] | None = None, index: str | None = None, header: bool = True) -> list[dict]:
    """Rows as ``{"idx", "text", "text_pair", "label"}``; ``label`` is the class index, or
    the float score when ``labels`` is None (regression), or None without a ``label`` column
    (a test file). ``idx`` is the ``index`` column's value (what a GLUE submission must
    repeat), else the row's position. Every row must have as many fields as the header (or,
    without one, as the first row): an extra tab would shift the columns after it."""
    path = Path(path)
    csv.field_size_limit(1 << 24)
    with _open_text(path) as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    head = rows[0] if header and rows else None
    cols = {"text": _column(head, text, path)}
    if pair is not None:
        cols["text_pair"] = _column(head, pair, path)
    label_col = None if label is None else _column(head, label, path)
    index_col = None if index is None else _column(head, index, path)
    body = [(n, row) for n, row in enumerate(rows[1:] if header else rows, start=2 if header else 1)
            if row and row != [""]]
    width = len(head) if head else len(body[0][1]) if body else 0
    needed = max([*cols.values(), label_col or 0, index_col or 0]) + 1
    if width < needed:
        raise InputError(f"{width} fields, but column {needed - 1} is read", path=path, line=body[0][0])
    examples = []
    for n, row in body:
        if len(row) != width:
            raise InputError(f"malformed row: {len(row)} fields, expected {width} (a stray tab shifts the columns)",
                             path=path, line=n)
        example = {"idx": len(examples)}
        if index_col is not None:
            try:
                example["idx"] = int(row[index_col])
            except ValueError:
                raise InputError(f"index {row[index_col]!r} is not an integer", path=path, line=n,
                                 field=head[index_col]) from None
        for name, c in cols.items():
            value = row[c].strip()
            if not value:
                raise InputError("empty text", path=path, line=n, field=head[c] if head else name)
            example[name] = value
        example.setdefault("text_pair", None)
        example["label"] = None
        if label_col is not None:
            raw = row[label_col].strip()
            if labels is None:
                try:
                    example["label"] = float(raw)
                except ValueError:
                    raise InputError(f"score {raw!r} is not a number", path=path, line=n,
                                     field=head[label_col] if head else "label") from None
            elif raw not in labels:
                raise InputError(f"unknown label {raw!r} (known: {', '.join(labels)})", path=path, line=n,
                                 field=head[label_col] if head else "label")
            else:
                example["label"] = labels.index(raw)
        examples.append(example)
    if not examples:
        raise InputError("no examples", path=path)
    return examples


def read_squad(path: Path) -> list[dict]:
    """SQuAD v1.1/v2.0 json → ``{"id", "title", "context", "question", "answers":
    {"text": [...], "answer_start": [...]}}``; every answer must occur at its offset."""
    path = Path(path)
    with _open_text(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON: {e.msg}", path=path, line=e.lineno) from e
    if "data" not in data:
        raise InputError("not a SQuAD file: no 'data' field", path=path, field="data")
    examples = []
    for article in data["data"]:
        for paragraph in article.get("paragraphs", []):
            context = paragraph.get("context", "")
            for qa in paragraph.get("qas", []):
                qid = qa.get("id", "?")
                where = f"question id {qid}"
                if not context.strip():
                    raise InputError("empty context", path=path, field=where)
                if not qa.get("question", "").strip():
                    raise InputError("empty question", path=path, field=where)
                texts, starts = [], []
                for answer in qa.get("answers", []):
                    start, text = answer["answer_start"], answer["text"]
                    if context[start:start + len(text)] != text:
                        raise InputError(f"answer {text!r} not found at offset {start} of its context",
                                         path=path, field=where)
                    texts.append(text)
                    starts.append(start)
                if not texts and not qa.get("is_impossible", False):
                    raise InputError("no answer and not marked is_impossible", path=path, field=where)
                examples.append({"id": qid, "title": article.get("title", ""), "context": context,
                                 "question": qa["question"].strip(),
                                 "answers": {"text": texts, "answer_start": starts}})
    if not examples:
        raise InputError("no questions", path=path)
    return examples


def read_conll(path: Path, labels: tuple[str, ...]) -> list[dict]:
    """CoNLL columns (token first, tag last) → ``{"idx", "tokens", "tags"}`` per sentence
    (``tags`` as indices into ``labels``); ``-DOCSTART-`` lines are skipped."""
    path = Path(path)
    examples, tokens, tags = [], [], []
    with _open_text(path) as f:
        lines = f.read().splitlines()
    for n, line in enumerate(lines + [""], start=1):
        if line.startswith("-DOCSTART-"):
            continue
        if not line.strip():
            if tokens:
                examples.append({"idx": len(examples), "tokens": tokens, "tags": tags})
                tokens, tags = [], []
            continue
        parts = line.split()
        if len(parts) < 2:
            raise InputError(f"malformed line: expected 'token ... tag', got {line!r}", path=path, line=n)
        if parts[-1] not in labels:
            raise InputError(f"unknown tag {parts[-1]!r} (known: {', '.join(labels)})", path=path, line=n)
        tokens.append(parts[0])
        tags.append(labels.index(parts[-1]))
    if not examples:
        raise InputError("no sentences", path=path)
    return examples
