"""Did a pretraining run learn? Torch-free thresholds and the classification of its numbers.

A run that never left the masked-LM unigram plateau still writes a checkpoint, and every table
built on it measures noise (issue 25: a real corpus at held-out perplexity 1026 against the
unigram's 1065, then every SST-2 restart predicting one class). The pretrain job therefore
measures, beside its held-out loss, what a model that learnt nothing scores on exactly the same
positions (each target piece predicted by its training-split frequency), and the last layer's
token states, and classifies the run:

* ``diverged``: a non-finite loss (held-out or logged), or a run that *ends* in a loss spike;
* ``plateau``: held-out perplexity above ``PLATEAU_RATIO`` x the unigram's;
* ``collapsed``: the last layer's token states near-identical (mean pairwise cosine within a
  held-out instance above ``COLLAPSE_COSINE``);
* ``learnt`` otherwise, and ``exempt`` for a run of 0 steps (No pretraining is untrained by design).

The first of these that applies is the status; ``problems`` lists every one that applies.
Tables mark a run that is not learnt and claims leave it out; ``pretrain.health: fail`` makes
the job fail instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

# Held-out perplexity above this share of the unigram's is the plateau. Half the unigram's
# perplexity is a loss ln 2 = 0.69 nats per scored piece below "predict the frequent pieces".
# Measured (docs/health.md): learnt default-world masked LMs sit at 2-9% of the unigram's
# (perplexity 3-16 against 167.5), plateau runs at 59-97% (100/0/0 and 0/0/100: 97%; BERT's
# encoder at lr 1e-3: 98-132; issue 25's corpus: 1026 against 1065). 0.5 lies far from both.
PLATEAU_RATIO = 0.5
# Mean pairwise cosine of the last layer's token states within a held-out instance above this
# is a collapse: docs/benchmark.md measured 0.72 (100/0/0) and 1.00 (0/0/100) against 0.15 for
# a learnt 80/10/10 model, whose intermediate layers peak at 0.56; 0.6 stays above every learnt
# layer and below both collapsed models.
COLLAPSE_COSINE = 0.6
# A spike: a logged training loss (a mean over pretrain.log_every steps) more than this many nats
# above the lowest logged before it, i.e. e^1 = 2.7x the perplexity. Spikes the run recovers
# from are recorded; a run whose last logged loss is a spike has diverged.
SPIKE_NATS = 1.0

LEARNT, PLATEAU, DIVERGED, COLLAPSED, EXEMPT, UNCHECKED = (
    "learnt", "plateau", "diverged", "collapsed", "exempt", "unchecked")
NOT_LEARNT = (DIVERGED, PLATEAU, COLLAPSED)  # in order of precedence
MODES = ("warn", "fail")

# A plateau run whose NSP head is this sure of itself has found a shortcut for NSP rather than
# learnt the corpus: on a corpus of 151 long chapters and 957 short review "documents", a
# document-drawn NotNext came from the reviews 86% of the time, NSP reached 79-89% by register and
# the masked LM stayed at 0.71-1.02 x the unigram; NotNext drawn by sentence took it to 0.48-0.53
# (docs/own_corpus.md). Learnt real-text runs sit at 55-61% NSP, the world's at 66% (81% at 5x
# the steps, where nothing is on the plateau).
NSP_SHORTCUT_ACCURACY = 0.75
NSP_SHORTCUT_FIX = ("NSP is solved ({accuracy}) while the masked LM is not: NotNext segments are told apart by where "
                    "they come from (a source, register or document length of their own), not by content; draw them "
                    "by sentence (instances.nsp_negatives: sentence) or check that documents are coherent text")

FIXES = {
    DIVERGED: "lower pretrain.lr (halve it), lengthen pretrain.warmup_steps, keep pretrain.grad_clip at 1.0, "
              "or try pretrain.precision: fp32",
    PLATEAU: "the model predicts little beyond piece frequencies: try a lower pretrain.lr (deeper post-LN stacks "
             "need less; README 'The recipe'), more pretrain.steps, model.architecture: roformer with "
             "model.dropout: 0, and masking with unchanged (SAME) tokens; check the corpus is real text",
    COLLAPSED: "the last layer maps every token to nearly the same state: masking without unchanged (SAME) "
               "tokens collapses these encoders (README 'The recipe'); use masking.same > 0 or a lower pretrain.lr",
}


class PretrainingHealthError(RuntimeError):
    """A run that did not learn, under ``pretrain.health: fail``."""


def thresholds() -> dict:
    return {"plateau_perplexity_ratio": PLATEAU_RATIO, "collapse_cosine": COLLAPSE_COSINE,
            "spike_nats": SPIKE_NATS}


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def loss_spikes(losses: Iterable[tuple[int, float]], spike_nats: float = SPIKE_NATS) -> list[dict]:
    """The logged (step, loss) rows more than ``spike_nats`` above the lowest loss logged before them."""
    spikes, lowest = [], math.inf
    for step, loss in losses:
        if not _finite(loss):
            continue  # non-finite losses are a divergence of their own
        if loss - lowest > spike_nats:
            spikes.append({"step": int(step), "loss": float(loss), "lowest_before": float(lowest)})
        lowest = min(lowest, loss)
    return spikes


def classify(metrics: Mapping, losses: list[tuple[int, float]]) -> dict:
    """The ``health`` record of a run from its metrics.json numbers and its logged (step, training loss)
    rows: status, every problem found, the numbers behind them and the thresholds applied."""
    ppl, unigram = metrics.get("heldout_perplexity"), metrics.get("unigram_perplexity")
    cosine = metrics.get("last_layer_cosine")
    ratio = ppl / unigram if _finite(ppl) and _finite(unigram) and unigram > 0 else None
    spikes = loss_spikes(losses)
    record = {
        "status": LEARNT, "problems": [], "heldout_perplexity": ppl, "unigram_perplexity": unigram,
        "perplexity_ratio": ratio, "heldout_lm_accuracy": metrics.get("heldout_lm_accuracy"),
        "unigram_accuracy": metrics.get("unigram_accuracy"), "last_layer_cosine": cosine,
        "final_train_loss": metrics.get("final_train_loss"), "spikes": spikes, "thresholds": thresholds(),
    }
    if metrics.get("steps") == 0:
        return {**record, "status": EXEMPT, "reason": "no pretraining (steps 0): untrained by design"}
    found = {}
    bad_losses = [(step, loss) for step, loss in losses if not _finite(loss)]
    if not _finite(ppl) or bad_losses:
        found[DIVERGED] = (f"non-finite loss (held-out perplexity {ppl}"
                           + (f"; training loss {bad_losses[0][1]} at step {bad_losses[0][0]}" if bad_losses else "")
                           + ")")
    elif spikes and losses and spikes[-1]["step"] == losses[-1][0]:
        last = spikes[-1]
        found[DIVERGED] = (f"the run ends in a loss spike: training loss {last['loss']:.3f} at step {last['step']}, "
                           f"{last['loss'] - last['lowest_before']:.2f} nats above its lowest "
                           f"({last['lowest_before']:.3f}; a spike is > {SPIKE_NATS:g})")
    if ratio is not None and ratio > PLATEAU_RATIO:
        found[PLATEAU] = (f"held-out {metrics.get('heldout_perplexity_kind', 'LM')} perplexity {ppl:.1f} is "
                          f"{ratio:.2f} x the unigram baseline's {unigram:.1f} (threshold {PLATEAU_RATIO:g} x); "
                          f"accuracy {_pct(metrics.get('heldout_lm_accuracy'))} vs the unigram's "
                          f"{_pct(metrics.get('unigram_accuracy'))}")
    if _finite(cosine) and cosine > COLLAPSE_COSINE:
        found[COLLAPSED] = (f"mean pairwise cosine of the last layer's token states {cosine:.2f} "
                            f"(threshold {COLLAPSE_COSINE:g}; a learnt encoder: ~0.15)")
    fixes = dict(FIXES)
    nsp = metrics.get("heldout_nsp_accuracy")
    if PLATEAU in found and _finite(nsp) and nsp >= NSP_SHORTCUT_ACCURACY:
        fixes[PLATEAU] = NSP_SHORTCUT_FIX.format(accuracy=_pct(nsp)) + "; otherwise " + FIXES[PLATEAU]
    problems = [{"status": status, "detail": found[status], "fix": fixes[status]}
                for status in NOT_LEARNT if status in found]
    return {**record, "status": problems[0]["status"] if problems else LEARNT, "problems": problems}


def _pct(value) -> str:
    return f"{100 * value:.1f}%" if _finite(value) else "n/a"


def _num(value, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "n/a"


def not_learnt(health: Mapping | None) -> str | None:
    """Why a run's results measure nothing (a sentence), or None for a learnt, exempt or unchecked run."""
    if not health or health.get("status") not in NOT_LEARNT:
        return None
    return f"{health['status']}: " + "; ".join(p["detail"] for p in health.get("problems", []))


def status_of(health: Mapping | None) -> str:
    return health.get("status", UNCHECKED) if health else UNCHECKED


def warning_block(name: str, health: Mapping, mode: str) -> str:
    """The loud block the pretrain job logs for a run that did not learn."""
    rule = "!" * 78
    consequence = ("pretrain.health is 'fail': the job stops here, nothing is published."
                   if mode == "fail" else
                   "Tables mark this run 'not learnt' and claims leave it out (pretrain.health: warn; "
                   "'fail' stops the job instead).")
    lines = [rule, f"WARNING: pretraining run '{name}' did not learn ({health['status'].upper()}).",
             f"  held-out perplexity {_num(health['heldout_perplexity'], 1)} vs unigram baseline "
             f"{_num(health['unigram_perplexity'], 1)}; last-layer cosine {_num(health['last_layer_cosine'], 2)}"]
    for problem in health["problems"]:
        lines += [f"  - {problem['status']}: {problem['detail']}", f"    likely fix: {problem['fix']}"]
    lines += [f"  {consequence}", rule]
    return "\n".join(lines)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"pretrain.health: {mode!r} is not one of {', '.join(MODES)} (config.yaml).")
    return mode
