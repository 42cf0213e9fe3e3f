"""Hub-format local mirrors (hub_mirror): a generated mirror of a preset's hub ids is read through
the same load_dataset / from_pretrained calls as the hub, offline."""
import json
from pathlib import Path

import datasets
import pytest
from transformers import AutoModel, AutoTokenizer

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.data.corpus import build_corpus, load_corpus
from bert_ablation.data.mirrors import (
    hub_datasets,
    released_config,
    write_mirror,
)
from bert_ablation.data.task_sources import build_task
from bert_ablation.facts.tasks import CONLL_LABELS, TASKS
from bert_ablation.hub import MirrorError, dataset_args
from bert_ablation.models.checkpoints import CheckpointImportError, import_checkpoint

ROOT = Path(__file__).resolve().parents[1]
MINIATURES = ("google/bert_uncased_L-2_H-128_A-2", "google/bert_uncased_L-4_H-256_A-4")


@pytest.fixture(scope="module")
def paper_mirror(tmp_path_factory):
    """presets/paper.yaml (every GLUE task, SQuAD and CoNLL-2003 from the hub, Wikipedia and
    BookCorpus as the corpus) with two released miniatures, mirrored small."""
    config = cfg.load(str(ROOT / "config.yaml"), [str(ROOT / "presets" / "paper.yaml")])
    for name in ("cola", "stsb", "qqp", "rte"):  # the rest of GLUE, which paper.yaml leaves out
        config["tasks"][name] = {**config["tasks"]["mnli"], "hub": {}}
    config["checkpoints"] = {f"mini{i}": {"hub": hub, "revision": None, "path": None} for i, hub in enumerate(MINIATURES)}
    out = tmp_path_factory.mktemp("mirror")
    written = write_mirror(config, str(out), examples=30, documents=20)
    return config, out, written


def test_the_mirror_holds_every_hub_id_of_the_preset_as_the_hub_lays_it_out(paper_mirror):
    config, out, written = paper_mirror
    assert sorted(written) == sorted(["nyu-mll/glue", "rajpurkar/squad", "lhoestq/conll2003", "wikimedia/wikipedia",
                                      "rojagtap/bookcorpus", *MINIATURES])
    assert sorted(written["nyu-mll/glue"]) == ["cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb"]
    assert written["nyu-mll/glue"]["mnli"] == {s: 30 for s in ("train", "validation_matched", "validation_mismatched",
                                                                "test_matched", "test_mismatched")}
    readme = (out / "nyu-mll" / "glue" / "README.md").read_text()
    assert "config_name: mnli" in readme and "path: mnli/validation_matched-*" in readme
    assert (out / "wikimedia" / "wikipedia" / "20231101.en" / "train-00000-of-00001.parquet").is_file()


def test_tasks_load_from_the_mirror_offline_with_the_hub_schemas(paper_mirror, tmp_path, no_network):
    config, out, _ = paper_mirror
    mnli = datasets.load_dataset(str(out / "nyu-mll" / "glue"), "mnli")
    assert mnli["train"].features["label"].names == ["entailment", "neutral", "contradiction"]
    assert mnli["train"].features["idx"] == datasets.Value("int32")
    assert set(mnli["test_matched"]["label"]) == {-1}  # GLUE's private test labels
    assert datasets.load_dataset(str(out / "nyu-mll" / "glue"), "stsb")["train"].features["label"] == \
        datasets.Value("float32")
    squad = datasets.load_dataset(str(out / "rajpurkar" / "squad"))["train"]
    assert list(squad.features) == ["id", "title", "context", "question", "answers"]
    row = squad[0]
    start = row["answers"]["answer_start"][0]
    assert row["context"][start:start + len(row["answers"]["text"][0])] == row["answers"]["text"][0]
    conll = datasets.load_dataset(str(out / "lhoestq" / "conll2003"))["train"]
    assert conll.features["ner_tags"].feature.names == list(CONLL_LABELS)
    assert len(conll.features["pos_tags"].feature.names) == 47 and len(conll.features["chunk_tags"].feature.names) == 23
    for name, settings in config["tasks"].items():  # as the workflow's task job runs it
        summary = build_task(name, {**settings, "hub_mirror": str(out)}, config["world"], str(tmp_path / name))
        saved = datasets.load_from_disk(str(tmp_path / name))
        assert sorted(saved) == sorted(("train", *TASKS[name].eval_splits))
        if name == "conll2003":  # its -DOCSTART- rows turned into document ids, as on the hub
            assert "document" in saved["train"].column_names and summary["train"]["rows"] < conll.num_rows
        else:
            assert summary["train"]["rows"] == 30


def test_the_corpus_reads_the_mirror_offline(paper_mirror, tmp_path, no_network):
    config, out, _ = paper_mirror
    config = {**config, "hub_mirror": str(out), "corpus": {**config["corpus"], "shards": 1}}
    summary = build_corpus(config, str(tmp_path / "corpus"))
    wiki = datasets.load_dataset(str(out / "wikimedia" / "wikipedia"), "20231101.en", split="train")
    assert wiki.column_names == ["id", "url", "title", "text"]
    books = datasets.load_dataset(str(out / "rojagtap" / "bookcorpus"), split="train")
    # 20 articles and the book sentences in runs of 200 rows
    assert summary["documents"] == 20 + -(-books.num_rows // 200)
    assert summary["dropped_paragraphs"]["header"] == 20  # each article's title line
    assert len(load_corpus(str(tmp_path / "corpus"), "train")) + summary["heldout_documents"] == summary["documents"]


def test_checkpoints_import_from_the_mirror_with_the_released_shapes(paper_mirror, tmp_path, no_network):
    config, out, _ = paper_mirror
    for name, entry in config["checkpoints"].items():
        metrics = import_checkpoint(name, {**entry, "hub_mirror": str(out)}, str(tmp_path / name),
                                    str(tmp_path / f"{name}.json"), plan.checkpoint_hash(entry))
        facts, lowercase = released_config(entry["hub"])
        assert metrics["model"]["layers"] == facts["num_hidden_layers"]
        assert metrics["model"]["hidden"] == facts["hidden_size"] and metrics["vocab_size"] == 30522
        assert metrics["tokenizer_size"] == 30522 and metrics["lowercase"] is lowercase is True
        model = AutoModel.from_pretrained(str(out / entry["hub"]))
        assert model.config.num_attention_heads == facts["num_attention_heads"]
        assert model.pooler is not None and model.embeddings.word_embeddings.weight.shape == (30522, facts["hidden_size"])
        tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / name / "final"))
        assert tokenizer.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 100, 101, 102, 103]
    assert json.loads((out / MINIATURES[1] / "config.json").read_text())["intermediate_size"] == 1024


def test_released_facts_are_the_model_cards():
    base, lowercase = released_config("google-bert/bert-base-cased")
    assert (base["num_hidden_layers"], base["hidden_size"], base["num_attention_heads"], base["intermediate_size"],
            base["vocab_size"], lowercase) == (12, 768, 12, 3072, 28996, False)
    large, _ = released_config("google-bert/bert-large-uncased")
    assert (large["num_hidden_layers"], large["hidden_size"], large["vocab_size"]) == (24, 1024, 30522)
    with pytest.raises(MirrorError, match="download the real repo"):
        released_config("FacebookAI/roberta-base")


def test_a_missing_mirror_copy_names_the_key_and_how_to_fill_it(tmp_path, no_network):
    with pytest.raises(MirrorError, match=r"tasks.mnli.hub: hub_mirror is set but .*nyu-mll/glue does not exist; .*"
                                          r"huggingface-cli download --repo-type dataset nyu-mll/glue"):
        dataset_args({"path": "nyu-mll/glue", "name": "mnli"}, str(tmp_path), "tasks.mnli.hub")
    entry = {"hub": "google-bert/bert-base-uncased", "revision": None, "path": None, "hub_mirror": str(tmp_path)}
    with pytest.raises(CheckpointImportError, match="checkpoints.base.hub: hub_mirror is set but"):
        import_checkpoint("base", entry, str(tmp_path / "out"), str(tmp_path / "m.json"), "0")
    # a local folder is no hub id: read as it is, mirror or not
    assert dataset_args({"path": str(tmp_path)}, str(tmp_path / "m"), "k") == {"path": str(tmp_path)}
    assert dataset_args({"path": "a/b", "revision": "refs/convert/parquet"}, None, "k")["revision"] == "refs/convert/parquet"


def test_hub_ids_of_a_config_are_its_hub_tasks_and_hf_corpus():
    config = cfg.load(str(ROOT / "config.yaml"))
    assert hub_datasets(config) == []  # the default world needs no hub
