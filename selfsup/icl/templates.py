"""Rows -> documents through Jinja2 templates, with lm-evaluation-harness's field rules.

A task maps each raw row with three fields, each a row field's name, a template, or a
constant (as lm-eval's ``ConfigurableTask.doc_to_*``):

* ``doc_to_text``: the question. A template that renders to digits (or an int field) while
  ``doc_to_choice`` is set means *multiple input*: the number is the gold choice, the choices
  are the contexts, and ``doc_to_target`` is the continuation scored after each (WinoGrande).
* ``doc_to_choice``: the choices: a list, a field holding a list, or a template rendering to
  a Python list literal.
* ``doc_to_target``: the gold answer: an index into the choices, or its text.

Templates run in Jinja2's ``ImmutableSandboxedEnvironment`` (a task file cannot reach Python
objects or mutate the row) with ``StrictUndefined`` (a misspelt field is an error, not an
empty string) and trailing newlines kept, as lm-eval renders them.
"""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import InputError


def _regex_replace(string: str, pattern: str, repl: str, count: int = 0) -> str:
    return re.sub(pattern, repl, string, count=count)


ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
ENV.filters["regex_replace"] = _regex_replace  # lm-eval's one custom filter


def check_template(source: str, path, field: str) -> None:
    """A syntax error in a template is reported when the task file loads, not at row 1000."""
    try:
        ENV.parse(source)
    except jinja2.TemplateSyntaxError as e:
        raise InputError(f"bad Jinja template {source!r}: {e.message} (template line {e.lineno})",
                         path=path, field=field) from None


class RowError(ValueError):
    """A template failed for one row: carries the template's field name and source."""

    def __init__(self, field: str, template, message: str):
        super().__init__(f"{field} {template!r}: {message}")


@functools.lru_cache(maxsize=256)
def _compiled(template: str) -> jinja2.Template:
    return ENV.from_string(template)  # compiling costs ~1000x rendering: once per template, not per row


def _render(field: str, template: str, row: dict) -> str:
    try:
        return _compiled(template).render(**row)
    except jinja2.TemplateError as e:  # UndefinedError, SecurityError, TemplateRuntimeError
        raise RowError(field, template, f"{type(e).__name__}: {e}") from None
    except Exception as e:  # a filter or method raising on this row's value
        raise RowError(field, template, f"{type(e).__name__}: {e}") from None


def doc_text(spec, row: dict, has_choices: bool):
    """``doc_to_text``: a str, or an int (the gold index of a multiple-input task)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return spec
    if spec in row:
        return row[spec]
    text = _render("doc_to_text", spec, row)
    return int(text) if text.isdigit() and has_choices else text


def doc_choices(spec, row: dict) -> list:
    if isinstance(spec, list):
        return spec
    if isinstance(spec, dict):
        return list(spec.values())
    if spec in row:
        return row[spec]
    text = _render("doc_to_choice", spec, row)
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise RowError("doc_to_choice", spec, f"rendered {text!r}, which is not a Python list literal") from None
    if not isinstance(value, list):
        raise RowError("doc_to_choice", spec, f"rendered {text!r}, which is not a list")
    return value


def doc_target(spec, row: dict, has_choices: bool):
    """``doc_to_target``: an int (index into the choices), a str, or a list (several golds)."""
    if isinstance(spec, (int, list)) and not isinstance(spec, bool):
        return spec
    if spec in row:
        return row[spec]
    text = _render("doc_to_target", spec, row)
    if text.isdigit() and has_choices:
        return int(text)
    if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
        try:
            return ast.literal_eval(text)
        except (SyntaxError, ValueError):
            return text
    return text


def render_text(field: str, spec: str, row: dict) -> str:
    """``description`` (and other plain text fields): a row field's value, else the template."""
    return str(row[spec]) if spec in row else _render(field, spec, row)


def template_doc(task, row: dict) -> dict:
    """One row -> ``{"choices", "gold", "text" | "target", "multiple_input", "description"}``
    for ``requests``; raises RowError (a template failed) or ValueError (bad values)."""
    has_choices = task.doc_to_choice is not None
    text = doc_text(task.doc_to_text, row, has_choices)
    choices = doc_choices(task.doc_to_choice, row) if has_choices else None
    target = doc_target(task.doc_to_target, row, has_choices)
    doc = {"multiple_input": False, "description": render_text("description", task.description, row)
           if task.description else ""}
    if isinstance(target, list):
        raise ValueError(f"doc_to_target {task.doc_to_target!r} gave a list {target!r}: several gold answers "
                         "are not supported")
    if task.output_type == "multiple_choice":
        if choices is None:
            raise ValueError("output_type multiple_choice needs doc_to_choice")
        choices = [str(c) for c in choices]
        if isinstance(text, int) and not isinstance(text, bool):
            # Multiple input: the choices are contexts, the target is the scored continuation.
            _check_index(text, choices, "doc_to_text", task.doc_to_text)
            return doc | {"multiple_input": True, "choices": choices, "gold": text, "target": str(target)}
        gold = _gold_index(target, choices, task.doc_to_target)
        return doc | {"text": _as_text(text, task.doc_to_text), "choices": choices, "gold": gold}
    # loglikelihood / generate_until: one answer, the target (an index picks it from the choices)
    if isinstance(target, int) and not isinstance(target, bool) and choices is not None:
        _check_index(target, choices, "doc_to_target", task.doc_to_target)
        target = choices[target]
    return doc | {"text": _as_text(text, task.doc_to_text), "choices": [str(target)], "gold": 0}


def _as_text(value, spec) -> str:
    if not isinstance(value, str):
        raise ValueError(f"doc_to_text {spec!r} gave {value!r}, not text")
    return value


def _check_index(i: int, choices: list, field: str, spec) -> None:
    if not 0 <= i < len(choices):
        raise ValueError(f"{field} {spec!r} gave {i}, not an index into the {len(choices)} choices {choices!r}")


def _gold_index(target, choices: list[str], spec) -> int:
    if isinstance(target, bool) or not isinstance(target, (int, str)):
        raise ValueError(f"doc_to_target {spec!r} gave {target!r}: expected an index or one of the choices")
    if isinstance(target, int):
        _check_index(target, choices, "doc_to_target", spec)
        return target
    if target not in choices:
        raise ValueError(f"doc_to_target {spec!r} gave {target!r}, which is not one of the choices {choices!r}")
    return choices.index(target)


def template_fields(spec: dict, path: Path) -> None:
    """Syntax-check every template-valued field of a task mapping."""
    for key in ("doc_to_text", "doc_to_choice", "doc_to_target", "description"):
        if isinstance(spec.get(key), str):
            check_template(spec[key], path, key)
