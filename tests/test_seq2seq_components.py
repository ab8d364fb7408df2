"""Specifications of the seq2seq building blocks: copy mixture, coverage, scheduled
sampling schedules, tokenizer extended ids, jsonl validation, metrics, names task."""
from __future__ import annotations

import json
import math

import pytest
import torch

from selfsup.errors import InputError
from selfsup.metrics.generation import corpus_bleu, exact_match, rouge
from selfsup.modeling.copy_head import copy_distribution, coverage_attention, coverage_loss
from selfsup.seq2seq.data import read_pairs
from selfsup.seq2seq.decoding import _filter_top_k_top_p, ban_repeated_ngrams
from selfsup.seq2seq.scheduled_sampling import mix_inputs, schedules
from selfsup.seq2seq.tokenizer import WordTokenizer
from selfsup.tasks import names

VOCAB, PAD = 6, 0


def _mixture_inputs():
    torch.manual_seed(0)
    vocab_probs = torch.rand(2, 3, VOCAB)
    vocab_probs[..., PAD] = 0  # the model never generates [PAD]
    vocab_probs = vocab_probs / vocab_probs.sum(-1, keepdim=True)
    # attention deliberately leaks onto the padded source positions: the mixture must drop it
    attention = torch.rand(2, 3, 4).softmax(-1)
    p_gen = torch.tensor([0.3, 0.6, 0.9]).view(1, 3, 1).expand(2, 3, 1)
    ext = torch.tensor([[4, VOCAB + 0, VOCAB + 1, VOCAB + 0], [5, 2, PAD, PAD]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    return vocab_probs, attention, p_gen, ext, mask


def test_copy_distribution_sums_to_one_and_puts_no_mass_on_padding():
    vocab_probs, attention, p_gen, ext, mask = _mixture_inputs()
    final = copy_distribution(vocab_probs, attention, p_gen, ext, num_extra=2, source_mask=mask)
    assert final.shape == (2, 3, VOCAB + 2)
    torch.testing.assert_close(final.sum(-1), torch.ones(2, 3))
    assert torch.all(final[..., PAD] == 0)
    # example 1 has no OOV words: its extended slots get nothing
    assert torch.all(final[1, :, VOCAB:] == 0)
    # its copy mass is the renormalised attention over its two real tokens
    renorm = attention[1, :, :2] / attention[1, :, :2].sum(-1, keepdim=True)
    torch.testing.assert_close(final[1, :, 5],
                               p_gen[1, :, 0] * vocab_probs[1, :, 5] + (1 - p_gen[1, :, 0]) * renorm[:, 0])


def test_oov_source_word_gets_probability_through_the_copy_path_only():
    vocab_probs, attention, p_gen, ext, mask = _mixture_inputs()
    final = copy_distribution(vocab_probs, attention, p_gen, ext, num_extra=2, source_mask=mask)
    # OOV #0 occurs at source positions 1 and 3: its probability is (1 - p_gen) times their attention
    expected = (1 - p_gen[0, :, 0]) * (attention[0, :, 1] + attention[0, :, 3])
    torch.testing.assert_close(final[0, :, VOCAB], expected)
    # with p_gen = 1 (generate only) it cannot be produced at all
    only_gen = copy_distribution(vocab_probs, attention, torch.ones_like(p_gen), ext, 2, mask)
    assert torch.all(only_gen[..., VOCAB:] == 0)


def test_coverage_loss_by_hand():
    attention = torch.tensor([[[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]])
    coverage = torch.tensor([[[0.0, 0.0], [0.5, 0.5], [1.4, 0.6]]])
    # step 0: 0; step 1: min(.9,.5)+min(.1,.5) = 0.6; step 2 is not a target position
    loss = coverage_loss(attention, coverage, torch.tensor([[1, 1, 0]]))
    assert loss.item() == pytest.approx(0.6)


def test_coverage_attention_accumulates_and_feeds_back():
    scores = torch.tensor([[[2.0, 0.0, 0.0], [2.0, 0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])
    attn, cov_before, cov_after = coverage_attention(scores, mask, torch.tensor(-3.0))
    a0 = torch.tensor([math.e ** 2, 1.0]) / (math.e ** 2 + 1)
    torch.testing.assert_close(attn[0, 0, :2], a0)
    assert attn[0, :, 2].abs().max() == 0  # padding
    torch.testing.assert_close(cov_before[0, 1, :2], a0)
    # step 1 is step 0's scores minus 3 × coverage: attending again is penalised
    a1 = (torch.tensor([2.0, 0.0]) - 3 * a0).softmax(-1)
    torch.testing.assert_close(attn[0, 1, :2], a1)
    torch.testing.assert_close(cov_after[0, :2], a0 + a1)


def test_schedule_values():
    assert schedules.get("linear")(10, k=1.0, c=0.05) == pytest.approx(0.5)
    assert schedules.get("linear")(100, k=1.0, c=0.05, minimum=0.1) == pytest.approx(0.1)
    assert schedules.get("exponential")(2, k=0.9) == pytest.approx(0.81)
    assert schedules.get("inverse_sigmoid")(0, k=20) == pytest.approx(20 / 21)
    # at i = k ln k, exp(i/k) = k, so ε = 1/2
    assert schedules.get("inverse_sigmoid")(20 * math.log(20), k=20) == pytest.approx(0.5)
    assert schedules.get("inverse_sigmoid")(10 ** 6, k=20) == pytest.approx(0.0)
    with pytest.raises(KeyError, match="did you mean 'inverse_sigmoid'"):
        schedules.get("inverse_sigmod")


def test_mixing_is_per_token_and_keeps_the_start_token():
    gold = torch.tensor([[2, 10, 11, 12, 13]] * 400)
    pred = torch.tensor([[20, 21, 22, 23, 24]] * 400)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(mix_inputs(gold, pred, 1.0, g), gold)
    everything_predicted = mix_inputs(gold, pred, 0.0, g)
    assert torch.equal(everything_predicted[0], torch.tensor([2, 20, 21, 22, 23]))  # input t = prediction at t-1
    mixed = mix_inputs(gold, pred, 0.7, g)
    frac_gold = (mixed[:, 1:] == gold[:, 1:]).float().mean().item()
    assert frac_gold == pytest.approx(0.7, abs=0.03)
    # chosen per token, not per sequence: rows are neither all gold nor all predicted
    assert ((mixed[:, 1:] == gold[:, 1:]).float().mean(1) % 1 != 0).any()


def test_tokenizer_caps_the_vocabulary_and_round_trips_extended_ids(tmp_path):
    texts = ["Hi , I am Bob .", "Nice to meet you , Bob ."] * 3 + ["a rare word"]
    tok = WordTokenizer.train(texts, vocab_size=10)
    assert len(tok) == 10 and "rare" not in tok.vocab
    src = tok.encode_source("Hi , I am Kuroro , Kuroro Zed")
    assert src.oovs[-2:] == ["Kuroro", "Zed"]
    kuroro = len(tok) + src.oovs.index("Kuroro")
    assert src.extended_ids.count(kuroro) == 2 and src.input_ids.count(tok.unk_id) == len(src.input_ids) - 4
    labels = tok.encode_target("Nice , Kuroro ! Bob", src.oovs)
    assert kuroro in labels and labels[-1] == tok.eos_id
    assert tok.encode_target("Nice , Kuroro", None)[2] == tok.unk_id  # copy off: [UNK]
    assert tok.decode(labels, src.oovs) == "Nice , Kuroro ! Bob".replace("!", "[UNK]")
    tok.save_pretrained(tmp_path)
    again = WordTokenizer.from_pretrained(tmp_path)
    assert again.encode_source("Hi , I am Kuroro").extended_ids == tok.encode_source("Hi , I am Kuroro").extended_ids


@pytest.mark.parametrize("row, field", [({"src": "hello"}, "tgt"), ({"src": "hello", "tgt": "  "}, "tgt"),
                                        ({"tgt": "x"}, "src")])
def test_bad_rows_are_rejected_naming_file_line_and_field(tmp_path, row, field):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"src": "ok", "tgt": "fine"}) + "\n\n" + json.dumps(row) + "\n")
    with pytest.raises(InputError) as e:
        read_pairs(path, "src", "tgt")
    assert f"bad.jsonl:3: field {field!r}" in str(e.value)


def test_bleu_by_hand():
    # 1-grams 3/4, 2-grams 1/3, 3- and 4-grams 0 → exp-smoothed 1/4 and 1/4; BP = exp(1 - 6/4)
    expected = 100 * math.exp(1 - 6 / 4) * (3 / 4 * 1 / 3 * 1 / 4 * 1 / 4) ** 0.25
    assert corpus_bleu(["the cat the cat"], ["the cat sat on the mat"]) == pytest.approx(expected)
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    # corpus-level: counts are pooled, not sentence scores averaged
    pooled = corpus_bleu(["a b c d", "a b c d e"], [["a b c d"], ["a b c d x"]])
    expected = 100 * ((4 + 4) / 9 * (3 + 3) / 7 * (2 + 2) / 5 * (1 + 1) / 3) ** 0.25
    assert pooled == pytest.approx(expected)


def test_rouge_by_hand():
    scores = rouge(["the cat was found under the bed"], ["the cat was under the bed"])
    # unigrams 6 of 7 / 6 of 6; bigrams 4 of 6 / 4 of 5; LCS 6
    assert scores["rouge1"] == pytest.approx(100 * 12 / 13)
    assert scores["rouge2"] == pytest.approx(100 * 16 / 22)
    assert scores["rougeL"] == pytest.approx(100 * 12 / 13)
    # several references: the best one counts
    assert rouge(["a b"], [["x y", "A b"]])["rouge1"] == pytest.approx(100.0)
    assert exact_match(["a  b", "c"], [["x", "a b"], "d"]) == 0.5


def test_no_repeat_ngram_and_top_k_top_p_filters():
    logp = torch.zeros(1, 6)
    banned = ban_repeated_ngrams(logp, torch.tensor([[1, 2, 3, 1]]), 2)
    assert banned[0].tolist() == [0, 0, float("-inf"), 0, 0, 0]  # "1 2" seen: 2 may not follow 1
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    assert torch.isfinite(_filter_top_k_top_p(probs, 0, 0.7)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(_filter_top_k_top_p(probs, 0, 0.8)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(_filter_top_k_top_p(probs, 3, 1.0)).tolist() == [[True, True, True, False]]


def test_names_task_is_deterministic_and_held_out_names_are_unseen():
    a, b = names.generate(300, 50, seed=3), names.generate(300, 50, seed=3)
    assert a == b and names.generate(300, 50, seed=4) != a
    train = {r["name"] for r in a["train"]}
    held = {r["name"] for r in a["test"]} | {r["name"] for r in a["validation"]}
    assert len(train) == 300 and len(held) == 100 and not train & held
    for row in a["test"]:
        assert row["name"] in row["src"].split() and row["name"] in row["tgt"].split()
