"""Tasks without Python: a task YAML maps raw rows with sandboxed Jinja2 templates, from local
files of any supported type (with a labels side file) or a datasets source, and bad input
names the file, the row and the template.

The reference for what the templates produce is lm-evaluation-harness itself: its
``build_all_requests`` on the equivalent lm-eval task file gives the (context, continuation)
pairs, without a model."""
from __future__ import annotations

import csv
import json
import logging

import pytest

from selfsup.errors import InputError
from selfsup.icl.fewshot import sample_demonstrations
from selfsup.icl.requests import build_pairs
from selfsup.icl.tasks import get_icl_task, get_icl_tasks, load_task_file

# The example: rows a built-in format does not know, labels in a side file (1-based).
ROWS = [
    {"context": "Tracy didn't go home that evening.", "question": "What does Tracy need to do before this?",
     "answerA": "make a new plan", "answerB": "Go home and see Riley", "answerC": "Find somewhere to go"},
    {"context": "Sydney walked past a homeless woman.", "question": "How would you describe Sydney?",
     "answerA": "sympathetic", "answerB": "like a person who was unable to help", "answerC": "incredulous"},
    {"context": "Sasha protected the patients' rights.", "question": "What will patients want to do next?",
     "answerA": "write a letter", "answerB": "get back", "answerC": "celebrate"},
]
LABELS = ["3", "1", "1"]

NATIVE = """\
name: siqa_user
version: 1
data: {data}
labels: dev-labels.lst
description: "Commonsense questions.\\n\\n"
doc_to_text: "{{{{context}}}} Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{[answerA, answerB, answerC]}}}}"
doc_to_target: "{{{{label|int - 1}}}}"
fewshot_delimiter: "\\n\\n"
fewshot_sampler: first_n
"""

LM_EVAL = """\
task: siqa_reference
dataset_path: json
dataset_kwargs:
  data_files:
    test: {folder}/labelled.jsonl
test_split: test
fewshot_split: test  # named: lm-eval then leaves the evaluated example out of its demonstrations, as we always do
output_type: multiple_choice
description: "Commonsense questions.\\n\\n"
doc_to_text: "{{{{context}}}} Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{[answerA, answerB, answerC]}}}}"
doc_to_target: "{{{{label|int - 1}}}}"
fewshot_config:
  sampler: first_n
"""


def write_data(folder, suffix: str):
    path = folder / f"dev{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(ROWS, indent=1), encoding="utf-8")
    elif suffix in (".csv", ".tsv"):
        with open(path, "w", encoding="utf-8", newline="") as f:
            # GLUE-style tsv: no quoting (the text has no tabs); csv: RFC 4180 quoting
            writer = csv.DictWriter(f, fieldnames=list(ROWS[0]), delimiter="\t" if suffix == ".tsv" else ",",
                                    quoting=csv.QUOTE_NONE if suffix == ".tsv" else csv.QUOTE_MINIMAL,
                                    lineterminator="\n")
            writer.writeheader()
            writer.writerows(ROWS)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq
        pq.write_table(pa.Table.from_pylist(ROWS), path)
    (folder / "dev-labels.lst").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    return path


def native_task(folder, suffix=".jsonl", **changes):
    data = write_data(folder, suffix)
    text = NATIVE.format(data=data.name)
    for key, value in changes.items():
        text = "\n".join(line for line in text.splitlines() if not line.startswith(key + ":")) + f"\n{key}: {value}\n"
    path = folder / "siqa_user.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def lm_eval_pairs(folder, shots: int) -> list[list[tuple[str, str]]]:
    """lm-eval's own requests for the same rows (labels joined in), per document."""
    pytest.importorskip("lm_eval", reason="pip install 'selfsup[test]' (lm-eval is the reference)")
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    rows = [r | {"label": label} for r, label in zip(ROWS, LABELS)]
    (folder / "labelled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ref = folder / "reference"
    ref.mkdir(exist_ok=True)
    (ref / "siqa_reference.yaml").write_text(LM_EVAL.format(folder=folder), encoding="utf-8")
    manager = TaskManager(include_path=str(ref), include_defaults=False)
    task = manager.load(["siqa_reference"])["tasks"]["siqa_reference"]
    task.set_config("num_fewshot", shots)
    task.set_fewshot_seed(0)
    task.build_all_requests(rank=0, world_size=1)
    docs: dict[int, list] = {}
    for instance in task.instances:
        docs.setdefault(instance.doc_id, []).append(instance.args)
    return [docs[i] for i in sorted(docs)]


def our_pairs(task, shots: int) -> list[list[tuple[str, str]]]:
    docs = task.load_docs()
    return [build_pairs(task, d, sample_demonstrations(docs, d, shots, 0, task.name, task.fewshot_sampler))
            for d in docs]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".tsv", ".parquet"])
def test_a_new_multiple_choice_format_needs_only_yaml_and_reads_every_file_type(tmp_path, suffix):
    task = get_icl_task(str(native_task(tmp_path, suffix)))
    assert task.templated and task.dialect == "selfsup"
    docs = task.load_docs()
    assert [d["gold"] for d in docs] == [2, 0, 0]  # "3", "1", "1" from the side file, 1-based
    assert docs[0]["choices"] == ["make a new plan", "Go home and see Riley", "Find somewhere to go"]
    assert our_pairs(task, 0) == lm_eval_pairs(tmp_path, 0)


def test_demonstrations_and_description_as_lm_eval_builds_them(tmp_path):
    # first_n from the evaluated split: the first rows that are not the example itself
    task = get_icl_task(str(native_task(tmp_path)))
    ours, reference = our_pairs(task, 1), lm_eval_pairs(tmp_path, 1)
    assert ours == reference
    assert ours[1][0][0].startswith("Commonsense questions.\n\nTracy didn't go home that evening. Question: What "
                                    "does Tracy need to do before this?\nAnswer: Find somewhere to go\n\nSydney")


def test_a_datasets_source_reads_as_the_local_file(tmp_path):
    native_task(tmp_path, ".csv")
    rows = [r | {"label": label} for r, label in zip(ROWS, LABELS)]
    with open(tmp_path / "labelled.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    path = tmp_path / "hub_style.yaml"
    path.write_text(NATIVE.format(data="x").replace("data: x\nlabels: dev-labels.lst\n", "dataset_path: csv\n"
                    "dataset_kwargs: {data_files: {validation: labelled.csv}}\nvalidation_split: validation\n"),
                    encoding="utf-8")
    from_datasets = get_icl_task(str(path))
    assert our_pairs(from_datasets, 1) == our_pairs(get_icl_task(str(tmp_path / "siqa_user.yaml")), 1)
    # datasets reads the csv labels as integers: the template's |int takes both
    assert [d["gold"] for d in from_datasets.load_docs()] == [2, 0, 0]


@pytest.mark.parametrize("change, message", [
    ({"doc_to_text": '"{{context}} {{quest}}"'}, r"dev.jsonl:1: doc_to_text '\{\{context\}\} \{\{quest\}\}': "
                                                  r"UndefinedError: 'quest' is undefined"),
    ({"doc_to_target": '"{{label}}"'}, r"dev.jsonl:1: doc_to_target '\{\{label\}\}' gave 3, not an index into the 3"),
    ({"doc_to_target": '"{{answerD}}"'}, r"dev.jsonl:1: doc_to_target '\{\{answerD\}\}': UndefinedError"),
    ({"doc_to_target": "answerA", "doc_to_choice": '"{{[answerB, answerC]}}"'},
     r"dev.jsonl:1: doc_to_target 'answerA' gave 'make a new plan', which is not one of the choices"),
    ({"doc_to_choice": '"{{answerA}}"'}, r"dev.jsonl:1: doc_to_choice '\{\{answerA\}\}': rendered 'make a new plan', "
                                         r"which is not a Python list literal"),
    # the sandbox: no reaching Python internals, no mutating the row
    ({"doc_to_text": '"{{ context.__class__.__mro__[1].__subclasses__() }}"'}, r"dev.jsonl:1: doc_to_text .*Error"),
    ({"doc_to_text": '"{{ [answerA].append(1) }}"'}, r"dev.jsonl:1: doc_to_text .*SecurityError"),
])
def test_a_template_that_fails_for_a_row_names_file_row_and_template(tmp_path, change, message):
    task = get_icl_task(str(native_task(tmp_path, **change)))
    with pytest.raises(InputError, match=message):
        task.load_docs()


@pytest.mark.parametrize("change, message", [
    # Sydney's context has 36 characters, Tracy's 34: the template raises for the first row only
    ('doc_to_text: "{{context[35]}}"', r"dev.jsonl:test row 0: doc_to_text '\{\{context\[35\]\}\}': UndefinedError"),
    ('doc_to_target: "{{label}}"', r"dev.jsonl:test row 1: doc_to_target '\{\{label\}\}' gave 5, not an index into "
                                   r"the 2 choices"),
    ('doc_to_target: answerC', r"dev.jsonl:test row 0: doc_to_target 'answerC' gave 'Find somewhere to go', which "
                               r"is not one of the choices"),
])
def test_a_bad_row_of_an_lm_eval_task_names_the_data_file_the_row_the_template_and_the_task_file(tmp_path, change,
                                                                                                  message):
    rows = [ROWS[0] | {"label": 1}, ROWS[1] | {"label": 5}]
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    key = change.split(":")[0]
    path = tmp_path / "t.yaml"
    path.write_text("".join(change + "\n" if line.startswith(key + ":") else line + "\n"
                            for line in LM_EVAL_OK.splitlines()), encoding="utf-8")
    with pytest.raises(InputError, match=message) as err:
        get_icl_task(str(path)).load_docs()
    assert str(err.value).endswith(f"(task file {path})")


@pytest.mark.parametrize("change, message", [
    ({"doc_to_text": '"{{ context "'}, r"field 'doc_to_text': bad Jinja template"),
    ({"prompt": '"x"'}, r"field 'prompt': prompt is for format tasks"),
    ({"doc_to_choice": "!function utils.choices"}, r"field 'doc_to_choice': !function \(Python code\)"),
    ({"fewshot_sampler": "balanced"}, r"field 'fewshot_sampler': fewshot_sampler must be random or first_n"),
    ({"dataset_path": "json"}, r"field 'dataset_path': data and dataset_path are alternatives"),
])
def test_bad_template_task_files_fail_at_load_naming_the_field(tmp_path, change, message):
    path = native_task(tmp_path, **change)
    with pytest.raises(InputError, match=message) as err:
        load_task_file(path)
    assert str(path) in str(err.value)


LM_EVAL_OK = """\
task: t
dataset_path: json
dataset_kwargs: {data_files: {test: dev.jsonl}}
test_split: test
output_type: multiple_choice
doc_to_text: "{{context}}"
doc_to_choice: "{{[answerA, answerB]}}"
doc_to_target: 0
"""


@pytest.mark.parametrize("extra, message", [
    ("process_docs: !function utils.process_docs\n", r"field 'process_docs': process_docs is a !function"),
    ("filter_list:\n  - name: x\n    filter: [{function: take_first}]\n", r"field 'filter_list': lm-evaluation-"
                                                                        r"harness key 'filter_list' is not supported"),
    ("metric_list:\n  - metric: bleu\n", r"field 'metric_list': metric 'bleu' is not supported for output_type "
                                        r"'multiple_choice'"),
    ("metric_list:\n  - metric: !function utils.my_metric\n", r"field 'metric_list': metric_list.0.metric is a "
                                                              r"!function"),
    ("gen_prefix: 'Answer:'\n", r"field 'gen_prefix': lm-evaluation-harness key 'gen_prefix' is not supported"),
    ("generation_kwargs: {until: ['\\n']}\n", r"field 'generation_kwargs': generation_kwargs apply to output_type "
                                             r"generate_until only"),
    ("output_type: loglikelihood_rolling\n", r"field 'output_type': output_type 'loglikelihood_rolling' is not"),
])
def test_lm_eval_keys_outside_the_subset_are_errors_naming_key_and_file(tmp_path, extra, message):
    path = tmp_path / "t.yaml"
    base = LM_EVAL_OK if not extra.startswith("output_type") else \
        LM_EVAL_OK.replace("output_type: multiple_choice\n", "")
    path.write_text(base + extra, encoding="utf-8")
    with pytest.raises(InputError, match=message) as err:
        load_task_file(path)
    assert str(path) in str(err.value)


def test_includes_groups_folders_and_names_resolve_with_clear_errors(tmp_path):
    (tmp_path / "dev.jsonl").write_text(json.dumps(ROWS[0]) + "\n", encoding="utf-8")
    (tmp_path / "_base.yaml").write_text(LM_EVAL_OK.replace("task: t\n", ""), encoding="utf-8")
    (tmp_path / "a.yaml").write_text("include: _base.yaml\ntask: a\ntarget_delimiter: ':'\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("include: _base.yaml\ntask: b\n", encoding="utf-8")
    (tmp_path / "g.yaml").write_text("group: g\ntask: [a, b, copa]\n", encoding="utf-8")
    a, b, copa = get_icl_tasks("g", include_path=str(tmp_path))
    assert (a.name, a.target_delimiter, b.target_delimiter, copa.format) == ("a", ":", " ", "copa")
    assert a.dialect == "lm-eval" and a.dataset_kwargs == {"data_files": {"test": "dev.jsonl"}}
    assert [d["choices"] for d in a.load_docs()] == [[ROWS[0]["answerA"], ROWS[0]["answerB"]]]  # beside the YAML
    assert [t.name for t in get_icl_tasks(f"{tmp_path},copa")] == ["a", "b", "copa"]
    with pytest.raises(KeyError, match="did you mean 'copa'.*include_path: a, b, g"):
        get_icl_tasks("cop", include_path=str(tmp_path))
    (tmp_path / "loop.yaml").write_text("include: loop.yaml\ntask: loop\n", encoding="utf-8")
    with pytest.raises(InputError, match="include cycle"):
        load_task_file(tmp_path / "loop.yaml")
    (tmp_path / "g2.yaml").write_text("group: g2\ntask: [{task: a, num_fewshot: 2}]\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"g2.yaml: field 'task': a group's task: must be a list of task or group"):
        get_icl_tasks("g2", include_path=str(tmp_path))


@pytest.mark.parametrize("argv, multiturn", [
    ([], False), (["--apply_chat_template"], True), (["--apply_chat_template", "--fewshot_as_multiturn"], True),
    (["--apply_chat_template", "--fewshot_as_multiturn", "false"], False), (["--fewshot_as_multiturn"], None),
])
def test_chat_flags_follow_lm_eval_multiturn_by_default_under_a_chat_template_and_only_there(argv, multiturn):
    from selfsup.cli import parse_config
    from selfsup.icl.config import ICLArguments

    argv = ["--model", "m", "--tasks", "t"] + argv
    if multiturn is None:
        with pytest.raises(InputError, match="--fewshot_as_multiturn needs --apply_chat_template"):
            parse_config((ICLArguments,), argv)
        return
    (args,) = parse_config((ICLArguments,), argv)
    assert args.fewshot_as_multiturn is multiturn and args.num_fewshot is None
