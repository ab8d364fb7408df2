"""A real GGUF model (SmolLM2-135M-Instruct) through the ICL harness on a handful of examples."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from selfsup.icl.generation import cut
from selfsup.icl.harness import evaluate_task
from selfsup.icl.models import load_model
from selfsup.icl.tasks import get_icl_task

_spec = importlib.util.spec_from_file_location("icl_eval_script",
                                               Path(__file__).parent.parent / "scripts" / "icl_eval.py")
icl_eval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(icl_eval)


@pytest.fixture(scope="module")
def smollm2(smollm2_gguf):
    return load_model(str(smollm2_gguf))


@pytest.mark.parametrize("name, shots", [("copa", 2), ("winogrande", 1), ("lambada", 0)])
def test_fast_equals_naive_on_smollm2(smollm2, shared_data, name, shots):
    model, tokenizer = smollm2
    task = get_icl_task(name)
    naive = evaluate_task(model, tokenizer, task, shots, limit=3, scorer="naive")
    fast = evaluate_task(model, tokenizer, task, shots, limit=3, scorer="fast", batch_size=2)
    for a, b in zip(naive.records, fast.records):
        assert a["prompts"] == b["prompts"] and a["fewshot_ids"] == b["fewshot_ids"]
        assert a["logprobs"] == pytest.approx(b["logprobs"], abs=1e-4)
        assert a["is_greedy"] == b["is_greedy"]
    assert naive.metrics == pytest.approx(fast.metrics)


def test_script_writes_table_results_and_samples(smollm2, smollm2_gguf, shared_data, tmp_path, capsys, monkeypatch):
    # The GGUF dequantisation is the slow part: reuse the module's model, check the script loads that path.
    loaded = []
    monkeypatch.setattr(icl_eval, "load_model", lambda *a: loaded.append(a) or smollm2)
    icl_eval.main(["--model", str(smollm2_gguf), "--tasks", "copa,sst2", "--num_fewshot", "0,1", "--limit", "2",
          "--seed", "5", "--calibrate", "--output_dir", str(tmp_path)])
    assert loaded == [(str(smollm2_gguf), None, None, "float32")]
    out = capsys.readouterr().out
    assert "copa" in out and "acc_calibrated" in out and "wall time" in out
    results = json.loads((tmp_path / "results.json").read_text())
    prov = results["provenance"]
    assert prov["seed"] == 5 and prov["num_fewshot"] == [0, 1] and prov["dtype"] == "float32"
    assert prov["packages"]["transformers"] and results["tasks"]["copa"]["prompt"] == "{premise} {connector}"
    assert set(results["results"]["sst2"]["1"]) >= {"acc", "acc_stderr", "acc_norm", "acc_calibrated", "n"}
    samples = [json.loads(line) for line in (tmp_path / "samples_copa_1shot.jsonl").read_text().splitlines()]
    assert len(samples) == 2 and all(len(s["fewshot_ids"]) == 1 and len(s["logprobs"]) == 2 for s in samples)
    assert (tmp_path / "fewshot_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_lambada_gen_generates_the_last_word_in_a_batch_as_alone_and_the_script_writes_it(
        smollm2, smollm2_gguf, shared_data, tmp_path, capsys, monkeypatch):
    model, tokenizer = smollm2
    monkeypatch.setattr(icl_eval, "load_model", lambda *a: smollm2)
    icl_eval.main(["--model", str(smollm2_gguf), "--tasks", "lambada_gen", "--num_fewshot", "0", "--limit", "4",
                   "--batch_size", "4", "--output_dir", str(tmp_path)])
    assert re.search(r"lambada_gen\s+0\s+exact_match\s+\d\.\d{4}\s+\d\.\d{4}\s+4", capsys.readouterr().out)
    results = json.loads((tmp_path / "results.json").read_text())
    task = get_icl_task("lambada_gen")
    assert results["tasks"]["lambada_gen"]["until"] == list(task.until)
    assert results["tasks"]["lambada_gen"]["max_gen_toks"] == task.max_gen_toks
    metrics = results["results"]["lambada_gen"]["0"]
    assert set(metrics) >= {"exact_match", "exact_match_stderr", "n"} and metrics["n"] == 4
    samples = [json.loads(line) for line in (tmp_path / "samples_lambada_gen_0shot.jsonl").read_text().splitlines()]
    alone = evaluate_task(model, tokenizer, task, 0, limit=4, batch_size=1).records  # no padding at all
    # transformers' own greedy decoding (left-padded batch) continues the same way
    batch = tokenizer([s["prompts"][0] for s in samples], add_special_tokens=False, padding=True,
                      padding_side="left", return_tensors="pt")
    reference = tokenizer.batch_decode(model.generate(**batch, do_sample=False, max_new_tokens=task.max_gen_toks)
                                       [:, batch.input_ids.shape[1]:], skip_special_tokens=True)
    for s, a, ref in zip(samples, alone, reference, strict=True):
        assert s["generation"] == a["generation"] and s["finish"] == a["finish"] and ref.startswith(s["generation"])
        assert s["answer"] == cut(s["generation"], task.until, " ")[0] and s["target"] == s["choices"][0]
        assert s["exact_match"] == float(s["answer"] == s["target"]) and s["prediction"] == s["answer"]
    assert metrics["exact_match"] == sum(s["exact_match"] for s in samples) / 4
    assert metrics["exact_match"] > 0  # a real model finds some of the words ("insurance", "Helen")
