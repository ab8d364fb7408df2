"""The from-scratch transformer core and the Hugging Face models built on it.

Core (pure torch): embeddings, attention, blocks, stacks, cache.
Models (thin `PreTrainedModel`s, registered with the Auto classes on import): bert,
bert_heads, gpt, seq2seq.
"""
from .bert import SelfsupBertForMaskedLM, SelfsupBertForPreTraining, SelfsupBertModel, SelfsupBertPreTrainedModel
from .bert_heads import (
    SelfsupBertForQuestionAnswering,
    SelfsupBertForSequenceClassification,
    SelfsupBertForTokenClassification,
)
from .configuration import SelfsupBertConfig, SelfsupGPTConfig
from .gpt import SelfsupGPTForCausalLM
from .seq2seq import SelfsupSeq2SeqConfig, SelfsupSeq2SeqForConditionalGeneration

__all__ = [
    "SelfsupBertConfig", "SelfsupBertModel", "SelfsupBertPreTrainedModel", "SelfsupBertForPreTraining",
    "SelfsupBertForMaskedLM", "SelfsupBertForSequenceClassification", "SelfsupBertForTokenClassification",
    "SelfsupBertForQuestionAnswering", "SelfsupGPTConfig", "SelfsupGPTForCausalLM", "SelfsupSeq2SeqConfig",
    "SelfsupSeq2SeqForConditionalGeneration",
]
