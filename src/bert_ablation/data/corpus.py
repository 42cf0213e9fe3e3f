"""Pretraining corpora: a registry of sources, each returning documents (lists of sentences)
and the paragraphs its cleaning dropped, counted by reason.

``synthetic``: the built-in generated world (default; deterministic, offline).
``text``: local UTF-8 files in google-research/bert's format, one sentence per line and a
blank line between documents. ``jsonl``: local JSON-lines files, one document per line.
``hf``: hub datasets with one document per row. For ``jsonl`` and ``hf`` each line of a
document is a paragraph, split into sentences with pysbd; ``clean_paragraphs`` keeps only the
prose, as the paper did for Wikipedia.
Whatever the source, the corpus is stored as ``corpus.shards`` ``datasets`` folders, one row per
document: ``sentences: list[str]`` and ``split: train | heldout``. A shard is built by a job of its
own and streamed, never held whole: memory is bounded by the largest document, not the corpus.
Shards are local files grouped by size, contiguous row ranges of a hub dataset, or every N-th
document of the generated world; held-out documents are drawn within each shard.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

from ..hub import dataset_args, load_hub_dataset
from ..storage import atomic_dir
from .prose import Document, paragraph_documents
from .world import World

log = logging.getLogger(__name__)


class CorpusError(ValueError):
    """Unusable corpus input, naming the file (and line) to fix."""


class Shard(NamedTuple):
    index: int
    count: int


WHOLE = Shard(0, 1)


def synthetic_documents(config: dict, shard: Shard = WHOLE, dropped: Counter | None = None) -> Iterator[Document]:

    world = config["world"]
    documents = World(seed=world["seed"], scale=world["scale"], remove=world.get("remove", ())).documents()
    yield from documents[shard.index::shard.count]


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


def read_text_file(path: Path) -> Iterator[Document]:
    """One sentence per line, blank lines between documents; read line by line."""
    current = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                raise CorpusError(f"{path}:{number}: not valid UTF-8 ({err.reason}); "
                                  "re-encode the file as UTF-8.") from None
            if line:
                current.append(line)
            elif current:
                yield current
                current = []
    if current:
        yield current


_LOCAL_PATTERNS = {"text": "*.txt", "jsonl": "*.jsonl"}  # local sources: the files a folder contributes


def input_files(config: dict, shard: Shard = WHOLE) -> list[str]:
    """The local files one shard of the corpus is read from: the workflow declares them as that
    shard's inputs, so an edited or added file rebuilds it, and a missing one is reported up front."""
    source = config["corpus"]["source"]
    if source not in _LOCAL_PATTERNS:
        return []
    return [str(path) for path in _local_files(config, source, shard)]


def group_files(files: list[Path], sizes: list[int], count: int, key: str) -> list[list[Path]]:
    """``count`` groups of files with sizes as even as whole files allow: largest first, each to
    the lightest group (ties to the lower index); files keep their order within a group."""
    if count > len(files):
        raise CorpusError(f"{key}: {len(files)} file(s) for corpus.shards={count}; a shard is made of whole "
                          f"files, so split the corpus into at least {count} files or set corpus.shards "
                          f"<= {len(files)}.")
    loads, groups = [0] * count, [[] for _ in range(count)]
    for i in sorted(range(len(files)), key=lambda i: (-sizes[i], i)):
        lightest = min(range(count), key=lambda g: (loads[g], g))
        loads[lightest] += sizes[i]
        groups[lightest].append(i)
    return [[files[i] for i in sorted(group)] for group in groups]


def _local_files(config: dict, source: str, shard: Shard = WHOLE) -> list[Path]:
    key = f"corpus.{source}.paths"
    files = _input_files(config["corpus"][source]["paths"], key, _LOCAL_PATTERNS[source])
    if shard.count == 1:
        return files
    return group_files(files, [f.stat().st_size for f in files], shard.count, key)[shard.index]


def text_documents(config: dict, shard: Shard = WHOLE, dropped: Counter | None = None) -> Iterator[Document]:
    for file in _local_files(config, "text", shard):
        yield from read_text_file(file)


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


def jsonl_documents(config: dict, shard: Shard = WHOLE, dropped: Counter | None = None) -> Iterator[Document]:
    jsonl = config["corpus"]["jsonl"]
    files = _local_files(config, "jsonl", shard)
    texts = (text for file in files for text in read_jsonl_file(file, jsonl["text_field"]))
    yield from paragraph_documents(texts, jsonl["clean"], "corpus.jsonl", dropped)


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


def shard_range(n_items: int, shard: Shard) -> range:
    """The contiguous share of ``n_items`` that ``shard`` takes (sizes differ by at most one)."""
    return range(shard.index * n_items // shard.count, (shard.index + 1) * n_items // shard.count)


def _parquet_rows(file: str) -> int:
    """Rows of a parquet file, from its footer: a few KB read, wherever the file is (hf://, local)."""
    import fsspec
    import pyarrow.parquet as pq

    with fsspec.open(file, "rb") as handle:
        return pq.ParquetFile(handle).metadata.num_rows


class HubShardRead(NamedTuple):
    """What one shard reads of a hub dataset split: ``files``; parquet: ``skip`` rows of the first
    file, then ``take`` rows; other formats: every ``every``-th document from ``first``, at most
    ``documents`` of them. -1: no limit."""
    files: list[str]
    skip: int = 0
    take: int = -1
    every: int = 1
    first: int = 0
    documents: int = -1


def hub_shard_rows(files: list[str], n_rows: int | None, per: int, shard: Shard, where: str) -> HubShardRead:
    """The part of a hub dataset split (its data ``files``, in order) that ``shard`` reads.

    Parquet files: a contiguous range of whole documents (runs of ``per`` rows) of the split's
    rows in file order, located by the files' row counts (their footers), so only the files
    holding the range are read. Other formats (a row count would mean reading them, e.g. the
    two text files of BookCorpus): contiguous groups of whole files, or with more shards than
    files, the shards that share a file take every m-th document of it (each streams that one
    file); ``n_rows`` then caps each shard, not the dataset."""
    if not all(f.endswith(".parquet") for f in files):
        cap = -1 if n_rows is None else math.ceil(n_rows / per)
        if shard.count <= len(files):
            share = shard_range(len(files), shard)
            return HubShardRead(files[share.start:share.stop], documents=cap)
        file = shard.index * len(files) // shard.count
        sharers = [k for k in range(shard.count) if k * len(files) // shard.count == file]
        log.info("%s: %d data files for %d shards: shard %d reads every %d-th document of %s", where, len(files),
                 shard.count, shard.index, len(sharers), files[file])
        return HubShardRead([files[file]], every=len(sharers), first=sharers.index(shard.index), documents=cap)
    counts = [_parquet_rows(f) for f in files]
    total = sum(counts) if n_rows is None else min(n_rows, sum(counts))
    documents = shard_range(math.ceil(total / per), shard)  # whole runs of rows stay in one shard
    first, last = documents.start * per, min(documents.stop * per, total)
    chosen, skip, offset = [], 0, 0
    for file, count in zip(files, counts):
        if offset < last and offset + count > first:
            skip = skip if chosen else first - offset
            chosen.append(file)
        offset += count
    return HubShardRead(chosen, skip, last - first)


def hf_documents(config: dict, shard: Shard = WHOLE, dropped: Counter | None = None) -> Iterator[Document]:
    """Hub datasets (or local folders laid out like one), one document per row (or per run of
    ``rows_per_document`` rows). A shard streams only its share: a contiguous range of documents,
    read from the data files that hold it (``hub_shard_rows``), never the whole dataset; nothing is
    prepared in the HF cache. With ``hub_mirror`` set, hub ids are read from the mirror."""

    hf = config["corpus"]["hf"]
    for i, spec in enumerate(hf["datasets"]):
        where = f"corpus.hf.datasets[{i}]"
        args = dataset_args({k: spec[k] for k in ("path", "name", "split", "revision", "data_files") if k in spec},
                            config.get("hub_mirror"), where)
        builder = load_hub_dataset(args, where, builder=True)  # the repo's data files, not its data
        split_files = (builder.config.data_files or {}).get(args["split"])
        if not split_files:
            raise CorpusError(f"{where}: {spec['path']} has no split '{args['split']}' (splits: "
                              f"{', '.join(builder.config.data_files or {}) or 'none'}); set split.")
        per, field = spec["rows_per_document"], spec["text_field"]
        cap = None if hf["max_documents"] is None else hf["max_documents"] * per
        read = hub_shard_rows(list(split_files), cap, per, shard, where)
        if not read.files or read.take == 0:
            continue
        stream = load_hub_dataset({**args, "data_files": {args["split"]: read.files}}, where, streaming=True)
        if stream.column_names is not None and field not in stream.column_names:
            raise CorpusError(f"{where}: {spec['path']} has no column '{field}' "
                              f"(columns: {', '.join(stream.column_names)}); set text_field.")
        rows = stream.select_columns([field]).skip(read.skip)
        texts = (row[field] or "" for row in rows)  # missing text: empty
        if read.take >= 0:
            texts = itertools.islice(texts, read.take)
        runs = itertools.islice(_join_rows(texts, per), read.first, None, read.every)
        if read.documents >= 0:
            runs = itertools.islice(runs, read.documents)
        yield from paragraph_documents(runs, spec["clean"], f"corpus.hf: {spec['path']}", dropped)


# source -> documents(config, shard, dropped): a generator, so no source holds its corpus in memory
CORPORA: dict[str, Callable[..., Iterator[Document]]] = {
    "synthetic": synthetic_documents,
    "text": text_documents,
    "jsonl": jsonl_documents,
    "hf": hf_documents,
}


def split_heldout(n_documents: int, fraction: float, seed: int, where: str = "the corpus") -> list[str]:
    """Assign whole documents to train or heldout (at least one of each)."""
    if n_documents < 2:
        raise CorpusError(f"{where} has {n_documents} document(s); at least 2 are needed "
                          "(one for training, one held out for perplexity).")
    order = list(range(n_documents))
    random.Random(seed).shuffle(order)
    n_heldout = max(1, round(fraction * n_documents))
    heldout = set(order[:n_heldout])
    return ["heldout" if i in heldout else "train" for i in range(n_documents)]


def build_corpus(config: dict, out_dir: str, shard: int = 0) -> dict:
    """Materialise shard ``shard`` of the configured corpus as a datasets folder, streaming:
    documents go to an Arrow file as they are read; returns a summary for the log."""
    import datasets
    from datasets.arrow_writer import ArrowWriter

    source, count = config["corpus"]["source"], config["corpus"]["shards"]
    where = "the corpus" if count == 1 else f"corpus shard {shard} of {count}"
    dropped = Counter()
    documents = CORPORA[source](config, Shard(shard, count), dropped)
    features = datasets.Features({"sentences": datasets.Sequence(datasets.Value("string"))})
    n, sentences, words = 0, 0, 0
    with atomic_dir(out_dir) as tmp, tempfile.TemporaryDirectory(dir=Path(out_dir).parent) as staging_dir:
        staging = os.path.join(staging_dir, "documents.arrow")
        with ArrowWriter(features=features, path=staging) as writer:
            for doc in documents:
                doc = [s for s in doc if s.strip()]
                if doc:
                    writer.write({"sentences": doc})
                    n, sentences, words = n + 1, sentences + len(doc), words + sum(len(s.split()) for s in doc)
            writer.finalize()
        if not n:
            shard_note = "" if count == 1 else f" for {where}"
            raise CorpusError(f"corpus source '{source}' produced no documents{shard_note}; check corpus.{source}.")
        # Each shard draws its own held-out documents (shard 0 from corpus.seed, as an unsharded corpus).
        splits = split_heldout(n, config["corpus"]["heldout_fraction"], config["corpus"]["seed"] + shard, where)
        datasets.Dataset.from_file(staging).add_column("split", splits).save_to_disk(str(tmp))
    summary = {
        "source": source, "shard": shard, "shards": count,
        "documents": n,
        "heldout_documents": splits.count("heldout"),
        "sentences": sentences,
        "words": words,
        "dropped_paragraphs": dict(sorted(dropped.items())),
    }
    log.info("corpus: %s", summary)
    return summary


def iter_documents(corpus_dir: str, split: str, batch_size: int = 1000) -> Iterator[Document]:
    """The documents of one split of a corpus shard, read in batches from its memory-mapped files."""
    import datasets

    dataset = datasets.load_from_disk(corpus_dir)
    for batch in dataset.iter(batch_size=batch_size):
        for sentences, where in zip(batch["sentences"], batch["split"]):
            if where == split:
                yield sentences


def load_corpus(corpus_dir: str, split: str) -> list[Document]:
    return list(iter_documents(corpus_dir, split))
