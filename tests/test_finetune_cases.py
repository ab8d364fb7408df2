"""Fine-tuning: readers reject bad input, windows lose nothing, all four cases learn."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

import selfsup  # noqa: F401
from selfsup.errors import InputError
from selfsup.finetune import ner, qa
from selfsup.finetune.config import FinetuneConfig
from selfsup.finetune.readers import read_conll, read_squad, read_tsv
from selfsup.finetune.run import run
from selfsup.finetune.tasks import get_finetune_task
from selfsup.modeling import SelfsupBertForSequenceClassification
from selfsup.provenance import read_card_metrics
from selfsup.training import TrainingConfig

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def tiny_selfsup_bert(tmp_path_factory, minilm_path, tokenizer):
    """A randomly initialised selfsup-bert with MiniLM's vocabulary, saved Hub-style."""
    folder = tmp_path_factory.mktemp("tiny-selfsup-bert")
    config = AutoConfig.for_model("selfsup-bert", vocab_size=tokenizer.vocab_size, hidden_size=64,
                                  num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
    torch.manual_seed(0)
    from transformers import AutoModel
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# -- readers: bad input names file and line -------------------------------------------------
@pytest.mark.parametrize("content,message,line", [
    ("sentence\tlabel\ngood movie\t1\nbad movie\t7\n", "unknown label '7'", 3),
    ("sentence\tlabel\n\t1\n", "empty text", 2),
    ("sentence\tlabel\ngood movie\n", "malformed row", 2),
    ("sentence\tlabel\ngood movie\t1\nbad\tmovie\t0\n", "malformed row: 3 fields, expected 2", 3),  # a stray tab
])
def test_bad_tsv_rows_are_rejected_naming_file_and_line(tmp_path, content, message, line):
    path = tmp_path / "train.tsv"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        read_tsv(path, text="sentence", label="label", labels=("0", "1"))
    assert f"{path}:{line}" in str(err.value)


def test_missing_column_is_rejected(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("sentence1\tlabel\na\t0\n")
    with pytest.raises(InputError, match="missing column 'sentence2'") as err:
        read_tsv(path, text="sentence1", pair="sentence2", label="label", labels=("0", "1"))
    assert f"{path}:1" in str(err.value)  # the header line


def test_squad_answer_not_in_context_is_rejected_naming_the_question(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": "q7", "question": "Where?", "answers": [{"text": "Germany", "answer_start": 12}]}]}]}]}))
    with pytest.raises(InputError, match="q7.*not found") as err:
        read_squad(path)
    assert str(path) in str(err.value)


def test_conll_unknown_tag_and_malformed_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP B-FOO\n")
    with pytest.raises(InputError, match=r"train.txt:2.*unknown tag 'B-FOO'"):
        read_conll(path, ("O", "B-ORG", "I-ORG"))
    path.write_text("EU B-ORG\nrejects\n")
    with pytest.raises(InputError, match=r"train.txt:2.*malformed"):
        read_conll(path, ("O", "B-ORG", "I-ORG"))


def test_every_glue_task_is_registered_and_typos_get_suggestions(shared_data):
    for name in ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "mnli_mismatched", "qnli", "rte", "wnli"):
        get_finetune_task(f"glue/{name}")
    assert get_finetune_task("glue/stsb").is_regression
    assert len(get_finetune_task("glue/mrpc").read(None, "train")) == 3668
    with pytest.raises(KeyError, match="did you mean"):
        get_finetune_task("glue/mrcp")
    with pytest.raises(InputError, match="MNLI"):
        get_finetune_task("glue/mnli").read(None, "validation")  # not in shared/data: a clear message


# Each GLUE test file's header as download_glue_data.py writes it, and where the text lies.
GLUE_TEST_LAYOUTS = {
    "cola": ("CoLA/test.tsv", "index\tsentence", 1, None),
    "sst2": ("SST-2/test.tsv", "index\tsentence", 1, None),
    "mrpc": ("MRPC/test.tsv", "index\t#1 ID\t#2 ID\t#1 String\t#2 String", 3, 4),
    "stsb": ("STS-B/test.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2", 7, 8),
    "qqp": ("QQP/test.tsv", "id\tquestion1\tquestion2", 1, 2),
    "mnli": ("MNLI/test_matched.tsv", "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\t"
             "sentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2", 8, 9),
    "mnli_mismatched": ("MNLI/test_mismatched.tsv", "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\t"
                        "sentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2", 8, 9),
    "qnli": ("QNLI/test.tsv", "index\tquestion\tsentence", 1, 2),
    "rte": ("RTE/test.tsv", "index\tsentence1\tsentence2", 1, 2),
    "wnli": ("WNLI/test.tsv", "index\tsentence1\tsentence2", 1, 2),
}


@pytest.mark.parametrize("name", sorted(GLUE_TEST_LAYOUTS))
def test_every_glue_test_layout_is_read_with_its_own_index(name, tmp_path):
    file, header, text, pair = GLUE_TEST_LAYOUTS[name]
    path = tmp_path / "glue" / file
    path.parent.mkdir(parents=True)
    width = header.count("\t") + 1
    rows = []
    for index in (7, 3):  # the file's index, not the row's position, goes into a submission
        row = [f"{index}"] + [f"f{index}.{c}" for c in range(1, width)]
        rows.append("\t".join(row))
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    examples = get_finetune_task(f"glue/{name}").read(tmp_path, "test")
    assert [e["idx"] for e in examples] == [7, 3]
    assert [e["text"] for e in examples] == [f"f7.{text}", f"f3.{text}"]
    assert [e["text_pair"] for e in examples] == ([None, None] if pair is None else [f"f7.{pair}", f"f3.{pair}"])
    assert all(e["label"] is None for e in examples)


def test_hub_labels_follow_the_hub_names_not_our_order(monkeypatch):
    """nyu-mll/glue numbers MNLI entailment=0, neutral=1, contradiction=2; ours are sorted."""
    import datasets

    hub = datasets.Dataset.from_dict(
        {"premise": ["p0", "p1", "p2", "p3"], "hypothesis": ["h0", "h1", "h2", "h3"], "label": [0, 1, 2, -1],
         "idx": [0, 1, 2, 3]},
        features=datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
                                    "idx": datasets.Value("int32")}))
    asked = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: asked.append((a, k)) or hub)
    task = get_finetune_task("glue/mnli_mismatched")
    examples = task.read("hub", "validation")
    assert asked == [(("nyu-mll/glue", "mnli"), {"split": "validation_mismatched"})]
    assert [task.labels[e["label"]] for e in examples[:3]] == ["entailment", "neutral", "contradiction"]
    assert examples[3]["label"] is None and examples[0]["text_pair"] == "h0"


@pytest.mark.parametrize("name,hub_names", [("wnli", ["not_entailment", "entailment"]),
                                            ("cola", ["unacceptable", "acceptable"]),
                                            ("rte", ["entailment", "not_entailment"])])
def test_hub_binary_labels_mean_what_the_local_files_mean(name, hub_names, monkeypatch):
    import datasets

    columns = {"cola": ("sentence",)}.get(name, ("sentence1", "sentence2"))
    hub = datasets.Dataset.from_dict({**{c: ["a", "b"] for c in columns}, "label": [0, 1]},
                                     features=datasets.Features({**{c: datasets.Value("string") for c in columns},
                                                                 "label": datasets.ClassLabel(names=hub_names)}))
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: hub)
    task = get_finetune_task(f"glue/{name}")
    local = {"wnli": ["0", "1"], "cola": ["0", "1"], "rte": ["entailment", "not_entailment"]}[name]
    assert [task.labels[e["label"]] for e in task.read("hub", "train")] == local


def test_zero_sample_limits_are_refused_naming_the_flag():
    for flag in ("max_train_samples", "max_eval_samples"):
        with pytest.raises(InputError, match=f"--{flag} must be at least 1, got 0"):
            FinetuneConfig(task="glue/rte", model_name_or_path="x", **{flag: 0})
    from selfsup.cli import parse_config

    with pytest.raises(InputError, match="max_train_samples"):
        parse_config((FinetuneConfig, TrainingConfig), ["--max_train_samples", "0"])


def test_a_missing_model_folder_is_named_as_such(tmp_path):
    cfg = FinetuneConfig(task="glue/rte", model_name_or_path=str(tmp_path / "run" / "best"))
    with pytest.raises(InputError, match="not found locally, and not a valid Hub id") as err:
        run(cfg, TrainingConfig(output_dir=str(tmp_path / "out"), report_to="none"))
    assert str(tmp_path / "run" / "best") in str(err.value)


# -- windows lose nothing ---------------------------------------------------------------------
def test_qa_windows_cover_every_context_token(shared_data, tokenizer):
    examples = get_finetune_task("squad/v1.1").read(None, "validation")[:60]
    columns = {k: [e[k] for e in examples] for k in examples[0]}
    features = qa.prepare_features(columns, tokenizer, max_seq_length=96, doc_stride=24, max_query_length=32,
                                   train=False)
    assert len(features["input_ids"]) > len(examples)  # long contexts were split
    for i, example in enumerate(examples):
        context_tokens = tokenizer(example["context"], add_special_tokens=False, return_offsets_mapping=True)
        wanted = {tuple(o) for o in context_tokens["offset_mapping"]}
        covered = {tuple(o) for f, eid in enumerate(features["example_id"]) if eid == example["id"]
                   for o in features["offset_mapping"][f] if o is not None}
        assert wanted <= covered, example["id"]


def test_qa_stride_is_validated_against_the_window():
    with pytest.raises(InputError, match="doc_stride"):
        qa.validate_windows(max_seq_length=128, doc_stride=100, max_query_length=64)


def test_qa_training_labels_point_at_the_answer(shared_data, tokenizer):
    """Every question has a window whose start/end labels span exactly its answer's tokens;
    windows without the whole answer point at [CLS]."""
    def squash(text):  # the uncased tokenizer's view of a text, without spaces or ##
        return "".join(tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]).split())

    for example in get_finetune_task("squad/v1.1").read(None, "validation")[:30]:
        columns = {k: [example[k]] for k in example}
        enc = qa.prepare_features(columns, tokenizer, 128, 32, 32, train=True)
        answer = squash(example["answers"]["text"][0])
        labelled = 0
        for ids, s, e in zip(enc["input_ids"], enc["start_positions"], enc["end_positions"]):
            assert (s == 0) == (e == 0)
            if s == 0:
                continue
            labelled += 1
            text = lambda a, b: "".join(tokenizer.decode(ids[a:b]).split())  # noqa: E731
            # The span holds the answer, and is the smallest that does ("gold" → "golden").
            assert answer in text(s, e + 1), (answer, text(s, e + 1))
            assert s == e or (answer not in text(s + 1, e + 1) and answer not in text(s, e))
        assert labelled, example["id"]


def test_ner_words_past_max_seq_length_are_predicted(tokenizer):
    labels = ("O", "B-PER", "I-PER")
    words = [f"word{i}" for i in range(150)]  # far more tokens than one window holds
    tags = [i % 3 for i in range(150)]
    features = ner.prepare_features({"tokens": [words], "tags": [tags]}, tokenizer, labels, max_seq_length=32,
                                    stride=8, label_all_tokens=False)
    assert len(features["input_ids"]) > 5
    # Fake logits that "predict" each word's own gold tag: merging must recover all 150.
    logits = np.zeros((len(features["input_ids"]), 32, 3))
    for f, word_ids in enumerate(features["word_ids"]):
        for k, w in enumerate(word_ids):
            if w >= 0:
                logits[f, k, tags[w]] = 1.0
    assert ner.merge_predictions(features, logits, [150]) == [tags]


def test_ner_windows_merge_back_to_their_own_sentence_past_the_first_map_batch(tokenizer):
    """datasets.map tokenises in batches of 1000 and the tokenizer numbers overflow windows
    from 0 in each: every window must still point at its own sentence in the whole set."""
    from selfsup.finetune.run import build_features
    rng = np.random.default_rng(0)
    examples = []
    for i in range(2300):  # three map batches; every 97th sentence needs several windows
        n = 60 if i % 97 == 0 else int(rng.integers(1, 8))
        examples.append({"tokens": [f"w{i}x{j}" for j in range(n)], "tags": rng.integers(0, 3, n).tolist()})
    cfg = FinetuneConfig(task="ner/conll2003", model_name_or_path="unused", max_seq_length=32, doc_stride=8)
    features = build_features(get_finetune_task("ner/conll2003"), examples, tokenizer, cfg, train=False)
    assert len(features) > len(examples)
    logits = np.zeros((len(features), 32, 3))  # "predict" each word's gold tag in every window
    for f, (example, word_ids) in enumerate(zip(features["example_idx"], features["word_ids"])):
        for k, w in enumerate(word_ids):
            if w >= 0:
                logits[f, k, examples[example]["tags"][w]] = 1.0
    assert sorted(set(features["example_idx"])) == list(range(len(examples)))
    merged = ner.merge_predictions(features, logits, [len(e["tokens"]) for e in examples])
    assert merged == [e["tags"] for e in examples]


def test_label_all_tokens_turns_b_into_i_after_the_first_piece(tokenizer):
    labels = ("O", "B-PER", "I-PER")
    f = ner.prepare_features({"tokens": [["Kuroro", "smiled"]], "tags": [[1, 0]]}, tokenizer, labels, 32, 8, True)
    pieces = [l for l, w in zip(f["labels"][0], f["word_ids"][0]) if w == 0]
    assert len(pieces) > 1 and pieces[0] == 1 and set(pieces[1:]) == {2}


# -- the four cases learn, on selfsup-bert and on MiniLM -----------------------------------------
WINDOWS = {"doc_stride": 16, "max_query_length": 24}
CASES = [("glue/sst2", {}), ("glue/stsb", {}), ("ner/conll2003", WINDOWS), ("squad/dev_split", WINDOWS)]


@pytest.mark.parametrize("task,extra", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("backbone", ["selfsup", "minilm"])
def test_each_case_trains_and_its_loss_falls(request, tmp_path, shared_data, task, extra, backbone):
    model = request.getfixturevalue("tiny_selfsup_bert" if backbone == "selfsup" else "minilm_path")
    # One batch of 8 examples seen at every step: the loss must fall (dropout is the only noise).
    cfg = FinetuneConfig(task=task, model_name_or_path=str(model), max_seq_length=64, max_train_samples=8,
                         max_eval_samples=8, **extra)
    steps = 20 if backbone == "selfsup" else 8  # a random-init model needs a few more steps
    train = TrainingConfig(output_dir=str(tmp_path), max_steps=steps, per_device_train_batch_size=8,
                           learning_rate=2e-3 if backbone == "selfsup" else 2e-4, warmup_steps=0,
                           logging_steps=1, report_to="none", eval_steps=steps)
    result = run(cfg, train)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
              if '"loss"' in line]
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3]), losses
    assert set(get_finetune_task(task).metrics) <= set(result["best"])
    assert (tmp_path / "best" / "config.json").exists() and (tmp_path / "metrics.json").exists()


def test_a_run_is_a_function_of_its_seed_whatever_ran_before(tmp_path, shared_data, minilm_path):
    """The new head is initialised from the seed: the global RNG state left by earlier work
    (here, a different draw before each run) must not change the fine-tuned weights."""
    cfg = FinetuneConfig(task="glue/rte", model_name_or_path=str(minilm_path), max_seq_length=64,
                         max_train_samples=8, max_eval_samples=8)
    weights = []
    for i, noise in enumerate((1, 2)):
        torch.manual_seed(noise)
        torch.rand(7)
        run(cfg, TrainingConfig(output_dir=str(tmp_path / str(i)), max_steps=2, per_device_train_batch_size=8,
                                report_to="none", seed=42))
        model = AutoModelForSequenceClassification.from_pretrained(tmp_path / str(i) / "best")
        weights.append(model.classifier.weight.detach().clone())
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


def test_a_fine_tuned_folder_reloads_with_its_head_labels_and_tokenizer(tmp_path, shared_data, tiny_selfsup_bert):
    cfg = FinetuneConfig(task="glue/rte", model_name_or_path=str(tiny_selfsup_bert), max_seq_length=64,
                         max_train_samples=16, max_eval_samples=8)
    run(cfg, TrainingConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=8, report_to="none"))
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "best")
    assert isinstance(model, SelfsupBertForSequenceClassification)
    assert model.config.id2label == {0: "entailment", 1: "not_entailment"}
    assert AutoTokenizer.from_pretrained(tmp_path / "best").vocab_size == 30522
    rows = (tmp_path / "predictions_validation.tsv").read_text().splitlines()
    assert rows[0] == "index\tprediction" and len(rows) == 9 and rows[1].split("\t")[1] in model.config.label2id


def _evaluate(launch, model_dir, out: Path, processes: int) -> dict:
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cmd = [*launch(processes), str(HERE / "finetune_eval_script.py"), str(model_dir), str(out)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def test_evaluation_with_one_and_two_processes_gives_the_same_metrics(tmp_path, shared_data, tiny_selfsup_bert,
                                                                     accelerate_launch):
    one = _evaluate(accelerate_launch, tiny_selfsup_bert, tmp_path / "one.json", 1)
    two = _evaluate(accelerate_launch, tiny_selfsup_bert, tmp_path / "two.json", 2)
    assert one["processes"] == 1 and two["processes"] == 2
    assert one["rows"] == two["rows"] == 37  # no example counted twice
    assert one["predictions"] == two["predictions"]
    assert one["metrics"] == pytest.approx(two["metrics"])


def test_lora_trains_only_adapters_and_head_and_saves_a_merged_reloadable_folder(tmp_path, shared_data,
                                                                                   tiny_selfsup_bert):
    from selfsup.finetune.run import load_model

    cfg = FinetuneConfig(task="glue/rte", model_name_or_path=str(tiny_selfsup_bert), max_seq_length=64,
                         max_train_samples=16, max_eval_samples=8, lora_r=4, lora_alpha=8, lora_dropout=0.0)
    trainable = {n for n, p in load_model(get_finetune_task("glue/rte"), cfg).named_parameters() if p.requires_grad}
    assert trainable and all(".qkv.lora_" in n or ".classifier." in n for n in trainable), trainable
    run(cfg, TrainingConfig(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=8,
                            learning_rate=1e-2, report_to="none"))
    base = AutoModelForSequenceClassification.from_pretrained(tiny_selfsup_bert, num_labels=2)
    tuned = AutoModelForSequenceClassification.from_pretrained(tmp_path / "best")
    assert tuned.config.id2label == {0: "entailment", 1: "not_entailment"}
    torch.testing.assert_close(tuned.bert.embeddings.word_embeddings.weight,
                               base.bert.embeddings.word_embeddings.weight)  # frozen
    qkv = "encoder.layers.0.attention.qkv.weight"
    assert not torch.equal(tuned.bert.state_dict()[qkv], base.bert.state_dict()[qkv])  # adapter merged in


def test_glue_test_split_gets_a_submission_file_from_the_best_checkpoint(tmp_path, shared_data, tiny_selfsup_bert):
    """A GLUE folder with test.tsv (the layout download_glue_data.py makes) yields RTE.tsv:
    ``index<TAB>prediction`` for every test row, predicted by the reloaded best checkpoint."""
    rte = tmp_path / "glue" / "RTE"
    rte.mkdir(parents=True)
    for name in ("train.tsv", "dev.tsv"):
        rows = (shared_data / "glue" / "RTE" / name).read_text().splitlines()[:17]
        (rte / name).write_text("\n".join(rows) + "\n")
    dev = [r.split("\t") for r in (rte / "dev.tsv").read_text().splitlines()[1:]]
    (rte / "test.tsv").write_text("index\tsentence1\tsentence2\n" +
                                  "".join(f"{i}\t{r[1]}\t{r[2]}\n" for i, r in enumerate(dev[:5])))
    cfg = FinetuneConfig(task="glue/rte", model_name_or_path=str(tiny_selfsup_bert), data_dir=str(tmp_path),
                         max_seq_length=64)
    out = tmp_path / "out"
    result = run(cfg, TrainingConfig(output_dir=str(out), max_steps=2, per_device_train_batch_size=8,
                                     report_to="none"))
    rows = [r.split("\t") for r in (out / "RTE.tsv").read_text().splitlines()]
    assert result["submission"] == str(out / "RTE.tsv")
    assert rows[0] == ["index", "prediction"] and [r[0] for r in rows[1:]] == ["0", "1", "2", "3", "4"]
    # The test rows are the first five dev rows: the best model must predict them alike.
    validation = [r.split("\t") for r in (out / "predictions_validation.tsv").read_text().splitlines()[1:]]
    assert [r[1] for r in rows[1:]] == [r[1] for r in validation[:5]]


def test_script_runs_every_available_glue_task_and_prints_one_table(tmp_path, shared_data, tiny_selfsup_bert,
                                                                   capsys):
    sys.path.insert(0, str(HERE.parent / "scripts"))
    try:
        import finetune as script
    finally:
        sys.path.pop(0)
    results = script.main(["--task", "glue/all", "--model_name_or_path", str(tiny_selfsup_bert),
                           "--output_dir", str(tmp_path), "--max_train_samples", "8", "--max_eval_samples", "8",
                           "--max_seq_length", "32", "--max_steps", "1", "--report_to", "none"])
    ran = {r["task"] for r in results}
    # shared/data lacks MNLI, QQP and the QNLI train split: those are reported and skipped.
    assert ran == {"glue/cola", "glue/sst2", "glue/mrpc", "glue/stsb", "glue/rte", "glue/wnli"}
    printed = capsys.readouterr().out
    for skipped in ("glue/mnli", "glue/mnli_mismatched", "glue/qqp", "glue/qnli"):
        assert f"skipping {skipped}:" in printed
    table = printed[printed.index("task "):]
    assert "glue/stsb" in table and "pearson" in table and "mcc" in table
    assert all((tmp_path / r["task"].split("/")[1] / "metrics.json").exists() for r in results)


def _glue_subset(shared_data, root, folder, rows=17):
    (root / "glue" / folder).mkdir(parents=True)
    for name in ("train.tsv", "dev.tsv"):
        lines = (shared_data / "glue" / folder / name).read_text().splitlines()[:rows]
        (root / "glue" / folder / name).write_text("\n".join(lines) + "\n")
    return root / "glue" / folder


def test_a_real_cola_test_file_gets_a_submission_with_its_own_index(tmp_path, shared_data, tiny_selfsup_bert):
    cola = _glue_subset(shared_data, tmp_path, "CoLA")
    (cola / "test.tsv").write_text("index\tsentence\n1041\tBill ate the peaches.\n1042\tThe peaches ate.\n")
    cfg = FinetuneConfig(task="glue/cola", model_name_or_path=str(tiny_selfsup_bert), data_dir=str(tmp_path),
                         max_seq_length=32)
    out = tmp_path / "out"
    result = run(cfg, TrainingConfig(output_dir=str(out), max_steps=1, per_device_train_batch_size=8,
                                     report_to="none"))
    rows = [r.split("\t") for r in (out / "CoLA.tsv").read_text().splitlines()]
    assert [r[0] for r in rows] == ["index", "1041", "1042"] and all(r[1] in ("0", "1") for r in rows[1:])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["submission"] == result["submission"] == str(out / "CoLA.tsv")
    # The best folder's card: Hub metadata whose scores are metrics.json's, and the command that made it.
    card = read_card_metrics(out / "best")
    assert card == [{"task": "text-classification", "metrics": metrics["best"],
                     "dataset": {"name": "glue/cola", "type": "glue", "config": "cola", "split": "validation"}}]
    text = (out / "best" / "README.md").read_text()
    assert "library_name: transformers" in text and "## Command" in text
    assert "AutoModelForSequenceClassification" in text


def test_dev_metrics_are_written_before_the_test_file_is_read(tmp_path, shared_data, tiny_selfsup_bert):
    rte = _glue_subset(shared_data, tmp_path, "RTE")
    (rte / "test.tsv").write_text("index\tsentence1\tsentence2\n0\ta\tb\n1\ta\tb\textra\n")
    cfg = FinetuneConfig(task="glue/rte", model_name_or_path=str(tiny_selfsup_bert), data_dir=str(tmp_path),
                         max_seq_length=32)
    out = tmp_path / "out"
    with pytest.raises(InputError, match="malformed row") as err:
        run(cfg, TrainingConfig(output_dir=str(out), max_steps=1, per_device_train_batch_size=8, report_to="none"))
    assert f"{rte / 'test.tsv'}:3" in str(err.value)
    assert "accuracy" in json.loads((out / "metrics.json").read_text())["best"]


def _finetune_script():
    sys.path.insert(0, str(HERE.parent / "scripts"))
    try:
        import finetune as script
    finally:
        sys.path.pop(0)
    return script


def test_glue_all_skips_only_missing_splits(tmp_path, shared_data):
    script = _finetune_script()
    args = ["--task", "glue/all", "--model_name_or_path", str(tmp_path), "--output_dir", str(tmp_path / "out"),
            "--report_to", "none"]
    with pytest.raises(InputError, match="no glue/ folder"):  # a wrong --data_dir is not "every split missing"
        script.main(args + ["--data_dir", str(tmp_path / "typo")])
    (tmp_path / "glue").mkdir()
    with pytest.raises(InputError, match="no GLUE task ran"):
        script.main(args + ["--data_dir", str(tmp_path)])
    rte = _glue_subset(shared_data, tmp_path, "RTE")
    (rte / "train.tsv").write_text((rte / "train.tsv").read_text() + "9\ta\tb\tentailment\textra\n")
    with pytest.raises(InputError, match="malformed row") as err:  # not skipped
        script.main(args + ["--data_dir", str(tmp_path)])
    assert str(rte / "train.tsv") in str(err.value)


@pytest.mark.parametrize("path", sorted((HERE.parent / "configs" / "finetune").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_finetune_config_parses_into_a_registered_task_with_valid_windows(path):
    from selfsup.cli import parse_config

    cfg, train_cfg = parse_config((FinetuneConfig, TrainingConfig), ["--config", str(path)])
    task = get_finetune_task(cfg.task)
    if task.case == "span":
        qa.validate_windows(cfg.max_seq_length, cfg.doc_stride, cfg.max_query_length)
    assert cfg.model_name_or_path and train_cfg.learning_rate > 0
