"""selfsup-seq2seq with the copy head: decoding invariants, scheduled sampling at p=1,
Auto-class save/load."""
from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSeq2SeqLM

import selfsup.modeling
from selfsup.modeling.seq2seq import SelfsupSeq2SeqConfig, SelfsupSeq2SeqForConditionalGeneration
from selfsup.seq2seq.decoding import GenerationArguments, ModelStepper, generate
from selfsup.seq2seq.scheduled_sampling import scheduled_sampling_loss

V = 24

# Tiny matrices gain nothing from intra-op threads (conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(copy=True, coverage=True, seed=0):
    torch.manual_seed(seed)
    config = SelfsupSeq2SeqConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_decoder_layers=2,
                                  num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                                  use_copy=copy, use_coverage=coverage)
    model = SelfsupSeq2SeqForConditionalGeneration(config).eval()
    if coverage:
        with torch.no_grad():
            model.copy_head.coverage_weight.fill_(-1.5)  # non-zero, so coverage changes the attention
    return model


def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, V, (3, 7), generator=g)
    ext = ids.clone()
    ext[0, 2], ext[0, 5], ext[1, 1] = V, V, V + 1
    ids = ids.masked_fill(ext >= V, 1)
    mask = torch.ones_like(ids)
    mask[2, 4:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    ext = ext.masked_fill(mask == 0, 0)
    labels = torch.tensor([[5, V, 7, 3, -100], [V + 1, 6, 9, 9, 3], [8, 3, -100, -100, -100]])
    return dict(input_ids=ids, attention_mask=mask, source_extended_ids=ext, labels=labels)


@pytest.mark.parametrize("copy, coverage", [(False, False), (True, False), (True, True)])
def test_cached_step_log_probs_equal_uncached(copy, coverage):
    model, b = tiny(copy, coverage), batch()
    src = b["source_extended_ids"] if copy else None
    cached = ModelStepper(model, b["input_ids"], b["attention_mask"], src, use_cache=True)
    full = ModelStepper(model, b["input_ids"], b["attention_mask"], src, use_cache=False)
    tokens = torch.full((3, 1), model.config.decoder_start_token_id)
    with torch.no_grad():
        for step in range(5):
            a, f = cached.step(tokens), full.step(tokens)
            torch.testing.assert_close(a, f, atol=1e-5, rtol=1e-5)
            tokens = torch.cat([tokens, torch.tensor([[5 + step], [V + 1], [9]])], 1)  # an extended id too


def test_the_output_carries_the_cache_under_both_transformers_names():
    """transformers 5.24 renamed the outputs' ``past_key_values`` to ``cache``: both read the
    cache the model filled, whichever 5.x is installed."""
    model, b = tiny(), batch()
    with torch.no_grad():
        out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                    decoder_input_ids=torch.full((3, 1), model.config.decoder_start_token_id), use_cache=True)
    assert out.cache is out.past_key_values
    assert out.cache.get_seq_length() == 1


@pytest.mark.parametrize("args", [GenerationArguments(max_new_tokens=10),
                                  GenerationArguments(max_new_tokens=10, num_beams=3, no_repeat_ngram_size=2,
                                                      length_penalty=0.6),
                                  GenerationArguments(max_new_tokens=10, do_sample=True, top_k=8, top_p=0.9,
                                                      temperature=0.8)])
def test_cached_decoding_equals_uncached(args):
    model, b = tiny(), batch()
    with_cache = generate(model, b["input_ids"], b["attention_mask"], b["source_extended_ids"], args)
    without = generate(model, b["input_ids"], b["attention_mask"], b["source_extended_ids"], args, use_cache=False)
    assert with_cache == without


def test_beam_width_one_is_greedy():
    model, b = tiny(seed=2), batch()
    greedy = generate(model, b["input_ids"], b["attention_mask"], b["source_extended_ids"],
                      GenerationArguments(max_new_tokens=8))
    beam1 = generate(model, b["input_ids"], b["attention_mask"], b["source_extended_ids"],
                     GenerationArguments(max_new_tokens=8, num_beams=1, early_stopping=True))
    assert greedy == beam1
    # and the beam module itself, forced to width 1
    from selfsup.seq2seq.decoding import beam_search, greedy_or_sample
    args = GenerationArguments(max_new_tokens=8, num_beams=1)
    mk = lambda: ModelStepper(model, b["input_ids"], b["attention_mask"], b["source_extended_ids"])  # noqa: E731
    c = model.config
    assert beam_search(mk(), 3, c.decoder_start_token_id, c.eos_token_id, args) == \
        greedy_or_sample(mk(), 3, c.decoder_start_token_id, c.eos_token_id, args)


def test_beam_finds_a_sequence_at_least_as_likely_as_greedy():
    model, b = tiny(seed=3), batch()
    args = dict(max_new_tokens=6, length_penalty=0.0)
    greedy = generate(model, b["input_ids"], b["attention_mask"], b["source_extended_ids"], GenerationArguments(**args))
    beam = generate(model, b["input_ids"], b["attention_mask"], b["source_extended_ids"],
                    GenerationArguments(num_beams=4, **args))

    def logprob(seqs):
        labels = torch.full((3, 7), -100)
        for i, s in enumerate(seqs):
            labels[i, :len(s)] = torch.tensor(s)
        with torch.no_grad():
            out = model(**{**b, "labels": labels})
        lp = out.logits.gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
        return torch.where(labels != -100, lp, 0.0).sum(-1)

    assert torch.all(logprob(beam) >= logprob(greedy) - 1e-4)


def test_model_distribution_gives_oov_mass_only_through_copy():
    model, b = tiny(coverage=False), batch()
    with torch.no_grad():
        out = model(**b)
    probs = out.logits.exp()
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, 5))
    # OOV slot V in example 0 (positions 2 and 5): (1 - p_gen) × attention there
    expected = (1 - out.p_gen[0, :, 0]) * out.copy_attention[0, :, [2, 5]].sum(-1)
    torch.testing.assert_close(probs[0, :, V], expected)
    assert torch.all(probs[2, :, V:] == 0)  # example 2 has no OOVs
    assert torch.all(out.copy_attention[2, :, 4:] == 0)  # nor attention on padding
    # the loss is the NLL of exactly these probabilities
    labels = b["labels"]
    picked = out.logits.gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    nll = -torch.where(labels != -100, picked, 0.0).sum()
    torch.testing.assert_close(out.loss, nll / (labels != -100).sum())


def test_scheduled_sampling_with_gold_probability_one_is_teacher_forcing():
    model, b = tiny(), batch()  # eval mode: no dropout, so both passes are deterministic

    def loss_and_grads(fn):
        model.zero_grad()
        loss = fn()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    teacher, teacher_grads = loss_and_grads(lambda: model(**b).loss)
    mixed, mixed_grads = loss_and_grads(lambda: scheduled_sampling_loss(model, b, p_gold=1.0).loss)
    torch.testing.assert_close(mixed, teacher)
    assert len(mixed_grads) == len(teacher_grads)
    for g_mixed, g_teacher in zip(mixed_grads, teacher_grads):
        torch.testing.assert_close(g_mixed, g_teacher)
    # at p = 0 the second pass reads the first pass's predictions: another loss
    with torch.no_grad():
        assert not torch.allclose(scheduled_sampling_loss(model, b, p_gold=0.0).loss, teacher)


def test_save_load_round_trip_gives_identical_generations(tmp_path):
    model, b = tiny(), batch()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, SelfsupSeq2SeqForConditionalGeneration) and loaded.config.use_coverage
    args = GenerationArguments(max_new_tokens=10, num_beams=2)
    assert generate(model, b["input_ids"], b["attention_mask"], b["source_extended_ids"], args) == \
        generate(loaded, b["input_ids"], b["attention_mask"], b["source_extended_ids"], args)
    assert (tmp_path / "model.safetensors").exists()


def test_a_folder_saved_before_the_copy_head_was_a_module_loads_and_resaves_in_todays_names(tmp_path):
    # Older folders name the copy head's parameters copy_query.*, copy_key.*, p_gen.* and
    # coverage_weight (today: copy_head.*). coverage_weight is -1.5 (tiny()): a name not mapped
    # on load would come back initialised to 0.
    model, b = tiny(), batch()
    model.save_pretrained(tmp_path / "new")
    saved = load_file(tmp_path / "new" / "model.safetensors")
    assert {"copy_head.query.weight", "copy_head.p_gen.bias", "copy_head.coverage_weight"} <= set(saved)
    legacy = {re.sub(r"^copy_head\.(query|key)\.", r"copy_\1.", k).removeprefix("copy_head."): v
              for k, v in saved.items()}
    assert {"copy_query.weight", "copy_key.bias", "p_gen.weight", "coverage_weight"} <= set(legacy)
    (tmp_path / "new" / "model.safetensors").unlink()
    shutil.copytree(tmp_path / "new", tmp_path / "legacy")
    save_file(legacy, tmp_path / "legacy" / "model.safetensors", metadata={"format": "pt"})

    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "legacy").eval()
    assert loaded.copy_head.coverage_weight.item() == -1.5
    mine, theirs = model.state_dict(), loaded.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    with torch.no_grad():
        out, again = model(**b), loaded(**b)
    assert torch.equal(out.loss, again.loss) and torch.equal(out.logits, again.logits)
    loaded.save_pretrained(tmp_path / "resaved")
    assert set(load_file(tmp_path / "resaved" / "model.safetensors")) == set(saved)


def test_the_model_package_imports_nothing_from_the_task_packages():
    # modeling/seq2seq.py once imported selfsup.seq2seq (copy, coverage), which imports the model
    # back. Read from the sources: importing selfsup.modeling runs selfsup/__init__.py, which
    # loads more than the model package needs.
    tasks = ("seq2seq", "pretrain", "finetune", "icl", "training", "metrics", "tasks")
    found = []
    for path in Path(selfsup.modeling.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                package = "selfsup" if node.level == 2 else "selfsup.modeling" if node.level == 1 else ""
                module = ".".join(filter(None, [package, node.module or ""]))
                names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found += [(path.name, n) for n in names if n.split(".")[:2] in [["selfsup", t] for t in tasks]]
    assert not found, found
