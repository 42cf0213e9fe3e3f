"""Tests for reading fine-tuning tasks from local files (GLUE TSV, SQuAD JSON, CoNLL, save_to_disk)."""

import json

import pytest

from bert_ablation.task_files import local_splits
from bert_ablation.tasks import TASKS, TaskDataError, validate_records
from bert_ablation.world import CONLL_LABELS


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
    from bert_ablation import tasks
    from bert_ablation.world import World

    _tsv(tmp_path / "train.tsv", [["index", "question", "sentence", "label"], ["0", "Who?", "Ann.", "entailment"]])
    _tsv(tmp_path / "dev.tsv", [["index", "question", "sentence", "label"], ["0", "Why?", "So.", "not_entailment"]])
    splits, _ = local_splits("qnli", {"path": str(tmp_path)})
    world = World(seed=0, scale=0.25).task("qnli", 2, 1)
    assert set(splits) == set(world)
    assert all(list(splits[s][0]) == list(world[s][0]) for s in splits)

    summary = tasks.build_task("qnli", {"source": "local", "path": str(tmp_path)}, {}, str(tmp_path / "out"))
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

    from bert_ablation.tasks import build_task

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
    from bert_ablation.tasks import validate_records

    record = {"id": "q1", "title": "t", "context": "Paris is in France.", "question": "Where is Paris?",
              "answers": {"text": ["France"], "answer_start": [3]}}
    with pytest.raises(TaskDataError, match=r"squad/validation row 0: answer 'France' is not at answer_start=3"):
        validate_records(TASKS["squad"], "validation", [record])
