"""What a pretraining run is measured by on its held-out instances: perplexity and accuracy beside
the unigram baseline's (the plateau a model that learnt nothing sits on), and the last layer's
token-state cosine (a collapse). The pretrain job's health check (evaluation.health) reads them.
"""

from __future__ import annotations

import math

import torch

from ..models.masking import IGNORE_INDEX, Masker
from ..models.modeling import ARCHITECTURES
from .engine import Engine
from .instance_batches import InstanceBatches, step_generator

# Training batches whose targets estimate the unigram baseline's piece frequencies, read without a
# model: ~300k masked targets at 16 x 128, dozens per piece of an 8,000-piece vocabulary. 64
# batches (~20k targets) left most of a real corpus's pieces to the add-one smoothing, which
# raised the baseline's perplexity by ~20% (612 against 504 counted on the whole training split,
# docs/own_corpus.md) and so loosened the plateau bar.
UNIGRAM_BATCHES = 1024
# Held-out batches whose last-layer states measure a collapse (one forward pass each).
COSINE_BATCHES = 2


def _exp(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf  # math.exp overflows past ~709; NaN stays NaN


def unigram_log_probs(objective, masker: Masker, batches: InstanceBatches, vocab_size: int,
                      max_batches: int = UNIGRAM_BATCHES) -> torch.Tensor:
    """log p(piece) of the pieces the objective scores, by their frequency as targets of training
    batches (the first epoch's, masked as at step k of a fixed seed); add-one smoothing keeps a
    piece never seen as a target finite. (V,)"""
    counts = torch.ones(vocab_size, dtype=torch.float64)
    for k in range(min(max_batches, batches.steps_per_epoch)):
        labels = objective.targets(batches.for_step(k), masker, step_generator(0, f"unigram-{k}"))["labels"]
        targets = labels[labels != IGNORE_INDEX]
        counts += torch.bincount(targets, minlength=vocab_size)[:vocab_size].double()
    return (counts / counts.sum()).log()


@torch.no_grad()
def heldout_metrics(engine: Engine, objective, masker: Masker, batches: InstanceBatches, max_batches: int,
                    unigram: torch.Tensor | None = None) -> dict:
    """Perplexity of held-out instances: masked-LM for MLM models, next-token for LTR ones.

    Masks come from a fixed seed so that every model is scored on the same corrupted inputs.
    With ``unigram`` (log p per piece, ``unigram_log_probs``), the same positions are also scored
    by the unigram baseline: each target predicted by its training frequency, the most frequent
    piece as its guess. That is the plateau a model that learnt nothing sits on.
    """
    total_loss, predictions, correct, nsp_correct, rows = 0.0, 0, 0, 0, 0
    unigram_loss, unigram_correct = 0.0, 0
    for k, batch in enumerate(batches.in_order(max_batches)):
        batch = objective.targets(batch, masker, step_generator(0, f"heldout-{k}"))
        out = engine.evaluate(batch)
        total_loss += float(out.lm_loss) * int(out.lm_predictions)  # evaluation reads back per batch
        predictions += int(out.lm_predictions)
        correct += int(out.lm_correct)
        nsp_correct += int(out.nsp_correct)
        rows += len(batch["input_ids"])
        if unigram is not None:
            targets = batch["labels"][batch["labels"] != IGNORE_INDEX]
            unigram_loss -= float(unigram[targets].sum())
            unigram_correct += int((targets == int(unigram.argmax())).sum())
    metrics = {
        "heldout_perplexity": _exp(total_loss / predictions),
        "heldout_perplexity_kind": "next-token" if objective.causal else "masked-LM",
        "heldout_lm_accuracy": correct / predictions,
        "heldout_predictions": predictions,
    }
    if unigram is not None:
        metrics["unigram_perplexity"] = _exp(unigram_loss / predictions)
        metrics["unigram_accuracy"] = unigram_correct / predictions
    if objective.nsp:
        metrics["heldout_nsp_accuracy"] = nsp_correct / rows
    return metrics


@torch.no_grad()
def last_layer_cosine(engine: Engine, architecture: str, batches: InstanceBatches,
                      max_batches: int = COSINE_BATCHES) -> float:
    """Mean pairwise cosine of the last layer's token states within each held-out instance (its real
    tokens, uncorrupted), averaged over instances: near 1 when the encoder maps every token to
    the same state (a collapse), ~0.15 for a learnt one (docs/benchmark.md)."""
    encoder = ARCHITECTURES[architecture].encoder_of(engine.module)
    engine.module.eval()
    total, count = 0.0, 0
    for batch in batches.in_order(max_batches):
        batch = engine.to_device({k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")})
        with engine.autocast():
            states = encoder(**batch, use_cache=False).last_hidden_state.float()  # (B, T, H)
        units = torch.nn.functional.normalize(states, dim=-1) * batch["attention_mask"][..., None]
        n = batch["attention_mask"].sum(1).double()  # (B,)
        summed = units.sum(1).double()  # (B, H)
        # sum over ordered pairs i != j of u_i . u_j = |sum u|^2 - n
        pairwise = ((summed * summed).sum(1) - n) / (n * (n - 1)).clamp(min=1)
        total += float(pairwise[n > 1].sum())
        count += int((n > 1).sum())
    return total / count if count else math.nan
