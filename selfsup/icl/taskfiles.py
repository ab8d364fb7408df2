"""Task YAML files: ``include:``, lm-evaluation-harness's dialect, groups, and folders of tasks.

Three kinds of file, told apart by their keys:

* ``name:`` a selfsup task (the fields of :class:`selfsup.icl.tasks.ICLTask`);
* ``task:`` an lm-evaluation-harness task, run as it is for the subset in ``LM_EVAL_KEYS``;
  a key outside it (Python hooks, filters, custom metrics) is an error naming the key and the
  file, never silently a different evaluation;
* ``group:`` an lm-evaluation-harness group: ``task:`` lists task or group names.

``include: other.yaml`` (a path or a list, relative to the including file) merges the included
mapping under the file's own keys, as lm-eval does. ``!function`` is read (so a folder of
lm-eval tasks can be indexed) but a task that uses it cannot run here: it is Python.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import InputError


@dataclass(frozen=True)
class PythonFunction:
    """A ``!function module.name`` value: a hook this harness never imports."""
    qualname: str


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: PythonFunction(loader.construct_scalar(node)))


def read_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """The mapping of a task file with its ``include`` chain merged (the file's keys win)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("task file not found", path=path)
    if path.resolve() in _seen:
        raise InputError(f"include cycle: {' -> '.join(map(str, _seen + (path,)))}", path=path, field="include")
    try:
        cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        raise InputError(f"not valid YAML: {e}", path=path) from None
    if not isinstance(cfg, dict):
        raise InputError("a task file must be a mapping of fields", path=path)
    includes = cfg.pop("include", None)
    if includes is None:
        return cfg
    merged = {}
    for inc in includes if isinstance(includes, list) else [includes]:
        inc_path = Path(inc) if Path(inc).is_absolute() else path.parent / inc
        if not inc_path.is_file():
            raise InputError(f"included file {inc!r} not found (looked for {inc_path})", path=path, field="include")
        inner = read_yaml(inc_path, _seen + (path.resolve(),))
        inner.pop("task_list", None)
        merged.update(inner)
    return merged | cfg


# lm-eval keys this harness runs, with their meaning here. Keys that change nothing it
# computes (a display alias, decontamination, a tag) are accepted and recorded.
LM_EVAL_KEYS = {
    "task", "task_alias", "tag", "dataset_path", "dataset_name", "dataset_kwargs", "training_split",
    "validation_split", "test_split", "fewshot_split", "output_type", "doc_to_text", "doc_to_choice",
    "doc_to_target", "target_delimiter", "fewshot_delimiter", "description", "metric_list", "generation_kwargs",
    "num_fewshot", "metadata", "fewshot_config", "should_decontaminate", "doc_to_decontamination_query", "repeats",
}
LM_EVAL_OUTPUT_TYPES = ("multiple_choice", "loglikelihood", "generate_until")
LM_EVAL_METRICS = {"multiple_choice": ("acc", "acc_norm"), "loglikelihood": ("acc",),
                   "generate_until": ("exact_match",)}
DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's default_gen_kwargs


def _python_keys(cfg, prefix: str = "") -> list[str]:
    """Dotted keys whose value is a ``!function``."""
    if isinstance(cfg, PythonFunction):
        return [prefix.rstrip(".")]
    if isinstance(cfg, dict):
        return [k for key, v in cfg.items() for k in _python_keys(v, f"{prefix}{key}.")]
    if isinstance(cfg, list):
        return [k for i, v in enumerate(cfg) for k in _python_keys(v, f"{prefix}{i}.")]
    return []


def from_lm_eval(cfg: dict, path: Path) -> dict:
    """An lm-eval task mapping -> the fields of a selfsup ICLTask (InputError outside the subset)."""
    if python := _python_keys(cfg):
        raise InputError(f"{python[0]} is a !function (Python code), which this harness does not run; write it as a "
                         "Jinja template", path=path, field=python[0].split(".")[0])
    if unknown := sorted(set(cfg) - LM_EVAL_KEYS):
        raise InputError(f"lm-evaluation-harness key {unknown[0]!r} is not supported here (supported: "
                         f"{sorted(LM_EVAL_KEYS)})", path=path, field=unknown[0])
    output_type = cfg.get("output_type", "generate_until")  # lm-eval's default
    if output_type not in LM_EVAL_OUTPUT_TYPES:
        raise InputError(f"output_type {output_type!r} is not supported (supported: {LM_EVAL_OUTPUT_TYPES})",
                         path=path, field="output_type")
    if cfg.get("repeats", 1) != 1:
        raise InputError("repeats other than 1 are not supported", path=path, field="repeats")
    if not cfg.get("dataset_path"):
        raise InputError("dataset_path is required", path=path, field="dataset_path")
    spec = {"name": cfg["task"], "version": (cfg.get("metadata") or {}).get("version", 0), "output_type": output_type,
            "dialect": "lm-eval"}
    for key in ("dataset_path", "dataset_name", "training_split", "validation_split", "test_split", "fewshot_split",
                "doc_to_text", "doc_to_choice", "doc_to_target", "target_delimiter", "description", "num_fewshot"):
        if cfg.get(key) is not None:
            spec[key] = cfg[key]
    if "fewshot_delimiter" in cfg:
        spec["fewshot_separator"] = cfg["fewshot_delimiter"]
    spec["dataset_kwargs"] = _dataset_kwargs(cfg.get("dataset_kwargs"), path)
    spec |= _fewshot_config(cfg.get("fewshot_config"), path)
    if "metric_list" in cfg:
        spec["metrics"] = _metrics(cfg["metric_list"], output_type, path)
    if output_type == "generate_until":
        spec |= _generation(cfg.get("generation_kwargs"), cfg.get("fewshot_delimiter", "\n\n"), path)
    elif cfg.get("generation_kwargs") is not None:
        raise InputError(f"generation_kwargs apply to output_type generate_until only (this task: {output_type!r})",
                         path=path, field="generation_kwargs")
    for key in ("doc_to_text", "doc_to_target"):
        if key not in spec:
            raise InputError(f"{key} is required", path=path, field=key)
    if output_type == "multiple_choice" and "doc_to_choice" not in spec:
        raise InputError("output_type multiple_choice needs doc_to_choice", path=path, field="doc_to_choice")
    return spec


def _dataset_kwargs(kwargs, path: Path) -> dict | None:
    if kwargs is None:
        return None
    if not isinstance(kwargs, dict):
        raise InputError(f"dataset_kwargs must be a mapping, got {kwargs!r}", path=path, field="dataset_kwargs")
    # Remote dataset scripts are never run (datasets 4 refuses them anyway, and lm-eval drops the flag).
    kwargs = {k: v for k, v in kwargs.items() if k != "trust_remote_code"}
    if unknown := sorted(set(kwargs) - {"data_files", "data_dir"}):
        raise InputError(f"dataset_kwargs.{unknown[0]} is not supported (supported: data_files, data_dir)",
                         path=path, field="dataset_kwargs")
    return kwargs or None


def _fewshot_config(fc, path: Path) -> dict:
    if fc is None:
        return {}
    if not isinstance(fc, dict) or set(fc) - {"sampler", "split"}:
        extra = sorted(set(fc) - {"sampler", "split"}) if isinstance(fc, dict) else [repr(fc)]
        raise InputError(f"fewshot_config: only sampler and split are supported, not {extra[0]}", path=path,
                         field="fewshot_config")
    out = {}
    if "sampler" in fc:
        if fc["sampler"] not in ("default", "first_n"):
            raise InputError(f"fewshot_config.sampler {fc['sampler']!r} is not supported (default, first_n)",
                             path=path, field="fewshot_config")
        out["fewshot_sampler"] = "first_n" if fc["sampler"] == "first_n" else "random"
    if "split" in fc:
        out["fewshot_split"] = fc["split"]
    return out


def _metrics(metric_list, output_type: str, path: Path) -> tuple[str, ...]:
    allowed = LM_EVAL_METRICS[output_type]
    names = []
    for entry in metric_list or []:
        name = entry.get("metric") if isinstance(entry, dict) else None
        if name not in allowed:
            raise InputError(f"metric {name!r} is not supported for output_type {output_type!r} (supported: "
                             f"{', '.join(allowed)})", path=path, field="metric_list")
        if entry.get("aggregation", "mean") != "mean" or entry.get("higher_is_better", True) is not True:
            raise InputError(f"metric {name!r}: only aggregation mean and higher_is_better true are supported",
                             path=path, field="metric_list")
        # exact_match's options change what counts as a match: only their no-op values run here.
        options = {k: v for k, v in entry.items() if k not in ("metric", "aggregation", "higher_is_better")}
        if any(v not in (False, None, []) for v in options.values()):
            raise InputError(f"metric {name!r}: options {sorted(options)} are not supported", path=path,
                             field="metric_list")
        names.append(name)
    return tuple(names)


def _generation(kwargs, fewshot_delimiter: str, path: Path) -> dict:
    if kwargs is None:
        return {"until": (fewshot_delimiter,), "max_gen_toks": DEFAULT_MAX_GEN_TOKS}
    if not isinstance(kwargs, dict):
        raise InputError(f"generation_kwargs must be a mapping, got {kwargs!r}", path=path, field="generation_kwargs")
    for key, value in kwargs.items():
        greedy = (key == "do_sample" and value is False) or (key == "temperature" and value in (0, 0.0))
        if key not in ("until", "max_gen_toks") and not greedy:
            raise InputError(f"generation_kwargs.{key}={value!r} is not supported: decoding here is greedy (until, "
                             "max_gen_toks, do_sample: false, temperature: 0)", path=path, field="generation_kwargs")
    until = kwargs.get("until", [fewshot_delimiter])
    until = [until] if isinstance(until, str) else until
    return {"until": tuple(until), "max_gen_toks": kwargs.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS)}


@dataclass
class Index:
    """Task, group and tag names found in folders of YAML files."""
    tasks: dict[str, Path] = field(default_factory=dict)
    groups: dict[str, tuple[Path, list]] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)

    def add_folder(self, folder: Path) -> None:
        for path in sorted(folder.rglob("*.yaml")):
            if "__pycache__" in path.parts:
                continue
            try:
                cfg = read_yaml(path)
            except InputError:
                continue  # not a task file (lm-eval's own index skips these too); an error when named by path
            if "group" in cfg:
                self.groups[cfg["group"]] = (path, cfg.get("task") or [])
            elif isinstance(cfg.get("task"), str) or isinstance(cfg.get("name"), str):
                name = cfg.get("task") or cfg["name"]
                self.tasks[name] = path
                tags = cfg.get("tag") or []
                for tag in [tags] if isinstance(tags, str) else tags:
                    self.tags.setdefault(tag, []).append(name)

    def names(self) -> list[str]:
        return sorted({*self.tasks, *self.groups, *self.tags})
