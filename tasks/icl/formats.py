"""Row -> document hooks for the ICL data files (prompt formats as in lm-evaluation-harness).

Each hook gets one raw row and returns ``{"id", "choices", "gold", **fields for the
templates}``. A missing key raises KeyError and a bad value ValueError; the task loader
turns both into an InputError naming the file and line.
"""
from __future__ import annotations

from selfsup.icl.tasks import icl_formats


def _text(row: dict, key: str) -> str:
    value = row[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {key!r}: empty or not text ({value!r})")
    return value.strip()


def _label(row: dict, key: str, mapping: dict) -> int:
    value = row[key]
    if value not in mapping:
        raise ValueError(f"field {key!r}: unknown label {value!r} (expected one of {sorted(map(str, mapping))})")
    return mapping[value]


@icl_formats.register("sst2")
def sst2(row: dict) -> dict:
    return {"sentence": _text(row, "sentence"), "choices": ["negative", "positive"],
            "gold": _label(row, "label", {"0": 0, "1": 1})}


@icl_formats.register("rte")
def rte(row: dict) -> dict:
    # GLUE RTE: entailment -> "True" (choice 0), as in lm-eval's glue/rte.
    return {"id": f"rte-{row['index']}", "sentence1": _text(row, "sentence1"), "sentence2": _text(row, "sentence2"),
            "choices": ["True", "False"], "gold": _label(row, "label", {"entailment": 0, "not_entailment": 1})}


@icl_formats.register("boolq")
def boolq(row: dict) -> dict:
    return {"id": f"boolq-{row['idx']}", "passage": _text(row, "passage"), "question": _text(row, "question"),
            "choices": ["no", "yes"], "gold": _label(row, "label", {"false": 0, "true": 1, False: 0, True: 1})}


def _lower_first(s: str) -> str:
    return s[0].lower() + s[1:]


@icl_formats.register("copa")
def copa(row: dict) -> dict:
    connector = {"cause": "because", "effect": "therefore"}
    question = row["question"]
    if question not in connector:
        raise ValueError(f"field 'question': expected 'cause' or 'effect', got {question!r}")
    # lm-eval: drop the premise's final period, join with the connector, lower-case the choice.
    return {"id": f"copa-{row['idx']}", "premise": _text(row, "premise")[:-1], "connector": connector[question],
            "choices": [_lower_first(_text(row, "choice1")), _lower_first(_text(row, "choice2"))],
            "gold": _label(row, "label", {0: 0, 1: 1})}


@icl_formats.register("piqa")
def piqa(row: dict) -> dict:
    return {"goal": _text(row, "goal"), "choices": [_text(row, "sol1"), _text(row, "sol2")],
            "gold": _label(row, "label", {"0": 0, "1": 1})}


@icl_formats.register("arc")
def arc(row: dict) -> dict:
    question = row["question"]
    if not isinstance(question, dict):
        raise ValueError("field 'question': expected an object with 'stem' and 'choices'")
    choices = question["choices"]
    labels = [c["label"] for c in choices]
    if row["answerKey"] not in labels:
        raise ValueError(f"field 'answerKey': {row['answerKey']!r} is not one of the choice labels {labels}")
    return {"id": row["id"], "question": _text(question, "stem"), "choices": [_text(c, "text") for c in choices],
            "gold": labels.index(row["answerKey"])}


@icl_formats.register("winogrande")
def winogrande(row: dict) -> dict:
    # Partial scoring (lm-eval): the context varies with the option, the continuation after
    # the blank is fixed, so only the words after the blank are scored.
    sentence = _text(row, "sentence")
    if sentence.count("_") != 1:
        raise ValueError(f"field 'sentence': expected exactly one '_' blank, found {sentence.count('_')}")
    blank = sentence.index("_")
    return {"id": row["qID"], "prefix": sentence[:blank], "suffix": sentence[blank + 1:].strip(),
            "choices": [_text(row, "option1"), _text(row, "option2")],
            "gold": _label(row, "label", {"1": 0, "2": 1})}


@icl_formats.register("lambada")
def lambada(row: dict) -> dict:
    # One "choice": the target word; acc = the model's greedy continuation is exactly it.
    label = _text(row, "label")
    if " " in label:
        raise ValueError(f"field 'label': LAMBADA targets are single words, got {label!r}")
    return {"context": _text(row, "prompt"), "choices": [label], "gold": 0}
