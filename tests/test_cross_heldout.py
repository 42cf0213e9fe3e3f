"""benchmarks/cross_heldout.py: runs whose instances differ, scored on one held-out set.

A seed-0 run scored on its own folder must get exactly the numbers its pretrain job wrote to
metrics.json (the same batches, masks and unigram baseline); a run with other instances (NotNext
drawn by sentence) scored there gets numbers of its own; a run of another vocabulary is refused.
"""
import json
import sys
from pathlib import Path

import pytest

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.data.corpus import build_corpus
from bert_ablation.data.instances import build_instances
from bert_ablation.data.tokenizer import build_tokenizer, count_words
from bert_ablation.training.pretrain import pretrain

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import cross_heldout  # noqa: E402

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()


def folder(root: Path, draw: str, words=WORDS) -> Path:
    """A Snakemake-like results folder with one MLM+NSP run (a few steps) on a cyclic corpus of
    long and short documents."""
    docs = ["\n".join(" ".join(words[(k + i) % 16] for i in range(8)).capitalize() + "."
                      for k in range(n)) for n in [3] * 60 + [40] * 4]
    (root / "corpus.txt").write_text("\n\n".join(docs) + "\n")
    config = cfg.validate({
        "corpus": {"source": "text", "text": {"paths": [str(root / "corpus.txt")]}, "heldout_fraction": 0.2},
        "tokenizer": {"vocab_size": 64, "min_frequency": 1},
        "instances": {"max_seq_length": 48, "nsp_negatives": draw},
        "model": {"architecture": "roformer", "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64,
                  "dropout": 0.0, "max_position_embeddings": 48},
        "pretrain": {"steps": 12, "batch_size": 8, "warmup_steps": 2, "eval_batches": 2, "lr": 0.01},
        "tables": {}})
    results = root / "results"
    build_corpus(config, results / "corpus")
    count_words(str(results / "corpus"), str(root / "counts.tsv"), lowercase=True)
    build_tokenizer([str(root / "counts.tsv")], str(results / "tokenizer"), config["tokenizer"])
    instances = results / "instances" / "nsp_pairs" / "len48" / "shard-0"
    build_instances(str(results / "corpus"), str(results / "tokenizer"), "nsp_pairs",
                    plan.instance_settings(config, 48) | {"nsp_negatives": draw}, str(instances))
    out = results / "pretrain" / "bert_base"
    pretrain(plan.resolve_ablation(config, "bert_base"), str(instances), str(results / "tokenizer"),
             str(out / "checkpoints"), str(out / "metrics.json"), str(out / "log.csv"), str(root / "state"),
             threads=1, device="cpu")
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return {draw: folder(tmp_path_factory.mktemp(draw), draw) for draw in ("document", "sentence")}


def test_a_run_scored_on_its_own_folder_gets_its_own_numbers(folders):
    for root in folders.values():
        run = root / "results" / "pretrain" / "bert_base"
        own = json.loads((run / "metrics.json").read_text())
        scored = cross_heldout.score(run, root, 48, 1)
        for key in ("heldout_perplexity", "unigram_perplexity", "heldout_lm_accuracy", "heldout_nsp_accuracy",
                    "heldout_predictions"):
            assert scored[key] == pytest.approx(own[key], rel=1e-6), key


def test_runs_of_other_instances_are_scored_on_one_set(folders, tmp_path):
    document, sentence = folders["document"], folders["sentence"]
    on_document = cross_heldout.score(sentence / "results" / "pretrain" / "bert_base", document, 48, 1)
    own = json.loads((sentence / "results" / "pretrain" / "bert_base" / "metrics.json").read_text())
    document_unigram = json.loads((document / "results" / "pretrain" / "bert_base" / "metrics.json").read_text())
    assert on_document["unigram_perplexity"] == pytest.approx(document_unigram["unigram_perplexity"], rel=1e-6)
    assert on_document["heldout_perplexity"] != pytest.approx(own["heldout_perplexity"], rel=1e-6)
    other = folder(tmp_path, "document", words=[w[::-1] for w in WORDS])  # another vocabulary
    with pytest.raises(SystemExit, match="tokenizer"):
        cross_heldout.score(other / "results" / "pretrain" / "bert_base", document, 48, 1)
