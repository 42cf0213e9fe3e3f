"""Fine-tune a finished run's checkpoints at settings its config does not hold, and (for sentence
classification) HF's own classification model on the same weights, features and rate with a
plain shuffled loop: the probe behind docs/recipe.md (length grouping, learning rates).

    python benchmarks/finetune_probe.py --results results --ablation no_pretraining --task sst2 \
        --lr 1e-3 --epochs 3 --group-by-length --reference

Prints one JSON line per restart (dev score after every epoch, training-set score at the end,
and the reference's dev scores) and a Markdown table. Nothing is written under ``results/``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="a finished run's results/ folder")
    parser.add_argument("--config", nargs="+", default=[str(Path(__file__).resolve().parents[1] / "config.yaml")],
                        help="the config files (later ones merged on top) whose finetune: and tasks: settings "
                             "the probe starts from: those of the run")
    parser.add_argument("--ablation", default="bert_base")
    parser.add_argument("--checkpoint", default="final",
                        help="which of the run's checkpoints: final, or step-K for a save step of pretrain.save_steps")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--group-by-length", action="store_true", help="batch by length (the old default)")
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--train-examples", type=int, default=None, help="use only the first N training examples")
    parser.add_argument("--reference", action="store_true",
                        help="also train HF's AutoModelForSequenceClassification on the same weights")
    parser.add_argument("--reinit-layers", type=int, default=None,
                        help="re-initialise the pooler and the top K encoder layers before fine-tuning "
                             "(Zhang et al. 2021); 0 = the pooler only")
    parser.add_argument("--encoder-dropout", type=float, default=None,
                        help="fine-tune with this dropout in the encoder (its checkpoint's config holds the "
                             "pretraining one, 0 in the default recipe)")
    parser.add_argument("--center-embeddings", action="store_true",
                        help="subtract the mean word embedding (the direction every piece shares) before fine-tuning")
    parser.add_argument("--reinit-attention", action="store_true",
                        help="re-initialise every layer's query and key projections: attention back to near-uniform "
                             "(averaging), values, feed-forwards and embeddings kept")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def reference_curve(checkpoint: str, spec, features: dict, dev_features: dict, dev_labels, args, pad_id: int,
                    seed: int) -> list[float]:
    """HF's classification model (its own head) on the checkpoint, shuffled batches, AdamW, linear
    warmup 10% and decay: dev accuracy after each epoch."""
    import torch
    from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

    from bert_ablation.data.features import pad_batch

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=len(spec.labels))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    n = len(features["input_ids"])
    total = math.ceil(n / args.batch_size) * args.epochs
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * total), total)
    order = torch.Generator().manual_seed(seed)
    curve = []
    for _ in range(args.epochs):
        model.train()
        permutation = torch.randperm(n, generator=order).tolist()
        for start in range(0, n, args.batch_size):
            batch = pad_batch(features, permutation[start: start + args.batch_size], pad_id, ("labels",))
            model(**batch).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(dev_labels), 128):
                index = list(range(start, min(start + 128, len(dev_labels))))
                batch = pad_batch(dev_features, index, pad_id, ())
                correct += int((model(**batch).logits.argmax(-1) == torch.tensor(dev_labels[start: start + 128])).sum())
        curve.append(round(100 * correct / len(dev_labels), 1))
    return curve


def adjust_encoder(encoder, reinit_layers: int | None = None, dropout: float | None = None,
                   center: bool = False, reinit_attention: bool = False) -> None:
    """The probe's changes to a loaded encoder, in place (docs/own_corpus.md tests each):
    ``center``: subtract the mean word embedding, the direction every piece shares; ``dropout``:
    every dropout of the encoder at this rate (its config holds the pretraining one);
    ``reinit_layers``: the pooler and the top K layers back to BERT's initialisation (0: the
    pooler only), by hand, since transformers skips _init_weights on modules it loaded;
    ``reinit_attention``: every layer's query and key projections back to it, so that attention
    is near-uniform again (a random encoder's [CLS] averages its input) while what the layers
    compute from what they attend to is kept."""
    import torch

    generator = torch.Generator().manual_seed(0)

    def reinit(module):
        for sub in module.modules():
            if isinstance(sub, torch.nn.Linear):
                sub.weight.data.normal_(0.0, encoder.config.initializer_range, generator=generator)
                sub.bias.data.zero_()
            elif isinstance(sub, torch.nn.LayerNorm):
                sub.weight.data.fill_(1.0)
                sub.bias.data.zero_()

    if reinit_attention:
        for layer in encoder.encoder.layer:
            reinit(layer.attention.self.query)
            reinit(layer.attention.self.key)
    if center:
        words = encoder.get_input_embeddings().weight.data
        words -= words.mean(0, keepdim=True)
    if dropout is not None:
        for module in encoder.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = dropout
    if reinit_layers is None:
        return
    layers = list(encoder.encoder.layer)
    for block in [encoder.pooler, *layers[len(layers) - reinit_layers:]]:
        reinit(block)


def probe(args) -> list[dict]:
    import datasets

    from bert_ablation import config as configuration
    from bert_ablation import plan
    from bert_ablation.data.tokenizer import load_tokenizer
    from bert_ablation.facts.tasks import TASKS, with_labels
    from bert_ablation.models.modeling import load_encoder
    from bert_ablation.training.engine import configure_threads
    from bert_ablation.training.finetune import evaluate, featurize, restart_seeds, train_restart

    configure_threads(args.threads)
    config = configuration.load(args.config[0], args.config[1:])
    point = plan.grid_points(config, args.task, "linear")[0].key
    settings = dataclasses.replace(plan.FinetuneSettings.from_config(config, args.task, "linear", point),
                                   group_by_length=args.group_by_length,
                                   hp=plan.GridPoint(args.lr, args.batch_size, args.epochs))
    checkpoint = Path(args.results) / "pretrain" / args.ablation / "checkpoints" / args.checkpoint
    if not checkpoint.is_dir():
        saved = sorted(p.name for p in checkpoint.parent.glob("*") if p.is_dir())
        raise SystemExit(f"--checkpoint {args.checkpoint}: no {checkpoint}; this run saved: {', '.join(saved) or 'none'}")
    checkpoint = str(checkpoint)
    tokenizer, encoder = load_tokenizer(checkpoint), load_encoder(checkpoint)
    adjust_encoder(encoder, args.reinit_layers, args.encoder_dropout, args.center_embeddings, args.reinit_attention)
    data = datasets.load_from_disk(str(Path(args.results) / "tasks" / args.task))
    spec = with_labels(TASKS[args.task], data["train"])
    train = data["train"] if args.train_examples is None else data["train"].select(range(args.train_examples))
    records = {"train": train.to_dict(), **{split: data[split].to_dict() for split in spec.eval_splits}}
    dev = spec.eval_splits[0]
    features = {"train": featurize(spec, records["train"], tokenizer, settings.task, train=True),
                "train_eval": featurize(spec, records["train"], tokenizer, settings.task, train=False),
                dev: featurize(spec, records[dev], tokenizer, settings.task, train=False)}
    metric = spec.metrics[0]  # the paper's headline metric of the task

    def scorer(split, which):
        return lambda engine: evaluate(engine, spec, records[split], features[which], settings.eval_batch_size,
                                       settings.task, tokenizer.pad_token_id)[metric]

    rows = []
    for restart in range(args.restarts):
        seeds = restart_seeds(settings.seed, restart)
        engine, curve = train_restart(encoder, spec, "linear", features["train"], settings, seeds,
                                      tokenizer.pad_token_id, "cpu", f"probe {args.task} restart {restart}",
                                      after_epoch=scorer(dev, dev))
        row = {"ablation": args.ablation, "reinit_layers": args.reinit_layers, "encoder_dropout": args.encoder_dropout,
               "center_embeddings": args.center_embeddings, "reinit_attention": args.reinit_attention,
               "checkpoint": args.checkpoint,
               "task": args.task, "lr": args.lr, "epochs": args.epochs,
               "group_by_length": args.group_by_length, "restart": restart, "metric": metric,
               "dev": [round(value, 1) for value in curve], "train": round(scorer("train", "train_eval")(engine), 1)}
        if args.reference:
            if spec.kind != "classification":
                raise SystemExit(f"--reference: {args.task} is a {spec.kind} task; the reference is for classification")
            row["reference_dev"] = reference_curve(checkpoint, spec, features["train"], features[dev],
                                                   records[dev]["label"], args, tokenizer.pad_token_id,
                                                   seeds["init_seed"])
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| ablation | task | lr | epochs | grouped | restart | dev per epoch | train | HF reference dev |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['ablation']} | {r['task']} | {r['lr']:g} | {r['epochs']} | {r['group_by_length']} | "
                     f"{r['restart']} | {' / '.join(map(str, r['dev']))} | {r['train']} | "
                     f"{' / '.join(map(str, r.get('reference_dev', []))) or '–'} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    print(markdown(probe(args)))


if __name__ == "__main__":
    main()
