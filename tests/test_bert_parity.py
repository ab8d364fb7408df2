"""Our encoder is weight-compatible with real BERT checkpoints, both ways."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, BertConfig, BertForPreTraining, BertModel

import selfsup  # noqa: F401  (registers selfsup-bert)
from selfsup.errors import InputError
from selfsup.modeling import SelfsupBertForPreTraining, SelfsupBertModel
from selfsup.modeling.convert_bert import ARCHITECTURES, convert

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A short one.",
    "Transformers read whole sentences at once, attending to every token in both directions.",
]


@pytest.fixture(scope="module")
def converted(minilm_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("minilm-selfsup")
    # Through the command-line tool, as a user would run it.
    subprocess.run([sys.executable, "scripts/convert_bert.py", "--from-hf", str(minilm_path), "--out", str(out)],
                   check=True, capture_output=True)
    return out


def test_minilm_hidden_states_match_transformers(minilm_path, converted):
    tok = AutoTokenizer.from_pretrained(minilm_path)
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any(), "the batch must contain padding"
    reference = BertModel.from_pretrained(minilm_path).eval()
    ours = AutoModel.from_pretrained(converted).eval()
    assert isinstance(ours, SelfsupBertModel)
    with torch.no_grad():
        expected = reference(**batch)
        got = ours(**batch)
    real = batch["attention_mask"].bool()
    err = (got.last_hidden_state - expected.last_hidden_state)[real].abs().max().item()
    assert err < 1e-4, f"max abs error {err}"
    assert (got.pooler_output - expected.pooler_output).abs().max().item() < 1e-4


def test_round_trip_reproduces_original_weights_exactly(minilm_path, converted, tmp_path):
    back = convert(converted, tmp_path / "back", to_hf=True)
    original = load_file(minilm_path / "model.safetensors")
    restored = load_file(back / "model.safetensors")
    weights = {k for k in original if not k.endswith("position_ids")}  # a buffer, not a weight
    assert weights <= set(restored)
    for k in weights:
        assert torch.equal(original[k], restored[k]), k
    assert isinstance(BertModel.from_pretrained(back), BertModel)
    assert (back / "vocab.txt").exists() and (back / "tokenizer_config.json").exists()


def _tiny_bert_config():
    return BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=37, max_position_embeddings=64)


def test_pretraining_heads_convert_both_ways(tmp_path):
    torch.manual_seed(0)
    hf = BertForPreTraining(_tiny_bert_config()).eval()
    hf.save_pretrained(tmp_path / "hf")
    ours = SelfsupBertForPreTraining.from_pretrained(convert(tmp_path / "hf", tmp_path / "ours", to_hf=False)).eval()
    ids = torch.randint(0, 99, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        a, b = hf(ids, attention_mask=mask), ours(ids, attention_mask=mask)
    assert (a.prediction_logits - b.prediction_logits)[mask.bool()].abs().max() < 1e-4
    assert (a.seq_relationship_logits - b.seq_relationship_logits).abs().max() < 1e-4
    back = BertForPreTraining.from_pretrained(convert(tmp_path / "ours", tmp_path / "back", to_hf=True))
    for name, tensor in hf.state_dict().items():
        assert torch.equal(tensor, back.state_dict()[name]), name


HEAD_OUTPUTS = {"model": "last_hidden_state", "pretraining": "prediction_logits", "masked_lm": "logits",
                "sequence_classification": "logits", "token_classification": "logits",
                "question_answering": "start_logits"}


@pytest.mark.parametrize("kind", sorted(ARCHITECTURES))
def test_every_architecture_converts_both_ways_with_its_head(kind, tmp_path):
    hf_name, our_name = ARCHITECTURES[kind]
    torch.manual_seed(0)
    labels = {"id2label": {0: "neg", 1: "neu", 2: "pos"}, "label2id": {"neg": 0, "neu": 1, "pos": 2}}
    if kind == "question_answering":  # start and end: transformers sizes qa_outputs by num_labels
        labels = {"id2label": {0: "LABEL_0", 1: "LABEL_1"}, "label2id": {"LABEL_0": 0, "LABEL_1": 1}}
    hf = getattr(transformers, hf_name)(BertConfig(**(_tiny_bert_config().to_dict() | labels))).eval()
    hf.save_pretrained(tmp_path / "hf")
    convert(tmp_path / "hf", tmp_path / "ours", to_hf=False)
    config = AutoConfig.from_pretrained(tmp_path / "ours")
    assert config.architectures == [our_name] and config.id2label == labels["id2label"]
    ours = getattr(selfsup.modeling, our_name).from_pretrained(tmp_path / "ours").eval()
    ids = torch.randint(0, 99, (2, 9))
    with torch.no_grad():
        a, b = hf(ids).__getitem__(HEAD_OUTPUTS[kind]), ours(ids).__getitem__(HEAD_OUTPUTS[kind])
    assert a.shape == b.shape and (a - b).abs().max() < 1e-4
    convert(tmp_path / "ours", tmp_path / "back", to_hf=True)
    back = getattr(transformers, hf_name).from_pretrained(tmp_path / "back")
    assert type(back).__name__ == hf_name
    assert back.state_dict().keys() == hf.state_dict().keys()
    for name, tensor in hf.state_dict().items():
        assert torch.equal(tensor, back.state_dict()[name]), name


def test_a_converted_folder_has_a_card_with_the_source_cards_results(tmp_path):
    from selfsup.provenance import read_card_metrics, write_model_card

    transformers.BertForSequenceClassification(_tiny_bert_config()).save_pretrained(tmp_path / "hf")
    results = [{"task": "text-classification", "metrics": {"accuracy": 0.625},
                "dataset": {"name": "glue/rte", "type": "glue", "config": "rte", "split": "validation"}}]
    write_model_card(tmp_path / "hf", title="t", summary="s", load="", results=results)
    convert(tmp_path / "hf", tmp_path / "ours", to_hf=False)
    assert read_card_metrics(tmp_path / "ours") == results  # same weights, same scores
    text = (tmp_path / "ours" / "README.md").read_text()
    assert "AutoModelForSequenceClassification.from_pretrained" in text and "import selfsup" in text
    assert "## Command" in text


def test_to_hf_refuses_a_head_it_cannot_place(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    hf = transformers.BertForSequenceClassification(_tiny_bert_config()).eval()
    hf.save_pretrained(tmp_path / "hf")
    convert(tmp_path / "hf", tmp_path / "ours", to_hf=False)
    weights = tmp_path / "ours" / "model.safetensors"
    state = load_file(weights)
    state["extra_head.weight"] = torch.zeros(2, 32)  # e.g. a head added by a later selfsup model
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(InputError, match="extra_head.weight"):
        convert(tmp_path / "ours", tmp_path / "back", to_hf=True)
    assert not (tmp_path / "back").exists()


def test_corrupt_checkpoint_is_rejected_naming_the_file(tmp_path):
    BertModel(_tiny_bert_config()).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(InputError, match="model.safetensors"):
        convert(tmp_path, tmp_path / "out", to_hf=False)


def test_non_bert_folder_is_rejected(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(InputError, match="model_type"):
        convert(tmp_path, tmp_path / "out", to_hf=False)
