"""Specifications of what the selfsup models share (selfsup.modeling.pretrained) and of their
configs' checks (selfsup.modeling.configuration): one base class, one attention switch, one
init of the position tables, shared embedding accessors, and a ValueError naming the field
for every value a model cannot be built with."""
from __future__ import annotations

import math

import pytest
import torch

from selfsup.modeling import (
    SelfsupBertConfig,
    SelfsupBertForMaskedLM,
    SelfsupBertForPreTraining,
    SelfsupBertForQuestionAnswering,
    SelfsupBertForSequenceClassification,
    SelfsupBertForTokenClassification,
    SelfsupBertModel,
    SelfsupGPTConfig,
    SelfsupGPTForCausalLM,
    SelfsupSeq2SeqConfig,
    SelfsupSeq2SeqForConditionalGeneration,
)
from selfsup.modeling.pretrained import SelfsupPreTrainedModel

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=4, intermediate_size=32,
             max_position_embeddings=24)
BERTS = [SelfsupBertModel, SelfsupBertForPreTraining, SelfsupBertForMaskedLM, SelfsupBertForSequenceClassification,
         SelfsupBertForTokenClassification, SelfsupBertForQuestionAnswering]
CONFIGS = {SelfsupBertForMaskedLM: SelfsupBertConfig, SelfsupGPTForCausalLM: SelfsupGPTConfig,
           SelfsupSeq2SeqForConditionalGeneration: SelfsupSeq2SeqConfig}
# The vocabulary projection tied to the input embeddings, by model.
LM_HEAD = {SelfsupBertForMaskedLM: "cls.decoder", SelfsupGPTForCausalLM: "lm_head",
           SelfsupSeq2SeqForConditionalGeneration: "lm_head"}


def build(cls, seed=0, **overrides):
    torch.manual_seed(seed)
    config_class = CONFIGS.get(cls, SelfsupBertConfig)
    extra = dict(num_decoder_layers=1) if config_class is SelfsupSeq2SeqConfig else {}
    return cls(config_class(**SMALL, **extra, **overrides)).eval()


def run(model, ids):
    if isinstance(model, SelfsupSeq2SeqForConditionalGeneration):
        return model(input_ids=ids, decoder_input_ids=ids[:, :5]).logits
    return model(ids)[0]


@pytest.mark.parametrize("cls", [*BERTS, SelfsupGPTForCausalLM, SelfsupSeq2SeqForConditionalGeneration])
def test_every_model_is_a_selfsup_pretrained_model_that_defines_none_of_the_shared_parts(cls):
    assert issubclass(cls, SelfsupPreTrainedModel)
    shared = {"attention_implementation", "get_input_embeddings", "set_input_embeddings", "get_output_embeddings",
              "set_output_embeddings", "_attention_implementation", "_implementation"}
    for klass in cls.__mro__[: cls.__mro__.index(SelfsupPreTrainedModel)]:
        assert not shared & set(vars(klass)), (klass.__name__, shared & set(vars(klass)))


@pytest.mark.parametrize("cls", list(LM_HEAD))
def test_the_embedding_accessors_find_the_token_table_and_the_tied_lm_head(cls):
    model = build(cls)
    table = model.get_input_embeddings()
    assert table is model.base_model.embeddings.word_embeddings and table.num_embeddings == 40
    head = model.get_output_embeddings()
    assert head is model.get_submodule(LM_HEAD[cls]) and head.weight is table.weight
    # resize_token_embeddings goes through both accessors: input and output grow together, still tied
    model.resize_token_embeddings(48)
    assert model.get_input_embeddings().num_embeddings == 48
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight.shape == (48, 16)
    replacement = torch.nn.Embedding(48, 16)
    model.set_input_embeddings(replacement)
    assert model.base_model.embeddings.word_embeddings is replacement


@pytest.mark.parametrize("cls", [SelfsupBertModel, SelfsupBertForSequenceClassification,
                                 SelfsupBertForTokenClassification, SelfsupBertForQuestionAnswering])
def test_models_without_a_vocabulary_projection_have_no_output_embeddings(cls):
    model = build(cls)
    assert model.get_output_embeddings() is None
    assert model.get_input_embeddings() is model.base_model.embeddings.word_embeddings


def _sinusoid(position: int, i: int, dim: int) -> float:
    """Vaswani et al. (2017): PE(pos, 2k) = sin(pos / 10000^(2k/d)), PE(pos, 2k+1) = cos(same angle)."""
    angle = position / 10000 ** ((i - i % 2) / dim)
    return math.sin(angle) if i % 2 == 0 else math.cos(angle)


@pytest.mark.parametrize("cls", list(CONFIGS))
def test_the_sinusoidal_table_is_the_formula_after_from_pretrained(cls, tmp_path):
    # from_pretrained builds the model on the meta device: the table (a non-persistent buffer,
    # not in the file) exists only if the shared init recomputes it
    build(cls, position_embedding_type="sinusoidal").save_pretrained(tmp_path)
    table = type(build(cls)).from_pretrained(tmp_path).base_model.embeddings.position_embeddings.table
    expected = torch.tensor([[_sinusoid(p, i, 16) for i in range(16)] for p in range(24)])
    torch.testing.assert_close(table, expected, atol=1e-5, rtol=0)


def test_the_rotary_frequencies_are_the_formula_after_from_pretrained(tmp_path):
    build(SelfsupGPTForCausalLM, position_embedding_type="rope", rope_theta=500.0).save_pretrained(tmp_path)
    inv_freq = SelfsupGPTForCausalLM.from_pretrained(tmp_path).rotary.inv_freq
    head_dim = 16 // 4
    torch.testing.assert_close(inv_freq, torch.tensor([500.0 ** (-2 * k / head_dim) for k in range(head_dim // 2)]))


@pytest.mark.parametrize("cls", list(CONFIGS))
def test_attn_implementation_picks_the_path_and_both_paths_agree(cls):
    ids = torch.randint(4, 40, (2, 7), generator=torch.Generator().manual_seed(0))
    sdpa, eager = build(cls, attn_implementation="sdpa"), build(cls, attn_implementation="eager")
    assert (sdpa.attention_implementation, eager.attention_implementation) == ("sdpa", "eager")
    assert build(cls).attention_implementation == "sdpa"  # the default
    with torch.no_grad():
        torch.testing.assert_close(run(sdpa, ids), run(eager, ids), atol=1e-5, rtol=1e-5)
    if not isinstance(eager, SelfsupSeq2SeqForConditionalGeneration):
        with torch.no_grad():
            probs = eager(ids, output_attentions=True).attentions[0]  # only the eager path has them
        torch.testing.assert_close(probs.sum(-1), torch.ones(2, 4, 7))


INVALID = [
    (dict(hidden_size=18), "hidden_size 18 is not divisible by num_attention_heads 4"),
    (dict(num_attention_heads=0), "num_attention_heads must be positive, got 0"),
    (dict(vocab_size=0), "vocab_size must be positive"),
    (dict(num_hidden_layers=-1), "num_hidden_layers must be positive"),
    (dict(intermediate_size=0), "intermediate_size must be positive"),
    (dict(max_position_embeddings=0), "max_position_embeddings must be positive"),
    (dict(layer_norm_eps=0.0), "layer_norm_eps must be positive"),
    (dict(initializer_range=-0.02), "initializer_range must be >= 0"),
    (dict(hidden_dropout_prob=1.5), r"hidden_dropout_prob must be in \[0, 1\], got 1.5"),
    (dict(attention_probs_dropout_prob=-0.1), r"attention_probs_dropout_prob must be in \[0, 1\]"),
    (dict(hidden_act="tanh"), "hidden_act must be one of .*'gelu'.*got 'tanh'"),
    (dict(position_embedding_type="alibi"), "position_embedding_type must be one of .*got 'alibi'"),
]
SPECIFIC = {
    SelfsupBertConfig: [
        (dict(classifier_dropout=2.0), r"classifier_dropout must be in \[0, 1\]"),
        (dict(type_vocab_size=-1), "type_vocab_size must be >= 0"),
        # rotary positions exist only in the decoder-only model; BERT would silently have none
        (dict(position_embedding_type="rope"), "position_embedding_type must be one of .*got 'rope'"),
    ],
    SelfsupGPTConfig: [
        (dict(num_key_value_heads=3), "num_key_value_heads 3 does not divide num_attention_heads 4"),
        (dict(num_key_value_heads=0), "num_key_value_heads must be positive"),
        (dict(norm_type="batchnorm"), "norm_type must be 'layernorm' or 'rmsnorm'"),
        (dict(rope_theta=0.0), "rope_theta must be positive"),
        (dict(position_embedding_type="rope", hidden_size=12, num_attention_heads=4),
         "position_embedding_type 'rope' needs an even head dimension"),
    ],
    SelfsupSeq2SeqConfig: [
        (dict(num_decoder_layers=0), "num_decoder_layers must be positive"),
        (dict(use_coverage=True), "use_coverage needs use_copy"),
        (dict(coverage_loss_weight=-1.0), "coverage_loss_weight must be >= 0"),
    ],
}


@pytest.mark.parametrize("config_class, overrides, message", [
    (c, o, m) for c in SPECIFIC for o, m in INVALID + SPECIFIC[c]])
def test_an_invalid_config_raises_a_value_error_naming_the_field(config_class, overrides, message):
    with pytest.raises(ValueError, match=message):
        config_class(**{**SMALL, **overrides})


@pytest.mark.parametrize("config_class", list(SPECIFIC))
def test_integer_zero_dropout_is_a_valid_value(config_class):
    # the type check takes ints where a probability is expected, as transformers' BertConfig does
    assert config_class(**SMALL, hidden_dropout_prob=0, attention_probs_dropout_prob=1).hidden_dropout_prob == 0


@pytest.mark.parametrize("cls", list(CONFIGS))
def test_a_config_edited_into_an_invalid_shape_is_refused_when_the_model_is_built(cls):
    config = CONFIGS[cls](**SMALL)
    config.num_attention_heads = 5  # each field's type is checked on assignment, the shape only here
    with pytest.raises(ValueError, match="hidden_size 16 is not divisible by num_attention_heads 5"):
        cls(config)


def test_from_pretrained_refuses_coverage_added_to_a_model_without_copy(tmp_path):
    build(SelfsupSeq2SeqForConditionalGeneration).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="use_coverage needs use_copy"):
        SelfsupSeq2SeqForConditionalGeneration.from_pretrained(tmp_path, use_coverage=True)


@pytest.mark.parametrize("config_class", list(SPECIFIC))
def test_every_config_field_is_documented_in_the_class_docstring(config_class):
    # transformers' style: "name (`type`, ...): what it is", several names may share a line
    documented = {name.strip() for line in config_class.__doc__.splitlines() if "(`" in line
                  for name in line.split("(`")[0].split(",")}
    fields = set(config_class.__annotations__)
    assert len(fields) > 15 and fields <= documented, fields - documented
