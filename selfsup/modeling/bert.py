"""BERT-style encoder models on the from-scratch core, as transformers `PreTrainedModel`s.

``SelfsupBertForPreTraining`` projects onto the vocabulary **only at masked positions**
(sparse prediction): with 15% masking that skips ~85% of the largest matmul in training,
which is where transformers' ``BertForPreTraining`` spends most of its FLOPs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForPreTraining
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling, MaskedLMOutput
from transformers.utils import ModelOutput

from .blocks import ACTIVATIONS
from .configuration import SelfsupBertConfig
from .embeddings import Embeddings
from .pretrained import SelfsupPreTrainedModel
from .stacks import Encoder
from .vocab_loss import SoftmaxBuffer, vocab_cross_entropy


class SelfsupBertPreTrainedModel(SelfsupPreTrainedModel):
    """Base of every selfsup-bert model: its config, and the MLM head's bias starting at zero.
    Heads without a vocabulary projection have no output embeddings."""

    config_class = SelfsupBertConfig
    base_model_prefix = "bert"
    _output_embeddings = None

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, MaskedLMHead):
            init.zeros_(module.bias)


class SelfsupBertModel(SelfsupBertPreTrainedModel):
    """Embeddings → bidirectional encoder → pooler (dense + tanh on the first token)."""

    def __init__(self, config: SelfsupBertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = Embeddings(
            config.vocab_size, config.hidden_size, config.max_position_embeddings, config.type_vocab_size,
            config.position_embedding_type, config.layer_norm_eps, config.hidden_dropout_prob,
            norm=not config.pre_layer_norm, padding_idx=config.pad_token_id)
        self.encoder = Encoder(
            config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size,
            activation=config.hidden_act, dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob, eps=config.layer_norm_eps,
            pre_norm=config.pre_layer_norm)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooling_layer else None
        self.post_init()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                output_attentions: bool = False, output_hidden_states: bool = False,
                return_dict: bool | None = None, *, output_positions: torch.Tensor | None = None,
                **kwargs) -> BaseModelOutputWithPooling:
        """``input_ids``, ``attention_mask`` (1 = token, 0 = padding), ``token_type_ids``:
        (batch, seq). Returns ``last_hidden_state`` (batch, seq, hidden) and
        ``pooler_output`` (batch, hidden).

        ``output_positions`` (batch, m): compute the last layer only at these positions;
        ``last_hidden_state`` is then (batch, m, hidden) and the pooler reads
        ``output_positions[:, 0]`` (put 0 first to pool ``[CLS]``)."""
        x = self.embeddings(input_ids, token_type_ids, position_ids)
        out = self.encoder(x, attention_mask, implementation=self.attention_implementation,
                           output_hidden_states=output_hidden_states, output_attentions=output_attentions,
                           output_positions=output_positions)
        pooled = torch.tanh(self.pooler(out.hidden_states[:, 0])) if self.pooler is not None else None
        result = BaseModelOutputWithPooling(last_hidden_state=out.hidden_states, pooler_output=pooled,
                                            hidden_states=out.all_hidden_states, attentions=out.attentions)
        return result if return_dict is not False else result.to_tuple()


class MaskedLMHead(nn.Module):
    """dense → activation → LayerNorm → vocabulary projection (tied to the input embeddings)."""

    def __init__(self, config: SelfsupBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACTIVATIONS[config.hidden_act]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.softmax_buffer = SoftmaxBuffer()  # reused by the loss between steps (vocab_loss.py)

    def transform(self, hidden: torch.Tensor) -> torch.Tensor:
        """dense → activation → LayerNorm: the input of the vocabulary projection."""
        return self.norm(self.act(self.dense(hidden)))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., hidden) → (..., vocab)."""
        return F.linear(self.transform(hidden), self.decoder.weight, self.bias)

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor, divisor: int | torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of ``forward(hidden)`` (n, vocab) against ``targets`` (n,), summed /
        ``divisor`` (default: the mean), and those logits."""
        return vocab_cross_entropy(self.transform(hidden), self.decoder.weight, self.bias, targets, divisor,
                                   self.softmax_buffer)


def prediction_positions(labels: torch.Tensor, with_first: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions whose last-layer output the loss needs: those with a label (and 0, the
    pooled ``[CLS]``, if ``with_first``), in ascending order per row, as ``positions``
    (batch, m), m the most in any row, and ``labels`` gathered there. Shorter rows are filled
    with unlabelled positions (label -100), which the loss ignores, so
    ``masked_lm_loss(head, hidden_at_positions, labels_at_positions)`` scores exactly the
    tokens, in the same order, that the full hidden states would."""
    keep = labels != -100
    if with_first:
        keep[:, 0] = True
    m = max(int(keep.sum(-1).max()), 1) if keep.numel() else 1
    # A stable sort of "not kept" puts the kept positions first, still ascending.
    positions = torch.sort((~keep).to(torch.uint8), dim=-1, stable=True).indices[:, :m]
    return positions, labels.gather(1, positions)


def masked_lm_loss(head: MaskedLMHead, hidden: torch.Tensor, labels: torch.Tensor,
                   num_items_in_batch: int | torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse MLM: gather the positions whose label is not -100, project only those.

    ``hidden``: (batch, seq, hidden); ``labels``: (batch, seq). Returns the loss and the
    logits (num_masked, vocab) of the selected positions in row-major order, i.e. aligned
    with ``labels[labels != -100]``. ``num_items_in_batch`` (the masked-token count of a
    whole accumulation window) turns the mean into a token-normalised share of it.
    """
    selected = labels != -100
    return head.loss(hidden[selected], labels[selected], num_items_in_batch)


@dataclass
class SelfsupBertForPreTrainingOutput(ModelOutput):
    """``loss`` = mlm_loss + nsp_loss over whichever labels were given.
    ``prediction_logits`` (batch, seq, vocab): only when no MLM labels are given.
    ``masked_logits`` (num_masked, vocab): with MLM labels, rows aligned with
    ``labels[labels != -100]``. ``seq_relationship_logits`` (batch, 2): 0 = is next."""

    loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    nsp_loss: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    masked_logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class SelfsupBertForPreTraining(SelfsupBertPreTrainedModel):
    """Encoder + sparse MLM head + next-sentence head on the pooled first token.

    Each loss is computed when its own labels are given (unlike transformers'
    ``BertForPreTraining``, which returns no loss unless both are)."""

    _tied_weights_keys = {"cls.decoder.weight": "bert.embeddings.word_embeddings.weight"}
    _output_embeddings = "cls.decoder"

    def __init__(self, config: SelfsupBertConfig):
        super().__init__(config)
        self.bert = SelfsupBertModel(config)
        self.cls = MaskedLMHead(config)
        self.nsp = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, next_sentence_label: torch.Tensor | None = None,
                num_items_in_batch: int | torch.Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False, return_dict: bool | None = None,
                **kwargs) -> SelfsupBertForPreTrainingOutput:
        """``labels``: (batch, seq) token ids at masked positions, -100 elsewhere.
        ``next_sentence_label``: (batch,), 0 = B follows A, 1 = B is random.

        With MLM labels (and no per-layer outputs asked for), the last layer runs only at the
        masked positions and ``[CLS]``: nothing else reaches a loss."""
        positions = None
        if labels is not None and not (output_attentions or output_hidden_states):
            positions, labels = prediction_positions(labels, with_first=True)
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, output_attentions,
                        output_hidden_states, output_positions=positions)
        hidden, pooled = out.last_hidden_state, out.pooler_output
        nsp_logits = self.nsp(pooled)
        mlm_loss = nsp_loss = prediction_logits = masked_logits = None
        if labels is not None:
            mlm_loss, masked_logits = masked_lm_loss(self.cls, hidden, labels, num_items_in_batch)
        else:
            prediction_logits = self.cls(hidden)
        if next_sentence_label is not None:
            nsp_loss = F.cross_entropy(nsp_logits.float(), next_sentence_label.view(-1))
        losses = [l for l in (mlm_loss, nsp_loss) if l is not None]
        result = SelfsupBertForPreTrainingOutput(
            loss=sum(losses) if losses else None, mlm_loss=mlm_loss, nsp_loss=nsp_loss,
            prediction_logits=prediction_logits, masked_logits=masked_logits,
            seq_relationship_logits=nsp_logits, hidden_states=out.hidden_states, attentions=out.attentions)
        return result if return_dict is not False else result.to_tuple()


class SelfsupBertForMaskedLM(SelfsupBertPreTrainedModel):
    """Encoder + MLM head (no pooler, no NSP): what ``fill-mask`` pipelines load.

    Without labels ``logits`` are dense (batch, seq, vocab); with labels the loss is
    computed sparsely and ``logits`` are (num_masked, vocab), aligned with
    ``labels[labels != -100]``."""

    _tied_weights_keys = {"cls.decoder.weight": "bert.embeddings.word_embeddings.weight"}
    _output_embeddings = "cls.decoder"

    def __init__(self, config: SelfsupBertConfig):
        super().__init__(config)
        self.bert = SelfsupBertModel(config, add_pooling_layer=False)
        self.cls = MaskedLMHead(config)
        self.post_init()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, num_items_in_batch: int | torch.Tensor | None = None,
                output_attentions: bool = False, output_hidden_states: bool = False,
                return_dict: bool | None = None, **kwargs) -> MaskedLMOutput:
        """With ``labels`` (and no per-layer outputs asked for), the last layer runs only at the
        labelled positions."""
        positions = None
        if labels is not None and not (output_attentions or output_hidden_states):
            positions, labels = prediction_positions(labels, with_first=False)
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, output_attentions,
                        output_hidden_states, output_positions=positions)
        if labels is not None:
            loss, logits = masked_lm_loss(self.cls, out.last_hidden_state, labels, num_items_in_batch)
        else:
            loss, logits = None, self.cls(out.last_hidden_state)
        result = MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                attentions=out.attentions)
        return result if return_dict is not False else result.to_tuple()


AutoConfig.register(SelfsupBertConfig.model_type, SelfsupBertConfig, exist_ok=True)
AutoModel.register(SelfsupBertConfig, SelfsupBertModel, exist_ok=True)
AutoModelForPreTraining.register(SelfsupBertConfig, SelfsupBertForPreTraining, exist_ok=True)
AutoModelForMaskedLM.register(SelfsupBertConfig, SelfsupBertForMaskedLM, exist_ok=True)
