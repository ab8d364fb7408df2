"""Declarative task specs (one YAML per task), their registry, and document loading.

A task file names a *format hook* (``tasks/icl/formats.py``) that turns one raw row into a
document ``{"id", "choices", "gold", **template fields}``; everything else is data:

.. code-block:: yaml

    name: copa
    version: 1
    format: copa
    data: icl/copa/val.jsonl            # relative to the shared data folder, or absolute
    fewshot_data: icl/copa/train.jsonl  # omitted: the evaluated split, minus the example itself
    output_type: multiple_choice        # or: target (log-likelihood + greedy match), generate_until
    metrics: [acc, acc_norm]            # optional; default: all of the output type's metrics
    prompt: "{premise} {connector}"     # str.format over the document (+ {choice})
    continuation: "{choice}"            # what is scored after target_delimiter
    target_delimiter: " "
    fewshot_separator: "\\n\\n"

Choice i is scored as ``prompt(choice_i) + target_delimiter + continuation(choice_i)``;
WinoGrande's partial scoring is just a prompt that uses ``{choice}`` and a fixed continuation.

``output_type: generate_until`` generates greedily from the prompt (which must not use
``{choice}``) until a stop sequence and scores ``exact_match`` against
``continuation(choices[gold])``, the answer the demonstrations show. Its own fields:

.. code-block:: yaml

    until: ["\\n"]        # stop sequences; the answer is cut before the first one
    max_gen_toks: 32      # generated tokens at most
"""
from __future__ import annotations

import dataclasses
import importlib
import string
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Callable

import yaml

from ..errors import InputError
from ..registry import Registry
from ..resources import shared_data_dir
from .readers import READERS, attach_labels

OUTPUT_TYPES = ("multiple_choice", "target", "generate_until")
# Fields that only generate_until reads.
GENERATION_FIELDS = ("until", "max_gen_toks")

# Row -> document hooks, filled by ``selfsup.tasks.icl.formats`` (and by users' own modules).
FORMATS: Registry[Callable[[dict], dict]] = Registry("ICL data format")
TASKS: Registry["TaskSpec"] = Registry("ICL task")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: int | float | str
    format: str
    data: str
    prompt: str
    output_type: str = "multiple_choice"
    continuation: str = "{choice}"
    target_delimiter: str = " "
    fewshot_separator: str = "\n\n"
    fewshot_data: str | None = None
    labels: str | None = None           # side file of labels, one per line (PIQA, WinoGrande)
    fewshot_labels: str | None = None
    description: str = ""                # printed once before the demonstrations
    metrics: tuple[str, ...] | None = None  # default: every metric of the output type
    until: tuple[str, ...] = ("\n",)    # generate_until: stop sequences; default: the answer is one line
    max_gen_toks: int = 32              # generate_until: new tokens at most (a short answer, bounded cost)
    source: str = field(default="", compare=False)  # the YAML it came from (provenance)

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        if path.is_absolute():
            return path
        base = shared_data_dir()
        if base is None:
            raise InputError("shared data folder not found (set SELFSUP_DATA)", path=self.source, field="data")
        return base / path

    def load_docs(self, fewshot: bool = False) -> list[dict]:
        """Documents of the evaluated split (or of the declared fewshot split)."""
        data, labels = (self.fewshot_data, self.fewshot_labels) if fewshot else (self.data, self.labels)
        path = self.resolve(data)
        reader = READERS.get(path.suffix)
        if reader is None:
            raise InputError(f"unsupported data file type {path.suffix!r} (known: {sorted(READERS)})", path=path)
        rows = reader(path)
        if labels is not None:
            rows = attach_labels(rows, self.resolve(labels), path)
        hook = FORMATS.get(self.format)
        docs = []
        for line, row in rows:
            try:
                doc = hook(row)
            except KeyError as e:
                raise InputError(f"missing field {e.args[0]!r}", path=path, line=line) from None
            except (ValueError, TypeError) as e:
                raise InputError(str(e), path=path, line=line) from None
            doc.setdefault("id", f"{path.name}:{line}")
            doc["line"] = line
            self._check_doc(doc, path, line)
            docs.append(doc)
        if not docs:
            raise InputError("no examples", path=path)
        return docs

    def _check_doc(self, doc: dict, path: Path, line: int) -> None:
        choices = doc.get("choices")
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) and c for c in choices):
            raise InputError(f"choices must be a non-empty list of non-empty strings, got {choices!r}", path=path, line=line)
        gold = doc.get("gold")
        if not isinstance(gold, int) or not 0 <= gold < len(choices):
            raise InputError(f"gold {gold!r} is not an index into {len(choices)} choices", path=path, line=line)
        for template, name in ((self.prompt, "prompt"), (self.continuation, "continuation")):
            for _, key, _, _ in string.Formatter().parse(template):
                if key and key != "choice" and key not in doc:
                    raise InputError(f"{name} template uses {{{key}}} but the document has no such field "
                                     f"(fields: {sorted(doc)})", path=path, line=line)


_REQUIRED = {"name", "version", "format", "data", "prompt"}
_FIELDS = {f.name for f in dataclasses.fields(TaskSpec)} - {"source"}


def load_task_file(path: str | Path) -> TaskSpec:
    """Parse and validate one task YAML; errors name the file and the offending field."""
    path = Path(path)
    if not path.is_file():
        raise InputError("task file not found", path=path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise InputError(f"not valid YAML: {e}", path=path) from None
    if not isinstance(spec, dict):
        raise InputError("a task file must be a mapping of fields", path=path)
    if unknown := sorted(set(spec) - _FIELDS):
        raise InputError(f"unknown fields {unknown} (allowed: {sorted(_FIELDS)})", path=path, field=unknown[0])
    if missing := sorted(_REQUIRED - set(spec)):
        raise InputError(f"missing required fields {missing}", path=path, field=missing[0])
    output_type = spec.get("output_type", "multiple_choice")
    if output_type not in OUTPUT_TYPES:
        raise InputError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}",
                         path=path, field="output_type")
    if "metrics" in spec:
        from .metrics import METRICS, OUTPUT_TYPES_OF
        for name in spec["metrics"] or []:
            if name not in METRICS:
                try:
                    METRICS.get(name)
                except KeyError as e:
                    raise InputError(str(e.args[0]), path=path, field="metrics") from None
            if output_type not in OUTPUT_TYPES_OF.get(name, OUTPUT_TYPES):
                raise InputError(f"metric {name!r} does not apply to output_type {output_type!r} "
                                 f"(it needs {' or '.join(OUTPUT_TYPES_OF[name])})", path=path, field="metrics")
        spec["metrics"] = tuple(spec["metrics"])
    for key in ("prompt", "continuation"):
        if key in spec:
            try:
                list(string.Formatter().parse(spec[key]))
            except (ValueError, TypeError) as e:
                raise InputError(f"bad template: {e}", path=path, field=key) from None
    _check_generation_fields(spec, output_type, path)
    _load_formats()
    if spec["format"] not in FORMATS:
        try:
            FORMATS.get(spec["format"])
        except KeyError as e:
            raise InputError(str(e.args[0]), path=path, field="format") from None
    return TaskSpec(**spec, source=str(path))


def _check_generation_fields(spec: dict, output_type: str, path: Path) -> None:
    if output_type != "generate_until":
        for key in GENERATION_FIELDS:
            if key in spec:
                raise InputError(f"only output_type generate_until reads {key!r} (this task: {output_type!r})",
                                 path=path, field=key)
        return
    if "until" in spec:
        until = spec["until"]
        if not isinstance(until, list) or not until or not all(isinstance(s, str) and s for s in until):
            raise InputError(f"until must be a non-empty list of non-empty strings, got {until!r}",
                             path=path, field="until")
        spec["until"] = tuple(until)
    if "max_gen_toks" in spec:
        n = spec["max_gen_toks"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InputError(f"max_gen_toks must be an integer >= 1, got {n!r}", path=path, field="max_gen_toks")
    # The prompt is the same for every choice: a {choice} in it would show the model the answer.
    if any(key == "choice" for _, key, _, _ in string.Formatter().parse(spec["prompt"])):
        raise InputError("a generate_until prompt cannot use {choice}: it would contain the answer",
                         path=path, field="prompt")


def _load_formats() -> None:
    importlib.import_module("selfsup.tasks.icl.formats")  # registers the built-in hooks


def _register_builtin() -> None:
    if len(TASKS):
        return
    for entry in sorted(files("selfsup.tasks").joinpath("icl").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            spec = load_task_file(Path(str(entry)))
            TASKS.register(spec.name, spec)


def get_task(name_or_path: str) -> TaskSpec:
    """A registered task by name, or a user's own task YAML by path."""
    if name_or_path.endswith((".yaml", ".yml")):
        return load_task_file(name_or_path)
    _register_builtin()
    return TASKS.get(name_or_path)


def task_names() -> list[str]:
    _register_builtin()
    return TASKS.names()
