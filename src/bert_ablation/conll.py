"""CoNLL-2003 column files, read into and written from the hub's record schema.

A file has one token per line, its columns separated by whitespace: the token
first and the NER tag last (the original files have POS and chunk tags in
between).  Blank lines end sentences; ``-DOCSTART-`` lines start documents and
are not sentences.  Records are ``{"id", "tokens", "ner_tags", "document"}``
with tags as indices into ``CONLL_LABELS`` (BIO), like ``World.task("conll2003")``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .storage import atomic_file
from .world import CONLL_LABELS

DOCSTART = "-DOCSTART-"
_INDEX = {label: i for i, label in enumerate(CONLL_LABELS)}


class ConllFormatError(ValueError):
    """A file that is not in CoNLL column format, naming the file and line."""


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


def read_conll(path: str | os.PathLike) -> list[dict]:
    """Sentences of a CoNLL file (IOB1 or BIO tags) as records with BIO tag indices."""
    path = Path(path)
    records: list[dict] = []
    tokens: list[str] = []
    tags: list[str] = []
    document, document_has_sentences = 0, False

    def end_sentence():
        nonlocal document_has_sentences
        if tokens:
            records.append({"id": str(len(records)), "tokens": list(tokens),
                            "ner_tags": [_INDEX[t] for t in to_bio(tags)], "document": document})
            document_has_sentences = True
            tokens.clear()
            tags.clear()

    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{path}, line {number}"
            try:
                columns = raw.decode("utf-8").split()
            except UnicodeDecodeError as error:
                raise ConllFormatError(f"{where}: not UTF-8 text ({error.reason}); convert the "
                                       f"file, e.g. iconv -f latin1 -t utf-8") from None
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
                if tag not in _INDEX:
                    raise ConllFormatError(
                        f"{where}: unknown NER tag {tag!r} in the last column; allowed tags are "
                        f"{', '.join(CONLL_LABELS)} (IOB1 or BIO).")
                tokens.append(columns[0])
                tags.append(tag)
    end_sentence()
    if not records:
        raise ConllFormatError(f"{path} has no sentences; expected one 'token ... TAG' line per "
                               f"token, with blank lines between sentences.")
    return records


def write_conll(records, path: str | os.PathLike) -> None:
    """Write records as 'token TAG' lines (BIO): a blank line after each sentence,
    and '-DOCSTART- O' plus a blank line where a new document starts."""
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
            if not 0 <= tag < len(CONLL_LABELS):
                raise ValueError(f"record {i}: tag {tag!r} is not an index into CONLL_LABELS.")
            lines.append(f"{token} {CONLL_LABELS[tag]}")
        lines.append("")
    # Bytes, so that the file is UTF-8 whatever the locale's default encoding.
    with atomic_file(path, "wb") as handle:
        handle.write("".join(line + "\n" for line in lines).encode("utf-8"))
