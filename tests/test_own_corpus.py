"""benchmarks/real_corpora.py and own_corpus_sweep.py: the SWORD decoding, the text cleaning, the
polarity TSVs and the unigram baseline, on small data built here (no package is fetched)."""
import importlib.util
import io
import math
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rc = _load("real_corpora")
sweep = _load("own_corpus_sweep")


def _module(folder: Path, blocks: list[list[str]], wide: bool) -> None:
    """A SWORD zText ('b' files, uint16 sizes) or zCom4 ('c' files, uint32 sizes) OT module."""
    pre, fmt = ("c", "<III") if wide else ("b", "<IIH")
    zs, zz, zv = b"", b"", b""
    for b, entries in enumerate(blocks):
        raw = "".join(entries).encode()
        packed = zlib.compress(raw)
        zs += struct.pack("<III", len(zz), len(packed), len(raw))
        zz += packed
        offset = 0
        for entry in entries:
            zv += struct.pack(fmt, b, offset, len(entry.encode()))
            offset += len(entry.encode())
        zv += struct.pack(fmt, 0, 0, 0)  # an empty entry (a heading slot): skipped
    folder.mkdir(parents=True)
    for ext, data in (("zs", zs), ("zz", zz), ("zv", zv)):
        (folder / f"ot.{pre}{ext}").write_bytes(data)


def test_sword_entries_both_index_widths(tmp_path):
    blocks = [["Alpha one. ", "Beta two! "], ["Gamma three? "]]
    for wide in (False, True):
        folder = tmp_path / str(wide)
        _module(folder, blocks, wide)
        assert list(rc.sword_entries(folder)) == [(0, "Alpha one. "), (0, "Beta two! "), (1, "Gamma three? ")]


def test_prose_drops_notes_titles_and_inline_tags():
    osis = ('<title type="x-s2">Chapter 3</title><div sID="g1"/>And <w lemma="strong:H1">God</w> '
            '<w lemma="strong:H2">said</w>, Let there be <transChange type="added">light</transChange>.'
            '<note placement="foot"><reference>1.3</reference>Heb. a note</note> He saw it (<reference>Ps 1</reference>) '
            'and &quot;rested&quot;.')
    text = rc.prose(osis)
    assert text == 'And God said, Let there be light. He saw it and "rested".'
    assert rc.sentences(text) == ["And God said, Let there be light.", 'He saw it and "rested".']


def test_documents_split_kjv_chapters(tmp_path):
    folder = tmp_path / "kjv"
    _module(folder, [['<chapter sID="Gen.1"/>In the beginning. God made it. ', 'It was good. ',
                      '<chapter eID="Gen.1"/><chapter sID="Gen.2"/>Thus the heavens. ', 'And the earth were finished. ']],
            wide=False)
    assert rc.documents("kjv", folder) == [["In the beginning.", "God made it.", "It was good."],
                                           ["Thus the heavens.", "And the earth were finished."]]


def test_polarity_tsv(tmp_path):
    snippets = "1\t2.5\tA ''gorgeous'' film.\n2\t-1.2\tToo tepid\tbiopic.\n3\t0\tNeutral one.\n"
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as t:
        data = snippets.encode()
        info = tarfile.TarInfo("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    sdist = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        info.size = len(inner.getvalue())
        t.addfile(info, io.BytesIO(inner.getvalue()))
    rows = rc.polarity_rows(sdist)
    assert rows == [('A "gorgeous" film.', 1), ("Too tepid biopic.", 0)]  # the neutral snippet is dropped
    summary = rc.write_sst2(rows, tmp_path, n_train=5, n_dev=1, seed=0)
    assert (summary["train"], summary["dev"]) == (1, 1)
    lines = (tmp_path / "tasks" / "SST-2" / "train.tsv").read_text().splitlines()
    assert lines[0] == "sentence\tlabel" and len(lines[1].split("\t")) == 2


def test_unigram_scores():
    counts = np.array([5, 2, 0, 0])  # +1 each: probabilities 6/11, 3/11, 1/11, 1/11
    out = sweep.unigram_scores(counts, np.array([0, 1, 0, 3]))
    expected = math.exp(-(2 * math.log(6 / 11) + math.log(3 / 11) + math.log(1 / 11)) / 4)
    assert math.isclose(out["unigram_perplexity"], expected)
    assert out["unigram_accuracy"] == 0.5 and out["scored"] == 4


def test_own_corpus_preset_validates_and_changes_only_data():
    import yaml

    from bert_ablation import config as cfg

    root = BENCH.parent
    base = yaml.safe_load((root / "config.yaml").read_text())
    preset = yaml.safe_load((root / "presets" / "own_corpus_example.yaml").read_text())
    merged = cfg.validate(cfg.deep_merge(base, preset))
    assert merged["corpus"]["source"] == "text" and merged["tokenizer"]["vocab_size"] == 8000
    assert merged["tasks"]["sst2"]["source"] == "local"
    # the recipe is the default one: the preset sets no model or pretraining key
    assert not {"model", "pretrain", "ablations"} & set(preset)
    assert set(merged["tables"]["table5_own"]["rows"]) == set(base["tables"]["table5"]["rows"])
