"""What every script shares: typed configs, and how a bad input ends a run.

``--config x.yaml`` fills the dataclass fields; any ``--field value`` on the command line
wins over the file. Unknown keys in the file are an error naming the file and key.

``run_script(main)`` runs a script's ``main``: an ``InputError`` is the user's to fix, so it
prints one line (``error: <file>:<line>: <message>``) and exits with status 2, as argparse
does for a bad flag; its traceback helps only whoever debugs selfsup, so it appears only
with ``--debug`` or ``SELFSUP_DEBUG=1``.
"""
from __future__ import annotations

import difflib
import os
import sys
import traceback
from pathlib import Path
from typing import Callable

import yaml
from transformers import HfArgumentParser

from .errors import InputError


def parse_config(dataclass_types: tuple, args: list[str] | None = None, description: str | None = None,
                 defaults: dict | None = None):
    """Returns one instance per dataclass type, in order. ``defaults`` are the script's own
    defaults (below the YAML file and the command line)."""
    args = list(sys.argv[1:] if args is None else args)
    parser = HfArgumentParser(dataclass_types, description=description)
    if defaults:
        parser.set_defaults(**defaults)
    parser.add_argument("--config", type=Path, default=None, help="a YAML file of defaults for these flags")
    known, _ = parser.parse_known_args(args)
    if known.config is not None:
        path = known.config
        if not path.exists():
            raise InputError("config file not found", path=path)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise InputError(f"invalid YAML: {problem}", path=path,
                             line=None if mark is None else mark.line + 1) from e
        if not isinstance(values, dict):
            raise InputError("expected a mapping of flag: value", path=path)
        actions = {a.dest: a for a in parser._actions}
        for key, value in values.items():
            if key not in actions:
                close = difflib.get_close_matches(key, sorted(actions), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise InputError(f"unknown key{hint}", path=path, field=key)
            # Convert as the command line would (YAML's `3` for a float field becomes 3.0), so
            # a value means the same whether it comes from the file or from a flag.
            convert = actions[key].type
            if value is not None and convert is not None and not isinstance(value, list):
                try:
                    values[key] = convert(value)
                except (TypeError, ValueError) as e:
                    raise InputError(f"invalid value {value!r}: {e}", path=path, field=key) from e
        parser.set_defaults(**values)
    *configs, rest = parser.parse_args_into_dataclasses(args, return_remaining_strings=True)
    configs = [c for c in configs if not isinstance(c, Path)]
    rest = [r for r in rest if r not in ("--config", str(known.config))] if known.config else rest
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    return tuple(configs[: len(dataclass_types)])


INPUT_ERROR_STATUS = 2  # argparse's status for a bad command line: both are the user's to fix


def run_script(main: Callable[[list[str]], object], argv: list[str] | None = None) -> None:
    """Call ``main(args)`` with the command line less ``--debug``; exit 2 with one line on
    stderr if it raises InputError (the traceback too with ``--debug`` or ``SELFSUP_DEBUG=1``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("SELFSUP_DEBUG", "").lower() in {"1", "true", "yes"}
    args = [a for a in args if a != "--debug"]
    try:
        main(args)
    except InputError as e:
        if debug:
            traceback.print_exc()
        print("error: " + " ".join(str(e).split()), file=sys.stderr)  # one line, whatever the message holds
        sys.exit(INPUT_ERROR_STATUS)
