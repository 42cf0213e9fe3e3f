"""Tests for the CoNLL-2003 column-format reader and writer."""

import pytest

from bert_ablation.data.conll import ConllFormatError, file_labels, read_conll, to_bio, write_conll
from bert_ablation.data.world import World
from bert_ablation.facts.tasks import CONLL_LABELS


def _tags(record):
    return [CONLL_LABELS[t] for t in record["ner_tags"]]


@pytest.fixture(scope="module")
def records():
    return World(seed=0, scale=0.25).task("conll2003", 120, 40)["validation"]


def test_world_records_survive_a_round_trip(tmp_path, records):
    path = tmp_path / "dev.conll"
    write_conll(records, path)
    assert read_conll(path) == records
    lines = path.read_text().splitlines()
    assert lines[:2] == ["-DOCSTART- O", ""]
    assert lines.count("-DOCSTART- O") == len({r["document"] for r in records})
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, no leftovers


def test_iob1_is_converted_to_bio(tmp_path):
    path = tmp_path / "iob1.conll"
    words = "Ann Lee Acme Beta Corp said Paris".split()
    tags = "I-PER I-PER I-ORG B-ORG I-ORG O I-LOC".split()
    path.write_text("".join(f"{w} NNP I-NP {t}\n" for w, t in zip(words, tags)))
    (record,) = read_conll(path)
    assert record["tokens"] == words
    assert _tags(record) == "B-PER I-PER B-ORG B-ORG I-ORG O B-LOC".split()


def test_bio_tags_pass_unchanged():
    tags = "B-PER I-PER O B-LOC B-LOC I-LOC B-MISC".split()
    assert to_bio(tags) == tags


def test_docstart_separates_documents_and_is_no_sentence(tmp_path):
    path = tmp_path / "docs.conll"
    path.write_text(
        "-DOCSTART- -X- -X- O\n\n"
        "EU NNP B-NP I-ORG\nrejects VBZ B-VP O\n\n"
        "Peter NNP B-NP I-PER\n\n"
        "-DOCSTART- -X- O O\n\n-DOCSTART- -X- O O\n\n"  # an empty document is dropped
        "BRUSSELS NNP B-NP I-LOC\n"  # no blank line at the end of the file
    )
    records = read_conll(path)
    assert [r["tokens"] for r in records] == [["EU", "rejects"], ["Peter"], ["BRUSSELS"]]
    assert [r["document"] for r in records] == [0, 0, 1]
    assert [r["id"] for r in records] == ["0", "1", "2"]
    assert [_tags(r) for r in records] == [["B-ORG", "O"], ["B-PER"], ["B-LOC"]]


def test_two_column_files_without_docstart(tmp_path):
    path = tmp_path / "two.conll"
    path.write_text("Kaimholm\tB-LOC\n.\tO\n\n\nHe O\n")
    records = read_conll(path)
    assert [r["document"] for r in records] == [0, 0]
    assert [_tags(r) for r in records] == [["B-LOC", "O"], ["O"]]


@pytest.mark.parametrize("text, line, message", [
    ("EU NNP B-NP I-ORG\nrejects VBZ B-VP B-FOO\n", 2, "unknown NER tag 'B-FOO'.*B-MISC, I-MISC"),
    ("EU B-ORG\n\nrejects\n", 3, "a single column 'rejects'.*NER tag last"),
])
def test_errors_name_the_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "bad.conll"
    path.write_text(text)
    with pytest.raises(ConllFormatError, match=rf"bad\.conll, line {line}: {message}"):
        read_conll(path)


@pytest.mark.parametrize("text", ["", "\n\n", "-DOCSTART- O\n\n"])
def test_a_file_without_sentences_is_an_error(tmp_path, text):
    path = tmp_path / "empty.conll"
    path.write_text(text)
    with pytest.raises(ConllFormatError, match="empty.conll has no sentences"):
        read_conll(path)


def test_writer_rejects_what_the_format_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="record 0: token 'New York'"):
        write_conll([{"tokens": ["New York"], "ner_tags": [5], "document": 0}], tmp_path / "x")
    with pytest.raises(ValueError, match="record 0: needs as many tags as tokens"):
        write_conll([{"tokens": ["a", "b"], "ner_tags": [0], "document": 0}], tmp_path / "x")
    assert not (tmp_path / "x").exists()


WNUT = "@paulwalk\tO\nIt\tO\n's\tO\nthe\tO\nview\tO\nfrom\tO\nthe\tO\nEmpire\tB-location\nState\tI-location\n" \
       "Building\tI-location\n\nI\tO\nlove\tO\nmy\tO\niPhone\tB-product\nand\tO\nSnapchat\tI-creative-work\n"


def test_a_file_of_other_entity_types_has_its_own_label_set(tmp_path):
    path = tmp_path / "wnut17train.conll"
    path.write_text(WNUT)
    labels = file_labels(path)
    # O, then both prefixes of each type, types sorted: an I- tag never seen (IOB1) still has its index
    assert labels == ("O", "B-creative-work", "I-creative-work", "B-location", "I-location", "B-product", "I-product")
    records = read_conll(path, labels)
    assert [[labels[t] for t in r["ner_tags"]] for r in records] == [
        ["O"] * 7 + ["B-location", "I-location", "I-location"],
        ["O", "O", "O", "B-product", "O", "B-creative-work"],  # IOB1 I- after O starts an entity
    ]
    out = tmp_path / "copy.conll"
    write_conll(records, out, labels)
    assert read_conll(out, labels) == records
    # CoNLL-2003 stays strict: its reader refuses the types it does not have
    with pytest.raises(ConllFormatError, match=r"wnut17train\.conll, line 8: unknown NER tag 'B-location'.*"
                                               r"allowed tags are O, B-PER"):
        read_conll(path)


def test_a_tag_outside_the_training_label_set_names_file_line_and_tag(tmp_path):
    train, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    train.write_text(WNUT)
    dev.write_text("Paris\tB-location\nby\tO\nNokia\tB-corporation\n")
    with pytest.raises(ConllFormatError, match=rf"dev\.txt, line 3: unknown NER tag 'B-corporation' in the last "
                                               rf"column; the training split \({train}\) has only O, B-creative-work"):
        read_conll(dev, file_labels(train), labels_from=str(train))


@pytest.mark.parametrize("tag", ["PER", "B-", "S-person", "b-person", "E-LOC"])
def test_a_tag_that_is_not_bio_is_refused_when_reading_the_label_set(tmp_path, tag):
    path = tmp_path / "train.txt"
    path.write_text(f"-DOCSTART- O\n\nAnn B-person\nLee {tag}\n")
    with pytest.raises(ConllFormatError, match=rf"train\.txt, line 4: NER tag '{tag}' in the last column is not "
                                               rf"O, B-<type> or I-<type>"):
        file_labels(path)


def test_missing_document_ids_turn_document_context_off_loudly(tokenizer, caplog):
    import logging

    from bert_ablation.data.features import tagging_features

    records = {"tokens": [["Mira", "lives", "in", "Tolholm"], ["She", "bakes"]], "ner_tags": [[1, 0, 0, 5], [0, 0]]}
    with caplog.at_level(logging.WARNING, logger="bert_ablation.data.features"):
        alone = tagging_features(records, tokenizer, 32, document_context=True)
    assert "NER document context is OFF for these 2 sentences" in caplog.text
    with_ids = tagging_features({**records, "document": [0, 0]}, tokenizer, 32, document_context=True)
    assert len(with_ids["input_ids"][1]) > len(alone["input_ids"][1])  # the neighbour is context once ids exist


def test_the_default_conll2003_is_a_parquet_copy_and_a_script_repo_is_refused_with_the_fix(tmp_path, no_network):
    """datasets >= 4 refuses eriktks/conll2003's loading script: the default is a script-free copy,
    and a mirror (or folder) holding the script repo is refused naming the key and the fixes."""
    from bert_ablation.data.task_sources import hub_splits
    from bert_ablation.facts.tasks import TASKS
    from bert_ablation.hub import MirrorError

    assert TASKS["conll2003"].hub == {"path": "lhoestq/conll2003"}
    repo = tmp_path / "mirror" / "eriktks" / "conll2003"
    repo.mkdir(parents=True)
    (repo / "conll2003.py").write_text("# the hub repo's loading script\n")
    settings = {"source": "hub", "hub": {"path": "eriktks/conll2003"}, "hub_mirror": str(tmp_path / "mirror")}
    with pytest.raises(MirrorError, match=r"tasks.conll2003.hub: .*conll2003 is a loading-script dataset "
                                          r"\(conll2003.py\).*add revision: refs/convert/parquet.*parquet copy's id"):
        hub_splits("conll2003", settings, {})
