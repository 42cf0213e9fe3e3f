"""What sits between the pretrained encoder and a task's output layer at fine-tuning.

``linear``: nothing; the task layer reads the encoder directly, as BERT does.
``bilstm``: a randomly initialised bidirectional LSTM over the encoder's hidden states
(Table 5's "+ BiLSTM" row), giving a left-to-right model right-hand context at fine-tuning.

Each head turns hidden states (B, T, H) into per-token features (B, T, D) for span/tagging
tasks and one summary vector (B, D) per sequence for classification.
"""

from __future__ import annotations

import torch
from torch import nn


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-pad token of each right-padded row: (B,)."""
    return attention_mask.sum(dim=1).long() - 1


class LinearHead(nn.Module):
    """No bridge. Sequences are summarised as HF's BertPooler does: dense + tanh on one token,
    [CLS] for a bidirectional encoder, the last real token for a causal one ([CLS] of a causal
    encoder has seen nothing but itself)."""

    def __init__(self, hidden: int, pooler: nn.Module, causal: bool):
        super().__init__()
        self.out_dim = hidden
        self.pooler = pooler  # the encoder's pretrained BertPooler (dense + tanh)
        self.causal = causal

    def tokens(self, hidden_states, attention_mask):
        return hidden_states

    def summary(self, hidden_states, attention_mask):
        if self.causal:
            rows = torch.arange(hidden_states.size(0), device=hidden_states.device)
            token = hidden_states[rows, last_token_index(attention_mask)]  # (B, H)
        else:
            token = hidden_states[:, 0]
        return self.pooler.activation(self.pooler.dense(token))


class BiLSTMHead(nn.Module):
    """A one-layer BiLSTM (H units per direction) over the encoder output; sequences are
    summarised by the final forward and backward states, which together have read every token."""

    def __init__(self, hidden: int, pooler: nn.Module, causal: bool):
        super().__init__()
        self.out_dim = 2 * hidden
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=True)

    def _run(self, hidden_states, attention_mask):
        lengths = attention_mask.sum(dim=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(hidden_states, lengths, batch_first=True, enforce_sorted=False)
        output, (h_n, _) = self.lstm(packed)
        output, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=hidden_states.size(1))
        return output, h_n  # (B, T, 2H), (2, B, H)

    def tokens(self, hidden_states, attention_mask):
        return self._run(hidden_states, attention_mask)[0]

    def summary(self, hidden_states, attention_mask):
        h_n = self._run(hidden_states, attention_mask)[1]
        return torch.cat([h_n[0], h_n[1]], dim=-1)  # (B, 2H)


HEADS: dict[str, type[nn.Module]] = {"linear": LinearHead, "bilstm": BiLSTMHead}
