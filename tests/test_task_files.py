"""Tests for reading fine-tuning tasks from local files (GLUE TSV, SQuAD JSON, CoNLL, save_to_disk)."""

import json

import pytest

from bert_ablation.data.task_files import local_splits
from bert_ablation.facts.tasks import CONLL_LABELS, TASKS, TaskDataError, validate_records


def _tsv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")


def _check(name, splits):
    assert set(splits) >= {"train", *TASKS[name].eval_splits}
    for split, records in splits.items():
        validate_records(TASKS[name], split, records)


MNLI_HEADER = ["index", "promptID", "pairID", "genre", "sentence1", "sentence2", "label1", "gold_label"]


def _mnli_row(i, premise, hypothesis, label):
    return [str(i), "1", f"{i}n", "fiction", premise, hypothesis, label, label]


def test_mnli_train_and_both_dev_splits(tmp_path):
    folder = tmp_path / "glue"
    _tsv(folder / "MNLI" / "train.tsv", [MNLI_HEADER,
                                         _mnli_row(0, 'He said "hi', "He spoke.", "entailment"),
                                         _mnli_row(1, "A cat sat.", "A dog sat.", "contradiction")])
    _tsv(folder / "MNLI" / "dev_matched.tsv", [MNLI_HEADER, _mnli_row(0, "It rains.", "It is wet.", "neutral")])
    _tsv(folder / "MNLI" / "dev_mismatched.tsv", [MNLI_HEADER, _mnli_row(0, "Sun.", "Moon.", "contradiction")])
    # Both the task folder and the GLUE root folder work.
    for path in (folder / "MNLI", folder):
        splits, _ = local_splits("mnli", {"path": str(path)})
        assert splits == {
            "train": [{"premise": 'He said "hi', "hypothesis": "He spoke.", "label": 0, "idx": 0},
                      {"premise": "A cat sat.", "hypothesis": "A dog sat.", "label": 2, "idx": 1}],
            "validation_matched": [{"premise": "It rains.", "hypothesis": "It is wet.", "label": 1, "idx": 0}],
            "validation_mismatched": [{"premise": "Sun.", "hypothesis": "Moon.", "label": 2, "idx": 0}],
        }
        _check("mnli", splits)


def test_qnli_columns_found_by_header_name(tmp_path):
    _tsv(tmp_path / "train.tsv", [["index", "question", "sentence", "label"],
                                  ["0", "Who?", "Ann did.", "entailment"],
                                  ["1", "Where?", "It rained.", "not_entailment"]])
    _tsv(tmp_path / "dev.tsv", [["label", "sentence", "question", "index"],  # other column order
                                ["not_entailment", "No.", "Why?", "0"]])
    splits, _ = local_splits("qnli", {"path": str(tmp_path)})
    assert splits["train"] == [{"question": "Who?", "sentence": "Ann did.", "label": 0, "idx": 0},
                               {"question": "Where?", "sentence": "It rained.", "label": 1, "idx": 1}]
    assert splits["validation"] == [{"question": "Why?", "sentence": "No.", "label": 1, "idx": 0}]
    _check("qnli", splits)


def test_mrpc_glue_format(tmp_path):
    header = ["\ufeffQuality", "#1 ID", "#2 ID", "#1 String", "#2 String"]  # with the files' BOM
    _tsv(tmp_path / "train.tsv", [header, ["1", "702876", "702977", "Amrozi accused him .", "He accused Amrozi ."],
                                  ["0", "2108705", "2108831", "Yucaipa owned it .", "Yucaipa sold it ."]])
    _tsv(tmp_path / "dev.tsv", [header, ["1", "1", "2", "A b .", "B a ."]])
    splits, _ = local_splits("mrpc", {"path": str(tmp_path)})
    assert splits["train"] == [
        {"sentence1": "Amrozi accused him .", "sentence2": "He accused Amrozi .", "label": 1, "idx": 0},
        {"sentence1": "Yucaipa owned it .", "sentence2": "Yucaipa sold it .", "label": 0, "idx": 1}]
    assert TASKS["mrpc"].labels[splits["train"][0]["label"]] == "equivalent"
    assert splits["validation"] == [{"sentence1": "A b .", "sentence2": "B a .", "label": 1, "idx": 0}]
    _check("mrpc", splits)


def test_mrpc_msr_paraphrase_files_through_file_overrides(tmp_path):
    header = ["\ufeffQuality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    _tsv(tmp_path / "msr_paraphrase_train.txt", [header, ["1", "1", "2", 'He said "yes" .', "He agreed ."]])
    _tsv(tmp_path / "msr_paraphrase_test.txt", [header, ["0", "3", "4", "A cat .", "A dog ."]])
    splits, _ = local_splits("mrpc", {"path": str(tmp_path), "files": {"train": "msr_paraphrase_train.txt",
                                                                      "validation": "msr_paraphrase_test.txt"}})
    assert [r["sentence1"] for r in splits["train"]] == ['He said "yes" .']
    assert [r["label"] for r in splits["validation"]] == [0]


def test_sst2_with_file_overrides_and_quotes(tmp_path):
    _tsv(tmp_path / "my_train.tsv", [["sentence", "label"], ['a "great film ', "1"], ["dull", "0"]])
    _tsv(tmp_path / "my_dev.tsv", [["sentence", "label"], ["fine", "1"]])
    splits, _ = local_splits("sst2", {"path": str(tmp_path),
                                   "files": {"train": "my_train.tsv", "validation": "my_dev.tsv"}})
    assert splits == {"train": [{"sentence": 'a "great film ', "label": 1, "idx": 0},
                                {"sentence": "dull", "label": 0, "idx": 1}],
                      "validation": [{"sentence": "fine", "label": 1, "idx": 0}]}
    _check("sst2", splits)


def _squad(articles):
    return {"version": "1.1", "data": articles}


def test_squad_json_is_flattened(tmp_path):
    context = "Paris is the capital of France. Paris is large."
    train = _squad([{"title": "Paris", "paragraphs": [
        {"context": context, "qas": [
            {"id": "q1", "question": "What is Paris?",
             "answers": [{"text": "the capital of France", "answer_start": 9}]},
            {"id": "q2", "question": "Which city?",
             "answers": [{"text": "Paris", "answer_start": 0}, {"text": "Paris", "answer_start": 32}]}]}]}])
    dev = _squad([{"title": "T", "paragraphs": [{"context": "ab cd", "qas": [
        {"id": "d1", "question": "Q?", "answers": [{"text": "cd", "answer_start": 3},
                                                   {"text": "ab cd", "answer_start": 0}]}]}]}])
    (tmp_path / "train-v1.1.json").write_text(json.dumps(train))
    (tmp_path / "dev-v1.1.json").write_text(json.dumps(dev))
    splits, _ = local_splits("squad", {"path": str(tmp_path)})
    assert splits["train"] == [
        {"id": "q1", "title": "Paris", "context": context, "question": "What is Paris?",
         "answers": {"text": ["the capital of France"], "answer_start": [9]}},
        {"id": "q2", "title": "Paris", "context": context, "question": "Which city?",
         "answers": {"text": ["Paris", "Paris"], "answer_start": [0, 32]}}]
    assert splits["validation"] == [{"id": "d1", "title": "T", "context": "ab cd", "question": "Q?",
                                     "answers": {"text": ["cd", "ab cd"], "answer_start": [3, 0]}}]
    _check("squad", splits)


def test_squad_malformed_json_names_file_and_place(tmp_path):
    (tmp_path / "train-v1.1.json").write_text('{"data": [\n{"title": "x",}]}')
    (tmp_path / "dev-v1.1.json").write_text(json.dumps(_squad([{"title": "T", "paragraphs": [
        {"context": "c", "qas": [{"id": "1", "answers": []}]}]}])))
    with pytest.raises(TaskDataError, match=r"train-v1\.1\.json, line 2, column"):
        local_splits("squad", {"path": str(tmp_path)})
    (tmp_path / "train-v1.1.json").write_text(json.dumps(_squad([])))
    with pytest.raises(TaskDataError, match=r"train-v1\.1\.json has no questions"):
        local_splits("squad", {"path": str(tmp_path)})
    (tmp_path / "train-v1.1.json").write_text(json.dumps(_squad([{"paragraphs": [
        {"context": "c", "qas": [{"id": "1", "question": "Q?", "answers": [{"text": "c", "answer_start": 0}]}]}]}])))
    with pytest.raises(TaskDataError, match=r"dev-v1\.1\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\] has no 'question'"):
        local_splits("squad", {"path": str(tmp_path)})


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O

Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP I-LOC
"""


def _tags(*names):
    return [CONLL_LABELS.index(n) for n in names]


@pytest.mark.parametrize("names", [("eng.train", "eng.testa", "eng.testb"), ("train.txt", "valid.txt", "test.txt"),
                                   ("train.txt", "dev.txt", "test.txt")])
def test_conll_files(tmp_path, names):
    for name in names:
        (tmp_path / name).write_text(CONLL)
    splits, _ = local_splits("conll2003", {"path": str(tmp_path)})
    expected = [
        {"id": "0", "tokens": ["EU", "rejects", "German", "call"], "ner_tags": _tags("B-ORG", "O", "B-MISC", "O"),
         "document": 0},
        {"id": "1", "tokens": ["Peter", "Blackburn"], "ner_tags": _tags("B-PER", "I-PER"), "document": 0},
        {"id": "2", "tokens": ["BRUSSELS"], "ner_tags": _tags("B-LOC"), "document": 1},
    ]
    assert splits == {"train": expected, "validation": expected, "test": expected}
    _check("conll2003", splits)


def test_conll_format_error_is_a_task_error(tmp_path):
    for name in ("eng.train", "eng.testa", "eng.testb"):
        (tmp_path / name).write_text(CONLL)
    (tmp_path / "eng.testa").write_text("EU NNP B-NP I-ORG\nrejects VBZ B-VP X-BAD\n")
    with pytest.raises(TaskDataError, match=r"conll2003: .*eng\.testa, line 2: unknown NER tag 'X-BAD'"):
        local_splits("conll2003", {"path": str(tmp_path)})


def test_save_to_disk_round_trip(tmp_path):
    import datasets

    records = {"train": [{"sentence": "good", "label": 1, "idx": 0}, {"sentence": "bad", "label": 0, "idx": 1}],
               "validation": [{"sentence": "ok", "label": 1, "idx": 0}]}
    datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in records.items()}).save_to_disk(
        str(tmp_path / "saved"))
    splits, _ = local_splits("sst2", {"path": str(tmp_path / "saved")})
    assert splits == records
    _check("sst2", splits)
    with pytest.raises(TaskDataError, match=r"has no split\(s\) validation_matched, validation_mismatched"):
        local_splits("mnli", {"path": str(tmp_path / "saved")})


def _qnli_files(folder, dev_rows, dev_header=("index", "question", "sentence", "label")):
    _tsv(folder / "train.tsv", [["index", "question", "sentence", "label"], ["0", "Who?", "Ann.", "entailment"]])
    _tsv(folder / "dev.tsv", [list(dev_header), *dev_rows])


def test_unknown_label_names_file_line_column_and_allowed_labels(tmp_path):
    _qnli_files(tmp_path, [["0", "Who?", "Ann.", "entailment"], ["1", "Why?", "So.", "maybe"]])
    with pytest.raises(TaskDataError, match=r"dev\.tsv, line 3, column 'label': unknown label 'maybe'; "
                                            r"allowed labels are entailment, not_entailment"):
        local_splits("qnli", {"path": str(tmp_path)})


def test_mrpc_label_error_lists_the_digit_labels(tmp_path):
    header = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    _tsv(tmp_path / "train.tsv", [header, ["2", "1", "2", "a", "b"]])
    _tsv(tmp_path / "dev.tsv", [header, ["1", "1", "2", "a", "b"]])
    with pytest.raises(TaskDataError, match=r"train\.tsv, line 2, column 'Quality': unknown label '2'; "
                                            r"allowed labels are 0 \(not_equivalent\), 1 \(equivalent\)"):
        local_splits("mrpc", {"path": str(tmp_path)})


def test_missing_column_names_file_and_header(tmp_path):
    _qnli_files(tmp_path, [["0", "Who?", "Ann."]], dev_header=("index", "question", "sentence"))
    with pytest.raises(TaskDataError, match=r"dev\.tsv, line 1: the header has no column 'label'"):
        local_splits("qnli", {"path": str(tmp_path)})


def test_wrong_field_count_names_file_and_line(tmp_path):
    _qnli_files(tmp_path, [["0", "Who?", "Ann.", "entailment"], ["1", "Why?", "So.\tmore", "entailment"]])
    with pytest.raises(TaskDataError, match=r"dev\.tsv, line 3: 5 tab-separated fields, expected 4"):
        local_splits("qnli", {"path": str(tmp_path)})


def test_missing_file_names_expected_path_and_task(tmp_path):
    _tsv(tmp_path / "train.tsv", [["index", "question", "sentence", "label"], ["0", "Who?", "Ann.", "entailment"]])
    with pytest.raises(TaskDataError, match=r"qnli: no file for split 'validation'; expected .*dev\.tsv"):
        local_splits("qnli", {"path": str(tmp_path)})
    with pytest.raises(TaskDataError, match=r"conll2003: no file for split 'train'; expected .*eng\.train or"):
        local_splits("conll2003", {"path": str(tmp_path)})
    with pytest.raises(TaskDataError, match="is not a folder"):
        local_splits("qnli", {"path": str(tmp_path / "nowhere")})
    with pytest.raises(TaskDataError, match="'files' name splits"):
        local_splits("qnli", {"path": str(tmp_path), "files": {"test": "x.tsv"}})


def test_not_utf8_names_file_and_line(tmp_path):
    _qnli_files(tmp_path, [])
    (tmp_path / "dev.tsv").write_bytes(b"index\tquestion\tsentence\tlabel\n0\tCaf\xe9?\tA.\tentailment\n")
    with pytest.raises(TaskDataError, match=r"dev\.tsv, line 2: not UTF-8"):
        local_splits("qnli", {"path": str(tmp_path)})


def test_keys_match_the_world_records_and_build_task_saves_them(tmp_path):
    """The local records carry the world generator's keys and go through build_task as they are."""
    from bert_ablation.data import task_sources
    from bert_ablation.data.world import World

    _tsv(tmp_path / "train.tsv", [["index", "question", "sentence", "label"], ["0", "Who?", "Ann.", "entailment"]])
    _tsv(tmp_path / "dev.tsv", [["index", "question", "sentence", "label"], ["0", "Why?", "So.", "not_entailment"]])
    splits, _ = local_splits("qnli", {"path": str(tmp_path)})
    world = World(seed=0, scale=0.25).task("qnli", 2, 1)
    assert set(splits) == set(world)
    assert all(list(splits[s][0]) == list(world[s][0]) for s in splits)

    summary = task_sources.build_task("qnli", {"source": "local", "path": str(tmp_path)}, {}, str(tmp_path / "out"))
    assert summary["validation"] == {"rows": 1, "labels": {"not_entailment": 1}}


GLUE_README = """---
configs:
- config_name: mrpc
  data_files:
  - split: train
    path: mrpc/train-*
  - split: validation
    path: mrpc/validation-*
---
# A local stand-in for nyu-mll/glue
"""


def test_hub_source_runs_load_dataset_on_a_hub_layout_folder(tmp_path, no_network):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bert_ablation.data.task_sources import build_task

    repo = tmp_path / "glue"
    (repo / "mrpc").mkdir(parents=True)
    rows = {"train": [("A b .", "B a .", 1), ("C d .", "E f .", 0)], "validation": [("G h .", "G h !", 1)]}
    for split, records in rows.items():
        first, second, labels = zip(*records)
        pq.write_table(pa.table({"sentence1": first, "sentence2": second, "label": labels, "idx": range(len(labels))}),
                       repo / "mrpc" / f"{split}-00000-of-00001.parquet")
    (repo / "README.md").write_text(GLUE_README)
    summary = build_task("mrpc", {"source": "hub", "hub": {"path": str(repo), "name": "mrpc"}}, {}, tmp_path / "out")
    assert summary["train"] == {"rows": 2, "labels": {"equivalent": 1, "not_equivalent": 1}}
    import datasets

    saved = datasets.load_from_disk(str(tmp_path / "out"))
    assert saved["validation"].to_list() == [{"sentence1": "G h .", "sentence2": "G h !", "label": 1, "idx": 0}]


def test_an_answer_not_at_its_answer_start_is_reported_with_its_row(tmp_path):
    from bert_ablation.facts.tasks import validate_records

    record = {"id": "q1", "title": "t", "context": "Paris is in France.", "question": "Where is Paris?",
              "answers": {"text": ["France"], "answer_start": [3]}}
    with pytest.raises(TaskDataError, match=r"squad/validation row 0: answer 'France' is not at answer_start=3"):
        validate_records(TASKS["squad"], "validation", [record])


# WNUT-17 style: tab-separated, no -DOCSTART-, entity types that CoNLL-2003 does not have.
WNUT_TRAIN = ("Ann\tB-person\nbought\tO\nan\tO\niPhone\tB-product\nat\tO\nApple\tB-corporation\nStore\tI-corporation\n\n"
              "Bob\tB-person\nLee\tI-person\nlikes\tO\nMinecraft\tB-creative-work\n\n"
              "so\tO\ncold\tO\n\n")
WNUT_DEV = "Eve\tB-person\nuses\tO\nPixel\tB-product\n\nthanks\tO\nBob\tI-person\n\n"  # IOB1's I- is fine
WNUT_LABELS = ("O", "B-corporation", "I-corporation", "B-creative-work", "I-creative-work", "B-person", "I-person",
               "B-product", "I-product")


def _wnut(folder, dev=WNUT_DEV, names=("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated")):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in zip(names, (WNUT_TRAIN, dev, WNUT_DEV)):
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_ner_reads_its_label_set_from_the_training_file(tmp_path, caplog):
    import logging

    import datasets

    from bert_ablation.data.task_sources import build_task
    from bert_ablation.facts.tasks import with_labels

    splits, dropped = local_splits("ner", {"path": str(_wnut(tmp_path / "wnut"))})
    assert dropped == {} and set(splits) == {"train", "validation", "test"}
    assert splits["train"].features["ner_tags"].feature.names == list(WNUT_LABELS)
    assert splits["validation"].to_list() == [
        {"id": "0", "tokens": ["Eve", "uses", "Pixel"], "ner_tags": [5, 0, 7], "document": 0},
        {"id": "1", "tokens": ["thanks", "Bob"], "ner_tags": [0, 5], "document": 0}]
    # train.txt / dev.txt / test.txt are found too
    _wnut(tmp_path / "plain", names=("train.txt", "dev.txt", "test.txt"))
    assert local_splits("ner", {"path": str(tmp_path / "plain")})[0]["test"].to_list() == splits["test"].to_list()

    with caplog.at_level(logging.INFO, logger="bert_ablation.data.task_sources"):
        summary = build_task("ner", {"source": "local", "path": str(tmp_path / "wnut")}, {}, str(tmp_path / "out"))
    assert summary == {"train": {"rows": 3}, "validation": {"rows": 2}, "test": {"rows": 2}}
    assert f"task ner: 9 labels, from its train split: {', '.join(WNUT_LABELS)}" in caplog.text
    saved = datasets.load_from_disk(str(tmp_path / "out"))
    spec = with_labels(TASKS["ner"], saved["train"])
    assert spec.labels == WNUT_LABELS and TASKS["ner"].labels == () and TASKS["conll2003"].labels == CONLL_LABELS
    # a save_to_disk folder of the task keeps its labels
    assert local_splits("ner", {"path": str(tmp_path / "out")})[0]["validation"].features == saved["validation"].features


def test_ner_dev_tag_outside_the_training_labels_names_file_line_and_tag(tmp_path):
    folder = _wnut(tmp_path, dev="Eve\tB-person\n\nParis\tB-location\n")
    with pytest.raises(TaskDataError, match=r"ner: .*emerging\.dev\.conll, line 3: unknown NER tag 'B-location' in "
                                            r"the last column; the training split \(.*wnut17train\.conll\) has only "
                                            r"O, B-corporation, I-corporation"):
        local_splits("ner", {"path": str(folder)})
    (folder / "wnut17train.conll").write_text("Ann\tB-person\nLee\tperson\n")
    with pytest.raises(TaskDataError, match=r"wnut17train\.conll, line 2: NER tag 'person' in the last column is not "
                                            r"O, B-<type> or I-<type>"):
        local_splits("ner", {"path": str(folder)})
    # conll2003 stays strict: the same files are refused for their types
    with pytest.raises(TaskDataError, match=r"conll2003: .*, line 1: unknown NER tag 'B-person'.*allowed tags are"):
        local_splits("conll2003", {"path": str(_wnut(tmp_path / "strict", names=("train.txt", "dev.txt", "test.txt")))})


def test_ner_from_the_hub_needs_arguments_and_label_names(tmp_path, no_network):
    import datasets

    from bert_ablation.data.task_sources import build_task

    with pytest.raises(TaskDataError, match=r"ner: source 'hub' needs tasks\.ner\.hub, the datasets\.load_dataset "
                                            r"arguments"):
        build_task("ner", {"source": "hub"}, {}, str(tmp_path / "out"))
    # a hub dataset whose ner_tags are plain integers names no labels
    plain = {"tokens": [["Ann"]], "ner_tags": [[1]]}
    datasets.DatasetDict({s: datasets.Dataset.from_dict(plain) for s in ("train", "validation", "test")}).save_to_disk(
        str(tmp_path / "plain"))
    with pytest.raises(TaskDataError, match=r"ner/train: 'ner_tags' carries no label names"):
        build_task("ner", {"source": "local", "path": str(tmp_path / "plain")}, {}, str(tmp_path / "out"))
    # splits that name different labels are refused
    def split(names):
        features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                      "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
        return datasets.Dataset.from_dict({"tokens": [["Ann"]], "ner_tags": [[1]]}, features=features)

    datasets.DatasetDict({"train": split(["O", "B-person", "I-person"]), "validation": split(["O", "B-per", "I-per"]),
                          "test": split(["O", "B-person", "I-person"])}).save_to_disk(str(tmp_path / "mixed"))
    with pytest.raises(TaskDataError, match=r"ner/validation: its ner_tags labels \(O, B-per, I-per\) differ from the "
                                            r"train split's \(O, B-person, I-person\)"):
        build_task("ner", {"source": "local", "path": str(tmp_path / "mixed")}, {}, str(tmp_path / "out"))
    # entity-level scoring needs BIO labels
    datasets.DatasetDict({s: split(["O", "PER", "B-LOC"]) for s in ("train", "validation", "test")}).save_to_disk(
        str(tmp_path / "flat"))
    with pytest.raises(TaskDataError, match=r"ner/train: labels \['PER'\] are not O, B-<type> or I-<type>"):
        build_task("ner", {"source": "local", "path": str(tmp_path / "flat")}, {}, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    # a hub-layout folder (parquet shards carry the ClassLabel names, as the hub's NER datasets do)
    repo = tmp_path / "wnut_hub"
    (repo / "data").mkdir(parents=True)
    for name in ("train", "validation", "test"):
        split(["O", "B-person", "I-person"]).to_parquet(str(repo / "data" / f"{name}-00000-of-00001.parquet"))
    (repo / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n" + "".join(
        f"  - split: {name}\n    path: data/{name}-*\n" for name in ("train", "validation", "test")) + "---\n")
    assert build_task("ner", {"source": "hub", "hub": {"path": str(repo)}}, {}, str(tmp_path / "out"))["test"] == {
        "rows": 1}
    saved = datasets.load_from_disk(str(tmp_path / "out"))
    assert saved["train"].features["ner_tags"].feature.names == ["O", "B-person", "I-person"]


def test_ner_fine_tunes_and_scores_with_its_own_labels(tmp_path, tokenizer):
    """Load, featurize and score a WNUT-style task: a tiny random BERT through finetune.finetune, and
    the evaluation of perfect logits through the labels saved with the task's data."""
    import datasets
    import torch
    from transformers import BertModel

    from bert_ablation import config as cfg
    from bert_ablation import plan
    from bert_ablation.data.task_sources import build_task
    from bert_ablation.facts.tasks import with_labels
    from bert_ablation.models.modeling import bert_config
    from bert_ablation.storage import write_json
    from bert_ablation.training.finetune import evaluate, featurize, finetune

    checkpoint = tmp_path / "checkpoint"
    torch.manual_seed(0)
    model = {"layers": 1, "hidden": 16, "heads": 2, "intermediate": 32, "dropout": 0.1, "max_position_embeddings": 64}
    BertModel(bert_config(model, len(tokenizer), tokenizer.pad_token_id, causal=False)).save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    write_json(checkpoint / "ablation.json", {"name": "tiny", "step": 0, "spec_hash": "0"})
    # tweets are no documents (a file without -DOCSTART- is one): no document context
    config = cfg.validate({"tasks": {"ner": {"source": "local", "path": str(_wnut(tmp_path / "data")),
                                             "max_seq_length": 32, "document_context": False}},
                           "finetune": {"grid": {"lr": [1e-3], "batch_size": [2], "epochs": [1]}, "precision": "fp32"}})
    build_task("ner", config["tasks"]["ner"], {}, str(tmp_path / "task"))
    settings = plan.finetune_settings(config, "ner", "linear", plan.grid_points(config, "ner")[0].key)
    out = tmp_path / "seed0" / "metrics.json"
    finetune(str(checkpoint), str(tmp_path / "task"), "ner", "linear", settings, [str(out)], threads=1, device="cpu")
    metrics = json.loads(out.read_text())
    assert metrics["dev_split"] == "validation" and set(metrics["splits"]) == {"validation", "test"}
    assert set(metrics["dev"]) == {"f1", "precision", "recall", "accuracy"}
    assert all(0 <= v <= 100 for v in metrics["dev"].values()) and metrics["train_examples"] == 3

    data = datasets.load_from_disk(str(tmp_path / "task"))
    spec = with_labels(TASKS["ner"], data["train"])
    records = data["validation"].to_dict()
    task_settings = plan.FinetuneSettings.from_params(settings).task
    features = featurize(spec, records, tokenizer, task_settings, train=False)

    row_of = {tuple(ids): i for i, ids in enumerate(features["input_ids"])}
    assert len(row_of) == len(records["tokens"])

    class Perfect:  # logits whose argmax is each word's gold tag
        def evaluate(self, batch):
            logits = torch.zeros(*batch["input_ids"].shape, len(spec.labels))
            for r, (ids, mask) in enumerate(zip(batch["input_ids"], batch["attention_mask"])):
                i = row_of[tuple(ids[mask.bool()].tolist())]
                for p, tag in zip(features["word_positions"][i], records["ner_tags"][i]):
                    logits[r, p, tag] = 1.0
            return type("Out", (), {"logits": logits})

    scores = evaluate(Perfect(), spec, records, features, 1, task_settings, tokenizer.pad_token_id)
    assert scores == {"f1": 100.0, "precision": 100.0, "recall": 100.0, "accuracy": 100.0}
    # the gold entities are person, product (sentence 1) and person (sentence 2, IOB1's I- begins one)
    assert [[spec.labels[t] for t in tags] for tags in records["ner_tags"]] == [["B-person", "O", "B-product"],
                                                                                 ["O", "B-person"]]


def test_hub_conll_recovers_documents_from_its_docstart_rows(tmp_path, no_network, caplog):
    import logging

    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bert_ablation.data.task_sources import build_task

    repo = tmp_path / "conll"
    (repo / "data").mkdir(parents=True)
    sentences = [["-DOCSTART-"], ["EU", "rejects", "German", "call"], ["Peter", "Blackburn"],
                 ["-DOCSTART-"], ["BRUSSELS", "1996-08-22"]]
    tags = [[0], [3, 0, 7, 0], [1, 2], [0], [5, 0]]
    for split in ("train", "validation", "test"):
        pq.write_table(pa.table({"id": [str(i) for i in range(5)], "tokens": sentences, "ner_tags": tags}),
                       repo / "data" / f"{split}-00000-of-00001.parquet")
    with caplog.at_level(logging.INFO, logger="bert_ablation.data.task_sources"):
        build_task("conll2003", {"source": "hub", "hub": {"path": str(repo)}}, {}, tmp_path / "out")
    saved = datasets.load_from_disk(str(tmp_path / "out"))["train"]
    assert saved["tokens"] == [s for s in sentences if s != ["-DOCSTART-"]]  # not sentences: dropped
    assert saved["document"] == [0, 0, 1]
    assert "conll2003/train: 2 documents recovered from 2 -DOCSTART- rows (dropped)" in caplog.text
