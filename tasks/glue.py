"""The nine GLUE tasks (Wang et al., 2018), from the original GLUE tsv folders.

Local layout: ``<data_dir>/glue/<Folder>/{train,dev,test}.tsv`` (as download_glue_data.py
makes it; default data_dir: shared/data). Online users without the files can pass
``--data_dir hub`` to read ``nyu-mll/glue`` from the Hugging Face Hub.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from selfsup.errors import InputError
from selfsup.finetune.readers import read_tsv
from selfsup.finetune.tasks import TaskSpec, register
from selfsup.resources import shared_data_dir

NLI2 = ("entailment", "not_entailment")
BINARY = ("0", "1")

# name: (folder, case, columns, labels, metrics, {split: file})
GLUE = {
    "cola": ("CoLA", "sequence", dict(text=3, label=1, header=False), BINARY, ("mcc",), {}),
    "sst2": ("SST-2", "sequence", dict(text="sentence", label="label"), BINARY, ("accuracy",), {}),
    "mrpc": ("MRPC", "pair", dict(text="#1 String", pair="#2 String", label="Quality"), BINARY, ("f1", "accuracy"), {}),
    "stsb": ("STS-B", "pair", dict(text="sentence1", pair="sentence2", label="score"), None, ("pearson", "spearman"), {}),
    "qqp": ("QQP", "pair", dict(text="question1", pair="question2", label="is_duplicate"), BINARY, ("f1", "accuracy"), {}),
    "mnli": ("MNLI", "pair", dict(text="sentence1", pair="sentence2", label="gold_label"),
             ("contradiction", "entailment", "neutral"), ("accuracy",),
             {"validation": "dev_matched.tsv", "test": "test_matched.tsv"}),
    "mnli_mismatched": ("MNLI", "pair", dict(text="sentence1", pair="sentence2", label="gold_label"),
                        ("contradiction", "entailment", "neutral"), ("accuracy",),
                        {"validation": "dev_mismatched.tsv", "test": "test_mismatched.tsv"}),
    "qnli": ("QNLI", "pair", dict(text="question", pair="sentence", label="label"), NLI2, ("accuracy",), {}),
    "rte": ("RTE", "pair", dict(text="sentence1", pair="sentence2", label="label"), NLI2, ("accuracy",), {}),
    "wnli": ("WNLI", "pair", dict(text="sentence1", pair="sentence2", label="label"), BINARY, ("accuracy",), {}),
}
# File names the GLUE server expects in a submission zip.
SUBMISSION = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP", "mnli": "MNLI-m",
              "mnli_mismatched": "MNLI-mm", "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}
HUB_NAMES = {"mnli_mismatched": "mnli"}
HUB_SPLITS = {("mnli", "validation"): "validation_matched", ("mnli_mismatched", "validation"): "validation_mismatched",
              ("mnli", "test"): "test_matched", ("mnli_mismatched", "test"): "test_mismatched"}


def _path(name: str, data_dir: Path | str | None, split: str) -> Path:
    folder, _, _, _, _, files = GLUE[name]
    root = Path(data_dir) if data_dir is not None else shared_data_dir()
    if root is None:
        raise InputError(f"glue/{name}: no data_dir and no shared/data folder; pass --data_dir (or 'hub' online)")
    file = files.get(split, {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}[split])
    path = root / "glue" / folder / file
    if not path.exists():
        raise InputError(f"glue/{name} {split} split not found (MNLI, QQP and the QNLI train split are not in "
                         "shared/data; download GLUE or pass --data_dir hub when online)", path=path)
    return path


def _read(name: str, data_dir: Path | str | None, split: str) -> list[dict]:
    _, _, columns, labels, _, _ = GLUE[name]
    if str(data_dir) == "hub":
        return _read_hub(name, split, labels)
    return read_tsv(_path(name, data_dir, split), labels=labels, require_label=split != "test", **columns)


def _read_text(name: str, data_dir: Path | str | None, split: str) -> list[list[str]]:
    """[text] or [text, text_pair] per example; the label column is never parsed."""
    _, _, columns, labels, _, _ = GLUE[name]
    if str(data_dir) == "hub":
        examples = _read_hub(name, split, labels)
    else:
        text_columns = {k: v for k, v in columns.items() if k != "label"}
        examples = read_tsv(_path(name, data_dir, split), **text_columns)
    return [[e["text"]] + ([e["text_pair"]] if e["text_pair"] else []) for e in examples]


def _read_hub(name: str, split: str, labels) -> list[dict]:  # pragma: no cover - needs the Hub
    from datasets import load_dataset

    ds = load_dataset("nyu-mll/glue", HUB_NAMES.get(name, name), split=HUB_SPLITS.get((name, split), split))
    text_key, pair_key = {"cola": ("sentence", None), "sst2": ("sentence", None), "qnli": ("question", "sentence"),
                          "qqp": ("question1", "question2"), "mnli": ("premise", "hypothesis"),
                          "mnli_mismatched": ("premise", "hypothesis")}.get(name, ("sentence1", "sentence2"))
    return [{"idx": i, "text": r[text_key], "text_pair": r[pair_key] if pair_key else None,
             "label": None if r["label"] == -1 else r["label"]} for i, r in enumerate(ds)]


for _name, (_folder, _case, _cols, _labels, _metrics, _files) in GLUE.items():
    register(TaskSpec(name=f"glue/{_name}", case=_case, metrics=_metrics, labels=_labels,
                      read=partial(_read, _name), splits=("train", "validation", "test"), version="glue-1",
                      options={"submission": SUBMISSION[_name]}, read_text=partial(_read_text, _name)))
