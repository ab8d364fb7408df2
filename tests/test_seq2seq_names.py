"""End to end: a tiny copy model learns the names task (held-out names, never in the
vocabulary) through scripts/train_seq2seq.py's code path, and the saved folder reloads
with identical generations. Real DialogSum files parse with their three test references."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from transformers import AutoModelForSeq2SeqLM

import selfsup  # noqa: F401
from selfsup.seq2seq.data import Pair
from selfsup.seq2seq.decoding import GenerationArguments
from selfsup.seq2seq.run import predict
from selfsup.seq2seq.tokenizer import WordTokenizer
from selfsup.tasks import dialogsum, names

ROOT = Path(__file__).resolve().parent.parent


def test_tiny_copy_model_learns_the_names_task(tmp_path, one_thread):
    sys.path.insert(0, str(ROOT / "scripts"))
    import train_seq2seq
    files = names.write(tmp_path / "data", n_train=800, n_test=60, seed=0)
    out = tmp_path / "run"
    summary = train_seq2seq.main([
        "--config", str(ROOT / "configs/seq2seq/names-tiny.yaml"), "--copy",
        "--train_file", str(files["train"]), "--test_file", str(files["test"]),
        "--max_steps", "200", "--output_dir", str(out)])
    tok = WordTokenizer.from_pretrained(out)
    test_names = [json.loads(line)["name"] for line in files["test"].read_text().splitlines()]
    assert not any(n in tok.vocab for n in test_names)  # only copying can produce them
    assert summary["test"]["exact_match"] >= 0.9, summary["test"]

    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    rows = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()][:20]
    again = predict(model, tok, [Pair(r["source"], r["references"]) for r in rows],
                    GenerationArguments(max_new_tokens=16), progress=False)
    assert again == [r["prediction"] for r in rows]
    # scripts/generate.py on the same folder, with beam search: the names come back from the source
    import generate as generate_script
    beams = generate_script.main(["--model_name_or_path", str(out), "--input_file", str(files["test"]),
                                  "--num_beams", "2", "--output_file", str(tmp_path / "beam.jsonl")])
    hits = sum(n in p.split() for n, p in zip(test_names, beams))
    assert hits >= 0.9 * len(test_names)
    results = json.loads((out / "results.json").read_text())
    assert "versions" in results["provenance"]
    from selfsup.provenance import read_card_metrics

    card = read_card_metrics(out)  # the model card's scores are results.json's
    assert [c["metrics"] for c in card] == [results["test"]] and card[0]["dataset"]["split"] == "test"


def test_dialogsum_splits_parse_with_all_references(shared_data):
    test = dialogsum.load("test", shared_data)
    assert len(test) == 500 and all(len(p.references) == 3 for p in test)
    assert len(dialogsum.load("validation", shared_data)) == 500
    assert "#Person1#" in test[0].source
