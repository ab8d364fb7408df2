"""ICL task definitions: lm-eval prompt formats, few-shot sampling, and clear errors."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from selfsup.errors import InputError
from selfsup.icl.fewshot import sample_demonstrations
from selfsup.icl.generation import cut
from selfsup.icl.metrics import bootstrap_stderr, icl_metrics
from selfsup.icl.requests import build_context, build_pairs, gold_answer
from selfsup.icl.tasks import get_icl_task, icl_task_names, load_task_file

BUILTIN = ["arc_challenge", "arc_easy", "boolq", "copa", "lambada", "lambada_gen", "piqa", "rte", "sst2", "winogrande"]


def test_every_issue_task_is_registered():
    assert icl_task_names() == BUILTIN
    with pytest.raises(KeyError, match="did you mean 'copa'"):
        get_icl_task("copa_")


def test_the_closing_config_runs_every_builtin_task_at_0_and_4_shots():
    from pathlib import Path

    from selfsup.cli import parse_config
    from selfsup.icl.config import ICLArguments

    config = Path(__file__).parent.parent / "configs" / "icl" / "smollm2-closing.yaml"
    (args,) = parse_config((ICLArguments,), ["--config", str(config), "--model", "m.gguf"])
    assert sorted(args.tasks.split(",")) == BUILTIN and args.num_fewshot == "0,4"


def first_pairs(name, k=0, seed=0):
    task = get_icl_task(name)
    docs = task.load_docs()
    pool = task.load_docs(fewshot=True) if task.fewshot_data else docs
    return build_pairs(task, docs[0], sample_demonstrations(pool, docs[0], k, seed, name))


# First row of each file, written out by hand in lm-evaluation-harness's format.
ZERO_SHOT = {
    "copa": [("The man turned on the faucet therefore", " the toilet filled with water."),
             ("The man turned on the faucet therefore", " water flowed from the spout.")],
    "arc_easy": [("Question: Which statement best explains why photosynthesis is the foundation of most food webs?"
                  "\nAnswer:", " Sunlight is the source of energy for nearly all ecosystems.")],
    "sst2": [("it 's a charming and often affecting journey .\nQuestion: Is this sentence positive or negative?"
              "\nAnswer:", " negative"), (None, " positive")],
    "rte": [("Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, according to "
             "the Christopher Reeve Foundation.\nQuestion: Christopher Reeve had an accident. True or False?\nAnswer:",
             " True"), (None, " False")],
    "winogrande": [("Sarah was a much better surgeon than Maria so Sarah", " always got the easier cases."),
                   ("Sarah was a much better surgeon than Maria so Maria", " always got the easier cases.")],
    "lambada": [(None, " signs")],
}


@pytest.mark.parametrize("name", sorted(ZERO_SHOT))
def test_zero_shot_prompts_match_lm_eval(shared_data, name):
    pairs = first_pairs(name)
    for (context, continuation), (want_ctx, want_cont) in zip(pairs, ZERO_SHOT[name]):
        if want_ctx is not None:
            assert context == want_ctx
        assert continuation == want_cont


def test_piqa_boolq_and_lambada_templates(shared_data):
    (ctx, cont), _ = first_pairs("piqa")
    assert ctx == "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:"
    assert cont.startswith(" Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper")
    (ctx, cont), _ = first_pairs("boolq")
    assert ctx.startswith("Ethanol fuel -- All biomass") and ctx.endswith(
        "\nQuestion: does ethanol take more energy make that produces?\nAnswer:") and cont == " no"
    [(ctx, cont)] = first_pairs("lambada")
    assert ctx.endswith("I don't care about") and cont == " signs"


@pytest.mark.parametrize("generation, word", [
    (' signs."\n\n', "signs"), (" Harlin's face", "Harlin"), (" well-known,", "well-known"), (" Shane", "Shane"),
    ("\nShane", ""),  # a new line first is no word
])
def test_lambada_gen_continues_the_lambada_passage_and_keeps_the_first_word(shared_data, generation, word):
    task = get_icl_task("lambada_gen")
    doc = task.load_docs()[0]
    [(context, continuation)] = first_pairs("lambada")
    assert task.output_type == "generate_until" and task.data == get_icl_task("lambada").data
    assert build_context(task, doc, []) == context and " " + gold_answer(task, doc) == continuation == " signs"
    assert cut(generation, task.until, task.target_delimiter)[0] == word


def test_demonstrations_are_gold_answers_joined_by_the_separator(shared_data):
    task = get_icl_task("copa")
    train = {d["id"]: d for d in task.load_docs(fewshot=True)}
    doc = task.load_docs()[0]
    demos = sample_demonstrations(list(train.values()), doc, 2, 7, "copa")
    (context, _), _ = build_pairs(task, doc, demos)
    blocks = context.split("\n\n")
    assert len(blocks) == 3 and blocks[2] == "The man turned on the faucet therefore"
    for block, demo in zip(blocks, demos):
        assert block == f"{demo['premise']} {demo['connector']} {demo['choices'][demo['gold']]}"


def test_sampling_is_deterministic_per_example_and_never_includes_it(shared_data):
    task = get_icl_task("boolq")  # no separate train split: demonstrations come from val itself
    docs = task.load_docs()[:200]
    first = [[d["id"] for d in sample_demonstrations(docs, doc, 4, 1, "boolq")] for doc in docs]
    # Evaluation order does not matter: each example has its own seeded RNG.
    again = [[d["id"] for d in sample_demonstrations(docs, doc, 4, 1, "boolq")] for doc in reversed(docs)][::-1]
    assert first == again
    assert all(doc["id"] not in ids and len(set(ids)) == 4 for doc, ids in zip(docs, first))
    other_seed = [[d["id"] for d in sample_demonstrations(docs, doc, 4, 2, "boolq")] for doc in docs]
    assert sum(a != b for a, b in zip(first, other_seed)) > 190


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def toy_task(tmp_path):
    rows = [{"q": "one plus one", "a": ["two", "three"], "y": 0},
            {"q": "two plus one", "a": ["three", "four"], "y": 0},
            {"q": "one plus one", "a": ["two", "three"], "y": 0}]  # a duplicate of row 1 under another id
    write(tmp_path / "toy.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    write(tmp_path / "toy_format.py", "")
    from selfsup.icl.tasks import icl_formats
    if "toy" not in icl_formats:
        icl_formats.register("toy", lambda row: {"q": row["q"], "choices": row["a"], "gold": row["y"]})
    return write(tmp_path / "toy.yaml", f"name: toy\nversion: 2\nformat: toy\ndata: {tmp_path / 'toy.jsonl'}\n"
                 'prompt: "Q: {q}\\nA:"\nfewshot_separator: "\\n###\\n"\n')


def test_a_user_task_file_is_one_small_definition(toy_task):
    task = get_icl_task(str(toy_task))
    docs = task.load_docs()
    assert [d["id"] for d in docs] == ["toy.jsonl:1", "toy.jsonl:2", "toy.jsonl:3"]
    demos = sample_demonstrations(docs, docs[0], 1, 0, "toy")
    assert [d["id"] for d in demos] == ["toy.jsonl:2"]  # row 3 has the same text as row 1: excluded
    assert build_pairs(task, docs[0], demos) == [("Q: two plus one\nA: three\n###\nQ: one plus one\nA:", " two"),
                                                 ("Q: two plus one\nA: three\n###\nQ: one plus one\nA:", " three")]
    with pytest.raises(InputError, match="2 demonstrations requested but only 1"):
        sample_demonstrations(docs, docs[0], 2, 0, "toy")


@pytest.mark.parametrize("change, message", [
    # without a format hook the task is templated: its prompt is doc_to_text
    ("version: 2\n", "field 'prompt': prompt is for format tasks; with templates the prompt is doc_to_text"),
    ("promt: x\n", "unknown fields \\['promt'\\]"),
    ("output_type: generate\n", "field 'output_type': output_type must be one of"),
    ("format: tyo\n", "field 'format': .*did you mean 'toy'"),
    ("prompt: 'Q: {q'\n", "field 'prompt': bad template"),
    ("metrics: [acc, accuracy]\n", "field 'metrics': unknown ICL metric 'accuracy'"),
])
def test_bad_task_files_are_rejected_naming_the_field(toy_task, change, message):
    text = toy_task.read_text()
    key = change.split(":")[0]
    lines = [line for line in text.splitlines() if not line.startswith(key + ":")]
    if key == "version":
        lines = [line for line in lines if not line.startswith("format:")]
    bad = write(toy_task.with_name("bad.yaml"), "\n".join(lines) + "\n" + change)
    with pytest.raises(InputError, match=message) as err:
        load_task_file(bad)
    assert str(bad) in str(err.value)


@pytest.mark.parametrize("row, message", [
    ('{"q": "x", "a": ["p", "q"], "y": 5}', ":2: gold 5 is not an index into 2 choices"),
    ('{"q": "x", "a": ["p", "q"]}', ":2: missing field 'y'"),
    ('{"q": "x", "a": ["p", ""], "y": 0}', ":2: choices must be a non-empty list"),
    ('{"q": "x", "a": ["p", "q"], "y": 0', ":2: not valid JSON"),
])
def test_bad_data_rows_are_rejected_naming_file_and_line(toy_task, row, message):
    data = toy_task.with_name("toy.jsonl")
    write(data, data.read_text().splitlines()[0] + "\n" + row + "\n")
    with pytest.raises(InputError, match=message) as err:
        get_icl_task(str(toy_task)).load_docs()
    assert str(data) in str(err.value)


def test_template_field_missing_from_the_document_names_the_line(toy_task):
    write(toy_task, toy_task.read_text().replace("{q}", "{question}"))
    with pytest.raises(InputError, match=r"toy.jsonl:1: prompt template uses \{question\}"):
        get_icl_task(str(toy_task)).load_docs()


def test_bad_rows_in_real_formats(tmp_path, shared_data):
    task = get_icl_task("copa")
    bad = write(tmp_path / "copa.jsonl", '{"premise": "A.", "choice1": "B.", "choice2": "C.", "question": "why",'
                ' "label": 0, "idx": 0}\n')
    import dataclasses
    with pytest.raises(InputError, match=r"copa.jsonl:1: field 'question': expected 'cause' or 'effect'"):
        dataclasses.replace(task, data=str(bad)).load_docs()
    rte = get_icl_task("rte")
    bad = write(tmp_path / "rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailed\n")
    with pytest.raises(InputError, match=r"rte.tsv:2: field 'label': unknown label 'entailed'"):
        dataclasses.replace(rte, data=str(bad)).load_docs()
    write(bad, "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\n")
    with pytest.raises(InputError, match=r"rte.tsv:3: malformed row: 2 fields, header has 4"):
        dataclasses.replace(rte, data=str(bad)).load_docs()


def test_acc_norm_divides_by_continuation_characters():
    # "aa" (2 chars) at -3.0 beats "bbbbbbbb" (8 chars) at -2.0 in raw log-likelihood only.
    record = {"output_type": "multiple_choice", "logprobs": [-3.0, -2.0], "continuations": ["aa", "bbbbbbbb"],
              "gold": 1, "is_greedy": [False, False]}
    assert icl_metrics.get("acc")(record) == 1.0          # argmax(-3, -2) = 1
    assert icl_metrics.get("acc_norm")(record) == 1.0     # argmax(-3/2, -2/8) = 1 as well
    record["logprobs"] = [-3.0, -12.8]                 # -12.8/8 = -1.6 < -1.5: norm now prefers "aa"
    assert icl_metrics.get("acc")(record) == 0.0 and icl_metrics.get("acc_norm")(record) == 0.0
    record["gold"] = 0
    assert icl_metrics.get("acc")(record) == 1.0 and icl_metrics.get("acc_norm")(record) == 1.0
    record["logprobs"] = [-3.0, -11.2]                 # -1.4 > -1.5: raw prefers "aa", norm prefers choice 1
    assert icl_metrics.get("acc")(record) == 1.0 and icl_metrics.get("acc_norm")(record) == 0.0


def test_contextual_calibration_removes_the_label_prior():
    # The model prefers choice 0 everywhere; against the content-free prior choice 1 wins.
    record = {"logprobs": [math.log(0.6), math.log(0.4)], "content_free_logprobs": [math.log(0.9), math.log(0.1)],
              "gold": 1}
    assert icl_metrics.get("acc_calibrated")(record) == 1.0  # 0.6/0.9 < 0.4/0.1


def test_bootstrap_stderr_matches_the_binomial_formula():
    values = [1.0] * 300 + [0.0] * 700
    analytic = math.sqrt(0.3 * 0.7 / 1000)
    assert bootstrap_stderr(values, iters=2000, seed=0) == pytest.approx(analytic, rel=0.1)
    assert bootstrap_stderr(values, seed=3) == bootstrap_stderr(values, seed=3)
    assert np.isnan(bootstrap_stderr([1.0]))
