"""Fast scoring (each context once, its continuations packed after it in the same row, length
batching) equals naive one-request-one-forward scoring, and both equal transformers' own loss."""
from __future__ import annotations

import inspect
import json
import warnings

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

import selfsup  # noqa: F401  (registers selfsup-gpt)
from selfsup.icl.generation import generate_until
from selfsup.icl.harness import evaluate_task
from selfsup.icl.padding import pad, positions
from selfsup.icl.requests import Request, encode_pair
from selfsup.icl.scoring import length_batches, score_fast, score_naive
from selfsup.icl.tasks import icl_formats, load_task_file
from selfsup.modeling.cache_kwargs import cache_keyword


def tiny_llama(vocab=260):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=37, max_position_embeddings=512)
    return AutoModelForCausalLM.from_config(cfg).eval()


def tiny_selfsup_gpt(vocab=260):
    torch.manual_seed(0)
    cfg = AutoConfig.for_model("selfsup-gpt", vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=4, intermediate_size=37, max_position_embeddings=512)
    return AutoModelForCausalLM.from_config(cfg).eval()


def byte_tokenizer():
    """Byte-level, no merges: every character is a token, so choices span several tokens."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)} | {"<eos>": 256}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>")


def random_requests(n_contexts=9, seed=1):
    """Contexts of 1..40 tokens, each with 1..4 choices of 1..6 tokens (single-token ones included)."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda lo, hi: int(torch.randint(lo, hi, (1,), generator=g))  # noqa: E731
    requests = []
    for _ in range(n_contexts):
        context = torch.randint(0, 256, (rand(1, 40),), generator=g).tolist()
        requests += [Request(context, torch.randint(0, 256, (rand(1, 7),), generator=g).tolist())
                     for _ in range(rand(1, 5))]
    return requests


def reference_logprob(model, r: Request) -> float:
    """transformers' own shifted cross-entropy over the continuation tokens only."""
    ids = torch.tensor([r.context + r.continuation])
    labels = ids.clone()
    labels[0, :len(r.context)] = -100
    with torch.no_grad():
        return -model(input_ids=ids, labels=labels).loss.item() * len(r.continuation)


@pytest.mark.parametrize("build", [tiny_llama, tiny_selfsup_gpt], ids=["llama", "selfsup-gpt"])
def test_naive_matches_transformers_loss_and_fast_matches_naive_at_every_batch_size(build):
    model, requests = build(), random_requests()
    naive = score_naive(model, requests)
    for r, s in zip(requests[:6], naive):
        assert s.logprob == pytest.approx(reference_logprob(model, r), abs=1e-4)
    for batch_size in (1, 2, 3, 64):
        fast = score_fast(model, requests, batch_size=batch_size, pad_token_id=7)
        assert max(abs(a.logprob - b.logprob) for a, b in zip(naive, fast)) < 1e-4
        assert [a.is_greedy for a in naive] == [b.is_greedy for b in fast]


def uneven_requests(seed=2):
    """Contexts of 1, 2, 3, 60, 61 and 150 tokens (so batches split by length), repeated
    out of order, each with single-token choices next to choices of 2, 3 and 25 tokens."""
    g = torch.Generator().manual_seed(seed)
    contexts = [torch.randint(0, 256, (n,), generator=g).tolist() for n in (1, 2, 3, 60, 61, 150)]
    requests = []
    for k, context in enumerate(contexts + contexts[::2]):
        for n in (1, 2, 1, 3, 25)[: 2 + k % 4]:
            requests.append(Request(context, torch.randint(0, 256, (n,), generator=g).tolist()))
    requests.append(Request(requests[0].context, requests[0].continuation))  # the same request twice
    return requests


@pytest.mark.parametrize("build", [tiny_llama, tiny_selfsup_gpt], ids=["llama", "selfsup-gpt"])
def test_fast_matches_naive_with_uneven_lengths_mixed_choices_and_repeated_contexts(build):
    model, requests = build(), uneven_requests()
    naive = score_naive(model, requests)
    for batch_size in (1, 2, 5, 64):
        for forward_cost in (0, 32, 10**6):  # many small batches .. one batch per context group
            fast = score_fast(model, requests, batch_size=batch_size, pad_token_id=3, forward_cost=forward_cost)
            assert max(abs(a.logprob - b.logprob) for a, b in zip(naive, fast)) < 1e-4
            assert [a.is_greedy for a in naive] == [b.is_greedy for b in fast]


def test_the_kv_cache_is_passed_by_the_keyword_each_forward_declares():
    # transformers 5.24 renamed past_key_values to cache (the old name warns until 5.40);
    # selfsup-gpt declares cache and takes past_key_values too (selfsup.modeling.cache_kwargs).
    llama, ours = tiny_llama(), tiny_selfsup_gpt()
    declared = inspect.signature(type(llama).forward).parameters
    assert cache_keyword(llama) == ("cache" if "cache" in declared else "past_key_values")
    assert cache_keyword(ours) == "cache"
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        score_fast(llama, uneven_requests(), pad_token_id=3)
        generate_until(llama, byte_tokenizer(), [[5, 6, 7], [8, 9]], ["\n"], 4, pad_token_id=3)


def test_single_token_choices_cost_one_forward_per_batch_without_a_cache():
    model, calls = tiny_llama(), []
    model.register_forward_pre_hook(lambda m, args, kwargs: calls.append(kwargs), with_kwargs=True)
    context = list(range(10, 30))
    requests = [Request(context, [t]) for t in (5, 6, 7)] + [Request(context[1:], [t]) for t in (5, 6)]
    fast = score_fast(model, requests, batch_size=8)
    assert len(calls) == 1 and calls[0]["use_cache"] is False and calls[0]["logits_to_keep"] == 1
    naive = score_naive(model, requests)
    assert max(abs(a.logprob - b.logprob) for a, b in zip(naive, fast)) < 1e-4


@pytest.mark.parametrize("build", [tiny_llama, tiny_selfsup_gpt], ids=["llama", "selfsup-gpt"])
def test_one_forward_runs_each_context_token_and_each_continuation_token_once(build):
    model, calls = build(), []
    model.register_forward_pre_hook(lambda m, args, kwargs: calls.append(kwargs), with_kwargs=True)
    a, b = list(range(10, 30)), list(range(40, 52))  # contexts of 20 and 12 tokens
    requests = [Request(a, [1, 2, 3, 4]), Request(b, [5, 6, 7]), Request(a, [8]), Request(a, [9, 10]),
                Request(b, [11, 12, 13])]
    fast = score_fast(model, requests, batch_size=8, forward_cost=10**6)
    (call,) = calls
    # Row a: 20 context tokens, then its continuations longest first without their last token (3, 1, 0);
    # row b: 12 (left-padded to 20), then 2 and 2. Blocks are as wide as their longest: 3 and 2.
    assert call["input_ids"].shape == (2, 20 + 3 + 2) and call["use_cache"] is False
    assert call["attention_mask"].shape == (2, 1, 25, 25) and call["logits_to_keep"] == 1 + 3 + 2
    assert call["input_ids"][1].tolist() == [0] * 8 + b + [5, 6, 0, 11, 12]  # 0: padding
    assert call["position_ids"][1, 8:].tolist() == list(range(12)) + [12, 13, 0, 12, 13]
    naive = score_naive(model, requests)
    assert max(abs(x.logprob - y.logprob) for x, y in zip(naive, fast)) < 1e-4
    assert [x.is_greedy for x in naive] == [y.is_greedy for y in fast]


def test_pad_puts_the_last_token_of_every_row_in_the_last_column_and_positions_skip_padding():
    ids, mask = pad([[5, 6, 7], [8]], 0, left=True, device="cpu")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert positions(mask).tolist() == [[0, 1, 2], [0, 0, 0]]
    ids, mask = pad([[5, 6, 7], [8]], 9, left=False, device="cpu")
    assert ids.tolist() == [[5, 6, 7], [8, 9, 9]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]


@pytest.mark.parametrize("seed", range(20))
def test_length_batches_is_the_cheapest_split_into_consecutive_batches(seed):
    import itertools
    import random

    rng = random.Random(seed)
    lengths = sorted((rng.randint(1, 60) for _ in range(rng.randint(1, 8))), reverse=True)
    max_size, forward_cost = rng.randint(1, 4), rng.choice([0, 5, 32])
    cost = lambda cuts: sum(lengths[s.start] * (s.stop - s.start) + forward_cost for s in cuts)  # noqa: E731
    batches = length_batches(lengths, max_size, forward_cost)
    assert [i for s in batches for i in range(s.start, s.stop)] == list(range(len(lengths)))
    assert all(0 < s.stop - s.start <= max_size for s in batches)
    best = float("inf")
    for mask in itertools.product((0, 1), repeat=len(lengths) - 1):  # every way to cut between neighbours
        bounds = [0] + [i + 1 for i, m in enumerate(mask) if m] + [len(lengths)]
        cuts = [slice(a, b) for a, b in zip(bounds, bounds[1:])]
        if all(s.stop - s.start <= max_size for s in cuts):
            best = min(best, cost(cuts))
    assert cost(batches) == best


def test_greedy_flag_is_true_exactly_when_the_continuation_is_the_argmax_path():
    model = tiny_llama()
    context = [5, 17, 3]
    greedy = []
    with torch.no_grad():
        for _ in range(3):
            greedy.append(int(model(input_ids=torch.tensor([context + greedy])).logits[0, -1].argmax()))
    other = greedy[:2] + [(greedy[2] + 1) % 256]
    fast = score_fast(model, [Request(context, greedy), Request(context, other)], batch_size=2)
    assert [s.is_greedy for s in fast] == [True, False]


def test_leading_space_moves_from_context_to_continuation_as_in_lm_eval():
    tok = byte_tokenizer()
    with_space = encode_pair(tok, "Answer: ", "yes", max_length=512)
    without = encode_pair(tok, "Answer:", " yes", max_length=512)
    assert with_space == without
    assert tok.decode(without.continuation) == " yes" and tok.decode(without.context) == "Answer:"
    truncated = encode_pair(tok, "abcdefgh", " yes", max_length=6)
    assert tok.decode(truncated.context) == "gh" and len(truncated.context + truncated.continuation) == 6


@pytest.fixture
def lengths_task(tmp_path):
    """Choices of very different lengths, so acc and acc_norm can disagree."""
    rows = [{"q": f"item {i}", "a": ["ok", "a much longer answer", "mid answer"], "y": i % 3} for i in range(7)]
    (tmp_path / "lengths.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    if "lengths" not in icl_formats:
        icl_formats.register("lengths", lambda row: {"q": row["q"], "choices": row["a"], "gold": row["y"]})
    spec = tmp_path / "lengths.yaml"
    spec.write_text(f"name: lengths\nversion: 1\nformat: lengths\ndata: {tmp_path / 'lengths.jsonl'}\n"
                    'prompt: "Q: {q}\\nA:"\n')
    return load_task_file(spec)


def test_harness_records_are_identical_for_naive_fast_and_any_batch_size(lengths_task):
    model, tok = tiny_llama(), byte_tokenizer()
    runs = [evaluate_task(model, tok, lengths_task, 2, seed=3, scorer="naive", calibrate=True)]
    runs += [evaluate_task(model, tok, lengths_task, 2, seed=3, scorer="fast", batch_size=b, calibrate=True)
             for b in (1, 4)]
    for run in runs[1:]:
        for a, b in zip(runs[0].records, run.records):
            assert a["fewshot_ids"] == b["fewshot_ids"] and a["prompts"] == b["prompts"]
            assert a["logprobs"] == pytest.approx(b["logprobs"], abs=1e-4)
            assert a["content_free_logprobs"] == pytest.approx(b["content_free_logprobs"], abs=1e-4)
        assert run.metrics == pytest.approx(runs[0].metrics)


def test_acc_and_acc_norm_by_hand_on_a_tiny_model(lengths_task):
    model, tok = tiny_llama(), byte_tokenizer()
    result = evaluate_task(model, tok, lengths_task, 1, seed=0)
    hand_acc, hand_norm = [], []
    for record in result.records:
        lls = []
        for prompt, choice in zip(record["prompts"], record["choices"]):
            r = Request(tok.encode(prompt), tok.encode(" " + choice))
            lls.append(reference_logprob(model, r))
        assert record["logprobs"] == pytest.approx(lls, abs=1e-4)
        hand_acc.append(max(range(3), key=lambda i: lls[i]) == record["gold"])
        hand_norm.append(max(range(3), key=lambda i: lls[i] / len(record["choices"][i])) == record["gold"])
    assert result.metrics["acc"] == pytest.approx(sum(hand_acc) / 7)
    assert result.metrics["acc_norm"] == pytest.approx(sum(hand_norm) / 7)
    assert result.metrics["n"] == 7 and result.metrics["acc_stderr"] >= 0


@pytest.mark.slow  # three interpreter start-ups (accelerate launch with 2 processes, then 1)
def test_two_processes_score_each_example_once_with_the_same_results(shared_data, tmp_path, accelerate_launch):
    import os
    import subprocess
    import sys
    from pathlib import Path

    tiny_llama().save_pretrained(tmp_path / "model")
    byte_tokenizer().save_pretrained(tmp_path / "model")
    script = Path(__file__).parent.parent / "scripts" / "icl_eval.py"
    flags = ["--model", str(tmp_path / "model"), "--tasks", "copa", "--num_fewshot", "1", "--limit", "7"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "1"}
    subprocess.run([*accelerate_launch(2), str(script), *flags, "--output_dir", str(tmp_path / "dp")],
                   check=True, env=env)
    subprocess.run([sys.executable, str(script), *flags, "--output_dir", str(tmp_path / "sp")], check=True, env=env)
    read = lambda d: [json.loads(line) for line in (tmp_path / d / "samples_copa_1shot.jsonl").read_text().splitlines()]  # noqa: E731
    two, one = read("dp"), read("sp")
    assert json.loads((tmp_path / "dp" / "results.json").read_text())["provenance"]["num_processes"] == 2
    assert [r["index"] for r in two] == list(range(7))  # 7 odd: one process gets 4, the other 3
    for a, b in zip(two, one):
        # Batches differ (each process scores its own slice): equal within the 1e-4 tolerance of the spec.
        assert a["logprobs"] == pytest.approx(b["logprobs"], abs=1e-4) and a["fewshot_ids"] == b["fewshot_ids"]


def test_a_peft_adapter_is_applied_on_top_of_the_base_model(tmp_path):
    from peft import LoraConfig, get_peft_model

    from selfsup.icl.models import load_model

    base = tiny_llama()
    base.save_pretrained(tmp_path / "base")
    byte_tokenizer().save_pretrained(tmp_path / "base")
    torch.manual_seed(1)  # init_lora_weights=False: a non-zero adapter, so it visibly changes the logits
    adapted = get_peft_model(tiny_llama(),
                             LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapted.save_pretrained(tmp_path / "adapter")
    loaded, _ = load_model(str(tmp_path / "base"), peft=str(tmp_path / "adapter"))
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, adapted.eval()(input_ids=ids).logits, atol=1e-5)
        assert not torch.allclose(loaded(input_ids=ids).logits, base(input_ids=ids).logits, atol=1e-3)


def test_batches_are_padded_with_the_pad_token_else_eos_else_zero():
    from types import SimpleNamespace as T

    from selfsup.icl.models import pad_token_id
    assert pad_token_id(T(pad_token_id=7, eos_token_id=2)) == 7
    assert pad_token_id(T(pad_token_id=None, eos_token_id=0)) == 0
    assert pad_token_id(T(pad_token_id=None, eos_token_id=2)) == 2
    assert pad_token_id(T(pad_token_id=None, eos_token_id=None)) == 0
