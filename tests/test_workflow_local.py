"""The DAG end to end on local files in their distributed formats: a text corpus, GLUE TSVs,
SQuAD v1.1 JSON and CoNLL-2003 column files (the built-in world's data, written out), and a
table of the tasks the world has no generator for (STS-B, CoLA)."""
import json
import random

import pandas as pd
import pytest
from test_workflow import MICRO, planned_jobs, snakemake

from bert_ablation.data.conll import write_conll
from bert_ablation.data.world import World
from bert_ablation.facts.tasks import TASKS

pytestmark = pytest.mark.integration

SCALE = 0.1  # the micro world's; the task sizes below are the micro config's at this scale
SIZES = {"mnli": (64, 32), "qnli": (64, 32), "mrpc": (64, 32), "sst2": (64, 32), "squad": (48, 24),
         "conll2003": (64, 32)}
# GLUE file per hub split, and the header: (hub field or "label", column name) in file order.
GLUE = {
    "mnli": ({"train": "train.tsv", "validation_matched": "dev_matched.tsv",
              "validation_mismatched": "dev_mismatched.tsv"},
             [("idx", "index"), ("premise", "sentence1"), ("hypothesis", "sentence2"), ("label", "gold_label")]),
    "qnli": ({"train": "train.tsv", "validation": "dev.tsv"},
             [("idx", "index"), ("question", "question"), ("sentence", "sentence"), ("label", "label")]),
    "mrpc": ({"train": "train.tsv", "validation": "dev.tsv"},
             [("label", "Quality"), ("idx", "#1 ID"), ("idx", "#2 ID"), ("sentence1", "#1 String"),
              ("sentence2", "#2 String")]),
    "sst2": ({"train": "train.tsv", "validation": "dev.tsv"}, [("sentence", "sentence"), ("label", "label")]),
}


def write_glue(folder, name, splits):
    files, columns = GLUE[name]
    labels = TASKS[name].labels if name in ("mnli", "qnli") else None  # label names, else digits
    folder.mkdir(parents=True)
    for split, file in files.items():
        rows = [[column for _, column in columns]] + [
            [(labels[row["label"]] if labels else row["label"]) if field == "label" else row[field] for field, _ in columns]
            for row in splits[split]]
        (folder / file).write_text("".join("\t".join(map(str, row)) + "\n" for row in rows))


def write_squad(folder, splits):
    folder.mkdir(parents=True)
    for split, file in (("train", "train-v1.1.json"), ("validation", "dev-v1.1.json")):
        data = [{"title": r["title"], "paragraphs": [{"context": r["context"], "qas": [
            {"id": r["id"], "question": r["question"],
             "answers": [{"text": t, "answer_start": s} for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"])]}]}]}
            for r in splits[split]]
        (folder / file).write_text(json.dumps({"version": "1.1", "data": data}))


def write_regression_and_cola(root, world_sst2):
    """STS-B and CoLA in their GLUE formats, from the world's SST-2 sentences (scores and
    labels are arbitrary but learnable: they follow the sentence's sentiment)."""
    rng = random.Random(0)
    (root / "STS-B").mkdir()
    (root / "CoLA").mkdir()
    for split, file in (("train", "train.tsv"), ("validation", "dev.tsv")):
        rows = world_sst2[split]
        with open(root / "STS-B" / file, "w") as handle:
            handle.write("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n")
            for i, row in enumerate(rows):
                score = round(min(5.0, 4.0 * row["label"] + rng.random()), 3)
                handle.write(f"{i}\tmain\tworld\t2026\t{i}\tnone\tnone\t{row['sentence']}\t{row['sentence']}\t{score}\n")
        with open(root / "CoLA" / file, "w") as handle:  # no header, as in GLUE
            handle.writelines(f"world\t{row['label']}\t\t{row['sentence']}\n" for row in rows)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    world = World(seed=0, scale=SCALE)
    with open(root / "corpus.txt", "w") as handle:  # one sentence per line, a blank line between documents
        handle.write("\n\n".join("\n".join(document) for document in world.documents()) + "\n")
    data = {name: world.task(name, *SIZES[name], seed=0) for name in SIZES}
    glue = root / "glue_data"
    for name, folder in (("mnli", "MNLI"), ("qnli", "QNLI"), ("mrpc", "MRPC"), ("sst2", "SST-2")):
        write_glue(glue / folder, name, data[name])
    write_squad(root / "squad", data["squad"])
    (root / "conll").mkdir()
    for split, file in (("train", "eng.train"), ("validation", "eng.testa"), ("test", "eng.testb")):
        write_conll(data["conll2003"][split], root / "conll" / file)
    write_regression_and_cola(glue, data["sst2"])

    local = {name: {"source": "local", "path": str(glue)} for name in ("mnli", "qnli", "mrpc", "sst2")}
    local.update({name: {"source": "local", "path": str(glue), "max_seq_length": 64} for name in ("stsb", "cola")})
    local["squad"] = {"source": "local", "path": str(root / "squad")}
    local["conll2003"] = {"source": "local", "path": str(root / "conll")}
    config = {
        "corpus": {"source": "text", "text": {"paths": [str(root / "corpus.txt")]}},
        # a text corpus takes the top-level seed count (the world's lives in world_recipe): two here
        "pretrain": {"seeds": 2},
        "tasks": local,
        "tables": {"glue_extra": {"rows": {"BERT-Base": {"ablation": "bert_base"}},
                                  "columns": {"STS-B (Spearman)": {"task": "stsb", "metric": "spearman"},
                                              "CoLA (MCC)": {"task": "cola", "metric": "matthews_correlation"},
                                              "CoNLL-2003 (Test F1)": {"task": "conll2003", "metric": "f1",
                                                                       "split": "test"}}}},
    }
    configfile = root / "local.yaml"
    configfile.write_text(json.dumps(config))  # JSON is YAML
    workdir = root / "run"
    workdir.mkdir()
    snakemake(workdir, "table5", "glue_extra", configfiles=(MICRO, configfile))
    return root, workdir, configfile, data


def test_tables_are_built_from_local_files(local_run):
    root, workdir, _, _ = local_run
    table5 = pd.read_csv(workdir / "results/tables/table5.csv")
    assert len(table5) == 25 and (table5["n"] == 2).all() and table5["mean"].between(0, 100).all()
    extra = pd.read_csv(workdir / "results/tables/glue_extra.csv").set_index("column")
    assert extra["mean"].between(-100, 100).all() and extra["paper"].isna().all()
    assert extra.loc["CoNLL-2003 (Test F1)", "split"] == "test"
    metrics = json.loads(next((workdir / "results/finetune/bert_base/final/stsb").glob("*/*/seed0/metrics.json")).read_text())
    assert set(metrics["dev"]) == {"spearman", "pearson"}


def test_the_local_files_hold_the_same_records_as_the_world(local_run):
    import datasets

    root, workdir, _, data = local_run
    for name in ("mnli", "mrpc", "squad", "conll2003"):
        saved = datasets.load_from_disk(str(workdir / f"results/tasks/{name}"))
        for split, records in data[name].items():
            rows = saved[split].to_list()
            assert len(rows) == len(records)
            fields = {"mnli": ("premise", "hypothesis", "label"), "mrpc": ("sentence1", "sentence2", "label"),
                      "squad": ("context", "question", "answers"), "conll2003": ("tokens", "ner_tags", "document")}[name]
            assert [[r[f] for f in fields] for r in rows] == [[r[f] for f in fields] for r in records], (name, split)
    corpus = datasets.load_from_disk(str(workdir / "results/corpus/shard-0"))
    assert len(corpus) == len(World(seed=0, scale=SCALE).documents())


def test_editing_a_local_file_rebuilds_that_task_only(local_run):
    root, workdir, configfile, _ = local_run
    dev = root / "glue_data" / "SST-2" / "dev.tsv"
    lines = dev.read_text().splitlines(keepends=True)
    dev.write_text("".join(lines[:-1]))  # one dev row fewer
    jobs = planned_jobs(snakemake(workdir, "-n", "table5", "glue_extra", configfiles=(MICRO, configfile)))
    assert jobs["tasks"] == 1 and jobs["finetune"] == 5  # SST-2 in the five rows of Table 5
    assert "pretrain" not in jobs and "corpus" not in jobs


def test_a_missing_local_file_fails_before_any_job(local_run, tmp_path):
    _, _, configfile, _ = local_run
    broken = tmp_path / "broken.yaml"
    broken.write_text(json.dumps({"tasks": {"squad": {"source": "local", "path": str(tmp_path)}}}))
    with pytest.raises(AssertionError, match="squad: no file for split 'train'; expected .*train-v1.1.json"):
        snakemake(tmp_path, "-n", "table5", configfiles=(MICRO, configfile, broken))
