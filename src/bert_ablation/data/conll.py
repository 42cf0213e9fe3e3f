"""CoNLL-2003 column files, read into and written from the hub's record schema.

A file has one token per line, its columns separated by whitespace: the token
first and the NER tag last (the original files have POS and chunk tags in
between).  Blank lines end sentences; ``-DOCSTART-`` lines start documents and
are not sentences.  Records are ``{"id", "tokens", "ner_tags", "document"}``
with tags as indices into ``CONLL_LABELS`` (BIO), like ``World.task("conll2003")``.

Other tagged corpora in the same format (WNUT, OntoNotes) have other entity types:
``file_labels`` reads a file's own BIO label set, and ``read_conll(path, labels)``
reads a file against it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..facts.tasks import CONLL_LABELS
from ..storage import atomic_file

DOCSTART = "-DOCSTART-"
_INDEX = {label: i for i, label in enumerate(CONLL_LABELS)}


class ConllFormatError(ValueError):
    """A file that is not in CoNLL column format, naming the file and line."""


def _lines(path: Path):
    """(where, columns) of each line of a CoNLL file."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{path}, line {number}"
            try:
                yield where, raw.decode("utf-8").split()
            except UnicodeDecodeError as error:
                raise ConllFormatError(f"{where}: not UTF-8 text ({error.reason}); convert the "
                                       f"file, e.g. iconv -f latin1 -t utf-8") from None


def file_labels(path: str | os.PathLike) -> tuple[str, ...]:
    """The BIO label set of a file's entity types: ``O``, then ``B-<type>`` and ``I-<type>`` of
    each type its tags name, types sorted (both prefixes, so IOB1 files and one-token entities
    need nothing more). Each tag must be ``O``, ``B-<type>`` or ``I-<type>``."""
    path, types = Path(path), set()
    for where, columns in _lines(path):
        if len(columns) < 2 or columns[0] == DOCSTART:
            continue  # blank, -DOCSTART- or (reported by read_conll) one column
        tag = columns[-1]
        if tag != "O" and not (tag[:2] in ("B-", "I-") and tag[2:]):
            raise ConllFormatError(f"{where}: NER tag {tag!r} in the last column is not O, B-<type> or "
                                   f"I-<type> (IOB1 or BIO).")
        if tag != "O":
            types.add(tag[2:])
    return ("O", *(f"{prefix}-{kind}" for kind in sorted(types) for prefix in ("B", "I")))


def to_bio(tags: list[str]) -> list[str]:
    """Convert one sentence's IOB1 tags to BIO (IOB2); BIO tags pass unchanged.

    In IOB1 (the original CoNLL-2003 files) I-X starts an entity unless it
    continues one of the same type, and B-X only separates adjacent entities.
    """
    bio, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        bio.append(tag)
        previous = tag
    return bio


def read_conll(path: str | os.PathLike, labels: tuple[str, ...] = CONLL_LABELS,
               labels_from: str | None = None) -> list[dict]:
    """Sentences of a CoNLL file (IOB1 or BIO tags) as records with BIO tag indices into
    ``labels`` (default CoNLL-2003's). ``labels_from``: the file the labels were read from, for
    the message about a tag not among them."""
    path = Path(path)
    index = _INDEX if labels is CONLL_LABELS else {label: i for i, label in enumerate(labels)}
    records: list[dict] = []
    tokens: list[str] = []
    tags: list[str] = []
    document, document_has_sentences = 0, False

    def end_sentence():
        nonlocal document_has_sentences
        if tokens:
            records.append({"id": str(len(records)), "tokens": list(tokens),
                            "ner_tags": [index[t] for t in to_bio(tags)], "document": document})
            document_has_sentences = True
            tokens.clear()
            tags.clear()

    for where, columns in _lines(path):
        if not columns:
            end_sentence()
        elif columns[0] == DOCSTART:
            end_sentence()
            if document_has_sentences:
                document, document_has_sentences = document + 1, False
        elif len(columns) == 1:
            raise ConllFormatError(
                f"{where}: a single column {columns[0]!r}; each line needs the token first and "
                f"the NER tag last, separated by spaces or tabs (e.g. 'Paris B-LOC').")
        else:
            tag = columns[-1]
            if tag not in index and labels_from:
                raise ConllFormatError(
                    f"{where}: unknown NER tag {tag!r} in the last column; the training split "
                    f"({labels_from}) has only {', '.join(labels)}. Every entity type must occur in "
                    f"the training file.")
            if tag not in index:
                raise ConllFormatError(
                    f"{where}: unknown NER tag {tag!r} in the last column; allowed tags are "
                    f"{', '.join(labels)} (IOB1 or BIO).")
            tokens.append(columns[0])
            tags.append(tag)
    end_sentence()
    if not records:
        raise ConllFormatError(f"{path} has no sentences; expected one 'token ... TAG' line per "
                               f"token, with blank lines between sentences.")
    return records


def write_conll(records, path: str | os.PathLike, labels: tuple[str, ...] = CONLL_LABELS) -> None:
    """Write records (tags indexing ``labels``) as 'token TAG' lines (BIO): a blank line after
    each sentence, and '-DOCSTART- O' plus a blank line where a new document starts."""
    lines: list[str] = []
    document = None
    for i, record in enumerate(records):
        tokens, tags = record["tokens"], record["ner_tags"]
        if not tokens or len(tokens) != len(tags):
            raise ValueError(f"record {i}: needs as many tags as tokens, and at least one token "
                             f"(got {len(tokens)} tokens, {len(tags)} tags).")
        if i == 0 or record.get("document", 0) != document:
            document = record.get("document", 0)
            lines += [f"{DOCSTART} O", ""]
        for token, tag in zip(tokens, tags):
            if not token or token != "".join(token.split()):
                raise ValueError(f"record {i}: token {token!r} is empty or contains whitespace, "
                                 f"which the column format cannot hold.")
            if not 0 <= tag < len(labels):
                raise ValueError(f"record {i}: tag {tag!r} is not an index into the labels ({len(labels)}).")
            lines.append(f"{token} {labels[tag]}")
        lines.append("")
    # Bytes, so that the file is UTF-8 whatever the locale's default encoding.
    with atomic_file(path, "wb") as handle:
        handle.write("".join(line + "\n" for line in lines).encode("utf-8"))
