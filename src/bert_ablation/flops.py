"""One FLOP model of a BERT-style encoder, shared by the cost estimate (``estimate.py``) and the
throughput benchmark's MFU (``benchmarks/throughput.py``). Plain integers: no torch, no numpy.

Matmul FLOPs, 2 per weight per token forward; backward costs twice the forward, so a trained
token costs ``TRAINED`` = 3 x its forward, 6 per weight (Kaplan et al. 2020; PaLM, Chowdhery et
al. 2022, App. B). A token at sequence length T, forward:

  2 x W              W = the encoder layers' weights
  + 4 x L x H x T    attention scores and weighted values (the full square, also when causal)

and a dense layer of n_in x n_out, 2 x n_in x n_out per row it runs on (the vocabulary
projection at scored positions, the MLM transform, the pooler, a classifier, an LSTM's gates).

What W counts is the caller's: the estimate uses N, every non-embedding parameter of the encoder
layers (biases and LayerNorms included, ``estimate.non_embedding_parameters``, Kaplan's N); the
benchmark counts matmul weights only (``matmul_weights``), as MFU does. Not counted beyond W:
embedding lookups, softmax, the loss and the optimizer.
"""

from __future__ import annotations

from collections.abc import Iterable

TRAINED = 3  # forward + backward, the backward twice the forward


def matmul_weights(layers: int, hidden: int, intermediate: int) -> int:
    """The encoder layers' matmul weights: Q, K, V, O projections and the feed-forward pair."""
    return layers * (4 * hidden * hidden + 2 * hidden * intermediate)


def token_forward(weights: int, layers: int, hidden: int, length: int) -> int:
    """Forward FLOPs of the encoder for one token of a sequence of ``length`` tokens."""
    return 2 * weights + 4 * layers * hidden * length


def sequences_forward(weights: int, layers: int, hidden: int, lengths: Iterable[int]) -> int:
    """Forward FLOPs of the encoder over sequences of these lengths (each token at its own
    sequence's length: 2 W x sum(len) + 4 L H x sum(len^2))."""
    lengths = [int(n) for n in lengths]
    return 2 * weights * sum(lengths) + 4 * layers * hidden * sum(n * n for n in lengths)


def dense_forward(n_in: int, n_out: int) -> int:
    """Forward FLOPs of an n_in x n_out weight matrix on one row."""
    return 2 * n_in * n_out
