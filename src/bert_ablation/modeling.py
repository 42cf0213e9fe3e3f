"""Models: the pretraining model of every objective and the fine-tuning model of every task.

Both are thin layers over ``transformers``' BERT so that checkpoints are ordinary HF
checkpoints: ``AutoModel.from_pretrained(checkpoint)`` gives the encoder, and
``BertForPreTraining.from_pretrained`` the encoder with its pretraining heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertForPreTraining, BertModel

from .heads import HEADS
from .masking import IGNORE_INDEX


def bert_config(model: dict, vocab_size: int, pad_token_id: int, causal: bool) -> BertConfig:
    """The HF config of a resolved ``model`` spec. A causal (LTR) model is a BERT decoder:
    ``is_decoder`` gives it a causal attention mask, kept at fine-tuning as the paper did."""
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=model["hidden"],
        num_hidden_layers=model["layers"],
        num_attention_heads=model["heads"],
        intermediate_size=model["intermediate"],
        hidden_dropout_prob=model["dropout"],
        attention_probs_dropout_prob=model["dropout"],
        max_position_embeddings=model["max_position_embeddings"],
        pad_token_id=pad_token_id,
        is_decoder=causal,
        use_cache=False,
        architectures=["BertForPreTraining"],
    )


@dataclass
class PretrainingOutput:
    loss: torch.Tensor
    lm_loss: torch.Tensor
    lm_predictions: int  # positions scored by the LM loss in this batch
    lm_correct: int
    nsp_loss: torch.Tensor | None = None
    nsp_correct: int = 0


class BertForAblationPretraining(BertForPreTraining):
    """``BertForPreTraining``'s parameters and losses, computed faster.

    The vocabulary projection, which dominates a small model's FLOPs, runs only at the
    positions that carry a label (the ~15% masked ones; every real token for LTR). Labels are
    never shifted here: the objective has already aligned them (see objectives.next_token_labels).
    Loss = mean LM cross-entropy + mean NSP cross-entropy, as in the paper and in HF.
    """

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None,
                next_sentence_label=None) -> PretrainingOutput:
        encoded = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, use_cache=False)
        predicted = labels != IGNORE_INDEX  # (B, T)
        targets = labels[predicted]  # (N,)
        logits = self.cls.predictions(encoded.last_hidden_state[predicted]).float()  # (N, V)
        lm_loss = F.cross_entropy(logits, targets) if targets.numel() else logits.sum() * 0.0
        out = PretrainingOutput(
            loss=lm_loss, lm_loss=lm_loss, lm_predictions=int(targets.numel()),
            lm_correct=int((logits.argmax(-1) == targets).sum()),
        )
        if next_sentence_label is not None:
            nsp_logits = self.cls.seq_relationship(encoded.pooler_output).float()  # (B, 2)
            out.nsp_loss = F.cross_entropy(nsp_logits, next_sentence_label)
            out.nsp_correct = int((nsp_logits.argmax(-1) == next_sentence_label).sum())
            out.loss = lm_loss + out.nsp_loss
        return out


@dataclass
class FinetuneOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor  # (B, C) for classification, (B, 1) regression, (B, T, 2) spans, (B, T, C) tags


class FinetuneModel(nn.Module):
    """A pretrained encoder, a head from ``HEADS`` and a task output layer.

    kind = "classification": one label per sequence from the head's summary vector.
    kind = "regression": one score per sequence from the summary vector, a single output trained
    with mean squared error (HF's problem_type="regression").
    kind = "span": start/end logits per token (SQuAD); the loss averages the two.
    kind = "tagging": one label per token; only labelled tokens (first sub-tokens) count.

    With a feature-based head the encoder is frozen: no gradient, no dropout, and the
    optimizer never sees its parameters.
    """

    KINDS = ("classification", "regression", "span", "tagging")

    def __init__(self, encoder: BertModel, kind: str, num_labels: int, head: str, dropout: float):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"unknown task kind '{kind}'; known: {', '.join(self.KINDS)}")
        self.encoder = encoder
        self.kind = kind
        self.head = HEADS[head](encoder.config, encoder.pooler)
        self.frozen = self.head.frozen
        if self.frozen:
            self.encoder.requires_grad_(False)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.head.out_dim, {"span": 2, "regression": 1}.get(kind, num_labels))
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
        if self.kind in ("classification", "regression"):
            logits = self.output(self.dropout(self.head.summary(hidden, attention_mask)))  # (B, C) or (B, 1)
            loss = None
            if labels is not None and self.kind == "regression":
                loss = F.mse_loss(logits.squeeze(-1).float(), labels.float())
            elif labels is not None:
                loss = F.cross_entropy(logits, labels)
            return FinetuneOutput(loss, logits)
        logits = self.output(self.dropout(self.head.tokens(hidden, attention_mask, word_index)))  # (B, T, 2 or C)
        if self.kind == "tagging":
            loss = None
            if labels is not None:
                loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX)
            return FinetuneOutput(loss, logits)
        # Padding can never be an answer boundary.
        logits = logits.masked_fill(~attention_mask.bool().unsqueeze(-1), torch.finfo(logits.dtype).min)
        loss = None
        if start_positions is not None:
            loss = (F.cross_entropy(logits[..., 0], start_positions) + F.cross_entropy(logits[..., 1], end_positions)) / 2
        return FinetuneOutput(loss, logits)
