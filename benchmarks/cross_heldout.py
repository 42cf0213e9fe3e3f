"""Score pretrained checkpoints on one common held-out set (docs/own_corpus.md).

A run's metrics.json scores its own held-out instances. Two runs whose *instances* differ (here:
NotNext segments drawn by document or by sentence, instances.nsp_negatives) are then scored on
different text, and their perplexities do not compare. This script scores every given run on the
held-out instances of one folder, with the same fixed-seed masks and the unigram baseline of that
folder's training instances, as the pretrain job scores its own (training/heldout.py; a seed-0 run
scored on its own folder gets exactly its metrics.json numbers):

  python benchmarks/cross_heldout.py --heldout runs/tdavid_sent \\
      runs/tdavid:bert_base runs/tdavid_sent:bert_base runs/tdavid_sent:bert_base.seed1

The runs must share the held-out folder's tokenizer (the same corpus and vocabulary size).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _shards(workdir: Path, packing: str, length: int) -> list[str]:
    return sorted(str(p) for p in (workdir / "results" / "instances" / packing / f"len{length}").glob("shard-*"))


def score(run_dir: Path, heldout_dir: Path, length: int, threads: int) -> dict:
    from safetensors.torch import load_file

    from bert_ablation.data.tokenizer import load_tokenizer
    from bert_ablation.models.masking import Masker, MaskingProcedure
    from bert_ablation.models.modeling import pretraining_model
    from bert_ablation.models.objectives import OBJECTIVES
    from bert_ablation.settings import AblationSpec
    from bert_ablation.training.engine import Engine, configure_threads
    from bert_ablation.training.heldout import heldout_metrics, unigram_log_probs
    from bert_ablation.training.instance_batches import InstanceBatches

    configure_threads(threads)
    final = run_dir / "checkpoints" / "final"
    spec = AblationSpec.from_dict(json.loads((final / "ablation.json").read_text()))
    tokenizer = load_tokenizer(str(heldout_dir / "results" / "tokenizer"))
    if load_tokenizer(str(final)).get_vocab() != tokenizer.get_vocab():
        raise SystemExit(f"{run_dir}: its tokenizer is not {heldout_dir}'s; the runs must share one vocabulary")
    objective = OBJECTIVES[spec.objective]
    model = pretraining_model(spec.model, len(tokenizer), tokenizer.pad_token_id, objective.causal)
    missing, unexpected = model.load_state_dict(load_file(str(final / "model.safetensors")), strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k and "decoder" not in k]:
        raise SystemExit(f"{run_dir}: checkpoint does not fit its model (missing {missing}, unexpected {unexpected})")
    model.tie_weights()
    train = spec.pretrain
    engine = Engine.from_settings(model, train, lr=train.lr, total_steps=max(train.steps, 1), warmup_steps=0)
    masker = Masker.for_tokenizer(MaskingProcedure.from_config(spec.masking), tokenizer)
    shards = _shards(heldout_dir, spec.packing, length)
    if not shards:
        raise SystemExit(f"{heldout_dir}: no {spec.packing} instances of length {length} for {run_dir}")
    # one batch order for every run scored (data seed 0): a seed-0 run gets its own metrics.json numbers
    unigram = unigram_log_probs(objective, masker, InstanceBatches(shards, "train", train.batch_size, 0,
                                                                   train.group_by_length), len(tokenizer))
    heldout = InstanceBatches(shards, "heldout", train.batch_size, 0)
    metrics = heldout_metrics(engine, objective, masker, heldout, train.eval_batches, unigram)
    return {"run": f"{run_dir.parent.parent.parent.name}:{run_dir.name}", "objective": spec.objective, **metrics,
            "ratio": metrics["heldout_perplexity"] / metrics["unigram_perplexity"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="<snakemake folder>:<ablation>, e.g. runs/tdavid:bert_base")
    parser.add_argument("--heldout", type=Path, required=True, help="the folder whose held-out instances score all")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    print("| run | objective | held-out ppl | unigram ppl | ratio | accuracy | NSP acc. |")
    print("|---|---|---|---|---|---|---|")
    for run in args.runs:
        folder, ablation = run.rsplit(":", 1)
        r = score(Path(folder) / "results" / "pretrain" / ablation, args.heldout, args.length, args.threads)
        nsp = f"{100 * r['heldout_nsp_accuracy']:.0f}%" if "heldout_nsp_accuracy" in r else "–"
        print(f"| {run} | {r['objective']} | {r['heldout_perplexity']:.1f} | {r['unigram_perplexity']:.1f} | "
              f"{r['ratio']:.2f} | {100 * r['heldout_lm_accuracy']:.1f}% | {nsp} |", flush=True)


if __name__ == "__main__":
    main()
