"""The nine GLUE tasks (Wang et al., 2018), from the original GLUE tsv folders.

Local layout: ``<data_dir>/glue/<Folder>/{train,dev,test}.tsv`` (as download_glue_data.py
makes it; default data_dir: shared/data). Online users without the files can pass
``--data_dir hub`` to read ``nyu-mll/glue`` from the Hugging Face Hub.

Test files have their own layout: a header led by ``index`` (``id`` for QQP), the text
columns, no label; CoLA's test file has a header (``index<TAB>sentence``) although its
train and dev files have none. Submissions keep the file's own index.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from selfsup.errors import InputError, SplitNotFound
from selfsup.finetune.readers import read_tsv
from selfsup.finetune.tasks import FinetuneTask, register
from selfsup.resources import shared_data_dir

NLI2 = ("entailment", "not_entailment")
NLI3 = ("contradiction", "entailment", "neutral")
BINARY = ("0", "1")
FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}


@dataclass(frozen=True)
class GlueTask:
    folder: str
    case: str  # "sequence" or "pair"
    text: str | int
    label: str | int
    labels: tuple[str, ...] | None  # None: regression
    metrics: tuple[str, ...]
    submission: str  # the file name the GLUE server expects in a submission zip
    pair: str | None = None
    header: bool = True  # of the train and dev files; test files always have one
    test_text: str | None = None  # the test file's text column, where it differs from train's
    test_index: str = "index"
    files: dict[str, str] = field(default_factory=dict)  # split -> file, where not FILES'
    # The Hub's label names (ClassLabel order is read from the dataset) -> ours, where they differ.
    hub_labels: dict[str, str] = field(default_factory=dict)
    hub_config: str | None = None  # default: the task's name
    hub_columns: tuple[str, str | None] = ("sentence1", "sentence2")
    hub_splits: dict[str, str] = field(default_factory=dict)


def _binary(negative: str, positive: str) -> dict[str, str]:
    return {negative: "0", positive: "1"}


GLUE = {
    "cola": GlueTask(folder="CoLA", case="sequence", text=3, label=1, header=False, test_text="sentence",
                     labels=BINARY, metrics=("mcc",), submission="CoLA",
                     hub_labels=_binary("unacceptable", "acceptable"), hub_columns=("sentence", None)),
    "sst2": GlueTask(folder="SST-2", case="sequence", text="sentence", label="label", labels=BINARY,
                     metrics=("accuracy",), submission="SST-2", hub_labels=_binary("negative", "positive"),
                     hub_columns=("sentence", None)),
    "mrpc": GlueTask(folder="MRPC", case="pair", text="#1 String", pair="#2 String", label="Quality",
                     labels=BINARY, metrics=("f1", "accuracy"), submission="MRPC",
                     hub_labels=_binary("not_equivalent", "equivalent")),
    "stsb": GlueTask(folder="STS-B", case="pair", text="sentence1", pair="sentence2", label="score", labels=None,
                     metrics=("pearson", "spearman"), submission="STS-B"),
    "qqp": GlueTask(folder="QQP", case="pair", text="question1", pair="question2", label="is_duplicate",
                    labels=BINARY, metrics=("f1", "accuracy"), submission="QQP", test_index="id",
                    hub_labels=_binary("not_duplicate", "duplicate"), hub_columns=("question1", "question2")),
    "mnli": GlueTask(folder="MNLI", case="pair", text="sentence1", pair="sentence2", label="gold_label",
                     labels=NLI3, metrics=("accuracy",), submission="MNLI-m",
                     files={"validation": "dev_matched.tsv", "test": "test_matched.tsv"},
                     hub_columns=("premise", "hypothesis"),
                     hub_splits={"validation": "validation_matched", "test": "test_matched"}),
    "mnli_mismatched": GlueTask(folder="MNLI", case="pair", text="sentence1", pair="sentence2", label="gold_label",
                                labels=NLI3, metrics=("accuracy",), submission="MNLI-mm",
                                files={"validation": "dev_mismatched.tsv", "test": "test_mismatched.tsv"},
                                hub_config="mnli", hub_columns=("premise", "hypothesis"),
                                hub_splits={"validation": "validation_mismatched", "test": "test_mismatched"}),
    "qnli": GlueTask(folder="QNLI", case="pair", text="question", pair="sentence", label="label", labels=NLI2,
                     metrics=("accuracy",), submission="QNLI", hub_columns=("question", "sentence")),
    "rte": GlueTask(folder="RTE", case="pair", text="sentence1", pair="sentence2", label="label", labels=NLI2,
                    metrics=("accuracy",), submission="RTE"),
    # WNLI's files say 1 for entailment; the Hub's ClassLabel is (not_entailment, entailment).
    "wnli": GlueTask(folder="WNLI", case="pair", text="sentence1", pair="sentence2", label="label", labels=BINARY,
                     metrics=("accuracy",), submission="WNLI", hub_labels=_binary("not_entailment", "entailment")),
}


def _path(name: str, data_dir: Path | str | None, split: str) -> Path:
    task = GLUE[name]
    root = Path(data_dir) if data_dir is not None else shared_data_dir()
    if root is None:
        raise InputError(f"glue/{name}: no data_dir and no shared/data folder; pass --data_dir (or 'hub' online)")
    if not (root / "glue").is_dir():  # a wrong --data_dir, not a missing split
        raise InputError("no glue/ folder here; --data_dir must be the folder that holds glue/", path=root)
    path = root / "glue" / task.folder / task.files.get(split, FILES[split])
    if not path.exists():
        raise SplitNotFound(f"glue/{name} {split} split not found (MNLI, QQP and the QNLI train split are not in "
                            "shared/data; download GLUE or pass --data_dir hub when online)", path=path)
    return path


def _columns(task: GlueTask, split: str, with_label: bool = True) -> dict:
    if split == "test":
        return dict(text=task.test_text or task.text, pair=task.pair, index=task.test_index, header=True)
    return dict(text=task.text, pair=task.pair, header=task.header,
                **(dict(label=task.label, labels=task.labels) if with_label else {}))


def _read(name: str, data_dir: Path | str | None, split: str) -> list[dict]:
    if str(data_dir) == "hub":
        return _read_hub(name, split)
    return read_tsv(_path(name, data_dir, split), **_columns(GLUE[name], split))


def _read_text(name: str, data_dir: Path | str | None, split: str) -> list[list[str]]:
    """[text] or [text, text_pair] per example; the label column is never parsed."""
    if str(data_dir) == "hub":
        examples = _read_hub(name, split)
    else:
        examples = read_tsv(_path(name, data_dir, split), **_columns(GLUE[name], split, with_label=False))
    return [[e["text"]] + ([e["text_pair"]] if e["text_pair"] else []) for e in examples]


def _read_hub(name: str, split: str) -> list[dict]:
    from datasets import load_dataset

    task = GLUE[name]
    ds = load_dataset("nyu-mll/glue", task.hub_config or name, split=task.hub_splits.get(split, split))
    return hub_examples(name, ds)


def hub_examples(name: str, ds) -> list[dict]:
    """Examples of a ``nyu-mll/glue`` split, labels as indices into the task's own label names:
    the Hub numbers MNLI entailment=0, neutral=1, contradiction=2, our labels are sorted, so
    each id goes through the dataset's own ClassLabel names."""
    task = GLUE[name]
    text_key, pair_key = task.hub_columns
    to_ours = None
    if task.labels is not None:
        hub_names = ds.features["label"].names
        unknown = [n for n in hub_names if task.hub_labels.get(n, n) not in task.labels]
        if unknown:
            raise InputError(f"glue/{name}: the Hub's labels {unknown} have no counterpart in {task.labels}",
                             path="nyu-mll/glue", field="label")
        to_ours = [task.labels.index(task.hub_labels.get(n, n)) for n in hub_names]
    examples = []
    for i, r in enumerate(ds):
        label = None if r["label"] == -1 else r["label"]  # -1: a test split's hidden label
        examples.append({"idx": r.get("idx", i), "text": r[text_key], "text_pair": r[pair_key] if pair_key else None,
                         "label": label if label is None or to_ours is None else to_ours[label]})
    return examples


for _name, _task in GLUE.items():
    register(FinetuneTask(name=f"glue/{_name}", case=_task.case, metrics=_task.metrics, labels=_task.labels,
                      read=partial(_read, _name), splits=("train", "validation", "test"), version="glue-1",
                      options={"submission": _task.submission}, read_text=partial(_read_text, _name)))
