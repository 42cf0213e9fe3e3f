"""Pretraining on your own corpus, against the unigram baseline (docs/own_corpus.md).

A run has learnt something from the corpus only if its held-out perplexity is well below what
predicting every scored piece by its training frequency gives: the *unigram baseline*. This
script computes that baseline on exactly the held-out positions a run's metrics.json scores
(the same instances, the same `pretrain.eval_batches` batches, the same fixed-seed masks) and
prints one table row per finished run of one or more Snakemake working directories:

  python benchmarks/own_corpus_sweep.py /tmp/oc/tdavid /tmp/oc/bible > sweep.md

Training frequency: for a masked LM, every non-special piece of the training instances (the
pieces the masker may select; its expectation over masks); for a left-to-right LM, every
next-piece label of the training instances. Add-one smoothed over the vocabulary.
"""

from __future__ import annotations

import argparse
import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

LENGTH = 128  # instances.max_seq_length of the runs (the default); main() sets --length


def unigram_scores(counts: np.ndarray, labels: np.ndarray) -> dict:
    """Perplexity and accuracy of predicting every label by its add-one-smoothed training frequency."""
    counts = np.asarray(counts, dtype=np.float64) + 1.0
    log_p = np.log(counts / counts.sum())
    labels = np.asarray(labels, dtype=np.int64)
    return {"unigram_perplexity": float(math.exp(-log_p[labels].mean())),
            "unigram_accuracy": float((labels == int(np.argmax(counts))).mean()),
            "scored": int(labels.size)}


def _instances(workdir: Path, packing: str, length: int) -> list[str]:
    return sorted(str(p) for p in (workdir / "results" / "instances" / packing / f"len{length}").glob("shard-*"))


@lru_cache(maxsize=None)
def training_counts(workdir: Path, packing: str, length: int, causal: bool) -> np.ndarray:
    import torch

    from bert_ablation.data.tokenizer import load_tokenizer
    from bert_ablation.training.instance_batches import InstanceBatches

    tokenizer = load_tokenizer(str(workdir / "results" / "tokenizer"))
    counts = np.zeros(len(tokenizer), dtype=np.int64)
    batches = InstanceBatches(_instances(workdir, packing, length), "train", 256, 0)
    special = torch.tensor(sorted(tokenizer.all_special_ids))
    for batch in batches.in_order(10**9):
        ids, inside = batch["input_ids"], batch["attention_mask"].bool()
        if causal:  # the next-token labels: every piece after the first of a row
            targets = ids[:, 1:][inside[:, 1:]]
        else:
            targets = ids[inside & ~torch.isin(ids, special)]
        counts += np.bincount(targets.numpy(), minlength=len(counts))
    return counts


def heldout_labels(workdir: Path, spec: dict) -> np.ndarray:
    """The labels heldout_metrics scores for this spec (bert_ablation.training.pretrain)."""
    from bert_ablation.data.tokenizer import load_tokenizer
    from bert_ablation.models.masking import Masker, MaskingProcedure
    from bert_ablation.models.objectives import OBJECTIVES
    from bert_ablation.settings import AblationSpec
    from bert_ablation.training.instance_batches import InstanceBatches, step_generator

    train = spec["pretrain"]
    tokenizer = load_tokenizer(str(workdir / "results" / "tokenizer"))
    objective = OBJECTIVES[spec["objective"]]
    masker = Masker.for_tokenizer(MaskingProcedure.from_config(spec["masking"]), tokenizer)
    heldout = InstanceBatches(_instances(workdir, spec["packing"], LENGTH), "heldout",
                              train["batch_size"], AblationSpec.from_dict(spec).pretrain.seeds()["data_seed"])
    labels = []
    for k, batch in enumerate(heldout.in_order(train["eval_batches"])):
        batch = objective.targets(batch, masker, step_generator(0, f"heldout-{k}"))
        labels.append(batch["labels"][batch["labels"] >= 0].numpy())
    return np.concatenate(labels)


def run_row(workdir: Path, run: Path) -> dict:
    from bert_ablation.models.objectives import OBJECTIVES

    metrics = json.loads((run / "metrics.json").read_text())
    spec = json.loads((run / "checkpoints" / "final" / "ablation.json").read_text())
    if not spec["pretrain"]["steps"]:
        return {}
    causal = OBJECTIVES[spec["objective"]].causal
    counts = training_counts(workdir, spec["packing"], LENGTH, causal)
    base = unigram_scores(counts, heldout_labels(workdir, spec))
    assert base["scored"] == metrics["heldout_predictions"], (run, base["scored"], metrics["heldout_predictions"])
    recipe = metrics["recipe"]
    m = spec["model"]
    return {"corpus": workdir.name, "run": metrics["ablation"], "objective": metrics["objective"],
            "shape": f"{m['layers']}/{m['hidden']}/{m['heads']}",
            "recipe": f"{recipe['architecture']}, lr {recipe['lr']:g}, dropout {recipe['dropout']:g}, "
                      f"warmup {recipe['warmup_steps']}, {metrics['steps']} x {recipe['batch_size']}",
            "ppl": metrics["heldout_perplexity"], "unigram_ppl": base["unigram_perplexity"],
            "ratio": metrics["heldout_perplexity"] / base["unigram_perplexity"],
            "acc": metrics["heldout_lm_accuracy"], "unigram_acc": base["unigram_accuracy"],
            "nsp": metrics.get("heldout_nsp_accuracy"), "seconds": metrics["seconds_this_run"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workdirs", nargs="+", type=Path)
    p.add_argument("--json", type=Path, help="also write the rows here")
    p.add_argument("--length", type=int, default=128, help="instances.max_seq_length of the runs")
    a = p.parse_args()
    import torch

    global LENGTH
    LENGTH = a.length
    torch.set_num_threads(1)
    rows = []
    for workdir in a.workdirs:
        for run in sorted((workdir / "results" / "pretrain").glob("*/metrics.json")):
            row = run_row(workdir, run.parent)
            if row:
                rows.append(row)
    print("| corpus | run | objective | L/H/A | recipe | held-out ppl | unigram ppl | ratio | accuracy | "
          "unigram acc. | NSP acc. | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        nsp = "–" if r["nsp"] is None else f"{100 * r['nsp']:.0f}%"
        print(f"| {r['corpus']} | {r['run']} | {r['objective']} | {r['shape']} | {r['recipe']} | {r['ppl']:.0f} | "
              f"{r['unigram_ppl']:.0f} | {r['ratio']:.2f} | {100 * r['acc']:.1f}% | {100 * r['unigram_acc']:.1f}% | "
              f"{nsp} | {r['seconds']:.0f} |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
