"""Pretraining corpora: a registry of sources, each yielding documents (lists of sentences).

``synthetic``: the built-in generated world (default; deterministic, offline).
``text``: local UTF-8 files in google-research/bert's format, one sentence per line and a
blank line between documents. ``hf``: hub datasets with one document per row.
Whatever the source, the corpus is stored as a ``datasets`` folder with one row per document:
``sentences: list[str]`` and ``split: train | heldout``.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Callable, Iterable

from .storage import atomic_dir

log = logging.getLogger(__name__)

Document = list[str]


class CorpusError(ValueError):
    """Unusable corpus input, naming the file (and line) to fix."""


def synthetic_documents(config: dict) -> list[Document]:
    from .world import World

    return World(seed=config["world"]["seed"], scale=config["world"]["scale"]).documents()


def _text_files(paths: list[str]) -> list[Path]:
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(path.rglob("*.txt")))
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError(f"corpus.text.paths: '{raw}' does not exist; give files or folders of *.txt files.")
    if not files:
        raise CorpusError(f"corpus.text.paths: no *.txt files found in {paths}.")
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


def text_documents(config: dict) -> list[Document]:
    return [doc for file in _text_files(config["corpus"]["text"]["paths"]) for doc in read_text_file(file)]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def hf_documents(config: dict) -> list[Document]:
    """Hub datasets, one document per row; paragraphs are split into sentences."""
    import datasets

    hf = config["corpus"]["hf"]
    documents = []
    for spec in hf["datasets"]:
        args = {k: spec[k] for k in ("path", "name", "split") if k in spec}
        dataset = datasets.load_dataset(**args)
        field = spec.get("text_field", "text")
        if field not in dataset.column_names:
            raise CorpusError(f"corpus.hf.datasets: {spec['path']} has no column '{field}' "
                              f"(columns: {', '.join(dataset.column_names)}); set text_field.")
        rows = dataset if hf["max_documents"] is None else dataset.select(range(min(hf["max_documents"], len(dataset))))
        for row in rows:
            sentences = [s for para in row[field].split("\n") for s in split_sentences(para)]
            if sentences:
                documents.append(sentences)
    return documents


CORPORA: dict[str, Callable[[dict], Iterable[Document]]] = {
    "synthetic": synthetic_documents,
    "text": text_documents,
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
    documents = [[s for s in doc if s.strip()] for doc in CORPORA[source](config)]
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
    }
    log.info("corpus: %s", summary)
    return summary


def load_corpus(corpus_dir: str, split: str) -> list[Document]:
    import datasets

    dataset = datasets.load_from_disk(corpus_dir)
    return [row["sentences"] for row in dataset if row["split"] == split]
