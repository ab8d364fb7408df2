"""ELECTRA's replaced-token detection (`--objective electra`): the generator's samples replace
exactly the masked tokens, the two losses are the published ones (the generator's masked-LM
cross-entropy and lambda x the per-token binary cross-entropy of "replaced" over real
tokens), no gradient flows through the sampling, and the saved folder fine-tunes as BERT."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification

import selfsup  # noqa: F401  (registers selfsup-bert)
from selfsup.errors import InputError
from selfsup.modeling import SelfsupBertConfig
from selfsup.modeling.electra import SelfsupBertForReplacedTokenDetection
from selfsup.pretrain.config import ModelConfig
from selfsup.pretrain.objective import histogram_auc, logit_histogram
from selfsup.pretrain.starting_model import starting_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from tiny_corpus import CORPUS, word_level_tokenizer  # noqa: E402

MASK = 3


def tiny(**overrides) -> SelfsupBertForReplacedTokenDetection:
    torch.manual_seed(0)
    config = SelfsupBertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=32, generator_intermediate_size=16, **overrides)
    return SelfsupBertForReplacedTokenDetection(config).eval()  # dropout off: the reference recomputes


def masked_batch():
    """Two rows, the second padded after 7 tokens; 3 and 2 masked positions."""
    torch.manual_seed(1)
    original = torch.randint(5, 40, (2, 10))
    attention_mask = torch.ones_like(original)
    attention_mask[1, 7:] = 0
    labels = torch.full_like(original, -100)
    for row, positions in ((0, [1, 4, 8]), (1, [2, 5])):
        labels[row, positions] = original[row, positions]
    inputs = torch.where(labels != -100, torch.full_like(original, MASK), original)
    return original, inputs, attention_mask, labels


def test_the_discriminator_sees_the_original_except_where_the_generator_replaced_a_masked_token():
    model = tiny()
    original, inputs, attention_mask, labels = masked_batch()
    torch.manual_seed(2)
    out = model(inputs, attention_mask, labels=labels)
    masked = labels != -100
    assert not out.replaced[~masked].any()  # unmasked tokens are never replaced
    # An untrained generator over 40 tokens rarely samples the original: some are replaced.
    assert out.replaced[masked].any()
    assert out.rtd_logits.shape == original.shape and out.masked_logits.shape == (int(masked.sum()), 40)


def test_the_losses_are_the_generators_cross_entropy_plus_lambda_times_detection_over_real_tokens():
    model = tiny(rtd_loss_weight=7.0)
    original, inputs, attention_mask, labels = masked_batch()
    torch.manual_seed(2)
    out = model(inputs, attention_mask, labels=labels)
    masked = labels != -100
    mlm = F.cross_entropy(out.masked_logits, labels[masked])
    # The discriminator's input rebuilt from the outputs: the original with the replacements.
    torch.manual_seed(2)
    sampled = torch.multinomial(out.masked_logits.detach().softmax(-1), 1).squeeze(-1)
    corrupted = original.clone()
    corrupted[masked] = sampled
    assert torch.equal(corrupted != original, out.replaced)
    hidden = model.bert(corrupted, attention_mask).last_hidden_state
    logits = model.discriminator_head(hidden)
    real = attention_mask.bool()
    rtd = F.binary_cross_entropy_with_logits(logits[real], out.replaced[real].float())  # mean over 17 real tokens
    torch.testing.assert_close(out.mlm_loss, mlm)
    torch.testing.assert_close(out.rtd_loss, rtd)
    torch.testing.assert_close(out.loss, mlm + 7.0 * rtd)


def test_window_counts_normalise_both_losses():
    model = tiny()
    _, inputs, attention_mask, labels = masked_batch()
    torch.manual_seed(2)
    per_batch = model(inputs, attention_mask, labels=labels)
    torch.manual_seed(2)
    windowed = model(inputs, attention_mask, labels=labels, num_items_in_batch=10, num_tokens_in_batch=34)
    torch.testing.assert_close(windowed.mlm_loss, per_batch.mlm_loss * 5 / 10)
    torch.testing.assert_close(windowed.rtd_loss, per_batch.rtd_loss * 17 / 34)


def test_no_gradient_reaches_the_generator_through_its_samples():
    model = tiny()
    _, inputs, attention_mask, labels = masked_batch()
    model(inputs, attention_mask, labels=labels).rtd_loss.backward()
    generator = [p for n, p in model.named_parameters() if n.startswith(("generator.", "generator_head."))]
    assert generator and all(p.grad is None or not p.grad.any() for p in generator)
    assert model.discriminator_head.out.weight.grad.abs().sum() > 0


def test_the_generator_shares_the_discriminators_embeddings_and_its_decoder_is_them():
    model = tiny()
    words = model.bert.embeddings.word_embeddings.weight
    assert model.generator_head.decoder.weight.data_ptr() == words.data_ptr()


def test_the_saved_folder_fine_tunes_as_bert_with_the_discriminators_weights(tmp_path):
    model = tiny()
    model.save_pretrained(tmp_path)
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2)
    ours = model.bert.state_dict()
    for name, tensor in classifier.bert.state_dict().items():
        if not name.startswith("pooler."):  # ELECTRA trains no pooler: the head initialises its own
            assert torch.equal(tensor, ours[name]), name


def test_electra_starts_from_a_new_model_only():
    tokenizer = word_level_tokenizer(CORPUS)
    model, _ = starting_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=32, objective="electra"), tokenizer, 32,
                              log=lambda _: None)
    assert isinstance(model, SelfsupBertForReplacedTokenDetection)
    assert model.config.generator_num_hidden_layers == 1
    with pytest.raises(InputError, match="model_name_or_path.*electra starts from a new model"):
        starting_model(ModelConfig(model_name_or_path=str(ROOT), objective="electra"), tokenizer, 32)


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    corpus, tokenizer = tmp_path / "corpus.txt", tmp_path / "tokenizer"
    corpus.write_text(CORPUS)
    word_level_tokenizer(CORPUS).save_pretrained(tokenizer)
    command = [sys.executable, str(ROOT / "scripts" / "pretrain.py"), "--corpus", str(corpus),
               "--tokenizer_name", str(tokenizer), "--output_dir", str(tmp_path / "run"), "--max_seq_length", "32",
               "--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "2",
               "--intermediate_size", "64", "--eval_documents", "2", "--max_steps", "8", "--report_to", "none",
               "--cpu_threads", "1", "--objective", "electra", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_the_script_reports_held_out_detection_accuracy_against_always_guessing_original(tmp_path):
    result = _run(tmp_path, "--sentence_objective", "none")
    assert result.returncode == 0, result.stderr[-3000:]
    ev = json.loads((tmp_path / "run" / "summary.json").read_text())["eval"]
    assert 0 <= ev["rtd_accuracy"] <= 1 and 0.5 < ev["rtd_majority_baseline"] < 1 and 0 <= ev["rtd_auc"] <= 1
    assert "mlm_accuracy" in ev and "nsp_accuracy" not in ev
    assert "replaced-token detection accuracy" in result.stdout
    card = (tmp_path / "run" / "model" / "README.md").read_text()  # a fine-tuning start, not a fill-mask model
    assert "replaced-token detection" in card and "AutoModelForSequenceClassification" in card
    assert "fill-mask" not in card


def test_electra_with_a_sentence_objective_is_refused_naming_the_flag(tmp_path):
    result = _run(tmp_path, "--sentence_objective", "nsp")
    assert result.returncode == 2
    assert "sentence_objective" in result.stderr and "electra" in result.stderr


def test_the_histogram_auc_is_the_pairwise_auc_within_a_bin():
    torch.manual_seed(3)
    replaced, original = torch.randn(300) + 1.0, torch.randn(2000) * 2
    pairwise = (replaced[:, None] > original[None, :]).float().mean().item()
    assert abs(histogram_auc(logit_histogram(replaced), logit_histogram(original)) - pairwise) < 0.005
    # perfectly separated, and identical scores (every pair a tie)
    assert histogram_auc(logit_histogram(torch.full((5,), 3.0)), logit_histogram(torch.full((7,), -3.0))) == 1.0
    assert histogram_auc(logit_histogram(torch.zeros(5)), logit_histogram(torch.zeros(7))) == 0.5
