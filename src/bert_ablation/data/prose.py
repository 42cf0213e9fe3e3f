"""Raw text to a corpus's documents: the prose paragraphs of a text (lists, tables and headers
dropped, as the paper did for Wikipedia), split into sentences with pysbd.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from typing import Iterable, Iterator

log = logging.getLogger(__name__)

Document = list[str]


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


def paragraph_documents(texts: Iterable[str], clean: bool, name: str, dropped: Counter | None = None
                        ) -> Iterator[Document]:
    """Documents from raw texts (one per document, one paragraph per line), split into sentences;
    the dropped paragraphs are counted into ``dropped``, by reason."""
    dropped = Counter() if dropped is None else dropped
    here, read, kept = Counter(), 0, 0
    for read, text in enumerate(texts, 1):
        if clean:
            paragraphs, reasons = clean_paragraphs(text)
            here.update(reasons)
        else:
            paragraphs = [line.strip() for line in text.splitlines() if line.strip()]
        sentences = [s for paragraph in paragraphs for s in split_sentences(paragraph)]
        if sentences:
            kept += 1
            yield sentences
    dropped.update(here)
    log.info("%s: %d documents read, %d kept; paragraphs dropped: %s", name, read, kept,
             ", ".join(f"{k}={v}" for k, v in sorted(here.items())) or "none")
