"""One exception for bad user input, so every message names where the problem is."""
from __future__ import annotations

import os


class InputError(ValueError):
    """Bad input data, config or checkpoint.

    The message always starts with the location (``file:line: field:``) when it is
    known, so a user can open the file at the right place without guessing.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None,
                 line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = path, line, field
        where = ""
        if path is not None:
            where = f"{os.fspath(path)}"
            if line is not None:
                where += f":{line}"
            where += ": "
        if field is not None:
            where += f"field {field!r}: "
        super().__init__(where + message)


class SplitNotFound(InputError):
    """A dataset split whose file is not there (GLUE's test sets, MNLI in shared/data...).

    Runs over many tasks skip these and nothing else: a malformed file stays an error."""
