"""The from-scratch transformer core and the Hugging Face models built on it.

Core (pure torch): embeddings, attention, blocks, stacks, cache.
Models (thin `PreTrainedModel`s on one base, `pretrained.SelfsupPreTrainedModel`, registered
with the Auto classes on import): bert, bert_heads, gpt, seq2seq (its copy head in copy_head);
electra, BERT pretrained by replaced-token detection (no Auto class: load it by name).
Their configs, documented and checked field by field, are in configuration.
"""
from .bert import SelfsupBertForMaskedLM, SelfsupBertForPreTraining, SelfsupBertModel, SelfsupBertPreTrainedModel
from .bert_heads import (
    SelfsupBertForQuestionAnswering,
    SelfsupBertForSequenceClassification,
    SelfsupBertForTokenClassification,
)
from .configuration import SelfsupBertConfig, SelfsupGPTConfig, SelfsupSeq2SeqConfig
from .electra import SelfsupBertForReplacedTokenDetection
from .gpt import SelfsupGPTForCausalLM
from .pretrained import SelfsupPreTrainedModel
from .seq2seq import SelfsupSeq2SeqForConditionalGeneration

__all__ = [
    "SelfsupPreTrainedModel", "SelfsupBertConfig", "SelfsupBertModel", "SelfsupBertPreTrainedModel",
    "SelfsupBertForPreTraining", "SelfsupBertForReplacedTokenDetection",
    "SelfsupBertForMaskedLM", "SelfsupBertForSequenceClassification", "SelfsupBertForTokenClassification",
    "SelfsupBertForQuestionAnswering", "SelfsupGPTConfig", "SelfsupGPTForCausalLM", "SelfsupSeq2SeqConfig",
    "SelfsupSeq2SeqForConditionalGeneration",
]
