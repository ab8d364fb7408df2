"""The --corpus list: files, folders and fine-tuning tasks together, counted per source; a
task gives its training text only, labels unread; evaluation splits are refused."""
from __future__ import annotations

import pytest

from selfsup.errors import InputError
from selfsup.pretrain.data import load_documents
from selfsup.pretrain.sources import PSEUDO_DOCUMENT_SENTENCES, count_sources, parse_corpus, task_documents


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def folder(tmp_path):
    """Two files of the `sentences` layout: 3 documents, 6 sentences, 18 words."""
    write(tmp_path / "notes" / "a.txt", "Alpha one two.\nAlpha three four.\n\nBeta one two.\nBeta three four.\n")
    write(tmp_path / "notes" / "b.txt", "Gamma one two.\nGamma three four.\n")
    return tmp_path / "notes"


def counts(corpus: str, **kwargs) -> dict[str, tuple[int, int]]:
    docs = load_documents(corpus, **kwargs)
    return {c.name: (c.documents, c.words) for c in count_sources(docs, parse_corpus(corpus))}


def test_a_file_a_folder_and_a_task_make_one_corpus_counted_per_source(shared_data, folder):
    docs_file = shared_data / "pretrain" / "python-docs.txt"
    corpus = f"{docs_file},{folder},glue/mrpc"
    docs = load_documents(corpus, data_dir=shared_data)
    per_source = count_sources(docs, parse_corpus(corpus))
    assert [c.name for c in per_source] == [str(docs_file), str(folder), "glue/mrpc"]  # corpus order
    python_docs, notes, mrpc = per_source
    assert python_docs.documents == 480 and 1_000_000 < python_docs.words < 1_050_000  # as shared/data's README says
    assert (notes.documents, notes.words) == (3, 18)
    assert mrpc.documents == 3668  # the train split: one document (sentence 1, sentence 2) per pair
    assert len(docs) == 480 + 3 + 3668
    assert str(mrpc) == f"glue/mrpc: 3,668 documents, {mrpc.words:,} words"  # the line the script prints
    mrpc_docs = docs.filter(lambda row: row["source"] == "glue/mrpc")["sentences"]
    assert all(len(d) == 2 for d in mrpc_docs)
    assert mrpc_docs[0][0].startswith("Amrozi accused his brother")


def test_each_item_can_have_its_own_layout(shared_data, folder):
    conll = shared_data / "conll2003" / "train.txt"
    assert counts(f"{folder},{conll}", layout="sentences,conll") == {str(folder): (3, 18),
                                                                    str(conll): (946, 203_621)}
    with pytest.raises(InputError, match="corpus_layout.*3 layouts for 2 corpus items"):
        parse_corpus(f"{folder},{conll}", "sentences,conll,wikitext")


def test_a_task_gives_the_text_columns_of_its_training_split_only(tmp_path):
    # A GLUE-like folder whose label column is garbage: the fine-tuning reader refuses it,
    # the text reader never looks at it. dev.tsv must never be read.
    sst2 = [f"sentence number {i} of the train split" for i in range(20)]
    write(tmp_path / "glue" / "SST-2" / "train.tsv", "sentence\tlabel\n" + "".join(f"{s}\tbanana\n" for s in sst2))
    write(tmp_path / "glue" / "SST-2" / "dev.tsv", "sentence\tlabel\nfrom the dev split\t1\n")
    write(tmp_path / "glue" / "RTE" / "train.tsv",
          "index\tsentence1\tsentence2\tlabel\n"
          "0\tA premise here.\tA hypothesis.\t???\n1\tAnother premise.\tAnd another.\t\n")
    from selfsup.finetune.tasks import get_finetune_task
    with pytest.raises(InputError, match="unknown label 'banana'"):
        get_finetune_task("glue/sst2").read(tmp_path, "train")

    docs = task_documents("glue/sst2", tmp_path)
    # One-sentence examples are grouped, in file order, into pseudo-documents (NSP and SOP
    # need several sentences per document).
    assert docs == [sst2[i:i + PSEUDO_DOCUMENT_SENTENCES] for i in range(0, 20, PSEUDO_DOCUMENT_SENTENCES)]
    assert task_documents("glue/rte", tmp_path) == [["A premise here.", "A hypothesis."],
                                                    ["Another premise.", "And another."]]
    loaded = load_documents("glue/sst2,glue/rte", data_dir=tmp_path)
    text = " ".join(s for d in loaded["sentences"] for s in d)
    assert "dev split" not in text and "banana" not in text and "???" not in text


def test_a_conll_task_gives_its_news_documents_without_tags(shared_data):
    docs = task_documents("ner/conll2003", shared_data)
    assert len(docs) == 946 and docs[0][0] == "EU rejects German call to boycott British lamb ."


@pytest.mark.parametrize("name", ["dev.tsv", "valid.txt", "wiki.test.tokens", "eng.testa", "dev_matched.tsv",
                                  "validation"])
def test_a_file_or_folder_named_as_an_evaluation_split_is_refused_naming_it(tmp_path, name):
    path = tmp_path / name
    if "." in name:
        write(path, "One sentence.\nAnother sentence.\n")
    else:
        write(path / "part.txt", "One sentence.\nAnother sentence.\n")
    with pytest.raises(InputError, match="evaluation split") as err:
        load_documents(str(path))
    assert str(path) in str(err.value)
    assert len(load_documents(str(path), allow_eval_splits=True)) == 1  # the explicit opt-in


@pytest.mark.parametrize("name", ["train.txt", "latest.txt", "contest.txt", "devices.txt"])
def test_names_only_resembling_a_split_are_read(tmp_path, name):
    write(tmp_path / name, "One sentence.\nAnother sentence.\n")
    assert len(load_documents(str(tmp_path / name))) == 1


def test_a_folder_of_several_splits_is_refused_naming_the_evaluation_files(tmp_path):
    for split in ("train", "valid", "test"):
        write(tmp_path / "data" / f"{split}.txt", f"The {split} text.\nMore {split} text.\n")
    with pytest.raises(InputError, match=r"test\.txt, valid\.txt") as err:
        load_documents(str(tmp_path / "data"))
    assert str(tmp_path / "data") in str(err.value)
    train = load_documents(str(tmp_path / "data" / "train.txt"))  # naming the training file works
    assert train["sentences"] == [["The train text.", "More train text."]]


@pytest.mark.parametrize("layout", [("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"),
                                    ("train.txt", "dev.txt"), ("train/part.txt", "test/part.txt")])
def test_allowing_evaluation_splits_does_not_mix_a_folders_training_file_with_them(tmp_path, layout):
    # --allow_eval_splits opts in to evaluation text; a training file beside it means the
    # folder is a split dataset, and reading it whole would train on train + valid + test
    # without anyone having asked for that mix.
    for name in layout:
        write(tmp_path / "data" / name, f"Text of {name}.\nMore of {name}.\n")
    with pytest.raises(InputError, match="several splits") as err:
        load_documents(str(tmp_path / "data"), allow_eval_splits=True)
    message = str(err.value)
    assert str(tmp_path / "data") in message
    assert all(name in message for name in layout)
    # Naming the files is the explicit choice: each one, or all of them, is read.
    named = ",".join(str(tmp_path / "data" / name) for name in layout)
    assert len(load_documents(named, allow_eval_splits=True)) == len(layout)


def test_a_folder_of_evaluation_splits_only_is_read_when_allowed(tmp_path):
    # WikiText-2 as shared data has it: valid and test, no train (configs/pretrain/cpu-hour.yaml).
    for name in ("wiki.valid.tokens", "wiki.test.tokens"):
        write(tmp_path / "wikitext-2" / name, f"Text of {name}.\nMore of {name}.\n")
    assert len(load_documents(str(tmp_path / "wikitext-2"), allow_eval_splits=True)) == 2


def test_the_shipped_wikitext_configs_opt_in_to_the_valid_and_test_splits_they_train_on(shared_data):
    from pathlib import Path

    import yaml
    wikitext = shared_data / "wikitext" / "wikitext-2"
    with pytest.raises(InputError, match=r"wiki\.test\.tokens, wiki\.valid\.tokens"):
        parse_corpus(str(wikitext), "wikitext")
    assert parse_corpus(str(wikitext), "wikitext", allow_eval_splits=True)[0].kind == "files"
    configs = Path(__file__).resolve().parent.parent / "configs" / "pretrain"
    for path in configs.glob("*.yaml"):
        config = yaml.safe_load(path.read_text())
        if "wikitext" in config["corpus"]:
            assert config["allow_eval_splits"] is True, path.name
            assert "valid+test" in path.read_text(), f"{path.name} must say it trains on valid+test"


def test_the_cache_follows_every_source(tmp_path, folder):
    extra = write(tmp_path / "extra.txt", "First version here.\nStill first.\n")
    write(tmp_path / "glue" / "SST-2" / "train.tsv", "sentence\tlabel\nan early phrase\tx\n")
    corpus = f"{folder},{extra},glue/sst2"
    before = load_documents(corpus, data_dir=tmp_path)["sentences"]
    write(extra, "Second version, longer than the first.\nStill second.\n")
    write(tmp_path / "glue" / "SST-2" / "train.tsv", "sentence\tlabel\na later phrase\tx\n")
    after = load_documents(corpus, data_dir=tmp_path)["sentences"]
    assert before[:3] == after[:3]
    assert before[3:] == [["First version here.", "Still first."], ["an early phrase"]]
    assert after[3:] == [["Second version, longer than the first.", "Still second."], ["a later phrase"]]


@pytest.mark.parametrize("corpus, message", [("stdlib,,stdlib", "empty item"), ("stdlib, stdlib", "listed twice")])
def test_a_malformed_corpus_list_is_refused(corpus, message):
    with pytest.raises(InputError, match=message):
        parse_corpus(corpus)


def test_the_script_prints_each_source_and_names_the_held_out_metrics_for_sop(tmp_path, folder, capsys):
    import importlib.util
    from pathlib import Path
    script = Path(__file__).resolve().parent.parent / "scripts" / "pretrain.py"
    spec = importlib.util.spec_from_file_location("pretrain_script", script)
    pretrain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pretrain)
    facts = write(tmp_path / "facts.txt", "\n\n".join(
        f"The {thing} is {colour}.\nEveryone knows the {thing} is {colour}.\nA {colour} {thing} is common."
        for thing, colour in [("sky", "blue"), ("lemon", "yellow"), ("grass", "green"), ("snow", "white")]))
    summary = pretrain.main([
        "--corpus", f"{facts},{folder}", "--sentence_objective", "sop", "--eval_documents", "2",
        "--output_dir", str(tmp_path / "run"), "--vocab_size", "200", "--max_seq_length", "32",
        "--hidden_size", "16", "--num_hidden_layers", "1", "--num_attention_heads", "2", "--intermediate_size", "32",
        "--max_steps", "2", "--report_to", "none"])
    printed = capsys.readouterr().out
    assert f"{facts}: 4 documents, 60 words\n" in printed and f"{folder}: 3 documents, 18 words\n" in printed
    assert {"sop_accuracy", "sop_majority_baseline"} <= summary["eval"].keys()
    assert not any(k.startswith("nsp") for k in summary["eval"])
    assert "sentence-order prediction" in (Path(summary["model_dir"]) / "README.md").read_text()
