"""Fine-tuning tasks read from local files, in the formats the datasets are distributed in.

``local_splits(name, settings)`` returns ``({split: records}, {split: {reason: [line, ...]}})``:
the records of ``"train"`` and each of ``TASKS[name].eval_splits`` in the hub record schema (the
one ``World.task`` produces and ``tasks.validate_records`` checks), and the rows it dropped:

* GLUE TSVs (the ``MNLI/``, ``QNLI/``, ``MRPC/``, ``SST-2/``, ``CoLA/``, ``STS-B/``, ``QQP/`` and
  ``RTE/`` folders of the GLUE download). Dropped, as the hub's copies drop them: MNLI rows
  whose gold label is ``-`` (no annotator consensus) and QQP rows with missing fields (the
  train file has questions broken over two lines);
* SQuAD v1.1 JSON (``train-v1.1.json``, ``dev-v1.1.json``);
* CoNLL-2003 column files (``eng.train``/``eng.testa``/``eng.testb`` or
  ``train.txt``/``valid.txt`` (``dev.txt``)/``test.txt``);
* for ``ner``, column files of any BIO/IOB1 entity types (``train.txt``/``valid.txt``
  (``dev.txt``)/``test.txt``, or WNUT-17's ``wnut17train.conll``/``emerging.dev.conll``/
  ``emerging.test.annotated``): the label set is the training file's, and a dev or test tag
  outside it is an error naming its file and line;
* a ``datasets`` ``save_to_disk`` folder (one holding ``dataset_dict.json``), for any task.

A task without a label set of its own (``ner``) comes back as ``datasets.Dataset`` splits whose
``ner_tags`` feature (a ``ClassLabel``) names its labels, which ``task_sources.build_task`` saves with it.

``settings["path"]`` is the folder; ``settings.get("files")`` maps splits to file names
(relative to the folder, or absolute) that replace the defaults.  Problems raise
``TaskDataError`` naming the task, the file and the line and column.  Records are only
parsed here: ``tasks.validate_records`` checks them afterwards.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..facts.tasks import TASKS, TaskDataError
from .conll import ConllFormatError, file_labels, read_conll

# GLUE: the folder name in the GLUE download, default file per split, the columns that
# become the hub's text fields, the label column, and the label strings in hub index order
# (default: the label names). Optional: "columns" for a file without a header row, "drop_labels"
# (label string -> why such rows are dropped) and "drop_short_rows" (rows missing fields).
_DEV = {"train": "train.tsv", "validation": "dev.tsv"}
_GLUE = {
    "mnli": {"folder": "MNLI",
             "files": {"train": "train.tsv", "validation_matched": "dev_matched.tsv",
                       "validation_mismatched": "dev_mismatched.tsv"},
             "text": {"premise": "sentence1", "hypothesis": "sentence2"}, "label": "gold_label",
             "drop_labels": {"-": "gold_label '-' (no annotator consensus)"}},
    "qnli": {"folder": "QNLI", "files": _DEV,
             "text": {"question": "question", "sentence": "sentence"}, "label": "label"},
    "mrpc": {"folder": "MRPC", "files": _DEV,
             "text": {"sentence1": "#1 String", "sentence2": "#2 String"}, "label": "Quality",
             "label_strings": ("0", "1")},
    "sst2": {"folder": "SST-2", "files": _DEV,
             "text": {"sentence": "sentence"}, "label": "label", "label_strings": ("0", "1")},
    "cola": {"folder": "CoLA", "files": _DEV, "columns": ("source", "label", "original_label", "sentence"),
             "text": {"sentence": "sentence"}, "label": "label", "label_strings": ("0", "1")},
    "stsb": {"folder": "STS-B", "files": _DEV, "text": {"sentence1": "sentence1", "sentence2": "sentence2"},
             "label": "score"},
    "qqp": {"folder": "QQP", "files": _DEV, "text": {"question1": "question1", "question2": "question2"},
            "label": "is_duplicate", "label_strings": ("0", "1"), "drop_short_rows": True},
    "rte": {"folder": "RTE", "files": _DEV, "text": {"sentence1": "sentence1", "sentence2": "sentence2"},
            "label": "label"},
}
_SQUAD_FILES = {"train": ("train-v1.1.json",), "validation": ("dev-v1.1.json",)}
_CONLL_FILES = {"train": ("eng.train", "train.txt"), "validation": ("eng.testa", "valid.txt", "dev.txt"),
                "test": ("eng.testb", "test.txt")}
_NER_FILES = {"train": ("train.txt", "wnut17train.conll"), "validation": ("valid.txt", "dev.txt", "emerging.dev.conll"),
              "test": ("test.txt", "emerging.test.annotated")}


def local_splits(name: str, settings: dict) -> tuple[dict[str, list[dict]], dict[str, dict[str, list[int]]]]:
    """Read task ``name`` from the local files described by ``settings`` (see the module doc):
    ``({split: records}, {split: {reason: [line, ...]}})``, the second holding only splits
    that dropped rows."""
    folder, files = _locate(name, settings)
    splits = ("train", *TASKS[name].eval_splits)
    if files is None:
        return _saved_splits(name, folder, splits), {}
    if TASKS[name].kind == "tagging" and not TASKS[name].labels:
        return _read_tagged(name, files), {}
    out, dropped = {}, {}
    for split, path in files.items():
        out[split], split_dropped = _read(name, path)
        if split_dropped:
            dropped[split] = split_dropped
    return out, dropped


def input_files(name: str, settings: dict) -> list[str]:
    """Every file ``local_splits`` reads: the workflow declares them as the task's inputs, so an
    edited file rebuilds the task, and a missing one is reported when the DAG is built."""
    folder, files = _locate(name, settings)
    if files is None:  # a save_to_disk folder
        return sorted(str(path) for path in folder.rglob("*") if path.is_file())
    return sorted({str(path) for path in files.values()})


def _locate(name: str, settings: dict) -> tuple[Path, dict[str, Path] | None]:
    """The task's folder and the file of each split (None for a save_to_disk folder)."""
    if name not in TASKS:
        raise TaskDataError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}.")
    splits = ("train", *TASKS[name].eval_splits)
    if not settings.get("path"):
        raise TaskDataError(f"{name}: settings need 'path', the folder holding the task's files.")
    folder = Path(settings["path"]).expanduser()
    if not folder.is_dir():
        raise TaskDataError(f"{name}: path {folder} is not a folder (or does not exist).")
    overrides = dict(settings.get("files") or {})
    unknown = sorted(set(overrides) - set(splits))
    if unknown:
        raise TaskDataError(f"{name}: settings 'files' name splits {unknown}; the task's splits are "
                            f"{', '.join(splits)}.")
    if (folder / "dataset_dict.json").is_file():
        return folder, None
    if name in _GLUE:
        defaults = {split: (file,) for split, file in _GLUE[name]["files"].items()}
    elif name == "squad":
        defaults = _SQUAD_FILES
    elif name == "conll2003":
        defaults = _CONLL_FILES
    elif name == "ner":
        defaults = _NER_FILES
    else:  # a task registered without a local file format
        raise TaskDataError(f"{name}: no local file format is known; give a save_to_disk folder.")
    return folder, {split: _find(name, split, folder, (overrides[split],) if split in overrides else defaults[split])
                    for split in splits}


def _read(name: str, path: Path) -> tuple[list[dict], dict[str, list[int]]]:
    """(records, {reason: [line, ...]} of dropped rows) of one split's file."""
    if name in _GLUE:
        return _read_glue_tsv(name, path)
    if name == "squad":
        return _read_squad(name, path), {}
    return _read_conll(name, path), {}


def _find(name: str, split: str, folder: Path, candidates) -> Path:
    """The first existing candidate file, in the folder or (GLUE) in its task subfolder."""
    places = [folder]
    if name in _GLUE:
        places.append(folder / _GLUE[name]["folder"])  # path may be the GLUE root folder
    tried = []
    for candidate in candidates:
        for place in places:
            path = place / candidate
            if path.is_file():
                return path
            tried.append(str(path))
    raise TaskDataError(f"{name}: no file for split '{split}'; expected {' or '.join(tried)} "
                        f"(set settings 'files' to name another file).")


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise TaskDataError(f"{path}, line {line}: not UTF-8 text ({error.reason}); convert the file, "
                            f"e.g. iconv -f latin1 -t utf-8") from None


def _score(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _label_parser(name: str):
    """(label string -> hub label, or None if it is not a label; what a label must be) for a GLUE task."""
    glue, spec = _GLUE[name], TASKS[name]
    if spec.kind == "regression":
        return _score, "a score must be a number"
    allowed = glue.get("label_strings", spec.labels)
    names = ", ".join(f"{s} ({spec.labels[i]})" if s != spec.labels[i] else s for i, s in enumerate(allowed))
    return {label: i for i, label in enumerate(allowed)}.get, f"allowed labels are {names}"


def _read_glue_tsv(name: str, path: Path) -> tuple[list[dict], dict[str, list[int]]]:
    """The records of one GLUE TSV and the rows dropped from it: {reason: [line, ...]}."""
    glue = _GLUE[name]
    parse, expected = _label_parser(name)
    drop_labels = glue.get("drop_labels", {})
    # GLUE TSVs hold unbalanced quotes in the text: tabs and newlines are the only structure.
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = glue.get("columns") or next(reader, None)  # CoLA's files have no header row
    if not header:
        raise TaskDataError(f"{name}: {path}, line 1: no header row; expected a tab-separated header "
                            f"naming the columns {', '.join([*glue['text'].values(), glue['label']])}.")
    header = [column.strip() for column in header]
    columns = {}
    for column in [*glue["text"].values(), glue["label"]]:
        if column not in header:
            raise TaskDataError(f"{name}: {path}, line 1: the header has no column '{column}' "
                                f"(it has: {', '.join(header)}).")
        columns[column] = header.index(column)
    records, dropped = [], {}
    for row in reader:
        line = reader.line_num
        if not row or row == [""]:
            continue  # a blank line, e.g. at the end of the file
        if len(row) < len(header) and glue.get("drop_short_rows"):
            dropped.setdefault("missing fields", []).append(line)
            continue
        if len(row) != len(header):
            raise TaskDataError(f"{name}: {path}, line {line}: {len(row)} tab-separated fields, expected "
                                f"{len(header)} ({', '.join(header)}).")
        value = row[columns[glue["label"]]].strip()
        if value in drop_labels:
            dropped.setdefault(drop_labels[value], []).append(line)
            continue
        label = parse(value)
        if label is None:
            raise TaskDataError(f"{name}: {path}, line {line}, column '{glue['label']}': unknown label "
                                f"{value!r}; {expected}.")
        record = {field: row[columns[column]] for field, column in glue["text"].items()}
        record["label"] = label
        record["idx"] = len(records)
        records.append(record)
    if not records:
        lost = f" left ({sum(map(len, dropped.values()))} dropped: {', '.join(dropped)})" if dropped else ""
        raise TaskDataError(f"{name}: {path} has no rows{lost}.")
    return records, dropped


def _read_squad(name: str, path: Path) -> list[dict]:
    try:
        document = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise TaskDataError(f"{name}: {path}, line {error.lineno}, column {error.colno}: not valid JSON "
                            f"({error.msg}).") from None

    def need(obj, key, where, kind):
        if not isinstance(obj, dict) or not isinstance(obj.get(key), kind):
            raise TaskDataError(f"{name}: {path}: {where} has no '{key}' "
                                f"({kind.__name__ if isinstance(kind, type) else 'value'} expected); "
                                f"SQuAD v1.1 nests data -> paragraphs -> qas -> answers.")
        return obj[key]

    records = []
    for a, article in enumerate(need(document, "data", "the top level", list)):
        title = article.get("title", "") if isinstance(article, dict) else ""
        for p, paragraph in enumerate(need(article, "paragraphs", f"data[{a}]", list)):
            where = f"data[{a}].paragraphs[{p}]"
            context = need(paragraph, "context", where, str)
            for q, qa in enumerate(need(paragraph, "qas", where, list)):
                where_qa = f"{where}.qas[{q}]"
                answers = {"text": [], "answer_start": []}
                for k, answer in enumerate(need(qa, "answers", where_qa, list)):
                    answers["text"].append(need(answer, "text", f"{where_qa}.answers[{k}]", str))
                    answers["answer_start"].append(need(answer, "answer_start", f"{where_qa}.answers[{k}]", int))
                records.append({"id": str(need(qa, "id", where_qa, (str, int))), "title": title,
                                "context": context, "question": need(qa, "question", where_qa, str),
                                "answers": answers})
    if not records:
        raise TaskDataError(f"{name}: {path} has no questions.")
    return records


def _read_conll(name: str, path: Path) -> list[dict]:
    try:
        return read_conll(path)
    except ConllFormatError as error:
        raise TaskDataError(f"{name}: {error}") from None


def _read_tagged(name: str, files: dict[str, Path]) -> dict:
    """Column files of any entity types: the labels are the training file's, and every split is a
    Dataset whose ner_tags feature names them (so that they reach fine-tuning with the data)."""
    import datasets

    try:
        labels = file_labels(files["train"])
        records = {split: read_conll(path, labels, labels_from=str(files["train"])) for split, path in files.items()}
    except ConllFormatError as error:
        raise TaskDataError(f"{name}: {error}") from None
    features = datasets.Features({"id": datasets.Value("string"), "tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(labels))),
                                  "document": datasets.Value("int64")})
    return {split: datasets.Dataset.from_list(rows, features=features) for split, rows in records.items()}


def _saved_splits(name: str, folder: Path, splits) -> dict[str, list[dict]]:
    import datasets

    loaded = datasets.load_from_disk(str(folder))
    missing = [split for split in splits if split not in loaded]
    if missing:
        raise TaskDataError(f"{name}: the saved dataset {folder} has no split(s) {', '.join(missing)} "
                            f"(it has: {', '.join(loaded)}).")
    if TASKS[name].kind == "tagging" and not TASKS[name].labels:  # the labels are in the features
        return {split: loaded[split] for split in loaded}
    return {split: loaded[split].to_list() for split in loaded}
