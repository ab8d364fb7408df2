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
            out = model(input_ids=torch.tensor([row["input_ids"]]), token_type_ids=torch.tensor([row["token_type_ids"]]))
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
