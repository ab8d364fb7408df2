"""Held-out evaluation: every sequence scored exactly once, the same masks every time,
scores independent of the evaluation batch size and of how many processes share it."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset

from selfsup.modeling import SelfsupBertConfig, SelfsupBertForPreTraining
from selfsup.pretrain.instances import InstanceConfig, build_instances, tokenize_documents
from selfsup.pretrain.masking import MaskingCollator
from selfsup.pretrain.objective import fixed_masks, make_evaluate_fn
from selfsup.pretrain.tokenizer import train_wordpiece

SENTENCES = [f"The {w} number {i} is {'even' if i % 2 == 0 else 'odd'} and it sits in row {i % 7}."
             for i, w in enumerate(["first", "next", "other", "last", "small", "large"] * 10)]


@pytest.fixture(scope="module")
def setup():
    docs = [SENTENCES[i:i + 6] for i in range(0, len(SENTENCES), 6)]
    tokenizer = train_wordpiece((" ".join(d) for d in docs), vocab_size=120, min_frequency=1)
    tokenized = tokenize_documents(Dataset.from_dict({"sentences": docs}), tokenizer)
    eval_set = build_instances(tokenized, tokenizer, InstanceConfig(max_seq_length=32, seed=3))
    torch.manual_seed(0)
    model = SelfsupBertForPreTraining(SelfsupBertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, pad_token_id=tokenizer.pad_token_id)).eval()
    return eval_set, MaskingCollator.for_tokenizer(tokenizer), model


class OneOfProcesses(SimpleNamespace):
    """Process ``process_index`` of ``num_processes`` whose reduce leaves values alone,
    so each slice's own counts can be inspected."""

    device = torch.device("cpu")

    def unwrap_model(self, model):
        return model

    def reduce(self, tensors, reduction):
        return tensors


def test_scores_do_not_depend_on_the_evaluation_batch_size(setup):
    eval_set, collator, model = setup
    runs = [make_evaluate_fn(eval_set, collator, b, seed=5)(model, OneOfProcesses(process_index=0, num_processes=1))
            for b in (1, 3, 64)]
    assert len(eval_set) > 3 and runs[0]["sequences"] == len(eval_set)
    for other in runs[1:]:
        assert other.keys() == runs[0].keys()
        for k in runs[0]:
            assert other[k] == pytest.approx(runs[0][k], rel=1e-5), k


def test_two_processes_score_each_sequence_once_and_pool_to_the_single_process_score(setup):
    eval_set, collator, model = setup
    whole = make_evaluate_fn(eval_set, collator, 4, seed=5)(model, OneOfProcesses(process_index=0, num_processes=1))
    parts = [make_evaluate_fn(eval_set, collator, 4, seed=5)(model, OneOfProcesses(process_index=i, num_processes=2))
             for i in range(2)]
    assert parts[0]["sequences"] + parts[1]["sequences"] == whole["sequences"] == len(eval_set)
    assert parts[0]["mlm_predictions"] + parts[1]["mlm_predictions"] == whole["mlm_predictions"]
    pooled_loss = sum(p["mlm_loss"] * p["mlm_predictions"] for p in parts) / whole["mlm_predictions"]
    assert pooled_loss == pytest.approx(whole["mlm_loss"], rel=1e-6)


def test_metrics_match_a_direct_computation_on_the_fixed_masks(setup):
    eval_set, collator, model = setup
    rows = fixed_masks(eval_set, collator, seed=5)
    assert rows == fixed_masks(eval_set, collator, seed=5)  # the same masks at every evaluation
    assert rows != fixed_masks(eval_set, collator, seed=6)
    loss_sum, correct, total, nsp_correct = 0.0, 0, 0, 0
    with torch.no_grad():
        for row in rows:  # one sequence at a time, no padding: an independent reference
            out = model(input_ids=torch.tensor([row["input_ids"]]),
                        token_type_ids=torch.tensor([row["token_type_ids"]]))
            labels = torch.tensor(row["labels"])
            logits = out.prediction_logits[0][labels != -100]
            loss_sum += F.cross_entropy(logits, labels[labels != -100], reduction="sum").item()
            correct += (logits.argmax(-1) == labels[labels != -100]).sum().item()
            total += int((labels != -100).sum())
            nsp_correct += int(out.seq_relationship_logits.argmax(-1).item() == row["next_sentence_label"])
    metrics = make_evaluate_fn(eval_set, collator, 8, seed=5)(model, OneOfProcesses(process_index=0, num_processes=1))
    assert total > 0 and metrics["mlm_predictions"] == total
    assert metrics["mlm_loss"] == pytest.approx(loss_sum / total, rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(math.exp(loss_sum / total), rel=1e-5)
    assert metrics["mlm_accuracy"] == pytest.approx(correct / total)
    assert metrics["nsp_accuracy"] == pytest.approx(nsp_correct / len(rows))
    random = sum(row["next_sentence_label"] == 1 for row in rows) / len(rows)
    assert metrics["nsp_majority_baseline"] == pytest.approx(max(random, 1 - random))


class GuessesFromTheFirstWord(torch.nn.Module):
    """A stand-in model whose sentence-pair guess is 1 exactly when the first word after
    [CLS] is ``word``, and whose MLM logits are flat: its scores are known by hand."""

    def __init__(self, vocab_size: int, word: int):
        super().__init__()
        self.vocab_size, self.word = vocab_size, word

    def forward(self, input_ids, labels, **_):
        guess = (input_ids[:, 1] == self.word).long()
        return SimpleNamespace(masked_logits=torch.zeros(int((labels != -100).sum()), self.vocab_size),
                               seq_relationship_logits=F.one_hot(guess, 2).float())


@pytest.mark.parametrize("objective", ["nsp", "sop"])
def test_the_sentence_objective_is_scored_on_the_held_out_pairs_under_its_own_name(objective):
    cls, sep, seven, eight = 2, 3, 7, 8
    # (first word, label): guesses 1, 1, 0, 0, 0 against labels 1, 0, 1, 0, 1 → 2 of 5 right;
    # 3 of the 5 labels are 1, so always answering 1 scores 0.6.
    pairs = [(seven, 1), (seven, 0), (eight, 1), (eight, 0), (eight, 1)]
    held_out = Dataset.from_list([{"input_ids": [cls, word, 9, sep, 10, sep], "token_type_ids": [0, 0, 0, 0, 1, 1],
                                   "word_ids": [-1, 0, 1, -1, 2, -1], "next_sentence_label": label}
                                  for word, label in pairs])
    collator = MaskingCollator(pad_token_id=0, mask_token_id=4, vocab_size=16, special_token_ids=[0, 1, 2, 3, 4],
                               mlm_probability=0.0)  # nothing masked: the word after [CLS] stays readable
    model = GuessesFromTheFirstWord(16, seven)
    metrics = make_evaluate_fn(held_out, collator, 2, seed=0, sentence_objective=objective)(
        model, OneOfProcesses(process_index=0, num_processes=1))
    assert metrics[f"{objective}_accuracy"] == pytest.approx(0.4)
    assert metrics[f"{objective}_majority_baseline"] == pytest.approx(0.6)
    other = {"nsp": "sop", "sop": "nsp"}[objective]
    assert not any(k.startswith(other) for k in metrics), "the metrics are named for the objective trained"


def test_held_out_sop_pairs_come_from_held_out_documents_only(tmp_path):
    from selfsup.pretrain.data import build_pretraining_data

    # Every sentence of document d carries the word "docd", so a sequence's words name its documents.
    docs = [[f"Sentence {j} of doc{d} is here." for j in range(6)] for d in range(20)]
    corpus = tmp_path / "tagged.txt"
    corpus.write_text("\n\n".join("\n".join(d) for d in docs))
    tokenizer = train_wordpiece((" ".join(d) for d in docs), vocab_size=120, min_frequency=1)
    data = build_pretraining_data(str(corpus), tokenizer, InstanceConfig(max_seq_length=32, sentence_objective="sop"),
                                  eval_documents=4)

    def tags(dataset) -> list[set[str]]:
        return [{w for w in tokenizer.decode(ids).split() if w.startswith("doc")} for ids in dataset["input_ids"]]

    held_out, trained = set().union(*tags(data.eval)), set().union(*tags(data.train))
    assert len(held_out) == 4 and len(trained) == 16 and not held_out & trained
    assert all(len(t) == 1 for t in tags(data.eval)), "both segments of a pair come from one document"
