"""Raw data files -> rows (dicts) that remember their file and line, for clear errors."""
from __future__ import annotations

import csv
import json
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


def read_csv(path: Path) -> list[tuple[int, dict]]:
    """CSV with a header row (RFC 4180 quoting); values stay text, as a template sees them."""
    _check_exists(path)
    csv.field_size_limit(1 << 24)
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        rows = []
        for row in reader:
            if None in row or None in row.values():
                raise InputError(f"malformed row: header has {len(reader.fieldnames)} fields", path=path,
                                 line=reader.line_num)
            rows.append((reader.line_num, row))
    return rows


def read_json(path: Path) -> list[tuple[int, dict]]:
    """A JSON array of objects (numbered from 1), or JSON lines under a .json name."""
    _check_exists(path)
    text = path.read_text(encoding="utf-8")
    if not text.lstrip().startswith("["):
        return read_jsonl(path)
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON ({e.msg})", path=path, line=e.lineno) from None
    if bad := next((i for i, r in enumerate(rows, 1) if not isinstance(r, dict)), None):
        raise InputError(f"item {bad} of the array is not a JSON object", path=path)
    return list(enumerate(rows, start=1))


def read_parquet(path: Path) -> list[tuple[int, dict]]:
    """Rows numbered from 1 (a parquet file has no lines)."""
    _check_exists(path)
    import pyarrow.parquet as pq
    return list(enumerate(pq.read_table(path).to_pylist(), start=1))


READERS = {".jsonl": read_jsonl, ".json": read_json, ".tsv": read_tsv, ".csv": read_csv, ".parquet": read_parquet}
