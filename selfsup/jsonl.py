"""JSON-lines files read one way everywhere: every row keeps its line number for errors."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError


def read_jsonl(path: str | Path) -> list[tuple[int, dict]]:
    """``(line_number, row)`` for every non-blank line. A missing file, invalid JSON or a
    line that is not a JSON object raises :class:`InputError` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError("data file not found", path=path)
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"not valid JSON ({e.msg})", path=path, line=n) from None
            if not isinstance(row, dict):
                raise InputError("expected a JSON object", path=path, line=n)
            rows.append((n, row))
    return rows
