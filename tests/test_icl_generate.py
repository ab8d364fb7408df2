"""generate_until: greedy generation until a stop sequence, scored by exact match.

Batched generation with left padding and the KV cache equals a plain argmax loop without
cache, one prompt at a time; the answer is cut at the earliest stop sequence; the task
schema rejects bad generation fields naming them.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from selfsup.errors import InputError
from selfsup.icl.generation import cut, generate_until, stop_token_ids
from selfsup.icl.harness import evaluate_task
from selfsup.icl.metrics import icl_metrics
from selfsup.icl.tasks import ICLTask, icl_formats, load_task_file

sys.path.insert(0, str(Path(__file__).parent))
from test_icl_scoring import byte_tokenizer, tiny_llama, tiny_selfsup_gpt  # noqa: E402

MODELS = pytest.mark.parametrize("build", [tiny_llama, tiny_selfsup_gpt], ids=["llama", "selfsup-gpt"])
PROMPTS = ["Q: one plus one\nA:", "x", "The quick brown fox jumps over the lazy dog.", "abc", "Once upon a time"]


def hand_greedy(model, tok, context: list[int], until: list[str], max_gen_toks: int) -> tuple[str, str]:
    """The reference: one full forward per new token (no cache, no padding), argmax, stop on
    end-of-sequence or as soon as the decoded text contains a stop sequence."""
    tokens, eos = [], stop_token_ids(model, tok)
    for _ in range(max_gen_toks):
        with torch.no_grad():
            token = int(model(input_ids=torch.tensor([context + tokens]), use_cache=False).logits[0, -1].argmax())
        if token in eos:
            return tok.decode(tokens), "eos"
        tokens.append(token)
        if any(s in tok.decode(tokens) for s in until):
            return tok.decode(tokens), "stop"
    return tok.decode(tokens), "length"


@MODELS
def test_greedy_generation_equals_a_hand_written_argmax_loop_without_cache(build):
    model, tok = build(), byte_tokenizer()
    contexts = [tok.encode(p) for p in PROMPTS]
    free = [hand_greedy(model, tok, c, ["<never>"], 10)[0] for c in contexts]
    # Stop sequences that some rows generate part-way (and others never): rows finish at different steps.
    stops = sorted({text[i:i + 2] for text in free[:2] for i in (2, 5)})
    for until in (["\n"], stops):
        got = generate_until(model, tok, contexts, until, max_gen_toks=10, batch_size=len(contexts), pad_token_id=7)
        want = [hand_greedy(model, tok, c, until, 10) for c in contexts]
        assert [(g.text, g.finish) for g in got] == want
        assert all(g.answer == cut(g.text, until)[0] for g in got)
    assert {f for _, f in want} >= {"stop"}


@MODELS
def test_a_batch_generates_what_each_prompt_generates_alone(build):
    """Left padding (with a pad id that is a real token), mask and position ids: no leak."""
    model, tok = build(), byte_tokenizer()
    contexts = [tok.encode(p) for p in PROMPTS] + [tok.encode("A much longer prompt " * 4)]
    alone = [generate_until(model, tok, [c], ["\n"], 12, pad_token_id=7)[0] for c in contexts]
    for batch_size in (2, 3, len(contexts)):
        assert generate_until(model, tok, contexts, ["\n"], 12, batch_size=batch_size, pad_token_id=7) == alone


def _first_new_pair(text: str, start: int = 2) -> int:
    """Index of the first two printable ASCII characters, from ``start``, not seen before them."""
    for i in range(start, len(text) - 1):
        pair = text[i:i + 2]
        if pair.isascii() and pair.isprintable() and pair not in text[:i + 1]:
            return i
    raise AssertionError(f"no usable stop sequence in {text!r}")


def test_generation_stops_at_the_first_stop_sequence_and_runs_no_further_step():
    model, tok = tiny_llama(), byte_tokenizer()
    context = tok.encode("x")
    free = generate_until(model, tok, [context], ["<never>"], 12)[0].text
    i = _first_new_pair(free)
    stop = free[i:i + 2]  # spans two tokens: detected on the decoded text, not per token
    calls = []
    hook = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        [g] = generate_until(model, tok, [context], ["<never>", stop], 12)
    finally:
        hook.remove()
    assert (g.text, g.answer, g.finish) == (free[:i + 2], free[:i], "stop")
    assert len(calls) == i + 2  # the prompt, then one step per generated token but the last


def test_an_end_of_sequence_token_ends_the_row_and_is_not_part_of_the_text():
    model, tok = tiny_llama(), byte_tokenizer()
    context, tokens = tok.encode("x"), []
    with torch.no_grad():
        for _ in range(8):  # the free greedy tokens
            tokens.append(int(model(input_ids=torch.tensor([context + tokens])).logits[0, -1].argmax()))
    k = next(i for i in range(2, len(tokens)) if tokens[i] not in tokens[:i])
    model.generation_config.eos_token_id = [tok.eos_token_id, tokens[k]]  # the model's own end token(s)
    [g] = generate_until(model, tok, [context], ["<never>"], 8)
    assert (g.text, g.finish) == (tok.decode(tokens[:k]), "eos")


@pytest.mark.parametrize("text, until, delimiter, answer", [
    (" Paris.\nNext", ["\n", "."], " ", "Paris"),     # the earliest stop wins, whatever the list order
    (" Paris.\nNext", ["\n"], " ", "Paris."),
    ("  Paris", [" "], " ", ""),                      # only one leading delimiter is removed
    ("Paris is", [" "], " ", "Paris"),                # no delimiter to remove: nothing removed
    (" Paris", [" "], "", ""),                        # no delimiter: the leading space is a stop
    ("no stop here", ["\n"], "", "no stop here"),
])
def test_the_answer_is_cut_before_the_earliest_stop_sequence(text, until, delimiter, answer):
    assert cut(text, until, delimiter)[0] == answer
    assert cut(text, until, delimiter)[1] == (answer != text.removeprefix(delimiter))


def test_exact_match_compares_answer_and_target_after_stripping_whitespace():
    em = icl_metrics.get("exact_match")
    assert em({"answer": "Paris", "target": "Paris"}) == 1.0
    assert em({"answer": " Paris\n", "target": "Paris "}) == 1.0
    assert em({"answer": "paris", "target": "Paris"}) == 0.0     # case matters
    assert em({"answer": "Paris", "target": "Paris."}) == 0.0    # so does punctuation
    assert em({"answer": "", "target": "Paris"}) == 0.0


def _toy_gen_task(tmp_path, targets: list[str], extra: str = "") -> ICLTask:
    """``Q: question i`` -> ``targets[i]``; demonstrations from a fixed split ``Q: demo j`` -> ``answer j``."""
    for name, rows in (("gen", [{"q": f"question {i}", "a": a} for i, a in enumerate(targets)]),
                       ("gen_demos", [{"q": f"demo {j}", "a": f"answer {j}"} for j in range(3)])):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    if "gen_toy" not in icl_formats:
        icl_formats.register("gen_toy", lambda row: {"q": row["q"], "choices": [row["a"]], "gold": 0})
    spec = tmp_path / "gen.yaml"
    spec.write_text(f"name: gen_toy\nversion: 1\nformat: gen_toy\ndata: {tmp_path / 'gen.jsonl'}\n"
                    f"fewshot_data: {tmp_path / 'gen_demos.jsonl'}\noutput_type: generate_until\n"
                    f'prompt: "Q: {{q}}\\nA:"\nmax_gen_toks: 4\n{extra}')
    return load_task_file(spec)


def test_harness_records_generations_and_scores_exact_match_by_hand(tmp_path):
    model, tok = tiny_llama(), byte_tokenizer()
    first = evaluate_task(model, tok, _toy_gen_task(tmp_path, ["@@"] * 6), 1, seed=0, batch_size=4)
    answers = [r["answer"] for r in first.records]
    assert all(a.strip() for a in answers[::2]), answers  # the model's answers, usable as targets
    # Even rows: the target is what the model answers (padded with spaces); odd rows: never.
    targets = [f" {a} " if i % 2 == 0 else "@@" for i, a in enumerate(answers)]
    result = evaluate_task(model, tok, _toy_gen_task(tmp_path, targets), 1, seed=0, batch_size=4)
    assert result.metrics["exact_match"] == pytest.approx(0.5) and result.metrics["n"] == 6
    assert result.metrics["exact_match_stderr"] > 0
    for i, r in enumerate(result.records):
        assert r["output_type"] == "generate_until" and "logprobs" not in r
        assert r["target"] == targets[i] and r["prediction"] == r["answer"] == answers[i]
        assert r["answer"] == cut(r["generation"], ["\n"], " ")[0] and r["finish"] in ("stop", "eos", "length")
        assert r["exact_match"] == float(i % 2 == 0)
        [prompt] = r["prompts"]  # one demonstration with its answer after the delimiter, then the question
        assert prompt.startswith("Q: demo ") and prompt.endswith(f"\n\nQ: question {i}\nA:")
        demo = prompt.split("\n\n")[0]
        assert demo == "Q: demo {0}\nA: answer {0}".format(demo[len("Q: demo "):].split("\n")[0])


def test_each_process_generates_its_own_slice_and_the_union_is_every_example_once(tmp_path):
    model, tok = tiny_llama(), byte_tokenizer()
    task = _toy_gen_task(tmp_path, [f"t{i}" for i in range(7)])
    single = evaluate_task(model, tok, task, 0, batch_size=3).records
    # Outside a distributed launch gather_object returns the local records: each process's slice.
    parts = [evaluate_task(model, tok, task, 0, batch_size=3,
                           accelerator=SimpleNamespace(num_processes=2, process_index=p)).records for p in (0, 1)]
    assert [r["index"] for r in parts[0]] == [0, 2, 4, 6] and [r["index"] for r in parts[1]] == [1, 3, 5]
    merged = sorted(parts[0] + parts[1], key=lambda r: r["index"])
    assert [r["generation"] for r in merged] == [r["generation"] for r in single]


@pytest.mark.parametrize("change, field, message", [
    ("stop: ['\\n']\n", "stop", "unknown fields \\['stop'\\]"),
    ("until: '\\n'\n", "until", "until must be a non-empty list of non-empty strings"),
    ("until: ['\\n', 3]\n", "until", "until must be a non-empty list"),
    ("until: []\n", "until", "until must be a non-empty list"),
    ("max_gen_toks: 0\n", "max_gen_toks", "max_gen_toks must be an integer >= 1, got 0"),
    ("max_gen_toks: ten\n", "max_gen_toks", "max_gen_toks must be an integer >= 1"),
    ("metrics: [acc]\n", "metrics", "metric 'acc' does not apply to output_type 'generate_until'"),
    ('prompt: "Q: {q} {choice}"\n', "prompt", "cannot use \\{choice\\}"),
])
def test_bad_generation_fields_are_rejected_naming_file_and_field(tmp_path, change, field, message):
    good = _toy_gen_task(tmp_path, ["a"]).source
    key = change.split(":")[0]
    lines = [line for line in open(good).read().splitlines() if not line.startswith(key + ":")]
    bad = tmp_path / "bad.yaml"
    bad.write_text("\n".join(lines) + "\n" + change)
    with pytest.raises(InputError, match=message) as err:
        load_task_file(bad)
    assert err.value.field == field and str(bad) in str(err.value)


def test_generation_fields_on_a_log_likelihood_task_are_rejected(tmp_path):
    spec = tmp_path / "mc.yaml"
    spec.write_text("name: mc\nversion: 1\nformat: copa\ndata: x.jsonl\nprompt: '{premise}'\nuntil: ['.']\n")
    with pytest.raises(InputError, match="only output_type generate_until reads 'until'") as err:
        load_task_file(spec)
    assert err.value.field == "until"


def test_max_gen_toks_must_leave_room_for_the_context(tmp_path):
    task = _toy_gen_task(tmp_path, ["a"])
    with pytest.raises(InputError, match="max_gen_toks=4 leaves no room for the context in a window of 4"):
        evaluate_task(tiny_llama(), byte_tokenizer(), task, 0, max_length=4)
