"""Metrics against hand-computed values, scipy, and the official definitions' edge cases."""
from __future__ import annotations

import math

import pytest
from scipy import stats

from selfsup.metrics import accuracy, f1_binary, matthews_corrcoef, metrics, pearson, spearman
from selfsup.metrics.seqeval import entities, entity_f1
from selfsup.metrics.squad import normalize_answer, squad


def test_accuracy_and_binary_f1_by_hand():
    preds, refs = [1, 0, 1, 1, 0, 0], [1, 0, 0, 1, 1, 0]
    assert accuracy(preds, refs) == 4 / 6
    # tp=2 fp=1 fn=1 → F1 = 2·2 / (2·2 + 1 + 1)
    assert f1_binary(preds, refs) == 4 / 6
    assert f1_binary([0, 0], [1, 0]) == 0.0


def test_matthews_correlation_by_hand_and_for_a_constant_prediction():
    preds, refs = [1, 1, 0, 0, 1, 0, 1], [1, 0, 0, 0, 1, 1, 1]
    tp, tn, fp, fn = 3, 2, 1, 1
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert matthews_corrcoef(preds, refs) == pytest.approx(expected)
    assert matthews_corrcoef([1, 1, 1, 1], [1, 0, 1, 0]) == 0.0  # all one class: defined as 0
    assert matthews_corrcoef([0, 1, 0, 1], [0, 1, 0, 1]) == 1.0


def test_correlations_match_scipy_including_ties():
    preds = [0.1, 0.4, 0.4, 2.0, 1.5, 0.3, 3.3]
    refs = [0.0, 1.0, 2.0, 2.0, 4.0, 1.0, 5.0]
    assert pearson(preds, refs) == pytest.approx(stats.pearsonr(preds, refs)[0])
    assert spearman(preds, refs) == pytest.approx(stats.spearmanr(preds, refs)[0])


def test_squad_normalisation_and_scores():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    refs = {"q1": ["Denver Broncos", "The Broncos"], "q2": ["Santa Clara, California"], "q3": ["1998"]}
    preds = {"q1": "the broncos", "q2": "Santa Clara", "q3": ""}
    out = squad(preds, refs)
    assert out["exact_match"] == pytest.approx(100 / 3)
    # q2: precision 2/2, recall 2/3 → F1 0.8; q3: empty prediction scores 0
    assert out["f1"] == pytest.approx(100 * (1 + 0.8 + 0) / 3)


def test_squad_v2_no_answer_questions():
    out = squad({"a": "", "b": "x", "c": "Paris"}, {"a": [], "b": [], "c": ["Paris"]})
    assert out["exact_match"] == pytest.approx(200 / 3)
    assert out["NoAns_exact"] == 50.0 and out["HasAns_exact"] == 100.0


def test_squad_needs_a_prediction_for_every_question():
    with pytest.raises(ValueError, match="no prediction"):
        squad({}, {"q": ["x"]})


def test_iob2_entities():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"]
    assert entities(tags, "IOB2") == {("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5), ("ORG", 5, 6)}


def test_iob1_entities_including_one_at_sentence_end():
    # IOB1: I- starts a chunk; B- separates two adjacent chunks of the same type.
    tags = ["I-ORG", "I-ORG", "O", "I-PER", "B-PER", "I-PER"]
    assert entities(tags, "IOB1") == {("ORG", 0, 2), ("PER", 3, 4), ("PER", 4, 6)}


def test_entity_f1_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-MISC"]]
    out = entity_f1(pred, gold)
    # tp = 2 (PER, ORG), predicted 3, gold 3
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 / 3) and out["PER_f1"] == 1.0 and out["LOC_f1"] == 0.0


def test_boundary_errors_count_as_wrong():
    assert entity_f1([["B-PER", "O"]], [["B-PER", "I-PER"]])["f1"] == 0.0


def test_metrics_are_found_by_name_with_suggestions():
    assert metrics.get("mcc") is matthews_corrcoef
    with pytest.raises(KeyError, match="did you mean 'accuracy'"):
        metrics.get("acuracy")


def test_conll2003_entity_counts_match_the_published_ones_and_iob1_equals_iob2(shared_data):
    """The HF conll2003 card's train counts (PER 6600, ORG 6321, LOC 7140, MISC 3438), and the
    original IOB1 test file chunks to exactly the entities of its IOB2 conversion."""
    from selfsup.finetune.readers import read_conll
    from selfsup.tasks.conll2003 import LABELS

    counts: dict[str, int] = {}
    for sentence in read_conll(shared_data / "conll2003" / "train.txt", LABELS):
        for kind, *_ in entities([LABELS[t] for t in sentence["tags"]], "IOB2"):
            counts[kind] = counts.get(kind, 0) + 1
    assert counts == {"PER": 6600, "ORG": 6321, "LOC": 7140, "MISC": 3438}
    iob1 = read_conll(shared_data / "conll2003" / "original_iob1" / "eng.testb", LABELS)
    iob2 = read_conll(shared_data / "conll2003" / "test.txt", LABELS)
    assert len(iob1) == len(iob2) == 3453
    for a, b in zip(iob1, iob2):
        assert entities([LABELS[t] for t in a["tags"]], "IOB1") == entities([LABELS[t] for t in b["tags"]], "IOB2")
    gold1 = [[LABELS[t] for t in s["tags"]] for s in iob1]
    gold2 = [[LABELS[t] for t in s["tags"]] for s in iob2]
    assert entity_f1(gold1, gold2, scheme="IOB1")["f1"] == 1.0
