"""Declarative task specs (one YAML per task), their registry, and document loading.

A task turns raw rows into documents ``{"id", "choices", "gold", ...}`` in one of two ways.

**Templates** (no Python): Jinja2 fields with lm-evaluation-harness's rules
(:mod:`selfsup.icl.templates`), data from a local file or a ``datasets`` source:

.. code-block:: yaml

    name: social_iqa
    version: 1
    data: siqa/dev.jsonl                  # .jsonl .json .csv .tsv .parquet; relative to this file,
    labels: siqa/dev-labels.lst           #   else to the shared data folder; labels: optional side file
    doc_to_text: "{{context}} {{question}}\\nAnswer:"
    doc_to_choice: "{{[answerA, answerB, answerC]}}"
    doc_to_target: "{{label|int - 1}}"    # an index into the choices, or the answer's text
    # or, instead of data: dataset_path: json | csv | parquet | <Hub id>, dataset_name,
    #   dataset_kwargs: {data_files: ...}, test_split / validation_split / training_split / fewshot_split

**A format hook** (``tasks/icl/formats.py``, the built-in tasks) plus ``str.format`` templates:

.. code-block:: yaml

    name: copa
    version: 1
    format: copa
    data: icl/copa/val.jsonl            # relative to the shared data folder, or absolute
    fewshot_data: icl/copa/train.jsonl  # omitted: the evaluated split, minus the example itself
    prompt: "{premise} {connector}"     # str.format over the document (+ {choice})
    continuation: "{choice}"            # what is scored after target_delimiter

Common fields: ``output_type`` (multiple_choice; target: log-likelihood + greedy match;
loglikelihood: the same without a delimiter before the evaluated target, as lm-eval;
generate_until), ``metrics``, ``target_delimiter`` (" "), ``fewshot_separator`` (alias
``fewshot_delimiter``, "\\n\\n"), ``description``, ``num_fewshot`` (used when the command line
gives none), ``fewshot_sampler`` (random: seeded per example; first_n: the pool's first n).

Choice i is scored as ``context_i + target_delimiter + continuation_i``; WinoGrande's partial
scoring is a prompt that uses the choice and a fixed continuation (or, with templates, a
``doc_to_text`` giving the gold index: lm-eval's multiple input). ``generate_until`` generates
greedily from the context until a stop sequence (``until``, at most ``max_gen_toks`` tokens)
and scores ``exact_match`` against the gold answer.

lm-evaluation-harness task files (``task:``) are read by :mod:`selfsup.icl.taskfiles`.
"""
from __future__ import annotations

import dataclasses
import importlib
import string
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Callable

from ..errors import InputError
from ..registry import Registry
from ..resources import shared_data_dir
from .readers import READERS, attach_labels
from .taskfiles import Index, PythonFunction, from_lm_eval, read_yaml
from .templates import RowError, check_template, template_doc

OUTPUT_TYPES = ("multiple_choice", "target", "loglikelihood", "generate_until")
# Fields that only generate_until reads.
GENERATION_FIELDS = ("until", "max_gen_toks")
DATASET_FIELDS = ("dataset_path", "dataset_name", "dataset_kwargs", "training_split", "validation_split",
                  "test_split", "fewshot_split")
TEMPLATE_FIELDS = ("doc_to_text", "doc_to_choice", "doc_to_target")

# Row -> document hooks, filled by ``selfsup.tasks.icl.formats`` (and by users' own modules).
icl_formats: Registry[Callable[[dict], dict]] = Registry("ICL data format")
icl_tasks: Registry["ICLTask"] = Registry("ICL task")


@dataclass(frozen=True)
class ICLTask:
    name: str
    version: int | float | str
    format: str | None = None           # a row -> document hook; None: the doc_to_* templates
    data: str | None = None             # a local file; or dataset_path below
    prompt: str | None = None           # str.format template (format tasks)
    output_type: str = "multiple_choice"
    continuation: str = "{choice}"
    target_delimiter: str = " "
    fewshot_separator: str = "\n\n"
    fewshot_data: str | None = None
    labels: str | None = None           # side file of labels, one per line (PIQA, WinoGrande)
    fewshot_labels: str | None = None
    description: str = ""                # printed once before the demonstrations (a template with doc_to_*)
    metrics: tuple[str, ...] | None = None  # default: every metric of the output type
    until: tuple[str, ...] = ("\n",)    # generate_until: stop sequences; default: the answer is one line
    max_gen_toks: int = 32              # generate_until: new tokens at most (a short answer, bounded cost)
    doc_to_text: str | int | None = None
    doc_to_choice: str | list | dict | None = None
    doc_to_target: str | int | None = None
    dataset_path: str | None = None     # datasets.load_dataset(path, name, **kwargs): json, csv, parquet, a Hub id
    dataset_name: str | None = None
    dataset_kwargs: dict | None = None
    training_split: str | None = None
    validation_split: str | None = None
    test_split: str | None = None       # evaluated: test_split, else validation_split (as lm-eval)
    fewshot_split: str | None = None    # demonstrations: fewshot, else training, validation, test split
    num_fewshot: int | None = None      # the task's shots when the command line gives none
    fewshot_sampler: str = "random"     # random (seeded per example) | first_n (the pool's first n, in order)
    dialect: str = "selfsup"            # selfsup | lm-eval: which kind of file it came from
    source: str = field(default="", compare=False)  # the YAML it came from (provenance)

    @property
    def templated(self) -> bool:
        return self.format is None

    # -- how one document reads, for requests.py ------------------------------------------
    def prompt_text(self, doc: dict, choice: str) -> str:
        if not self.templated:
            return self.prompt.format_map({**doc, "choice": choice})
        return choice if doc["multiple_input"] else doc["text"]

    def continuation_text(self, doc: dict, choice: str) -> str:
        if not self.templated:
            return self.continuation.format_map({**doc, "choice": choice})
        return doc["target"] if doc["multiple_input"] else choice

    def description_text(self, doc: dict) -> str:
        return doc["description"] if self.templated else self.description

    # -- data -----------------------------------------------------------------------------
    def resolve(self, relative: str) -> Path:
        """A data path: absolute; else beside the task file; else in the shared data folder."""
        path = Path(relative)
        if path.is_absolute():
            return path
        if self.source and (beside := Path(self.source).parent / path).exists():
            return beside
        base = shared_data_dir()
        if base is None:
            raise InputError("shared data folder not found (set SELFSUP_DATA)", path=self.source, field="data")
        return base / path

    def eval_split(self) -> str:
        split = self.test_split or self.validation_split
        if split is None:
            raise InputError("a dataset_path task needs test_split or validation_split", path=self.source,
                             field="test_split")
        return split

    def fewshot_pool_split(self) -> str:
        return self.fewshot_split or self.training_split or self.validation_split or self.test_split

    def has_fewshot_split(self) -> bool:
        """Demonstrations come from another split than the evaluated one."""
        if self.dataset_path is not None:
            return self.fewshot_pool_split() != self.eval_split()
        return self.fewshot_data is not None

    def load_docs(self, fewshot: bool = False) -> list[dict]:
        """Documents of the evaluated split (or of the split demonstrations come from)."""
        if self.dataset_path is not None:
            split = self.fewshot_pool_split() if fewshot else self.eval_split()
            where, rows = self._dataset_rows(split)
        else:
            data, labels = (self.fewshot_data, self.fewshot_labels) if fewshot else (self.data, self.labels)
            where = self.resolve(data)
            reader = READERS.get(where.suffix)
            if reader is None:
                raise InputError(f"unsupported data file type {where.suffix!r} (known: {sorted(READERS)})",
                                 path=where)
            rows = reader(where)
            if labels is not None:
                rows = attach_labels(rows, self.resolve(labels), where)
        docs = [self._doc(row, where, line) for line, row in rows]
        if not docs:
            raise InputError("no examples", path=where)
        return docs

    def _doc(self, row: dict, where, line) -> dict:
        try:
            doc = template_doc(self, row) if self.templated else icl_formats.get(self.format)(row)
        except KeyError as e:
            raise InputError(f"missing field {e.args[0]!r}{self._in_task_file()}", path=where, line=line) from None
        except (RowError, ValueError, TypeError) as e:
            raise InputError(f"{e}{self._in_task_file()}", path=where, line=line) from None
        doc.setdefault("id", f"{Path(str(where)).name}:{line}")
        doc["line"] = line
        self._check_doc(doc, where, line)
        return doc

    def _dataset_rows(self, split: str) -> tuple[str, list[tuple[str, dict]]]:
        """``(where, [(row label, row)])`` from ``datasets.load_dataset``; rows are labelled
        ``<split> row <i>`` (0-based), files by their path, for errors."""
        import datasets

        kwargs = dict(self.dataset_kwargs or {})
        where = f"{self.dataset_path}" + (f"/{self.dataset_name}" if self.dataset_name else "")
        if "data_files" in kwargs:
            kwargs["data_files"] = self._data_files(kwargs["data_files"])
            files_of_split = kwargs["data_files"].get(split) if isinstance(kwargs["data_files"], dict) else None
            if isinstance(files_of_split, str):
                where = files_of_split
        try:
            dataset = datasets.load_dataset(self.dataset_path, self.dataset_name, **kwargs)
        except Exception as e:  # noqa: BLE001  (datasets raises many kinds; the message is what helps)
            raise InputError(f"could not load dataset {self.dataset_path!r}: {type(e).__name__}: {e}",
                             path=self.source, field="dataset_path") from None
        if split not in dataset:
            raise InputError(f"split {split!r} not in {where} (splits: {sorted(dataset)})", path=self.source,
                             field="test_split")
        return where, [(f"{split} row {i}", row) for i, row in enumerate(dataset[split])]

    def _data_files(self, data_files):
        """Relative data files: beside the task file if there, else as given (the current
        folder, as lm-eval and datasets read them), else in the shared data folder."""
        def one(p: str) -> str:
            if Path(p).is_absolute() or "://" in p:
                return p
            if self.source and (beside := Path(self.source).parent / p).exists():
                return str(beside)
            if Path(p).exists() or shared_data_dir() is None:
                return p
            return str(shared_data_dir() / p)
        if isinstance(data_files, dict):
            return {k: [one(p) for p in v] if isinstance(v, list) else one(v) for k, v in data_files.items()}
        return [one(p) for p in data_files] if isinstance(data_files, list) else {"train": one(data_files)}

    def _check_doc(self, doc: dict, path, line) -> None:
        choices = doc.get("choices")
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) and c for c in choices):
            # without doc_to_choice, the one "choice" is the target
            source = "doc_to_choice" if self.doc_to_choice is not None else "doc_to_target"
            raise InputError(f"choices must be a non-empty list of non-empty strings, got {choices!r}"
                             + self._templates_named(source) + self._in_task_file(), path=path, line=line)
        gold = doc.get("gold")
        if not isinstance(gold, int) or not 0 <= gold < len(choices):
            raise InputError(f"gold {gold!r} is not an index into {len(choices)} choices"
                             + self._templates_named("doc_to_target") + self._in_task_file(), path=path, line=line)
        if self.templated:
            return
        for template, name in ((self.prompt, "prompt"), (self.continuation, "continuation")):
            for _, key, _, _ in string.Formatter().parse(template):
                if key and key != "choice" and key not in doc:
                    raise InputError(f"{name} template uses {{{key}}} but the document has no such field "
                                     f"(fields: {sorted(doc)}){self._in_task_file()}", path=path, line=line)

    def _in_task_file(self) -> str:
        """The file holding the templates, for an error located in a data file's row."""
        return f" (task file {self.source})" if self.source else ""

    def _templates_named(self, key: str) -> str:
        value = getattr(self, key)
        return f" ({key} {value!r})" if self.templated and value is not None else ""


_FIELDS = {f.name for f in dataclasses.fields(ICLTask)} - {"source", "dialect"}


def load_task_file(path: str | Path) -> ICLTask:
    """Parse and validate one task YAML (selfsup's or lm-evaluation-harness's); errors name
    the file and the offending field."""
    path = Path(path)
    spec = read_yaml(path)
    if "group" in spec:
        raise InputError("this is a group file (group:), not a task: name the group or the folder in --tasks",
                         path=path)
    if "task" in spec and "name" not in spec:
        spec = from_lm_eval(spec, path)
    else:
        if "fewshot_delimiter" in spec:  # lm-eval's name for it
            spec["fewshot_separator"] = spec.pop("fewshot_delimiter")
        _check_selfsup(spec, path)
    output_type = spec.get("output_type", "multiple_choice")
    if output_type not in OUTPUT_TYPES:
        raise InputError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}",
                         path=path, field="output_type")
    if spec.get("metrics") is not None:
        spec["metrics"] = _check_metrics(spec["metrics"], output_type, path)
    for key in ("prompt", "continuation"):
        if key in spec:
            try:
                list(string.Formatter().parse(spec[key]))
            except (ValueError, TypeError) as e:
                raise InputError(f"bad template: {e}", path=path, field=key) from None
    for key in (*TEMPLATE_FIELDS, "description"):
        if isinstance(spec.get(key), str) and spec.get("format") is None:
            check_template(spec[key], path, key)
    _check_generation_fields(spec, output_type, path)
    for key in ("num_fewshot",):
        n = spec.get(key)
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise InputError(f"{key} must be an integer >= 0, got {n!r}", path=path, field=key)
    if spec.get("fewshot_sampler", "random") not in ("random", "first_n"):
        raise InputError(f"fewshot_sampler must be random or first_n, got {spec['fewshot_sampler']!r}", path=path,
                         field="fewshot_sampler")
    return ICLTask(**spec, source=str(path))


def _check_selfsup(spec: dict, path: Path) -> None:
    if python := [k for k, v in spec.items() if isinstance(v, PythonFunction)]:
        raise InputError("!function (Python code) is not supported: write a Jinja template", path=path,
                         field=python[0])
    if unknown := sorted(set(spec) - _FIELDS):
        raise InputError(f"unknown fields {unknown} (allowed: {sorted(_FIELDS)})", path=path, field=unknown[0])
    required = ["name", "version"]
    if "format" in spec:
        required += ["prompt"]
        if used := [k for k in TEMPLATE_FIELDS if k in spec]:
            raise InputError(f"{used[0]} and format are alternatives: a format hook builds the documents",
                             path=path, field=used[0])
    else:
        required += ["doc_to_text", "doc_to_target"]
        if spec.get("output_type", "multiple_choice") == "multiple_choice":
            required.append("doc_to_choice")
        if "prompt" in spec:
            raise InputError("prompt is for format tasks; with templates the prompt is doc_to_text", path=path,
                             field="prompt")
    if ("data" in spec) == ("dataset_path" in spec):
        required.append("data")  # exactly one source: reported as missing (or both as an error below)
        if "data" in spec:
            raise InputError("data and dataset_path are alternatives: give one", path=path, field="dataset_path")
    if "data" in spec and (used := [k for k in DATASET_FIELDS if k in spec]):
        raise InputError(f"{used[0]} goes with dataset_path, not data", path=path, field=used[0])
    if missing := [k for k in required if k not in spec]:
        raise InputError(f"missing required fields {missing}", path=path, field=missing[0])
    if "format" in spec:
        _load_formats()
        if spec["format"] not in icl_formats:
            try:
                icl_formats.get(spec["format"])
            except KeyError as e:
                raise InputError(str(e.args[0]), path=path, field="format") from None


def _check_metrics(metrics, output_type: str, path: Path) -> tuple[str, ...]:
    from .metrics import OUTPUT_TYPES_OF, icl_metrics
    for name in metrics or []:
        if name not in icl_metrics:
            try:
                icl_metrics.get(name)
            except KeyError as e:
                raise InputError(str(e.args[0]), path=path, field="metrics") from None
        if output_type not in OUTPUT_TYPES_OF.get(name, OUTPUT_TYPES):
            raise InputError(f"metric {name!r} does not apply to output_type {output_type!r} "
                             f"(it needs {' or '.join(OUTPUT_TYPES_OF[name])})", path=path, field="metrics")
    return tuple(metrics)


def _check_generation_fields(spec: dict, output_type: str, path: Path) -> None:
    if output_type != "generate_until":
        for key in GENERATION_FIELDS:
            if key in spec:
                raise InputError(f"only output_type generate_until reads {key!r} (this task: {output_type!r})",
                                 path=path, field=key)
        return
    if "until" in spec:
        until = spec["until"]
        if not isinstance(until, (list, tuple)) or not until or not all(isinstance(s, str) and s for s in until):
            raise InputError(f"until must be a non-empty list of non-empty strings, got {until!r}",
                             path=path, field="until")
        spec["until"] = tuple(until)
    if "max_gen_toks" in spec:
        n = spec["max_gen_toks"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InputError(f"max_gen_toks must be an integer >= 1, got {n!r}", path=path, field="max_gen_toks")
    # The prompt is the same for every choice: a {choice} in it would show the model the answer.
    if "prompt" in spec and any(key == "choice" for _, key, _, _ in string.Formatter().parse(spec["prompt"])):
        raise InputError("a generate_until prompt cannot use {choice}: it would contain the answer",
                         path=path, field="prompt")


def _load_formats() -> None:
    importlib.import_module("selfsup.tasks.icl.formats")  # registers the built-in hooks


def builtin_folder() -> Path:
    return Path(str(files("selfsup.tasks").joinpath("icl")))


def _register_builtin() -> None:
    if len(icl_tasks):
        return
    for entry in sorted(builtin_folder().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            spec = load_task_file(entry)
            icl_tasks.register(spec.name, spec)


def get_icl_task(name_or_path: str) -> ICLTask:
    """A registered task by name, or a user's own task YAML by path."""
    if name_or_path.endswith((".yaml", ".yml")):
        return load_task_file(name_or_path)
    _register_builtin()
    return icl_tasks.get(name_or_path)


def icl_task_names() -> list[str]:
    _register_builtin()
    return icl_tasks.names()


def get_icl_tasks(names: str, include_path: str | None = None) -> list[ICLTask]:
    """``--tasks``: comma-separated task names, group or tag names, task YAML paths, or folders
    (every task file under them). Names are looked up in ``include_path`` (comma-separated
    folders) first, then among the built-in tasks."""
    index = Index()
    for folder in (include_path or "").split(","):
        if folder:
            if not Path(folder).is_dir():
                raise InputError("--include_path is not a folder", path=folder, field="include_path")
            index.add_folder(Path(folder))
    tasks: dict[str, ICLTask] = {}
    for item in filter(None, (s.strip() for s in names.split(","))):
        for spec in _expand(item, index, ()):
            tasks.setdefault(spec.name, spec)
    return list(tasks.values())


def _expand(item: str, index: Index, seen: tuple[str, ...]) -> list[ICLTask]:
    if item in seen:
        raise InputError(f"group cycle: {' -> '.join(seen + (item,))}", field="tasks")
    path = Path(item)
    if path.is_dir():
        folder = Index()
        folder.add_folder(path)
        if not folder.tasks:
            raise InputError("no task files (task: or name:) in this folder", path=path, field="tasks")
        return [load_task_file(p) for p in folder.tasks.values()]
    if item.endswith((".yaml", ".yml")):
        cfg = read_yaml(path)
        if "group" in cfg:
            return _group(cfg, path, index, seen + (item,))
        return [load_task_file(path)]
    if item in index.tasks:
        return [load_task_file(index.tasks[item])]
    if item in index.groups:
        path, _ = index.groups[item]
        return _group(read_yaml(path), path, index, seen + (item,))
    if item in index.tags:
        return [load_task_file(index.tasks[name]) for name in index.tags[item]]
    _register_builtin()
    if item in icl_tasks or not index.names():
        return [icl_tasks.get(item)]
    try:
        icl_tasks.get(item)
    except KeyError as e:
        raise KeyError(f"{e.args[0]}; tasks, groups and tags of --include_path: {', '.join(index.names())}") from None


def _group(cfg: dict, path: Path, index: Index, seen: tuple[str, ...]) -> list[ICLTask]:
    members = cfg.get("task")
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise InputError("a group's task: must be a list of task or group names (inline task mappings are not "
                         "supported)", path=path, field="task")
    return [spec for name in members for spec in _expand(name, index, seen)]
