"""Pretraining corpora: a registry of sources, each returning documents (lists of sentences)
and the paragraphs its cleaning dropped, counted by reason.

``synthetic``: the built-in generated world (default; deterministic, offline).
``text``: local UTF-8 files in google-research/bert's format, one sentence per line and a
blank line between documents. ``jsonl``: local JSON-lines files, one document per line.
``hf``: hub datasets with one document per row. For ``jsonl`` and ``hf`` each line of a
document is a paragraph, split into sentences with pysbd; ``clean_paragraphs`` keeps only the
prose, as the paper did for Wikipedia.
Whatever the source, the corpus is stored as a ``datasets`` folder with one row per document:
``sentences: list[str]`` and ``split: train | heldout``.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .storage import atomic_dir

log = logging.getLogger(__name__)

Document = list[str]


class CorpusError(ValueError):
    """Unusable corpus input, naming the file (and line) to fix."""


def synthetic_documents(config: dict) -> tuple[list[Document], Counter]:
    from .world import World

    world = config["world"]
    return World(seed=world["seed"], scale=world["scale"], remove=world.get("remove", ())).documents(), Counter()


def _input_files(paths: list[str], key: str, pattern: str) -> list[Path]:
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(path.rglob(pattern)))
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError(f"{key}: '{raw}' does not exist; give files or folders of {pattern} files.")
    if not files:
        raise CorpusError(f"{key}: no {pattern} files found in {paths}; give files or folders of {pattern} files.")
    return files


def read_text_file(path: Path) -> list[Document]:
    """One sentence per line, blank lines between documents."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: not valid UTF-8 ({err.reason}); re-encode the file as UTF-8.") from None
    documents, current = [], []
    for line in text.splitlines():
        line = line.strip()
        if line:
            current.append(line)
        elif current:
            documents.append(current)
            current = []
    if current:
        documents.append(current)
    return documents


_LOCAL_PATTERNS = {"text": "*.txt", "jsonl": "*.jsonl"}  # local sources: the files a folder contributes


def input_files(config: dict) -> list[str]:
    """The local files the corpus is read from: the workflow declares them as the corpus rule's
    inputs, so an edited or added file rebuilds it, and a missing one is reported up front."""
    source = config["corpus"]["source"]
    if source not in _LOCAL_PATTERNS:
        return []
    return [str(path) for path in _local_files(config, source)]


def _local_files(config: dict, source: str) -> list[Path]:
    return _input_files(config["corpus"][source]["paths"], f"corpus.{source}.paths", _LOCAL_PATTERNS[source])


def text_documents(config: dict) -> tuple[list[Document], Counter]:
    files = _local_files(config, "text")
    return [doc for file in files for doc in read_text_file(file)], Counter()


@functools.cache
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)  # clean=False: keep the text as written


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of one paragraph; pysbd knows abbreviations (Dr., U.S., p.m.) and decimals."""
    return [s.strip() for s in _segmenter().segment(paragraph) if s.strip()]


# The paper: "For Wikipedia we extract only the text passages and ignore lists, tables, and headers."
HEADER_MAX_WORDS = 10  # a line this short without sentence-final punctuation is a heading
_WIKI_HEADING = re.compile(r"^=+.*=+$")  # == History ==
_SENTENCE_FINAL = re.compile(r"[.!?…][\"'”’)\]]*$")
_LIST_ITEM = re.compile(r"^([*\-•#]|\d+[.)]\s)")  # bullets, wikitext "#", "1." / "1)" numbering
_TABLE_ROW = re.compile(r"^(\{\||[|!])|\|.*\||\t")  # wikitable {| |- |} ! markup, "|" cells, tab-separated cells


def _drop_reason(line: str) -> str | None:
    if not line:
        return "empty"
    if _TABLE_ROW.search(line):
        return "table"
    if _LIST_ITEM.match(line):
        return "list"
    if _WIKI_HEADING.match(line) or (len(line.split()) <= HEADER_MAX_WORDS and not _SENTENCE_FINAL.search(line)):
        return "header"
    return None


def clean_paragraphs(text: str) -> tuple[list[str], Counter]:
    """The prose paragraphs (lines) of a document, and the other lines counted by why they were
    dropped: "empty", "table" (cells, wikitable markup), "list" (bulleted or numbered items),
    "header" (wikitext headings, short lines without sentence-final punctuation)."""
    paragraphs, dropped = [], Counter()
    for line in text.splitlines():
        line = line.strip()
        reason = _drop_reason(line)
        if reason:
            dropped[reason] += 1
        else:
            paragraphs.append(line)
    return paragraphs, dropped


def paragraph_documents(texts: Iterable[str], clean: bool, name: str) -> tuple[list[Document], Counter]:
    """Documents from raw texts (one per document, one paragraph per line), split into sentences."""
    documents, dropped, read = [], Counter(), 0
    for read, text in enumerate(texts, 1):
        if clean:
            paragraphs, reasons = clean_paragraphs(text)
            dropped.update(reasons)
        else:
            paragraphs = [line.strip() for line in text.splitlines() if line.strip()]
        sentences = [s for paragraph in paragraphs for s in split_sentences(paragraph)]
        if sentences:
            documents.append(sentences)
    log.info("%s: %d documents read, %d kept; paragraphs dropped: %s", name, read, len(documents),
             ", ".join(f"{k}={v}" for k, v in sorted(dropped.items())) or "none")
    return documents, dropped


def read_jsonl_file(path: Path, field: str) -> Iterator[str]:
    """The ``field`` text of each line's JSON object (blank lines are skipped)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                raise CorpusError(f"{where}: not valid UTF-8 ({err.reason}); re-encode the file as UTF-8.") from None
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise CorpusError(f"{where}:{err.colno}: not valid JSON ({err.msg}); "
                                  "write one JSON object per line.") from None
            if not isinstance(record, dict):
                raise CorpusError(f"{where}: expected a JSON object with a '{field}' field, got {json.dumps(record)[:60]}.")
            if field not in record:
                raise CorpusError(f"{where}: no '{field}' field (keys: {', '.join(record) or 'none'}); "
                                  "set corpus.jsonl.text_field to the field that holds the text.")
            if not isinstance(record[field], str):
                raise CorpusError(f"{where}: '{field}' must be a string holding the document's text, "
                                  f"got {json.dumps(record[field])[:60]}.")
            yield record[field]


def jsonl_documents(config: dict) -> tuple[list[Document], Counter]:
    jsonl = config["corpus"]["jsonl"]
    files = _local_files(config, "jsonl")
    texts = (text for file in files for text in read_jsonl_file(file, jsonl["text_field"]))
    return paragraph_documents(texts, jsonl["clean"], "corpus.jsonl")


def _join_rows(texts: Iterable[str], per: int) -> Iterator[str]:
    """Runs of ``per`` consecutive rows as one text (one paragraph per row)."""
    run = []
    for text in texts:
        run.append(text)
        if len(run) == per:
            yield "\n".join(run)
            run = []
    if run:
        yield "\n".join(run)


def hf_documents(config: dict) -> tuple[list[Document], Counter]:
    """Hub datasets (or local folders laid out like one), one document per row."""
    import datasets

    hf = config["corpus"]["hf"]
    documents, dropped = [], Counter()
    for spec in hf["datasets"]:
        args = {k: spec[k] for k in ("path", "name", "split") if k in spec}
        dataset = datasets.load_dataset(**args)
        field = spec["text_field"]
        if field not in dataset.column_names:
            raise CorpusError(f"corpus.hf.datasets: {spec['path']} has no column '{field}' "
                              f"(columns: {', '.join(dataset.column_names)}); set text_field.")
        per = spec["rows_per_document"]
        n_rows = len(dataset) if hf["max_documents"] is None else min(hf["max_documents"] * per, len(dataset))
        texts = (text or "" for text in dataset.select(range(n_rows))[field])  # a missing text is an empty one
        docs, reasons = paragraph_documents(_join_rows(texts, per), spec["clean"], f"corpus.hf: {spec['path']}")
        documents += docs
        dropped.update(reasons)
    return documents, dropped


CORPORA: dict[str, Callable[[dict], tuple[list[Document], Counter]]] = {
    "synthetic": synthetic_documents,
    "text": text_documents,
    "jsonl": jsonl_documents,
    "hf": hf_documents,
}


def split_heldout(documents: list[Document], fraction: float, seed: int) -> list[str]:
    """Assign whole documents to train or heldout (at least one of each)."""
    if len(documents) < 2:
        raise CorpusError(f"the corpus has {len(documents)} document(s); at least 2 are needed "
                          "(one for training, one held out for perplexity).")
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    n_heldout = max(1, round(fraction * len(documents)))
    heldout = set(order[:n_heldout])
    return ["heldout" if i in heldout else "train" for i in range(len(documents))]


def build_corpus(config: dict, out_dir: str) -> dict:
    """Materialise the configured corpus as a datasets folder; returns a summary for the log."""
    import datasets

    source = config["corpus"]["source"]
    documents, dropped = CORPORA[source](config)
    documents = [[s for s in doc if s.strip()] for doc in documents]
    documents = [doc for doc in documents if doc]
    if not documents:
        raise CorpusError(f"corpus source '{source}' produced no documents; check corpus.{source}.")
    splits = split_heldout(documents, config["corpus"]["heldout_fraction"], config["corpus"]["seed"])
    dataset = datasets.Dataset.from_dict({"sentences": documents, "split": splits})
    with atomic_dir(out_dir) as tmp:
        dataset.save_to_disk(str(tmp))
    summary = {
        "source": source,
        "documents": len(documents),
        "heldout_documents": splits.count("heldout"),
        "sentences": sum(map(len, documents)),
        "words": sum(len(s.split()) for doc in documents for s in doc),
        "dropped_paragraphs": dict(sorted(dropped.items())),
    }
    log.info("corpus: %s", summary)
    return summary


def load_corpus(corpus_dir: str, split: str) -> list[Document]:
    import datasets

    dataset = datasets.load_from_disk(corpus_dir)
    return [row["sentences"] for row in dataset if row["split"] == split]
