"""Models: the pretraining model of every objective and the fine-tuning model of every task.

Both are thin layers over an encoder family of ``transformers`` (``ARCHITECTURES``): BERT
itself (post-LN, learned absolute positions, the paper's model) or RoFormer (the same
encoder with rotary positions). Checkpoints are ordinary HF checkpoints:
``AutoModel.from_pretrained(checkpoint)`` gives the encoder (``BertModel``/``RoFormerModel``),
and the family's pretraining class (``BertForAblationPretraining``, a ``BertForPreTraining``;
``RoFormerForAblationPretraining``) the encoder with its pretraining heads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    BertConfig,
    BertForPreTraining,
    PretrainedConfig,
    PreTrainedModel,
    RoFormerConfig,
    RoFormerModel,
)
from transformers.models.bert.modeling_bert import BertPooler
from transformers.models.roformer.modeling_roformer import RoFormerOnlyMLMHead, RoFormerPreTrainedModel

from ..facts.architectures import ARCHITECTURES as FAMILY_FACTS
from ..facts.kinds import KINDS
from ..settings import ModelShape
from .heads import HEADS
from .masking import IGNORE_INDEX, prediction_slots


def _shape(model: ModelShape, vocab_size: int, pad_token_id: int, causal: bool) -> dict:
    """The HF config keys every family shares. A causal (LTR) model is the family's decoder:
    ``is_decoder`` gives it a causal attention mask, kept at fine-tuning as the paper did."""
    return dict(
        vocab_size=vocab_size,
        hidden_size=model.hidden,
        num_hidden_layers=model.layers,
        num_attention_heads=model.heads,
        intermediate_size=model.intermediate,
        hidden_dropout_prob=model.dropout,
        attention_probs_dropout_prob=model.dropout,
        max_position_embeddings=model.max_position_embeddings,
        pad_token_id=pad_token_id,
        is_decoder=causal,
        use_cache=False,
    )


def bert_config(model: ModelShape | dict, vocab_size: int, pad_token_id: int, causal: bool) -> BertConfig:
    """The HF config of a resolved ``model`` spec for the BERT family."""
    return BertConfig(**_shape(ModelShape.of(model), vocab_size, pad_token_id, causal),
                      architectures=["BertForPreTraining"])


def roformer_config(model: ModelShape | dict, vocab_size: int, pad_token_id: int, causal: bool) -> RoFormerConfig:
    """RoFormer: BERT's layers (post-LN, GELU, segment embeddings) with rotary instead of learned
    absolute positions; ``max_position_embeddings`` only sizes the sinusoid table."""
    model = ModelShape.of(model)
    return RoFormerConfig(**_shape(model, vocab_size, pad_token_id, causal), embedding_size=model.hidden,
                          architectures=["RoFormerForAblationPretraining"])


def model_config(model: ModelShape | dict, vocab_size: int, pad_token_id: int, causal: bool) -> PretrainedConfig:
    """The HF config of a resolved ``model`` spec, in the family ``model.architecture`` names."""
    model = ModelShape.of(model)
    return ARCHITECTURES[model.architecture].config(model, vocab_size, pad_token_id, causal)


@dataclass
class PretrainingOutput:
    """Losses and counts stay tensors on the model's device: reading one back (``float``, ``int``)
    waits for the device, so the training loop does it only when it logs."""
    loss: torch.Tensor
    lm_loss: torch.Tensor
    lm_predictions: torch.Tensor  # () positions scored by the LM loss in this batch
    lm_correct: torch.Tensor  # ()
    nsp_loss: torch.Tensor | None = None
    nsp_correct: torch.Tensor | int = 0


class _AblationPretrainingLosses:
    """The losses of every family's pretraining model, computed faster than HF's heads do.

    The vocabulary projection, which dominates a small model's FLOPs, runs only at the
    positions that carry a label (the ~15% masked ones; every real token for LTR), gathered from
    fixed slots (``masking.prediction_slots``: ``lm_positions``/``lm_targets``, which the engine
    computes on the host before the batch goes to the device; derived from ``labels`` here when a
    caller gives only those). Labels are never shifted here: the objective has already aligned
    them (see objectives.next_token_labels). Loss = mean LM cross-entropy over the labelled
    positions + mean NSP cross-entropy, as in the paper and in HF.
    A family supplies ``encode`` (the base model's output), ``lm_logits`` and ``nsp_logits``.
    """

    takes_prediction_slots = True  # Engine.to_device adds lm_positions/lm_targets from the labels

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None,
                next_sentence_label=None, lm_positions=None, lm_targets=None) -> PretrainingOutput:
        hidden = self.encode(input_ids, attention_mask, token_type_ids)  # (B, T, H)
        if lm_positions is None:
            lm_positions, lm_targets = (t.to(hidden.device) for t in prediction_slots(labels.cpu()))
        picked = hidden.flatten(0, 1).index_select(0, lm_positions)  # (K, H)
        logits = self.lm_logits(picked).float()  # (K, V)
        targets = lm_targets  # (K,), IGNORE_INDEX in spare slots
        scored = targets != IGNORE_INDEX
        predictions = scored.sum()
        # sum / count rather than reduction="mean": a batch without labels gives 0, not 0 / 0
        lm_loss = F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction="sum") / predictions.clamp(min=1)
        out = PretrainingOutput(
            loss=lm_loss, lm_loss=lm_loss, lm_predictions=predictions,
            lm_correct=((logits.argmax(-1) == targets) & scored).sum(),
        )
        if next_sentence_label is not None:
            nsp_logits = self.nsp_logits(hidden).float()  # (B, 2)
            out.nsp_loss = F.cross_entropy(nsp_logits, next_sentence_label)
            out.nsp_correct = (nsp_logits.argmax(-1) == next_sentence_label).sum()
            out.loss = lm_loss + out.nsp_loss
        return out


class BertForAblationPretraining(_AblationPretrainingLosses, BertForPreTraining):
    """``BertForPreTraining``'s parameters and losses (NSP on BERT's pooled [CLS])."""

    def encode(self, input_ids, attention_mask, token_type_ids):
        return self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                         use_cache=False).last_hidden_state

    def lm_logits(self, hidden):
        return self.cls.predictions(hidden)

    def nsp_logits(self, hidden):
        return self.cls.seq_relationship(self.bert.pooler(hidden))


class RoFormerForAblationPretraining(_AblationPretrainingLosses, RoFormerPreTrainedModel):
    """``RoFormerForMaskedLM``'s encoder and tied MLM head plus BERT's NSP head (a pooler,
    dense + tanh on [CLS], and a 2-way classifier), which HF's RoFormer does not have.

    ``pooler.*`` is saved beside ``roformer.*``, so that fine-tuning starts from the pooler NSP
    trained, as BERT's does (``load_encoder``); ``AutoModel`` ignores it.
    """

    _tied_weights_keys = {
        "cls.predictions.decoder.bias": "cls.predictions.bias",
        "cls.predictions.decoder.weight": "roformer.embeddings.word_embeddings.weight",
    }

    def __init__(self, config: RoFormerConfig):
        super().__init__(config)
        self.roformer = RoFormerModel(config)
        self.cls = RoFormerOnlyMLMHead(config)
        self.pooler = BertPooler(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def encode(self, input_ids, attention_mask, token_type_ids):
        return self.roformer(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                             use_cache=False).last_hidden_state

    def lm_logits(self, hidden):
        return self.cls.predictions(hidden)

    def nsp_logits(self, hidden):
        return self.seq_relationship(self.pooler(hidden))


@dataclass(frozen=True)
class Architecture:
    """An encoder family: how to configure it and which class pretrains it."""

    name: str
    description: str
    config: callable  # (model spec, vocab size, pad id, causal) -> the HF config
    pretraining_class: type[PreTrainedModel]
    base_model_prefix: str  # where the encoder sits in the pretraining model (and its state dict)

    def encoder_of(self, model: PreTrainedModel) -> PreTrainedModel:
        return getattr(model, self.base_model_prefix)


# (config builder, pretraining class, base model prefix) of each family that facts.architectures names.
_FAMILIES = {
    "bert": (bert_config, BertForAblationPretraining, "bert"),
    "roformer": (roformer_config, RoFormerForAblationPretraining, "roformer"),
}
ARCHITECTURES: dict[str, Architecture] = {
    name: Architecture(name, description, *_FAMILIES[name]) for name, description in FAMILY_FACTS.items()
}


def pretraining_model(model: ModelShape | dict, vocab_size: int, pad_token_id: int, causal: bool) -> PreTrainedModel:
    """A freshly initialised pretraining model of the family ``model.architecture`` names."""
    model = ModelShape.of(model)
    family = ARCHITECTURES[model.architecture]
    return family.pretraining_class(family.config(model, vocab_size, pad_token_id, causal))


def load_encoder(checkpoint_dir: str) -> PreTrainedModel:
    """``AutoModel.from_pretrained(checkpoint_dir)``, with a ``pooler`` (dense + tanh on one
    token) for the sentence-level heads: the encoder's own (BERT), the one NSP trained and saved
    beside it (``RoFormerForAblationPretraining``), or a new one where the checkpoint has none
    (an encoder never trained on a sentence-level objective, as a No NSP BERT's pooler is)."""
    from safetensors import safe_open
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(checkpoint_dir)
    if getattr(encoder, "pooler", None) is not None:
        return encoder
    pooler = BertPooler(encoder.config)
    pooler.dense.weight.data.normal_(0.0, encoder.config.initializer_range)
    pooler.dense.bias.data.zero_()
    weights = os.path.join(checkpoint_dir, "model.safetensors")
    if os.path.exists(weights):
        with safe_open(weights, framework="pt") as handle:
            saved = {k[len("pooler."):]: handle.get_tensor(k) for k in handle.keys() if k.startswith("pooler.")}
        if saved:
            pooler.load_state_dict(saved)
    # A submodule of the encoder, so that copies (one per restart) and .to(device) take it along.
    encoder.pooler = pooler
    return encoder


@dataclass
class FinetuneOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor  # (B, C) for classification, (B, 1) regression, (B, T, 2) spans, (B, T, C) tags


# The fine-tuning loss of each task kind (facts.kinds.KINDS), as cramming's classification model
# computes its own by problem type: (logits, attention mask, the kind's label keys) ->
# (loss or None without labels, the logits as the task reads them).
def _classification_loss(logits, attention_mask, labels=None, start_positions=None, end_positions=None):
    return (None if labels is None else F.cross_entropy(logits, labels)), logits


def _regression_loss(logits, attention_mask, labels=None, start_positions=None, end_positions=None):
    # A single output trained with mean squared error (HF's problem_type="regression").
    return (None if labels is None else F.mse_loss(logits.squeeze(-1).float(), labels.float())), logits


def _span_loss(logits, attention_mask, labels=None, start_positions=None, end_positions=None):
    # Padding can never be an answer boundary; the loss averages the start and end losses.
    logits = logits.masked_fill(~attention_mask.bool().unsqueeze(-1), torch.finfo(logits.dtype).min)
    if start_positions is None:
        return None, logits
    return (F.cross_entropy(logits[..., 0], start_positions) + F.cross_entropy(logits[..., 1], end_positions)) / 2, logits


def _tagging_loss(logits, attention_mask, labels=None, start_positions=None, end_positions=None):
    # Only labelled tokens (first sub-tokens) count.
    if labels is None:
        return None, logits
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX), logits


TASK_LOSSES = {"classification": _classification_loss, "regression": _regression_loss, "span": _span_loss,
               "tagging": _tagging_loss}


class FinetuneModel(nn.Module):
    """A pretrained encoder, a head from ``HEADS`` and a task output layer whose width is the task
    kind's (``facts.kinds.KINDS``: classification and regression read the head's summary vector,
    span and tagging its per-token outputs) and whose loss is the kind's (``TASK_LOSSES``).

    With a feature-based head the encoder is frozen: no gradient, no dropout, and the
    optimizer never sees its parameters.
    """

    def __init__(self, encoder: PreTrainedModel, kind: str, num_labels: int, head: str, dropout: float):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown task kind '{kind}'; known: {', '.join(KINDS)}")
        self.encoder = encoder
        self.kind = KINDS[kind]
        self.task_loss = TASK_LOSSES[kind]
        self.head = HEADS[head](encoder.config, encoder.pooler)
        self.frozen = self.head.frozen
        if self.frozen:
            self.encoder.requires_grad_(False)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.head.out_dim, self.kind.output_width(num_labels))
        self.output.weight.data.normal_(0.0, encoder.config.initializer_range)
        self.output.bias.data.zero_()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.encoder.eval()  # features are the pretrained model's, never perturbed by dropout
        return self

    def _encode(self, input_ids, attention_mask, token_type_ids):
        if not self.frozen:
            return self.encoder(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                use_cache=False).last_hidden_state  # (B, T, H)
        with torch.no_grad():
            return self.encoder(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                use_cache=False, output_hidden_states=True).hidden_states  # L + 1 x (B, T, H)

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None,
                start_positions=None, end_positions=None, word_index=None, hidden_states=None) -> FinetuneOutput:
        if hidden_states is not None:  # a frozen encoder's layers, computed once (finetune.cache_hidden_states)
            hidden = self.head.from_cache(hidden_states)
        else:
            hidden = self._encode(input_ids, attention_mask, token_type_ids)
        if self.kind.per_token:
            logits = self.output(self.dropout(self.head.tokens(hidden, attention_mask, word_index)))  # (B, T, 2 or C)
        else:
            logits = self.output(self.dropout(self.head.summary(hidden, attention_mask)))  # (B, C) or (B, 1)
        loss, logits = self.task_loss(logits, attention_mask, labels, start_positions, end_positions)
        return FinetuneOutput(loss, logits)
