"""What sits between the pretrained encoder and a task's output layer at fine-tuning.

``linear``: nothing; the task layer reads the encoder directly, as BERT does.
``bilstm``: a randomly initialised bidirectional LSTM over the encoder's hidden states
(Table 5's "+ BiLSTM" row), giving a left-to-right model right-hand context at fine-tuning.
``features_*``: the feature-based approach of Table 7. The encoder is frozen; activations of
one or more of its layers (``hidden_states``: embeddings, then every layer) are combined and
fed to a randomly initialised two-layer BiLSTM (H units per direction: 768 for BERT-Base, as
in the paper) before the output layer.

Each head turns hidden states (B, T, H) into per-token features (B, T, D) for span/tagging
tasks and one summary vector (B, D) per sequence for classification. Heads with
``frozen = True`` read the whole ``hidden_states`` tuple instead of the last layer. For tagging,
a BiLSTM reads the sentence's words (their first sub-tokens, ``word_index``) as a classic
CoNLL tagger does, not every piece of the context window: the encoder has already seen the
document context, and a 10-step LSTM costs a tenth of a 128-step one on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig

from ..facts.head_kinds import HEAD_KINDS, HeadKind


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-pad token of each right-padded row: (B,)."""
    return attention_mask.sum(dim=1).long() - 1


def run_lstm(lstm: nn.LSTM, inputs: torch.Tensor, attention_mask: torch.Tensor):
    """A (Bi)LSTM over the real tokens of right-padded rows: (B, T, D), final states."""
    lengths = attention_mask.sum(dim=1).clamp(min=1).cpu()  # a row with nothing to read still packs
    packed = nn.utils.rnn.pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
    output, (h_n, _) = lstm(packed)
    output, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=inputs.size(1))
    return output, h_n


class LinearHead(nn.Module):
    """No bridge. Sequences are summarised as HF's BertPooler does: dense + tanh on one token,
    [CLS] for a bidirectional encoder, the last real token for a causal one ([CLS] of a causal
    encoder has seen nothing but itself)."""

    frozen = False

    def __init__(self, config: PretrainedConfig, pooler: nn.Module):
        super().__init__()
        self.out_dim = config.hidden_size
        self.pooler = pooler  # the encoder's pretrained BertPooler (dense + tanh)
        self.causal = bool(config.is_decoder)

    def tokens(self, hidden_states, attention_mask, word_index=None):
        return hidden_states

    def summary(self, hidden_states, attention_mask):
        if self.causal:
            rows = torch.arange(hidden_states.size(0), device=hidden_states.device)
            token = hidden_states[rows, last_token_index(attention_mask)]  # (B, H)
        else:
            token = hidden_states[:, 0]
        return self.pooler.activation(self.pooler.dense(token))


class BiLSTMHead(nn.Module):
    """A BiLSTM (H units per direction; one layer unless told) over the encoder output; sequences
    are summarised by the final forward and backward states, which together have read every token."""

    frozen = False

    def __init__(self, config: PretrainedConfig, pooler: nn.Module, in_dim: int | None = None, layers: int = 1):
        super().__init__()
        hidden = config.hidden_size
        self.out_dim = 2 * hidden
        self.lstm = nn.LSTM(in_dim or hidden, hidden, num_layers=layers, batch_first=True, bidirectional=True)

    def tokens(self, hidden_states, attention_mask, word_index=None):
        if word_index is None:
            return run_lstm(self.lstm, hidden_states, attention_mask)[0]
        # Over the words only: gather their first sub-tokens, run, put the outputs back in place.
        is_word = word_index >= 0  # (B, W)
        rows = torch.arange(word_index.size(0), device=word_index.device)[:, None].expand_as(word_index)
        words = hidden_states[rows, word_index.clamp(min=0)]  # (B, W, D)
        output = run_lstm(self.lstm, words, is_word)[0]  # (B, W, 2H)
        placed = output.new_zeros(hidden_states.shape[:2] + output.shape[-1:])  # (B, T, 2H)
        placed[rows[is_word], word_index[is_word]] = output[is_word]
        return placed

    def summary(self, hidden_states, attention_mask):
        h_n = run_lstm(self.lstm, hidden_states, attention_mask)[1]
        return torch.cat([h_n[-2], h_n[-1]], dim=-1)  # last layer's forward and backward: (B, 2H)


class LayerCombination(nn.Module):
    """Combines encoder layers into one feature per token.

    ``layers`` index ``hidden_states`` (0 = embeddings, -1 = last layer); ``mode`` is
    ``select`` (one layer), ``concat`` or ``weighted`` (a learned softmax-normalised weight per
    layer times a learned scale, ELMo's scalar mix; the paper does not say how it weighted).
    """

    def __init__(self, layers: tuple[int, ...], mode: str, hidden: int):
        super().__init__()
        self.layers, self.mode = layers, mode
        self.out_dim = hidden * (len(layers) if mode == "concat" else 1)
        if mode == "weighted":
            self.weights = nn.Parameter(torch.zeros(len(layers)))  # equal weights at the start
            self.scale = nn.Parameter(torch.ones(()))

    def forward(self, hidden_states: tuple[torch.Tensor, ...]) -> torch.Tensor:
        chosen = [hidden_states[k] for k in self.layers]
        if self.mode == "select":
            return chosen[0]
        if self.mode == "concat":
            return torch.cat(chosen, dim=-1)  # (B, T, len * H)
        weights = torch.softmax(self.weights, dim=0)
        return self.scale * sum(w * h for w, h in zip(weights, chosen))


def _all_layers(config: PretrainedConfig) -> tuple[int, ...]:
    return tuple(range(1, config.num_hidden_layers + 1))  # every Transformer layer, not the embeddings


class FeatureHead(BiLSTMHead):
    """Feature-based: frozen encoder layers, combined, into a two-layer BiLSTM."""

    frozen = True
    layers: tuple[int, ...] = ()
    mode = "select"

    def __init__(self, config: PretrainedConfig, pooler: nn.Module):
        combine = LayerCombination(self.layers or _all_layers(config), self.mode, config.hidden_size)
        super().__init__(config, pooler, in_dim=combine.out_dim, layers=2)
        self.combine = combine
        self.config, self.num_layers = config, config.num_hidden_layers

    @classmethod
    def cached_layers(cls, config: PretrainedConfig) -> tuple[int, ...]:
        """The indices of ``hidden_states`` this head reads: all a feature cache has to keep."""
        count = config.num_hidden_layers + 1
        return tuple(sorted(k % count for k in (cls.layers or _all_layers(config))))

    def from_cache(self, cached: torch.Tensor) -> list:
        """(layers kept, B, T, H) -> a ``hidden_states``-like list holding just those layers."""
        states = [None] * (self.num_layers + 1)
        for k, state in zip(self.cached_layers(self.config), cached.unbind(0)):
            states[k] = state
        return states

    @classmethod
    def min_layers(cls) -> int:
        """Transformer layers the encoder needs (head_kinds.HeadKind.min_layers)."""
        return cls.kind.min_layers()

    def tokens(self, hidden_states, attention_mask, word_index=None):
        return super().tokens(self.combine(hidden_states), attention_mask, word_index)

    def summary(self, hidden_states, attention_mask):
        return super().summary(self.combine(hidden_states), attention_mask)


def feature_head(kind: HeadKind) -> type[FeatureHead]:
    class_name = "".join(part.title() for part in kind.name.removeprefix("features_").split("_")) + "Features"
    return type(class_name, (FeatureHead,), {"kind": kind, "layers": kind.layers, "mode": kind.mode,
                                             "__doc__": FeatureHead.__doc__})


# The modules of the heads in head_kinds.HEAD_KINDS (the torch-free facts: frozen, layers, mode).
HEADS: dict[str, type[nn.Module]] = {
    name: LinearHead if name == "linear" else BiLSTMHead if name == "bilstm" else feature_head(kind)
    for name, kind in HEAD_KINDS.items()
}
