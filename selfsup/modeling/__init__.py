"""The from-scratch transformer core and the Hugging Face models built on it.

Core (pure torch): embeddings, attention, blocks, stacks, cache.
Models (thin `PreTrainedModel`s, registered with the Auto classes on import): bert, gpt.
"""
from .configuration import SelfsupBertConfig, SelfsupGPTConfig
from .bert import (SelfsupBertForMaskedLM, SelfsupBertForPreTraining, SelfsupBertModel,
                   SelfsupBertPreTrainedModel)
from .gpt import SelfsupGPTForCausalLM
from .bert_heads import (SelfsupBertForQuestionAnswering, SelfsupBertForSequenceClassification,
                         SelfsupBertForTokenClassification)
