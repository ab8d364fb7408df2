"""Fine-tuning heads for BERT's four downstream cases, on selfsup-bert.

Sequence (or pair) → class or score: pooled first token → dropout → linear.
Token → class: every hidden state → dropout → linear.
Document + question → span: every hidden state → (start, end) logits.
Names match transformers' BERT heads (``classifier``, ``qa_outputs``) so habits carry over.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)
from transformers.modeling_outputs import QuestionAnsweringModelOutput, SequenceClassifierOutput, TokenClassifierOutput

from .bert import SelfsupBertModel, SelfsupBertPreTrainedModel
from .configuration import SelfsupBertConfig
from .dropout import Dropout


def _dropout(config: SelfsupBertConfig) -> nn.Dropout:
    p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
    return Dropout(p)


class SelfsupBertForSequenceClassification(SelfsupBertPreTrainedModel):
    """``num_labels == 1`` (or ``problem_type="regression"``) is regression with MSE (STS-B)."""

    def __init__(self, config: SelfsupBertConfig):
        super().__init__(config)
        self.bert = SelfsupBertModel(config)
        self.dropout = _dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                output_attentions: bool = False, output_hidden_states: bool = False, return_dict=None,
                **kwargs) -> SequenceClassifierOutput:
        """``labels``: (batch,) class ids, or float scores for regression. ``logits``: (batch, num_labels).

        Only the pooled first token reaches the classifier, so (unless per-layer outputs are
        asked for) the last layer runs at that position alone."""
        first = None
        if not (output_attentions or output_hidden_states):
            first = torch.zeros(input_ids.shape[0], 1, dtype=torch.long, device=input_ids.device)
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, output_attentions,
                        output_hidden_states, output_positions=first)
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = None
        if labels is not None:
            if self.config.num_labels == 1 or self.config.problem_type == "regression":
                loss = F.mse_loss(logits.squeeze(-1).float(), labels.float())
            else:
                loss = F.cross_entropy(logits.float(), labels)
        result = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                          attentions=out.attentions)
        return result if return_dict is not False else result.to_tuple()


class SelfsupBertForTokenClassification(SelfsupBertPreTrainedModel):
    def __init__(self, config: SelfsupBertConfig):
        super().__init__(config)
        self.bert = SelfsupBertModel(config, add_pooling_layer=False)
        self.dropout = _dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                output_attentions: bool = False, output_hidden_states: bool = False, return_dict=None,
                **kwargs) -> TokenClassifierOutput:
        """``labels``: (batch, seq), -100 where not scored. ``logits``: (batch, seq, num_labels)."""
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, output_attentions,
                        output_hidden_states)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), labels.view(-1))
        result = TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                       attentions=out.attentions)
        return result if return_dict is not False else result.to_tuple()


class SelfsupBertForQuestionAnswering(SelfsupBertPreTrainedModel):
    def __init__(self, config: SelfsupBertConfig):
        super().__init__(config)
        self.bert = SelfsupBertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                start_positions=None, end_positions=None, output_attentions: bool = False,
                output_hidden_states: bool = False, return_dict=None, **kwargs) -> QuestionAnsweringModelOutput:
        """``start_positions``/``end_positions``: (batch,) token indices (0 = [CLS] = no answer
        in this window). ``start_logits``/``end_logits``: (batch, seq)."""
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, output_attentions,
                        output_hidden_states)
        start_logits, end_logits = self.qa_outputs(out.last_hidden_state).unbind(dim=-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (F.cross_entropy(start_logits.float(), start_positions)
                    + F.cross_entropy(end_logits.float(), end_positions)) / 2
        result = QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                              hidden_states=out.hidden_states, attentions=out.attentions)
        return result if return_dict is not False else result.to_tuple()


AutoModelForSequenceClassification.register(SelfsupBertConfig, SelfsupBertForSequenceClassification, exist_ok=True)
AutoModelForTokenClassification.register(SelfsupBertConfig, SelfsupBertForTokenClassification, exist_ok=True)
AutoModelForQuestionAnswering.register(SelfsupBertConfig, SelfsupBertForQuestionAnswering, exist_ok=True)
