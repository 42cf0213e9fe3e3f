"""Paper-scale data stages: a corpus in shards built by jobs of their own, word counts merged into
one vocabulary, instances per shard on disk (memory-mapped) and static masks."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from bert_ablation import config as cfg
from bert_ablation import plan, schema
from bert_ablation.data.corpus import CorpusError, Shard, build_corpus, group_files, hf_documents, load_corpus
from bert_ablation.data.instance_store import InstanceStore, read_manifest
from bert_ablation.data.instances import build_instances
from bert_ablation.data.tokenizer import build_tokenizer, count_words, read_word_counts, word_counts
from bert_ablation.models.masking import IGNORE_INDEX, Masker, MaskingProcedure
from bert_ablation.models.objectives import OBJECTIVES
from bert_ablation.training.instance_batches import InstanceBatches, step_generator
from bert_ablation.training.pretrain import pretrain
from tests.conftest import make_documents


def text_files(folder, n_files, docs_per_file):
    folder.mkdir()
    for k in range(n_files):
        docs = make_documents(docs_per_file, seed=k)
        (folder / f"part-{k}.txt").write_text("\n\n".join("\n".join(d) for d in docs) + "\n")
    return folder


def corpus_config(folder, shards, **extra):
    return cfg.validate({"corpus": {"source": "text", "text": {"paths": [str(folder)]}, "shards": shards},
                         "tokenizer": {"vocab_size": 200, "min_frequency": 1},
                         "instances": {"max_seq_length": 48, "dupe_factor": 2, **extra.get("instances", {})},
                         "model": {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64,
                                   "max_position_embeddings": 48},
                         "pretrain": {"steps": 6, "batch_size": 8, "warmup_steps": 1, "state_every": 3, "log_every": 2,
                                      "save_steps": [], "eval_batches": 2, "tensorboard": False},
                         "masking": extra.get("masking", {}), "tables": {}})


def test_file_groups_balance_sizes_and_refuse_more_shards_than_files(tmp_path):
    files = [tmp_path / f"f{k}" for k in range(5)]
    groups = group_files(files, [50, 10, 40, 30, 20], 2, "corpus.text.paths")
    # largest first to the lightest group: 50 | 40, 30 -> 70 | 20 -> 70 | 10 (a tie: the lower index)
    assert groups == [[files[0], files[1], files[4]], [files[2], files[3]]]  # 80 and 70
    with pytest.raises(CorpusError, match=r"corpus.text.paths: 5 file\(s\) for corpus.shards=6; .* split the corpus "
                                          r"into at least 6 files or set corpus.shards <= 5"):
        group_files(files, [1] * 5, 6, "corpus.text.paths")


def test_shards_hold_every_document_once_each_with_its_own_heldout_split(tmp_path):
    folder = text_files(tmp_path / "text", 4, 30)
    whole = corpus_config(folder, 1)
    build_corpus(whole, str(tmp_path / "whole"))
    sharded = corpus_config(folder, 3)
    summaries = [build_corpus(sharded, str(tmp_path / f"shard-{k}"), shard=k) for k in range(3)]
    assert [s["shard"] for s in summaries] == [0, 1, 2] and sum(s["documents"] for s in summaries) == 120
    def everything(dirs):
        return sorted(map(tuple, (d for path in dirs for split in ("train", "heldout") for d in load_corpus(path, split))))

    assert everything([tmp_path / f"shard-{k}" for k in range(3)]) == everything([tmp_path / "whole"])
    for k in range(3):  # every shard holds out documents of its own
        assert load_corpus(str(tmp_path / f"shard-{k}"), "heldout")


def test_hub_shards_are_contiguous_ranges_of_whole_documents(tmp_path, no_network):
    repo = tmp_path / "books"
    (repo / "data").mkdir(parents=True)
    rows = [f"Sentence number {i} is here." for i in range(10)]
    pq.write_table(pa.table({"text": rows}), repo / "data" / "train-00000-of-00001.parquet")
    config = cfg.validate({"corpus": {"source": "hf", "hf": {"datasets": [
        {"path": str(repo), "clean": False, "rows_per_document": 3}]}}, "tables": {}})
    shards = [list(hf_documents(config, Shard(k, 2))) for k in range(2)]
    # 4 documents of 3, 3, 3 and 1 rows: two per shard, no document cut at a shard boundary
    assert [[len(d) for d in s] for s in shards] == [[3, 3], [3, 1]]
    assert [s for shard in shards for d in shard for s in d] == rows


def test_a_hub_shard_streams_only_the_data_files_holding_its_rows(tmp_path, no_network, monkeypatch):
    """Shard 1 of 3 of 24 rows in four parquet files of 6 takes rows 8-15: it streams files 1 and 2
    (rows 6-17), skipping 2 rows of the first, and prepares nothing in the HF cache (the whole
    dataset downloaded and converted by every shard's job was the fault)."""
    import datasets

    repo = tmp_path / "books"
    (repo / "data").mkdir(parents=True)
    rows = [f"Sentence number {i} is here." for i in range(24)]
    files = [repo / "data" / f"train-0000{k}-of-00004.parquet" for k in range(4)]
    for k, file in enumerate(files):
        pq.write_table(pa.table({"text": rows[6 * k: 6 * k + 6]}), file)
    calls = []
    real = datasets.load_dataset

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    config = cfg.validate({"corpus": {"source": "hf", "shards": 3, "hf": {"datasets": [
        {"path": str(repo), "clean": False}]}}, "tables": {}})
    documents = list(hf_documents(config, Shard(1, 3)))
    assert documents == [[row] for row in rows[8:16]]
    assert len(calls) == 1 and calls[0]["streaming"] is True
    assert calls[0]["data_files"] == {"train": [str(files[1]), str(files[2])]}
    assert not list((tmp_path / "hf_cache").rglob("*.arrow"))  # the no_network fixture's cache


def test_text_repos_are_sharded_by_file_and_shards_sharing_a_file_stride_its_documents(tmp_path, no_network):
    """A hub repo of text files (BookCorpus's copy: two .txt files) has no row counts to cut
    ranges by: 3 shards over 2 files are 2 shards taking every other document of the first file
    and 1 shard reading the second; every document once, each shard streaming one file."""
    repo = tmp_path / "books"
    repo.mkdir()
    rows = [f"Sentence number {i} is here." for i in range(20)]
    for k in range(2):
        (repo / f"books_large_p{k + 1}.txt").write_text("".join(r + "\n" for r in rows[10 * k: 10 * k + 10]))
    config = cfg.validate({"corpus": {"source": "hf", "shards": 3, "hf": {"datasets": [
        {"path": str(repo), "clean": False, "rows_per_document": 2}]}}, "tables": {}})
    shards = [list(hf_documents(config, Shard(k, 3))) for k in range(3)]
    pairs = [[rows[i], rows[i + 1]] for i in range(0, 20, 2)]
    assert shards == [pairs[0:5:2], pairs[1:5:2], pairs[5:]]


def test_word_counts_per_shard_merge_into_the_whole_corpus_counts_and_vocabulary(tmp_path):
    folder = text_files(tmp_path / "text", 4, 30)
    sharded = corpus_config(folder, 2)
    for k in range(2):
        build_corpus(sharded, str(tmp_path / f"shard-{k}"), shard=k)
        count_words(str(tmp_path / f"shard-{k}"), str(tmp_path / f"counts-{k}.tsv"), lowercase=True)
    sentences = [s for k in range(2) for d in load_corpus(str(tmp_path / f"shard-{k}"), "train") for s in d]
    merged = read_word_counts([str(tmp_path / f"counts-{k}.tsv") for k in range(2)])
    assert merged == word_counts(sentences, lowercase=True)
    assert merged == word_counts(sentences, lowercase=True, batch_size=1)  # batching changes nothing
    summary = build_tokenizer([str(tmp_path / f"counts-{k}.tsv") for k in range(2)], str(tmp_path / "tok"),
                              {**sharded["tokenizer"], "max_words": 10})
    assert summary["distinct_words"] == len(merged) > 10 and summary["learnt_from_words"] == 10


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    folder = text_files(root / "text", 2, 60)
    config = corpus_config(folder, 2, instances={"static_masking": True}, masking={"max_predictions": 5})
    for k in range(2):
        build_corpus(config, str(root / f"corpus-{k}"), shard=k)
        count_words(str(root / f"corpus-{k}"), str(root / f"counts-{k}.tsv"), lowercase=True)
    build_tokenizer([str(root / f"counts-{k}.tsv") for k in range(2)], str(root / "tok"), config["tokenizer"])
    settings = {**config["instances"], "masking": {"probability": 0.15, "max_predictions": 5}}
    for k in range(2):
        build_instances(str(root / f"corpus-{k}"), str(root / "tok"), "nsp_pairs", settings, str(root / f"inst-{k}"),
                        shard=k)
    return config, root


def test_instances_are_stored_per_shard_and_read_from_disk_as_one(two_shards):
    config, root = two_shards
    store = InstanceStore([str(root / "inst-0"), str(root / "inst-1")], "train")
    manifests = [read_manifest(str(root / f"inst-{k}")) for k in range(2)]
    assert len(store) == sum(m["train"]["instances"] for m in manifests)
    assert store.shards[0]["input_ids"].dtype == np.uint16 and store.shards[0]["input_ids"].shape[1] == 48
    assert store.lengths.dtype == np.int32  # the one array held in memory: 4 bytes a row
    n0 = manifests[0]["train"]["instances"]
    rows = store.gather(np.array([n0 + 1, 0, n0, 0]), 20)  # rows of both shards, in the order asked
    for field in ("input_ids", "segment_b", "masked_positions", "mask_fates"):
        files = [np.load(root / f"inst-{k}/train/{field}.npy") for k in range(2)]
        direct = np.stack([files[1][1], files[0][0], files[1][0], files[0][0]])
        assert (rows[field] == (direct[:, :20] if field == "input_ids" else direct)).all(), field
    # NotNext segments come from another document of the same shard
    doc_a, doc_b, nsp = (np.load(root / f"inst-1/train/{f}.npy") for f in ("doc_a", "doc_b", "next_sentence_label"))
    assert ((doc_a != doc_b) == (nsp == 1)).all()


def test_static_masks_are_stored_for_training_only_and_reused_at_every_visit(two_shards):
    config, root = two_shards
    assert (root / "inst-0/train/masked_positions.npy").exists()
    assert not (root / "inst-0/heldout/masked_positions.npy").exists()  # held-out scoring: fixed dynamic masks
    positions = np.load(root / "inst-0/train/masked_positions.npy")
    lengths = np.load(root / "inst-0/train/lengths.npy")
    assert positions.shape[1] == 5 and ((positions < lengths[:, None]) | (positions == -1)).all()
    batches = InstanceBatches([str(root / "inst-0")], "train", 8, seed=0)
    masker = Masker(MaskingProcedure.from_config(schema.schema_defaults("masking")), 200, [0, 1, 2, 3, 4], 4)
    rows = batches.rows(torch.arange(8))
    first = OBJECTIVES["mlm_nsp"].targets(rows, masker, step_generator(0, 1))
    later = OBJECTIVES["mlm_nsp"].targets(rows, masker, step_generator(0, 99))  # another step, the same rows
    assert torch.equal(first["labels"], later["labels"]) and torch.equal(first["input_ids"], later["input_ids"])
    assert ((first["labels"] != IGNORE_INDEX).sum(1) <= 5).all()
    rows.pop("masked_positions"), rows.pop("mask_fates"), rows.pop("mask_random_ids")
    dynamic = [OBJECTIVES["mlm_nsp"].targets(rows, masker, step_generator(0, s))["labels"] for s in (1, 99)]
    assert not torch.equal(*dynamic)


def test_pretraining_reads_every_shard_and_refuses_a_per_ablation_static_selection(two_shards, tmp_path):
    config, root = two_shards
    spec = plan.resolve_ablation(config, "bert_base")
    metrics = pretrain(spec, [str(root / "inst-0"), str(root / "inst-1")], str(root / "tok"), str(tmp_path / "ckpt"),
                       str(tmp_path / "metrics.json"), str(tmp_path / "log.csv"), str(tmp_path / "state"), threads=1,
                       device="cpu", corpus_dir=[str(root / "corpus-0"), str(root / "corpus-1")])
    assert metrics["steps"] == 6 and metrics["tokens_seen"] > 6 * 8
    one = pretrain(spec, [str(root / "inst-0")], str(root / "tok"), str(tmp_path / "c1"), str(tmp_path / "m1.json"),
                   str(tmp_path / "l1.csv"), str(tmp_path / "state1"), threads=1, device="cpu")
    assert one["inputs"]["train_instances"] != metrics["inputs"]["train_instances"]
    with pytest.raises(cfg.ConfigError, match=r"masking.probability is drawn with the instances under "
                                              r"instances.static_masking"):
        cfg.validate(cfg.deep_merge(config, {"ablations": {"no_nsp": {"objective": "mlm", "masking": {"probability": 0.2}}}}))
