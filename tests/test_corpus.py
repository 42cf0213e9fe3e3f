"""Corpus sources: pysbd sentence splitting, the paper's Wikipedia cleaning, local jsonl files and a
folder laid out like a hub dataset read through the real datasets.load_dataset with no network."""
import json
import logging
from collections import Counter

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bert_ablation import config as cfg
from bert_ablation.data.corpus import CorpusError, build_corpus, hf_documents, jsonl_documents, load_corpus
from bert_ablation.data.prose import clean_paragraphs, split_sentences
from bert_ablation.hub import MirrorError

# A Wikipedia-style article: a title, prose, a heading, lists and a table.
ARTICLE = """Ada Lovelace

Augusta Ada King was an English mathematician. She worked with Charles Babbage on the Analytical Engine.

Early life
== Legacy ==
* Born 10 December 1815
- Died 27 November 1852
• Buried in Hucknall
# Note G
1. First program
2) Second item
{| class="wikitable"
|-
| 1843 || Notes published
|}
! Year !! Event
Year | Event | Place
1843\tNotes\tLondon
Her notes, published in 1843, were about 3.5 times longer than the article. Dr. Babbage called her "The Enchantress of Number."
"""
ARTICLE_SENTENCES = [
    "Augusta Ada King was an English mathematician.",
    "She worked with Charles Babbage on the Analytical Engine.",
    "Her notes, published in 1843, were about 3.5 times longer than the article.",
    'Dr. Babbage called her "The Enchantress of Number."',
]
ARTICLE_DROPPED = Counter(empty=2, header=3, list=6, table=7)
STUB = "Charles Babbage\n\n* Analytical Engine\n* Difference Engine"  # nothing but a title and a list


@pytest.mark.parametrize("paragraph, sentences", [
    ("Dr. Smith went to Washington. He arrived at 3 p.m. on Monday.",
     ["Dr. Smith went to Washington.", "He arrived at 3 p.m. on Monday."]),
    ("The U.S. Army was founded in 1775. It is older than the U.S. Navy.",
     ["The U.S. Army was founded in 1775.", "It is older than the U.S. Navy."]),
    ("He lives in the U.S. He likes it.", ["He lives in the U.S.", "He likes it."]),
    ("Pi is about 3.14 and e is about 2.718. Both are irrational.",
     ["Pi is about 3.14 and e is about 2.718.", "Both are irrational."]),
    ("She met J. R. R. Tolkien in Oxford, England. Was it raining? Yes!",
     ["She met J. R. R. Tolkien in Oxford, England.", "Was it raining?", "Yes!"]),
    ("A paragraph without a full stop", ["A paragraph without a full stop"]),
])
def test_split_sentences_handles_abbreviations_and_decimals(paragraph, sentences):
    assert split_sentences(paragraph) == sentences


def test_clean_paragraphs_drops_headers_lists_and_tables_and_keeps_prose():
    paragraphs, dropped = clean_paragraphs(ARTICLE)
    assert paragraphs == [ARTICLE.splitlines()[2], ARTICLE.splitlines()[-1]]
    assert dropped == ARTICLE_DROPPED


@pytest.mark.parametrize("line", [
    "1.5 million people live in the city, which is 3.14 km wide.",  # a number, not a numbered item
    "The vote was yes | no, said the report.",  # one "|" is not a table
    "A long line of prose that has more than ten words but no final full stop",
    '"It is over," he said.',
    "Was it (as some say) a computer?",
])
def test_clean_paragraphs_keeps_prose_that_resembles_markup(line):
    assert clean_paragraphs(line) == ([line], Counter())


def corpus_config(**corpus):
    return cfg.validate({"corpus": corpus})


def write_jsonl(path, texts, field="text"):
    path.write_text("".join(json.dumps({"id": i, field: t}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    return path


def test_jsonl_reads_folders_and_files_one_document_per_line(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", ["First one. Dr. Who said hi.\nA second paragraph.", "Only sentence."])
    write_jsonl(folder / "b.jsonl", ["Third document."])
    (folder / "notes.txt").write_text("not read")
    extra = write_jsonl(tmp_path / "extra.jsonl", ["Extra doc here.\n\nIts end."], field="body")
    config = corpus_config(source="jsonl", jsonl={"paths": [str(folder)]})
    assert config["corpus"]["jsonl"] == {"paths": [str(folder)], "text_field": "text", "clean": False}
    dropped = Counter()
    documents = list(jsonl_documents(config, dropped=dropped))
    assert documents == [["First one.", "Dr. Who said hi.", "A second paragraph."], ["Only sentence."], ["Third document."]]
    assert dropped == Counter()  # clean is off for jsonl by default
    documents = list(jsonl_documents(corpus_config(source="jsonl", jsonl={"paths": [str(extra)], "text_field": "body"})))
    assert documents == [["Extra doc here.", "Its end."]]


def test_jsonl_clean_option_applies_the_wikipedia_cleaning(tmp_path):
    path = write_jsonl(tmp_path / "wiki.jsonl", [ARTICLE, STUB])
    dropped = Counter()
    documents = list(jsonl_documents(corpus_config(source="jsonl", jsonl={"paths": [str(path)], "clean": True}),
                                     dropped=dropped))
    assert documents == [ARTICLE_SENTENCES]
    assert dropped == ARTICLE_DROPPED + Counter(empty=1, header=1, list=2)


@pytest.mark.parametrize("content, line, message", [
    (b'{"text": "Fine."}\n{"text": "broken\n', "2:10", r"not valid JSON \(Unterminated string starting at\); write one JSON"),
    (b'{"text": "Fine."}\n\n{"body": "x"}\n', 3, r"no 'text' field \(keys: body\); set corpus.jsonl.text_field"),
    (b'{"text": 42}\n', 1, r"'text' must be a string holding the document's text, got 42"),
    (b'["text"]\n', 1, r"expected a JSON object with a 'text' field"),
    (b'{"text": "Fine."}\n{"text": "caf\xe9"}\n', 2, r"not valid UTF-8 .*; re-encode the file as UTF-8"),
])
def test_jsonl_errors_name_the_file_line_and_fix(tmp_path, content, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=f"^{path}:{line}: {message}"):
        list(jsonl_documents(corpus_config(source="jsonl", jsonl={"paths": [str(path)]})))


def test_jsonl_without_files_says_what_to_give(tmp_path):
    with pytest.raises(CorpusError, match=r"corpus.jsonl.paths: no \*.jsonl files found in .*; give files or folders"):
        list(jsonl_documents(corpus_config(source="jsonl", jsonl={"paths": [str(tmp_path)]})))
    with pytest.raises(CorpusError, match=r"corpus.jsonl.paths: '.*missing' does not exist"):
        list(jsonl_documents(corpus_config(source="jsonl", jsonl={"paths": [str(tmp_path / "missing")]})))


@pytest.mark.parametrize("corpus, message", [
    ({"source": "jsonl", "jsonl": {"text_feild": "body"}}, r"unknown key 'text_feild' \(did you mean 'text_field'\?\) under corpus.jsonl"),
    ({"hf": {"datasets": [{"path": "x", "clena": False}]}}, r"unknown key 'clena' \(did you mean 'clean'\?\)"),
    ({"source": "json"}, r"corpus.source: 'json' is not one of \['synthetic', 'text', 'jsonl', 'hf'\]"),
])
def test_corpus_config_typos_are_reported(corpus, message):
    with pytest.raises(cfg.ConfigError, match=message):
        corpus_config(**corpus)


def test_build_corpus_from_jsonl_stores_documents_and_reports_drops(tmp_path, caplog):
    texts = [ARTICLE, STUB] + [f"Document {i} starts here. It ends here." for i in range(5)]
    path = write_jsonl(tmp_path / "corpus.jsonl", texts)
    config = corpus_config(source="jsonl", jsonl={"paths": [str(path)], "clean": True})
    with caplog.at_level(logging.INFO, logger="bert_ablation.data"):
        summary = build_corpus(config, str(tmp_path / "out"))
    assert summary == {"source": "jsonl", "shard": 0, "shards": 1, "documents": 6, "heldout_documents": 1, "sentences": 4 + 5 * 2,
                       "words": summary["words"], "dropped_paragraphs": {"empty": 3, "header": 4, "list": 8, "table": 7}}
    assert "corpus.jsonl: 7 documents read, 6 kept; paragraphs dropped: empty=3, header=4, list=8, table=7" in caplog.text
    stored = datasets.load_from_disk(str(tmp_path / "out"))
    assert stored.num_rows == 6
    train, heldout = load_corpus(str(tmp_path / "out"), "train"), load_corpus(str(tmp_path / "out"), "heldout")
    assert sorted(train + heldout) == sorted([ARTICLE_SENTENCES] + [[f"Document {i} starts here.", "It ends here."]
                                                                    for i in range(5)])


HUB_README = """---
configs:
- config_name: 20231101.en
  data_files:
  - split: train
    path: 20231101.en/train-*
- config_name: 20231101.fr
  data_files:
  - split: train
    path: 20231101.fr/train-*
---
# A local stand-in for wikimedia/wikipedia
"""


def test_hf_documents_reads_a_hub_layout_folder_through_load_dataset(tmp_path, no_network, caplog):
    repo = tmp_path / "wikipedia"
    shards = {"20231101.en/train-00000-of-00002.parquet": [ARTICLE, STUB],
              "20231101.en/train-00001-of-00002.parquet": ["Alan Turing\n\nHe was born in London. He studied at King's College."],
              "20231101.fr/train-00000-of-00001.parquet": ["Ada Lovelace est née à Londres."]}
    for name, texts in shards.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"id": [str(i) for i in range(len(texts))], "title": ["t"] * len(texts), "text": texts}),
                       repo / name)
    (repo / "README.md").write_text(HUB_README)
    config = corpus_config(source="hf", hf={"datasets": [{"path": str(repo), "name": "20231101.en", "split": "train"}]})
    with caplog.at_level(logging.INFO, logger="bert_ablation.data"):
        dropped = Counter()
        documents = list(hf_documents(config, dropped=dropped))
    # only the 20231101.en config's shards, in order; the stub has no prose left
    assert documents == [ARTICLE_SENTENCES, ["He was born in London.", "He studied at King's College."]]
    assert dropped == ARTICLE_DROPPED + Counter(empty=2, header=2, list=2)
    assert f"corpus.hf: {repo}: 3 documents read, 2 kept" in caplog.text


def test_hf_rows_per_document_joins_sentence_rows_into_passages(tmp_path, no_network):
    repo = tmp_path / "books"
    (repo / "data").mkdir(parents=True)
    rows = [f"Sentence number {i} is here." for i in range(7)] + [None]
    pq.write_table(pa.table({"text": rows}), repo / "data" / "train-00000-of-00001.parquet")
    config = corpus_config(source="hf", hf={"datasets": [{"path": str(repo), "clean": False, "rows_per_document": 3}],
                                            "max_documents": 2})
    documents = list(hf_documents(config))
    assert documents == [[f"Sentence number {i} is here." for i in (0, 1, 2)],
                         [f"Sentence number {i} is here." for i in (3, 4, 5)]]
    config["corpus"]["hf"]["max_documents"] = None
    assert [len(d) for d in hf_documents(config)] == [3, 3, 1]  # the None row is an empty paragraph


def test_hf_entries_take_revision_and_data_files(tmp_path, no_network, monkeypatch):
    """data_files picks files of the repo (here one config's files without naming the config) and
    revision reaches load_dataset: the way to read a hub ref such as refs/convert/parquet."""
    repo = tmp_path / "wikipedia"
    for name, texts in {"20231101.en/train-00000-of-00001.parquet": [ARTICLE],
                        "20231101.fr/train-00000-of-00001.parquet": ["Ada Lovelace est née à Londres. Elle écrit."]}.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"text": texts}), repo / name)
    (repo / "README.md").write_text(HUB_README)
    entry = {"path": str(repo), "data_files": {"train": "20231101.fr/*.parquet"}, "clean": False}
    config = corpus_config(source="hf", hf={"datasets": [entry]})
    assert list(hf_documents(config)) == [["Ada Lovelace est née à Londres.", "Elle écrit."]]
    seen = []

    def spy(real):
        def call(*args, **kwargs):
            seen.append((real.__name__, kwargs.get("revision")))
            return real(*args, **{k: v for k, v in kwargs.items() if k != "revision"})  # a folder has no refs
        return call

    monkeypatch.setattr(datasets, "load_dataset_builder", spy(datasets.load_dataset_builder))
    monkeypatch.setattr(datasets, "load_dataset", spy(datasets.load_dataset))
    config = corpus_config(source="hf", hf={"datasets": [{**entry, "revision": "refs/convert/parquet"}]})
    assert list(hf_documents(config)) == [["Ada Lovelace est née à Londres.", "Elle écrit."]]
    assert seen == [("load_dataset_builder", "refs/convert/parquet"), ("load_dataset", "refs/convert/parquet")]


def test_a_loading_script_dataset_is_refused_with_the_key_and_the_alternatives(tmp_path, no_network):
    repo = tmp_path / "bookcorpus"
    repo.mkdir()
    (repo / "bookcorpus.py").write_text("# a loading script, as bookcorpus/bookcorpus ships\n")
    config = corpus_config(source="hf", hf={"datasets": [{"path": str(repo)}]})
    with pytest.raises(MirrorError, match=r"corpus.hf.datasets\[0\]: .*bookcorpus is a loading-script dataset "
                                          r"\(bookcorpus.py\).*revision: refs/convert/parquet.*parquet copy"):
        list(hf_documents(config))


def test_a_node_without_internet_is_told_to_use_hub_mirror(no_network):
    config = corpus_config(source="hf")  # the defaults: Wikipedia and BookCorpus from the hub
    with pytest.raises(MirrorError, match=r"corpus.hf.datasets\[0\]: cannot reach the hub for wikimedia/wikipedia.*"
                                          r"set hub_mirror"):
        list(hf_documents(config))
