"""Our decoder in the ICL harness: SmolLM2-135M-Instruct converted to selfsup-gpt, scored by
scripts/icl_eval.py, gives the per-example log-likelihoods of transformers' LlamaForCausalLM
on the same weights (fp32, within 1e-4) on COPA and ARC-Easy, at 0 and 1 shot.

The reference is the simplest computation: the Llama scores each request alone (``naive``:
one forward, no padding, no cache). Our side runs the script's default fast scorer: padded
batches, each context computed once for all its choices."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

from selfsup.icl.models import load_model
from selfsup.modeling import SelfsupGPTForCausalLM
from selfsup.modeling.convert_llama import convert

_spec = importlib.util.spec_from_file_location("icl_eval_script",
                                               Path(__file__).parent.parent / "scripts" / "icl_eval.py")
icl_eval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(icl_eval)

TASKS, SHOTS, LIMIT = ("copa", "arc_easy"), (0, 1), 8


@pytest.fixture(scope="module")
def converted(smollm2_gguf, tmp_path_factory) -> Path:
    """The GGUF dequantised to fp32 and converted once for the module (as scripts/convert_llama.py does)."""
    out = tmp_path_factory.mktemp("smollm2") / "selfsup-gpt"
    return convert(smollm2_gguf.parent, out, to_hf=False, gguf_file=smollm2_gguf.name)


@pytest.fixture(scope="module")
def llama(smollm2_gguf):
    model, tokenizer = load_model(str(smollm2_gguf))
    assert type(model) is LlamaForCausalLM and model.dtype == torch.float32
    return model, tokenizer


def run_script(monkeypatch, model: str, load, *extra: str) -> list:
    """scripts/icl_eval.py on COPA and ARC-Easy; ``load`` stands in for its model loader."""
    monkeypatch.setattr(icl_eval, "load_model", load)
    return icl_eval.main(["--model", model, "--tasks", ",".join(TASKS), "--num_fewshot", ",".join(map(str, SHOTS)),
                          "--limit", str(LIMIT), *extra])


def test_icl_eval_on_converted_smollm2_scores_as_llama(converted, llama, smollm2_gguf, shared_data, tmp_path,
                                                      monkeypatch):
    loaded = []

    def spy(*args):
        model, tokenizer = load_model(*args)
        loaded.append(model)
        return model, tokenizer
    results = run_script(monkeypatch, str(converted), spy, "--batch_size", "4", "--output_dir", str(tmp_path))
    assert [type(m) for m in loaded] == [SelfsupGPTForCausalLM] and loaded[0].dtype == torch.float32
    assert [(r.task, r.num_fewshot) for r in results] == [(t, k) for t in TASKS for k in SHOTS]
    # The GGUF dequantisation is the slow part: the module's Llama stands in for the script's loading.
    references = run_script(monkeypatch, str(smollm2_gguf), lambda *a: llama, "--scorer", "naive")

    tokenizer = llama[1]
    worst = 0.0
    for ours, reference in zip(results, references, strict=True):
        assert (ours.task, ours.num_fewshot) == (reference.task, reference.num_fewshot)
        assert len(ours.records) == len(reference.records) == LIMIT
        for got, want in zip(ours.records, reference.records, strict=True):
            assert got["prompts"] == want["prompts"] and got["fewshot_ids"] == want["fewshot_ids"]
            assert got["logprobs"] == pytest.approx(want["logprobs"], abs=1e-4)
            assert got["is_greedy"] == want["is_greedy"]
            worst = max(worst, *(abs(a - b) for a, b in zip(got["logprobs"], want["logprobs"])))
        assert ours.metrics["acc"] == reference.metrics["acc"]
    # The comparison is not vacuous: 1-shot ARC-Easy prompts are long and their choices several tokens.
    arc = next(r for r in results if r.task == "arc_easy" and r.num_fewshot == 1)
    assert min(len(tokenizer(p).input_ids) for p in arc.records[0]["prompts"]) > 30
    assert max(len(tokenizer(" " + c).input_ids) for c in arc.records[0]["continuations"]) > 1
    print(f"largest |log-likelihood difference| over {len(results)} runs: {worst:.2e}")
