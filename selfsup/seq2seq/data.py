"""Reading (source, target) pairs from jsonl, rejecting bad rows by file and line."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from selfsup.errors import InputError
from selfsup.jsonl import read_jsonl


@dataclass
class Pair:
    """One example. ``references`` holds every reference target (DialogSum test has 3);
    ``target`` is the first, the one trained on."""

    source: str
    references: list[str]
    # where the row came from, for errors found after reading (a text that tokenizes to nothing)
    path: str | None = None
    line: int | None = None

    @property
    def target(self) -> str:
        return self.references[0]


def read_pairs(path: str | Path, source_column: str, target_column: str | list[str],
               require_target: bool = True) -> list[Pair]:
    """Every line of ``path`` as a :class:`Pair`. ``target_column`` may list several
    reference columns. Missing columns, non-string or empty text and invalid JSON raise
    :class:`InputError` naming the file, line and field; blank lines are the only thing skipped."""
    path = Path(path)
    columns = [target_column] if isinstance(target_column, str) else list(target_column)
    pairs = []
    for line_no, row in read_jsonl(path):
        source = _text(row, source_column, path, line_no)
        refs = [_text(row, c, path, line_no) for c in columns] if require_target else \
            [row[c] for c in columns if isinstance(row.get(c), str)]
        pairs.append(Pair(source, refs, str(path), line_no))
    if not pairs:
        raise InputError("no examples", path=path)
    return pairs


def _text(row: dict, column: str, path: Path, line_no: int) -> str:
    if column not in row:
        raise InputError(f"missing column (present: {', '.join(sorted(row))})", path=path, line=line_no, field=column)
    value = row[column]
    if not isinstance(value, str):
        raise InputError(f"expected a string, got {type(value).__name__}", path=path, line=line_no, field=column)
    if not value.strip():
        raise InputError("empty text", path=path, line=line_no, field=column)
    return value


def write_pairs(path: str | Path, pairs: list[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in pairs:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
