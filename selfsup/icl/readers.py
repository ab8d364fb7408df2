"""Raw data files -> rows (dicts) that remember their file and line, for clear errors."""
from __future__ import annotations

import csv
from pathlib import Path

from ..errors import InputError
from ..jsonl import read_jsonl


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise InputError("data file not found", path=path)


def read_tsv(path: Path) -> list[tuple[int, dict]]:
    """GLUE tsv with a header; QUOTE_NONE because GLUE text has unbalanced quotes."""
    _check_exists(path)
    csv.field_size_limit(1 << 24)
    with open(path, encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not lines:
        raise InputError("empty file", path=path)
    header, rows = lines[0], []
    for n, fields in enumerate(lines[1:], start=2):
        if not fields or fields == [""]:
            continue
        if len(fields) != len(header):
            raise InputError(f"malformed row: {len(fields)} fields, header has {len(header)}", path=path, line=n)
        rows.append((n, dict(zip(header, fields))))
    return rows


def attach_labels(rows: list[tuple[int, dict]], labels_path: Path, data_path: Path) -> list[tuple[int, dict]]:
    """PIQA / WinoGrande keep labels in a side file, one per line: joined as ``row["label"]``."""
    _check_exists(labels_path)
    labels = [s.strip() for s in labels_path.read_text(encoding="utf-8").splitlines() if s.strip()]
    if len(labels) != len(rows):
        raise InputError(f"{len(labels)} labels for {len(rows)} rows of {data_path}", path=labels_path)
    return [(n, {**row, "label": label}) for (n, row), label in zip(rows, labels)]


READERS = {".jsonl": read_jsonl, ".tsv": read_tsv}
