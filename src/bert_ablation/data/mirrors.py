"""Hub-format local mirrors: read every hub id of a config from a folder laid out as the hub.

``hub_mirror: DIR`` (config.schema.yaml) makes every hub dataset id (a task's ``hub`` arguments,
``corpus.hf.datasets`` paths) and every ``checkpoints:`` hub id resolve to ``DIR/<owner>/<name>/``,
read through the same ``datasets.load_dataset`` / ``from_pretrained`` calls as the hub, offline.
A cluster fills DIR on its login node (``huggingface-cli download --repo-type dataset ID
--local-dir DIR/ID``; docs/hub.md); ``python -m bert_ablation.data.mirrors`` writes a stand-in
with the real repositories' layout, schemas and model shapes but synthetic rows and random
weights, to rehearse a preset without the hub:

    python -m bert_ablation.data.mirrors --configfile presets/released.yaml --out mirror/
    snakemake ... --configfile presets/released.yaml --config hub_mirror=mirror/

Reading through a mirror (and the errors that name what to set) is ``bert_ablation.hub``'s; this
module writes one.

Dataset repos are written as the hub holds a parquet dataset: ``README.md`` whose YAML front
matter lists ``configs:`` with their ``data_files`` per split, and ``<config>/<split>-00000-of-00001.parquet``
files carrying the dataset's feature types (ClassLabel names, sequences) in their schema metadata.
Model repos hold the released model's config.json, a WordPiece tokenizer of its vocabulary size
and randomly initialised weights.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import random
import re
from pathlib import Path

from .. import config as cfg
from ..facts.tasks import CONLL_LABELS, TASKS, WORLD_TASKS
from ..hub import MirrorError, is_hub_id, mirror_folder
from .conll import DOCSTART
from .tokenizer import tokenizer_from_vocab
from .world import World

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ the hub ids a config reads

def hub_datasets(config: dict) -> list[tuple[str, dict]]:
    """(key, load_dataset args) of every hub dataset the config reads: tasks with source hub
    and the corpus's hf datasets."""
    out = []
    for name, settings in config["tasks"].items():
        if settings["source"] == "hub":
            out.append((f"tasks.{name}", {"task": name, **(settings.get("hub") or TASKS[name].hub)}))
    if config["corpus"]["source"] == "hf":
        for i, spec in enumerate(config["corpus"]["hf"]["datasets"]):
            out.append((f"corpus.hf.datasets[{i}]", {"corpus": spec, **spec}))
    return [(key, args) for key, args in out if is_hub_id(args["path"])]


def hub_models(config: dict) -> list[tuple[str, str]]:
    return [(f"checkpoints.{name}", entry["hub"]) for name, entry in config.get("checkpoints", {}).items()
            if entry.get("hub") and not entry.get("path")]


# ------------------------------------------------------------------ dataset schemas

# The hub's GLUE (nyu-mll/glue): every config has idx int32 and label (a ClassLabel, float32 for
# STS-B); the test splits hold label -1 (GLUE keeps test labels private).
GLUE_TEST_SPLITS = {"mnli": ("test_matched", "test_mismatched")}
# CoNLL-2003's POS and chunk tag sets in the hub dataset's ClassLabel order (its loading script,
# eriktks/conll2003 conll2003.py, and the parquet copies converted from it).
CONLL_POS = ('"', "''", "#", "$", "(", ")", ",", ".", ":", "``", "CC", "CD", "DT", "EX", "FW", "IN", "JJ", "JJR",
             "JJS", "LS", "MD", "NN", "NNP", "NNPS", "NNS", "NN|SYM", "PDT", "POS", "PRP", "PRP$", "RB", "RBR", "RBS",
             "RP", "SYM", "TO", "UH", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "WDT", "WP", "WP$", "WRB")
CONLL_CHUNK = ("O", "B-ADJP", "I-ADJP", "B-ADVP", "I-ADVP", "B-CONJP", "I-CONJP", "B-INTJ", "I-INTJ", "B-LST",
               "I-LST", "B-NP", "I-NP", "B-PP", "I-PP", "B-PRT", "I-PRT", "B-SBAR", "I-SBAR", "B-UCP", "I-UCP",
               "B-VP", "I-VP")


# The one config of a repo loaded without a name, where the hub's repo names it otherwise
DEFAULT_CONFIG = {"rajpurkar/squad": "plain_text", "squad": "plain_text"}


def task_features(task: str):
    """The hub dataset's feature types for a task (GLUE config, SQuAD, CoNLL-2003)."""
    import datasets as ds

    spec = TASKS[task]
    if spec.kind == "span":
        return ds.Features({"id": ds.Value("string"), "title": ds.Value("string"), "context": ds.Value("string"),
                            "question": ds.Value("string"),
                            "answers": ds.Sequence({"text": ds.Value("string"), "answer_start": ds.Value("int32")})})
    if spec.kind == "tagging":
        tags = spec.labels or CONLL_LABELS  # ner: a BIO corpus of the hub's tagging schema
        return ds.Features({"id": ds.Value("string"), "tokens": ds.Sequence(ds.Value("string")),
                            "pos_tags": ds.Sequence(ds.ClassLabel(names=list(CONLL_POS))),
                            "chunk_tags": ds.Sequence(ds.ClassLabel(names=list(CONLL_CHUNK))),
                            "ner_tags": ds.Sequence(ds.ClassLabel(names=list(tags)))})
    label = ds.Value("float32") if spec.kind == "regression" else ds.ClassLabel(names=list(spec.labels))
    return ds.Features({**{f: ds.Value("string") for f in spec.text_fields}, "label": label, "idx": ds.Value("int32")})


def task_rows(task: str, n: int, seed: int) -> dict[str, list[dict]]:
    """``n`` rows per split in the hub schema of ``task``: the built-in world's generator where it
    has one, else rows assembled from the world's sentences with labels drawn at random."""

    spec, world, rng = TASKS[task], World(seed=seed, scale=1.0), random.Random(seed)
    generated = task if task in WORLD_TASKS else ("conll2003" if spec.kind == "tagging" else None)
    if generated:
        splits = world.task(generated, n, n, seed=seed)
    else:
        sentences = [s[0].upper() + s[1:] for doc in world.documents()[:200] for s in doc]
        splits = {}
        for split in ("train", *spec.eval_splits):
            rows = []
            for i in range(n):
                row = {f: rng.choice(sentences) for f in spec.text_fields}
                if spec.kind == "regression":
                    row["label"] = round(rng.uniform(*spec.score_range), 2)
                else:
                    row["label"] = rng.randrange(len(spec.labels))
                rows.append({**row, "idx": i})
            splits[split] = rows
    if spec.kind == "tagging":
        for split, rows in splits.items():  # the hub's rows: -DOCSTART- between documents, no ids
            out, last = [], None
            for row in rows:
                if row.get("document") != last:
                    out.append({"tokens": [DOCSTART], "ner_tags": [0]})
                    last = row.get("document")
                out.append(row)
            splits[split] = [{"id": str(i), "tokens": r["tokens"], "ner_tags": r["ner_tags"],
                              "pos_tags": [rng.randrange(len(CONLL_POS)) for _ in r["tokens"]],
                              "chunk_tags": [rng.randrange(len(CONLL_CHUNK)) for _ in r["tokens"]]}
                             for i, r in enumerate(out)]
    if spec.kind in ("classification", "regression"):
        dev = splits[spec.eval_splits[0]]
        for test in GLUE_TEST_SPLITS.get(task, ("test",)):
            splits[test] = [{**row, "label": -1} for row in dev]
    return splits


def corpus_features(spec: dict):
    import datasets as ds

    field = spec["text_field"]
    # wikimedia/wikipedia's columns; any other text dataset: its text column only (BookCorpus's)
    columns = ("id", "url", "title", field) if "wikipedia" in spec["path"] else (field,)
    return ds.Features({c: ds.Value("string") for c in columns})


def corpus_rows(spec: dict, n: int, seed: int) -> list[dict]:
    """Documents of the built-in world as the hub holds text: an article per row (a title line and
    one paragraph per line, as Wikipedia's text) or, with rows_per_document > 1, one sentence per row."""

    documents = World(seed=seed, scale=1.0).documents()[:n]
    field, wiki = spec["text_field"], "wikipedia" in spec["path"]
    if spec["rows_per_document"] > 1:
        return [{field: s[0].upper() + s[1:]} for doc in documents for s in doc]
    rows = []
    for i, doc in enumerate(documents):
        title = doc[0].split()[-1].rstrip(".")
        text = f"{title}\n\n" + "\n".join(" ".join(s[0].upper() + s[1:] for s in doc[j:j + 3])
                                          for j in range(0, len(doc), 3))
        rows.append({"id": str(i), "url": f"https://en.wikipedia.org/wiki?curid={i}", "title": title, field: text}
                    if wiki else {field: text})
    return rows


# Repos the hub holds as plain text files, not parquet: their files, one row per line. BookCorpus's
# copy holds the two files the retired bookcorpus/bookcorpus script downloaded (its repo page).
TEXT_REPOS = {"rojagtap/bookcorpus": ("books_large_p1.txt", "books_large_p2.txt")}


def write_text_repo(folder: Path, files: tuple[str, ...], rows: list[dict], field: str) -> None:
    """A text dataset repo: the rows' ``field`` one per line, dealt in order over ``files``
    (load_dataset reads them with its text builder: one column, ``text``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(files):
        share = rows[k * len(rows) // len(files):(k + 1) * len(rows) // len(files)]
        (folder / name).write_text("".join(row[field] + "\n" for row in share), encoding="utf-8")
    (folder / "README.md").write_text("# Synthetic stand-in written by bert_ablation.data.mirrors\n")


def write_dataset_repo(folder: Path, configs: dict[str, dict]) -> None:
    """A parquet dataset repo as the hub holds one: ``configs`` maps a config name to
    (features, {split: rows}); README.md lists each config's data_files and features."""
    import datasets as ds
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    card_configs, infos = [], {}
    existing = _read_card_configs(folder / "README.md")
    for name, (features, splits) in configs.items():
        for split, rows in splits.items():
            file = folder / name / f"{split}-00000-of-00001.parquet"
            file.parent.mkdir(parents=True, exist_ok=True)
            ds.Dataset.from_list(rows, features=features).to_parquet(str(file))
        existing[name] = {"config_name": name,
                          "data_files": [{"split": s, "path": f"{name}/{s}-*"} for s in splits]}
        infos[name] = {"config_name": name, "features": features._to_yaml_list()}
    card_configs = [existing[k] for k in sorted(existing)]
    front = {"configs": card_configs, "dataset_info": [infos[k] for k in sorted(infos)]}
    (folder / "README.md").write_text("---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n"
                                      "# Synthetic stand-in written by bert_ablation.data.mirrors\n\n"
                                      "The hub repository's layout and feature types, rows from the built-in world.\n")


def _read_card_configs(readme: Path) -> dict:
    """The configs an earlier run wrote (a repo several tasks share, GLUE: each adds its own)."""
    import yaml

    if not readme.is_file():
        return {}
    text = readme.read_text()
    front = yaml.safe_load(text.split("---")[1]) if text.startswith("---") else {}
    return {c["config_name"]: c for c in (front or {}).get("configs", [])}


# ------------------------------------------------------------------ model repos

# The released models' config.json facts (their hub repositories' config.json and model cards):
# google-bert/bert-{base,large}-{uncased,cased}: 12/768/12 and 24/1024/16 layers/hidden/heads,
# FFN 4H, 512 positions, 2 segment types, 30,522 (uncased) and 28,996 (cased) WordPiece tokens.
# The BERT miniatures (Turc et al. 2019; google-research/bert README) are named by their shape,
# google/bert_uncased_L-{L}_H-{H}_A-{H/64}, FFN 4H, with BERT-Base's uncased vocabulary.
RELEASED = {
    "google-bert/bert-base-uncased": dict(layers=12, hidden=768, heads=12, vocab=30522, lowercase=True),
    "google-bert/bert-base-cased": dict(layers=12, hidden=768, heads=12, vocab=28996, lowercase=False),
    "google-bert/bert-large-uncased": dict(layers=24, hidden=1024, heads=16, vocab=30522, lowercase=True),
    "google-bert/bert-large-cased": dict(layers=24, hidden=1024, heads=16, vocab=28996, lowercase=False),
}
RELEASED.update({k.split("/")[1]: v for k, v in RELEASED.items()})  # the ids without the org (legacy aliases)
MINIATURE = re.compile(r"^google/bert_uncased_L-(\d+)_H-(\d+)_A-(\d+)$")


def released_config(hub_id: str) -> dict:
    """The released model's config.json (as the hub's file has it: BertForMaskedLM, gelu, 1e-12)."""
    facts = RELEASED.get(hub_id)
    if facts is None and (match := MINIATURE.match(hub_id)):
        layers, hidden, heads = map(int, match.groups())
        facts = dict(layers=layers, hidden=hidden, heads=heads, vocab=30522, lowercase=True)
    if facts is None:
        known = ", ".join(sorted(k for k in RELEASED if "/" in k))
        raise MirrorError(f"no config facts for model '{hub_id}' (known: {known}, google/bert_uncased_L-*_H-*_A-*); "
                          "download the real repo into the mirror instead (docs/hub.md).")
    return {"architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "hidden_size": facts["hidden"], "initializer_range": 0.02,
            "intermediate_size": 4 * facts["hidden"], "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
            "model_type": "bert", "num_attention_heads": facts["heads"], "num_hidden_layers": facts["layers"],
            "pad_token_id": 0, "position_embedding_type": "absolute", "type_vocab_size": 2, "use_cache": True,
            "vocab_size": facts["vocab"]}, facts["lowercase"]


def wordpiece_vocabulary(size: int, lowercase: bool, seed: int) -> list[str]:
    """A WordPiece vocabulary of exactly ``size`` entries laid out as BERT's: [PAD] 0, [unused*]
    1-99, [UNK] [CLS] [SEP] [MASK] 100-103, then characters, their ## continuations, the world's
    words and generated ## pieces to fill up."""

    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(33, 127) if not (lowercase and chr(c).isupper())]
    vocab += chars + ["##" + c for c in chars if c.isalnum()]
    words = {w.lower() if lowercase else w for doc in World(seed=seed).documents()[:400] for s in doc
             for w in re.findall(r"\w+", s)}
    vocab += sorted(words - set(vocab))
    letters = "abcdefghijklmnopqrstuvwxyz"
    pieces = ("".join(p) for n in (2, 3, 4) for p in itertools.product(letters, repeat=n))
    seen = set(vocab)
    for piece in pieces:
        if len(vocab) >= size:
            break
        if "##" + piece not in seen:
            vocab.append("##" + piece)
    if len(vocab) < size:
        raise MirrorError(f"cannot fill a vocabulary of {size} tokens")
    return vocab[:size]


def write_model_repo(folder: Path, hub_id: str, seed: int) -> dict:
    import json

    import torch
    from transformers import BertConfig, BertForPreTraining

    config_dict, lowercase = released_config(hub_id)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = wordpiece_vocabulary(config_dict["vocab_size"], lowercase, seed)
    tokenizer_from_vocab(vocab, lowercase).save_pretrained(str(folder))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")  # WordPiece's own file, as the released repos have
    torch.manual_seed(seed)
    # The released weights came from pretraining: encoder, pooler, MLM and NSP heads (bert.*, cls.*)
    BertForPreTraining(BertConfig(**config_dict)).save_pretrained(str(folder))
    # config.json as the released file has it (save_pretrained adds its own bookkeeping keys)
    (folder / "config.json").write_text(json.dumps(config_dict, indent=2) + "\n")
    return config_dict


# ------------------------------------------------------------------ the generator

def write_mirror(config: dict, out: str, examples: int = 200, documents: int = 300, seed: int = 0) -> dict:
    """Write a hub-format stand-in under ``out`` for every hub id ``config`` reads; returns
    {repo id: what was written} for the log."""
    written = {}
    repos: dict[str, dict] = {}
    for key, args in hub_datasets(config):
        name = args.get("name") or DEFAULT_CONFIG.get(args["path"], "default")
        if "task" in args:
            task = args["task"]
            repos.setdefault(args["path"], {})[name] = (task_features(task), task_rows(task, examples, seed))
        else:
            spec = args["corpus"]
            repos.setdefault(args["path"], {})[name] = (corpus_features(spec), {spec["split"]: corpus_rows(
                spec, documents, seed)})
        if args.get("data_files"):
            raise MirrorError(f"{key}: data_files name files of the real repo; the generator writes its own "
                              "layout, so remove data_files for a rehearsal with a synthetic mirror.")
    for repo, configs in repos.items():
        if repo in TEXT_REPOS:
            (_, splits), = configs.values()
            write_text_repo(mirror_folder(out, repo), TEXT_REPOS[repo], splits["train"], "text")
        else:
            write_dataset_repo(mirror_folder(out, repo), configs)
        written[repo] = {c: {s: len(r) for s, r in splits.items()} for c, (_, splits) in configs.items()}
    for key, hub_id in hub_models(config):
        try:
            facts = write_model_repo(mirror_folder(out, hub_id), hub_id, seed)
        except MirrorError as err:
            raise MirrorError(f"{key}: {err}") from None
        written[hub_id] = {k: facts[k] for k in ("num_hidden_layers", "hidden_size", "num_attention_heads",
                                                 "vocab_size")}
    for repo, what in written.items():
        log.info("mirror %s: %s", repo, what)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="+", default=[], help="preset(s) merged over --base, as snakemake does")
    parser.add_argument("--base", default="config.yaml", help="the workflow's config.yaml")
    parser.add_argument("--out", required=True, help="the mirror folder (hub_mirror)")
    parser.add_argument("--examples", type=int, default=200, help="rows per task split")
    parser.add_argument("--documents", type=int, default=300, help="documents per corpus dataset")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import datasets

    datasets.disable_progress_bars()
    config = cfg.load(args.base, args.configfile)
    written = write_mirror(config, args.out, args.examples, args.documents, args.seed)
    print(f"{len(written)} repos under {args.out}; read them with --config hub_mirror={os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
