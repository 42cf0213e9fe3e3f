import random

import numpy as np
import pytest

from bert_ablation.data.corpus import CorpusError
from bert_ablation.data.instance_store import encode
from bert_ablation.data.instances import NotNextDraw, create_instances
from bert_ablation.schema import schema


def numbered_docs(n_docs=40, sentences=6, length=7):
    """Token ids encode (document, sentence, position), so provenance can be read back."""
    return [[[10_000 * d + 100 * s + p for p in range(length)] for s in range(sentences)] for d in range(n_docs)]


def doc_of(token):
    return token // 10_000


def test_nsp_pairs_label_half_random_and_negatives_come_from_another_document():
    instances = create_instances(numbered_docs(), "nsp_pairs", 64, 0.0, 3, seed=1)
    labels = np.array([i.nsp_label for i in instances])
    assert 0.4 < labels.mean() < 0.65  # about half NotNext (google's recipe forces some)
    for inst in instances:
        docs_a = {doc_of(t) for t in inst.tokens_a}
        docs_b = {doc_of(t) for t in inst.tokens_b}
        assert docs_a == {inst.doc_a}
        if inst.nsp_label == 1:
            assert docs_b == {inst.doc_b} and inst.doc_b != inst.doc_a
        else:
            assert docs_b == {inst.doc_a}
            # IsNext: B continues A (sentence numbers go on, never back)
            assert max(t // 100 % 100 for t in inst.tokens_a) <= min(t // 100 % 100 for t in inst.tokens_b)
        assert len(inst.tokens_a) + len(inst.tokens_b) <= 64 - 3


def test_contiguous_segments_stay_inside_one_document_and_in_order():
    instances = create_instances(numbered_docs(), "contiguous", 32, 0.0, 1, seed=2)
    for inst in instances:
        assert {doc_of(t) for t in inst.tokens_a} == {inst.doc_a}
        assert inst.tokens_a == sorted(inst.tokens_a)
        assert inst.nsp_label == -1 and not inst.tokens_b and len(inst.tokens_a) <= 30


def test_short_seq_prob_creates_shorter_targets():
    long_docs = numbered_docs(20, sentences=30, length=5)
    full = create_instances(long_docs, "contiguous", 64, 0.0, 1, seed=0)
    short = create_instances(long_docs, "contiguous", 64, 1.0, 1, seed=0)
    assert np.mean([len(i.tokens_a) for i in short]) < np.mean([len(i.tokens_a) for i in full]) - 10


def test_encode_layout_matches_bert_inputs():
    instances = create_instances(numbered_docs(4), "nsp_pairs", 64, 0.0, 1, seed=0)
    arrays = encode(instances, 64, cls_id=2, sep_id=3, pad_id=0)
    row, inst = arrays["input_ids"][0], instances[0]
    n_a, n_b = len(inst.tokens_a), len(inst.tokens_b)
    assert row[0] == 2 and row[n_a + 1] == 3 and row[n_a + n_b + 2] == 3
    assert arrays["lengths"][0] == n_a + n_b + 3 and (row[n_a + n_b + 3:] == 0).all()
    types = arrays["token_type_ids"][0]
    assert (types[: n_a + 2] == 0).all() and (types[n_a + 2: n_a + n_b + 3] == 1).all()


def test_instances_are_deterministic_and_nsp_needs_two_documents():
    a = create_instances(numbered_docs(), "nsp_pairs", 64, 0.1, 2, seed=5)
    b = create_instances(numbered_docs(), "nsp_pairs", 64, 0.1, 2, seed=5)
    assert [(i.tokens_a, i.tokens_b) for i in a] == [(i.tokens_a, i.tokens_b) for i in b]
    with pytest.raises(CorpusError, match="at least 2 documents"):
        create_instances(numbered_docs(1), "nsp_pairs", 64, 0.0, 1, seed=0)


def test_not_next_draw_by_document_or_by_sentence():
    """One long document and many short ones: google-research/bert's draw picks a document
    uniformly; the paper's "random sentence from the corpus" picks one in proportion to its
    sentences. Neither ever draws the current document, and every start is a sentence of it."""
    docs = [[[1]] * 90] + [[[1]] * 10 for _ in range(9)]  # 90 sentences, then 9 x 10: 180 in all
    counts = {kind: np.zeros(len(docs)) for kind in NotNextDraw.KINDS}
    for kind in NotNextDraw.KINDS:
        draw, rng = NotNextDraw(docs, kind), random.Random(0)
        for _ in range(4000):
            current = rng.randrange(len(docs))
            other, start = draw(current, rng)
            assert other != current and 0 <= start < len(docs[other])
            counts[kind][other] += 1
    by_document, by_sentence = counts["document"] / 4000, counts["sentence"] / 4000
    assert by_document[0] == pytest.approx(0.1, abs=0.02)  # 1 of 10 documents
    # from a short document (9 times in 10), the long one holds 90 of the other 170 sentences;
    # from the long one, never itself: 0.9 * 90/170 = 0.476
    assert by_sentence[0] == pytest.approx(0.9 * 90 / 170, abs=0.03)


def test_sentence_negatives_follow_length_and_keep_the_pairs_valid():
    docs = numbered_docs(10, sentences=4) + [numbered_docs(11, sentences=60)[10]]
    for kind in ("document", "sentence"):
        instances = create_instances(docs, "nsp_pairs", 64, 0.0, 2, seed=3, nsp_negatives=kind)
        negatives = [i for i in instances if i.nsp_label == 1]
        for inst in negatives:
            assert {doc_of(t) for t in inst.tokens_b} == {inst.doc_b} != {inst.doc_a}
        from_long = np.mean([i.doc_b == 10 for i in negatives if i.doc_a != 10])
        # the long document has 60 of 100 sentences: 6/10 of the other documents' sentences by
        # sentence, 1/10 of the documents by document
        assert from_long == pytest.approx(0.1 if kind == "document" else 60 / 96, abs=0.08), kind
    with pytest.raises(ValueError, match="nsp_negatives"):
        create_instances(docs, "nsp_pairs", 64, 0.0, 1, seed=0, nsp_negatives="paragraph")
    assert tuple(schema()["properties"]["instances"]["properties"]["nsp_negatives"]["enum"]) == NotNextDraw.KINDS


def test_rows_read_in_few_syscalls_equal_the_rows_in_memory(tmp_path, monkeypatch):
    """InstanceStore's reader: neighbouring rows come in one pread, any order and repeats kept."""
    import os

    from bert_ablation.data import instance_store

    array = np.arange(200 * 6, dtype=np.int32).reshape(200, 6)
    np.save(tmp_path / "a.npy", array)
    np.save(tmp_path / "b.npy", np.arange(200, dtype=np.int64))
    calls = []
    real = os.pread
    monkeypatch.setattr(instance_store.os, "pread", lambda *a: calls.append(a) or real(*a))
    reader = instance_store._NpyRows(str(tmp_path / "a.npy"))
    rows = np.array([17, 3, 4, 5, 3, 199, 0])
    assert np.array_equal(reader.read(rows), array[rows])
    assert np.array_equal(reader.read(rows, columns=2), array[rows, :2])
    assert len(calls) == 2  # one span each time: 0..199 is 4.8 kB, inside the gap allowance
    calls.clear()
    monkeypatch.setattr(instance_store._NpyRows, "GAP_BYTES", 24)  # rows at most one apart share a read
    assert np.array_equal(reader.read(rows), array[rows])
    assert len(calls) == 4  # {0}, {3, 4, 5}, {17}, {199}
    flat = instance_store._NpyRows(str(tmp_path / "b.npy"))
    assert np.array_equal(flat.read(rows), rows) and flat.read(np.array([], dtype=np.int64)).shape == (0,)
