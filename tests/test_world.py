"""Tests for the generated world: corpus, fact consistency and the tasks."""

import collections
import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bert_ablation.world import (
    CONLL_LABELS, FOODS, HOBBIES, JOBS, NEGATIVE_ADJECTIVES, POSITIVE_ADJECTIVES, WORLD_TASKS,
    World,
)

SRC = Path(__file__).resolve().parents[1] / "src"

SCHEMAS = {
    "mnli": ({"premise": str, "hypothesis": str, "label": int, "idx": int},
             ("train", "validation_matched", "validation_mismatched"), 3),
    "qnli": ({"question": str, "sentence": str, "label": int, "idx": int},
             ("train", "validation"), 2),
    "mrpc": ({"sentence1": str, "sentence2": str, "label": int, "idx": int},
             ("train", "validation"), 2),
    "sst2": ({"sentence": str, "label": int, "idx": int}, ("train", "validation"), 2),
    "squad": ({"id": str, "title": str, "context": str, "question": str, "answers": dict},
              ("train", "validation"), 0),
    "conll2003": ({"id": str, "tokens": list, "ner_tags": list, "document": int},
                  ("train", "validation", "test"), len(CONLL_LABELS)),
}
CLASSIFICATION_TASKS = ("mnli", "qnli", "mrpc", "sst2")
SENTENCE_TASKS = CLASSIFICATION_TASKS + ("squad",)  # one record per example, not per sentence
PAIR_FIELDS = {"mnli": ("premise", "hypothesis"), "qnli": ("question", "sentence"),
               "mrpc": ("sentence1", "sentence2")}
PRONOUNS = {"female": {"she", "her", "hers"}, "male": {"he", "him", "his"}}


@pytest.fixture(scope="module")
def world():
    return World(seed=0, scale=0.25)


@pytest.fixture(scope="module")
def full_world():
    return World(seed=0, scale=1.0)


def _text_fields(record):
    return tuple(v for k, v in record.items() if k not in ("label", "idx", "id", "answers"))


def _biographies(world):
    """(person, document) for every biography: they open with the person's full name."""
    by_name = {p.name: p for p in world.people}
    for doc in world.documents():
        match = re.match(r"(\w+ \w+)", doc[0])
        if match and match.group(1) in by_name:
            yield by_name[match.group(1)], doc


# ------------------------------------------------------------------ corpus


def test_world_tasks_constant():
    assert WORLD_TASKS == ("mnli", "qnli", "mrpc", "sst2", "squad", "conll2003")


def test_documents_are_deterministic_and_depend_on_seed(world):
    assert World(seed=0, scale=0.25).documents() == world.documents()
    assert World(seed=1, scale=0.25).documents() != world.documents()


def test_generation_does_not_depend_on_the_process_hash_seed(world):
    """Python's str hash is randomised per process; the world must not use it."""
    code = ("import hashlib, json; from bert_ablation.world import World; w = World(0, 0.25); "
            "print(hashlib.sha256(json.dumps([w.documents(), w.task('mrpc', 50, 20), "
            "w.task('conll2003', 50, 20)]).encode()).hexdigest())")
    expected = hashlib.sha256(json.dumps([world.documents(), world.task("mrpc", 50, 20),
                                          world.task("conll2003", 50, 20)])
                              .encode()).hexdigest()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        assert out.stdout.strip() == expected


def test_corpus_size_and_speed_at_full_scale():
    start = time.perf_counter()
    docs = World(seed=0, scale=1.0).documents()
    assert time.perf_counter() - start < 3.0
    assert 2500 <= len(docs) <= 3500
    assert all(4 <= len(doc) <= 12 for doc in docs)
    words = sum(len(s.split()) for doc in docs for s in doc)
    assert 50 <= words / len(docs) <= 150


def test_scale_multiplies_entities(world, full_world):
    assert len(full_world.people) == pytest.approx(4 * len(world.people), rel=0.05)
    assert len(full_world.documents()) > 3 * len(world.documents())


def test_sentences_look_like_natural_text(world):
    for doc in world.documents():
        for sentence in doc:
            assert (sentence[0].isupper() or sentence[0].isdigit()) and sentence.endswith(".")
            assert "{" not in sentence and "  " not in sentence
            assert sentence.count(".") == 1  # no document markers or stray punctuation


def test_corpus_contains_every_lexicon_word(full_world):
    text = " ".join(s for doc in full_world.documents() for s in doc)
    for word in JOBS + POSITIVE_ADJECTIVES + NEGATIVE_ADJECTIVES:
        assert re.search(rf"\b{word}\b", text), word


def test_frequencies_are_skewed(full_world):
    """Zipf-like: the most written-about people and cities dominate."""
    counts = collections.Counter(p.name for p, _ in _biographies(full_world))
    top = counts.most_common()
    assert top[0][1] >= 10 * top[len(top) // 2][1]


# ------------------------------------------------------------------ facts


def test_people_fact_table_is_coherent(world):
    names = {p.name for p in world.people}
    assert len(names) == len(world.people)  # full names are unique
    cities = {c.name for c in world.cities}
    companies = {c.name for c in world.companies}
    for person in world.people:
        sibling = world.person(person.sibling)
        assert sibling.sibling == person.name
        assert sibling.last == person.last and sibling.birth_city == person.birth_city
        assert person.sibling_relation == ("sister" if sibling.gender == "female" else "brother")
        assert person.friend in names and person.friend not in (person.name, person.sibling)
        assert person.birth_city in cities and person.moved_city in cities
        assert person.moved_city != person.birth_city
        assert person.moved_year - person.birth_year >= 18
        assert person.employer in companies
        assert person.job in JOBS and person.hobby in HOBBIES and person.food in FOODS


def test_biographies_match_the_fact_table(world):
    """Pronouns agree with the subject's gender, and every value stated in a
    sentence about the subject alone is the subject's own."""
    names = {p.name for p in world.people}
    city_names = [c.name for c in world.cities]
    company_names = [c.name for c in world.companies]
    n_bios = 0
    for person, doc in _biographies(world):
        n_bios += 1
        assert 5 <= len(doc) <= 12
        assert person.birth_city in doc[0]
        for sentence in doc:
            words = set(re.findall(r"[a-z]+", sentence.lower()))
            assert not words & PRONOUNS["male" if person.gender == "female" else "female"]
            if any(name in sentence for name in names - {person.name}):
                continue  # about a sibling or friend
            for city in city_names:
                if re.search(rf"\b{city}\b", sentence):
                    assert city in (person.birth_city, person.moved_city), sentence
            for year in re.findall(r"\b\d{4}\b", sentence):
                assert int(year) in (person.birth_year, person.moved_year), sentence
            for company in company_names:
                if company in sentence:
                    assert company == person.employer, sentence
            for job in JOBS:
                if re.search(rf"\b{job}\b", sentence):
                    assert job == person.job, sentence
    assert n_bios >= len(world.people)


def test_city_documents_name_real_residents(world):
    born = re.compile(r"^(\w+ \w+) was born in (\w+) in (\d{4})\.$")
    moved = re.compile(r"^(\w+ \w+) moved to (\w+) in (\d{4})\.$")
    checked = 0
    for doc in world.documents():
        for sentence in doc:
            for pattern, city_field, year_field in ((born, "birth_city", "birth_year"),
                                                    (moved, "moved_city", "moved_year")):
                match = pattern.match(sentence)
                if match:
                    person = world.person(match.group(1))
                    assert getattr(person, city_field) == match.group(2)
                    assert getattr(person, year_field) == int(match.group(3))
                    checked += 1
    assert checked > 50


# ------------------------------------------------------------------ tasks


@pytest.mark.parametrize("name", WORLD_TASKS)
def test_task_schema(world, name):
    fields, splits, n_labels = SCHEMAS[name]
    data = world.task(name, n_train=60, n_dev=30)
    assert tuple(data) == splits
    for split, records in data.items():
        assert len(records) == (60 if split == "train" else 30)
        for i, record in enumerate(records):
            assert list(record) == list(fields)
            assert all(isinstance(record[k], t) for k, t in fields.items())
            if "label" in fields:
                assert record["idx"] == i and 0 <= record["label"] < n_labels


@pytest.mark.parametrize("name", WORLD_TASKS)
def test_tasks_are_deterministic_and_seeded(world, name):
    data = world.task(name, 40, 20, seed=3)
    assert World(seed=0, scale=0.25).task(name, 40, 20, seed=3) == data
    assert world.task(name, 40, 20, seed=4) != data
    assert World(seed=1, scale=0.25).task(name, 40, 20, seed=3) != data


@pytest.mark.parametrize("name", SENTENCE_TASKS)
def test_no_example_is_shared_between_splits(world, name):
    data = world.task(name, 1000, 300)
    seen = set()
    for records in data.values():
        keys = {_text_fields(r) for r in records}
        assert len(keys) == len(records)  # no duplicates within a split
        assert not keys & seen
        seen |= keys


def test_dev_split_does_not_depend_on_train_size(world):
    assert world.task("qnli", 10, 50)["validation"] == world.task("qnli", 500, 50)["validation"]


@pytest.mark.parametrize("name", CLASSIFICATION_TASKS)
def test_labels_are_balanced(world, name):
    n_labels = SCHEMAS[name][2]
    for records in world.task(name, 999, 301).values():
        counts = collections.Counter(r["label"] for r in records)
        assert set(counts) == set(range(n_labels))
        share = 1 / n_labels
        assert all(abs(c / len(records) - share) <= 0.1 * share for c in counts.values())


def test_unknown_task_is_rejected(world):
    with pytest.raises(ValueError, match="mnli.*qnli.*mrpc.*sst2.*squad"):
        world.task("cola", 10, 10)


def test_squad_answers_are_exact_spans_of_the_subjects_facts(world):
    data = world.task("squad", 500, 200)
    ids = [r["id"] for records in data.values() for r in records]
    assert len(set(ids)) == len(ids)
    for records in data.values():
        for record in records:
            context, answers = record["context"], record["answers"]
            assert 60 <= len(context.split()) <= 150
            assert len(answers["text"]) == len(answers["answer_start"]) == 1
            text, start = answers["text"][0], answers["answer_start"][0]
            assert context[start:start + len(text)] == text
            person = world.person(record["title"])
            assert person.name in record["question"]
            assert text in person.facts.values()
    questions = {r["question"].split()[0] for r in data["train"]}
    assert len(questions) >= 4  # a mix of question types


def test_mrpc_equivalent_pairs_share_names_and_values(world):
    """Paraphrases keep every name, city and year; every pair shares a name or value."""
    template_words = {"In", "These", "By", "The", "After", "When", "If", "Nothing"}
    function_words = {"a", "an", "as", "at", "by", "he", "her", "his", "in", "is", "of",
                      "she", "the", "was"}

    def entities(sentence):
        return set(re.findall(r"\b(?:[A-Z]\w+|\d{4})\b", sentence)) - template_words

    def content(sentence):
        return set(re.findall(r"\w+", sentence)) - function_words

    for r in world.task("mrpc", 600, 0)["train"]:
        if r["label"] == 1:
            assert entities(r["sentence1"]) == entities(r["sentence2"])
        assert content(r["sentence1"]) & content(r["sentence2"])


def test_sst2_keeps_some_adjectives_out_of_training(world):
    data = world.task("sst2", 1000, 500)
    heldout = set(world.heldout_adjectives)
    assert len(heldout) == 10

    def adjectives(records):
        return {w for r in records for w in re.findall(r"[a-z]+", r["sentence"])} & (
            set(POSITIVE_ADJECTIVES) | set(NEGATIVE_ADJECTIVES))

    assert not adjectives(data["train"]) & heldout
    assert adjectives(data["validation"]) >= heldout
    corpus = " ".join(s for doc in world.documents() for s in doc)
    assert all(re.search(rf"\b{a}\b", corpus) for a in heldout)


def test_sst2_contrast_follows_the_last_clause(world):
    polarity = {**{a: 0 for a in NEGATIVE_ADJECTIVES}, **{a: 1 for a in POSITIVE_ADJECTIVES}}
    records = world.task("sst2", 600, 0)["train"]
    checked = 0
    for r in records:
        last = re.split(r" but |, ", r["sentence"])[-1]
        words = re.findall(r"[a-z]+", last)
        if "but" in r["sentence"] and not {"not", "never"} & set(words):
            assert polarity[words[-1]] == r["label"], r
            checked += 1
    assert checked > 50


def test_mnli_mismatched_uses_unseen_wording(world):
    """Mismatched sentences come from templates absent from train/matched."""
    lexicon = sorted(JOBS + FOODS + HOBBIES, key=len, reverse=True)

    def frame(text):
        for phrase in lexicon:
            text = re.sub(rf"\b{phrase}\b", "V", text)
        return re.sub(r"\b(?:[A-Z]\w+|\d{4})\b", "X", text)

    data = world.task("mnli", 1500, 300)
    train_frames = {frame(r["hypothesis"]) for r in data["train"]}

    def seen(split):
        return sum(frame(r["hypothesis"]) in train_frames for r in data[split]) / 300

    assert seen("validation_matched") > 0.8
    assert seen("validation_mismatched") < 0.2


def _bucket_baseline(train, dev, feature):
    """Majority label per feature value, fitted on train, accuracy on dev."""
    table = collections.defaultdict(collections.Counter)
    for r in train:
        table[feature(r)][r["label"]] += 1
    fallback = collections.Counter(r["label"] for r in train).most_common(1)[0][0]
    predict = {value: counts.most_common(1)[0][0] for value, counts in table.items()}
    return sum(predict.get(feature(r), fallback) == r["label"] for r in dev) / len(dev)


@pytest.mark.parametrize("name", sorted(PAIR_FIELDS))
def test_lengths_do_not_give_the_label_away(full_world, name):
    """Length-only classifiers stay within 10 points of the majority class."""
    first, second = PAIR_FIELDS[name]
    data = full_world.task(name, 2000, 1000)
    features = {
        "word difference": lambda r: len(r[second].split()) - len(r[first].split()),
        "char difference": lambda r: (len(r[second]) - len(r[first])) // 4,
        "second length": lambda r: len(r[second].split()),
    }
    for split, dev in data.items():
        if split == "train":
            continue
        majority = max(collections.Counter(r["label"] for r in dev).values()) / len(dev)
        for feature in features.values():
            assert _bucket_baseline(data["train"], dev, feature) <= majority + 0.10


# ------------------------------------------------------------------ named entities (conll2003)


def _entity_spans(record):
    """(type, surface form) of every entity in a BIO-tagged record."""
    spans = []
    for token, tag in zip(record["tokens"], record["ner_tags"]):
        label = CONLL_LABELS[tag]
        if label.startswith("B-"):
            spans.append([label[2:], token])
        elif label.startswith("I-"):
            spans[-1][1] += " " + token
    return [tuple(span) for span in spans]


def _conll_documents(records):
    """Documents as tuples of sentences (token tuples), in order."""
    documents = collections.defaultdict(list)
    for record in records:
        documents[record["document"]].append(tuple(record["tokens"]))
    return [tuple(sentences) for _, sentences in sorted(documents.items())]


@pytest.fixture(scope="module")
def conll(world):
    return world.task("conll2003", 1000, 300)


def test_conll_labels_follow_the_hub():
    assert CONLL_LABELS == ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC",
                            "B-MISC", "I-MISC")


def test_conll_records_are_tokenised_sentences_of_consecutive_documents(conll):
    for records in conll.values():
        assert [r["id"] for r in records] == [str(i) for i in range(len(records))]
        documents = [r["document"] for r in records]
        assert documents[0] == 0
        assert all(b - a in (0, 1) for a, b in zip(documents, documents[1:]))
        sizes = collections.Counter(documents)
        # 3-8 sentences; only the split's last document may be cut short.
        assert all(3 <= n <= 8 for d, n in sizes.items() if d != documents[-1])
        for record in records:
            assert len(record["tokens"]) == len(record["ner_tags"]) >= 2
            assert all(t and not re.search(r"\s", t) for t in record["tokens"])
            assert all(0 <= tag < len(CONLL_LABELS) for tag in record["ner_tags"])
    tokens = [t for records in conll.values() for r in records for t in r["tokens"]]
    assert "'s" in tokens and "," in tokens  # CoNLL tokenisation: possessive and punctuation apart
    assert all(t in ("'s", ".", ",") or re.fullmatch(r"\w+", t) for t in tokens)


def test_conll_tags_are_valid_bio(conll):
    for records in conll.values():
        for record in records:
            previous = "O"
            for tag in record["ner_tags"]:
                label = CONLL_LABELS[tag]
                if label.startswith("I-"):
                    assert previous[2:] == label[2:], record
                previous = label


def test_conll_training_split_has_every_entity_type(conll):
    types = collections.Counter(kind for r in conll["train"] for kind, _ in _entity_spans(r))
    assert set(types) == {"PER", "ORG", "LOC", "MISC"}
    assert min(types.values()) >= 0.05 * sum(types.values())


def test_conll_entity_share_is_plausible(conll):
    """Most tokens are O, as in CoNLL-2003 (about 17% entity tokens), and some
    sentences name no entity at all."""
    for records in conll.values():
        tags = [t for r in records for t in r["ner_tags"]]
        assert 0.12 <= sum(t != 0 for t in tags) / len(tags) <= 0.28
        no_entity = sum(not any(r["ner_tags"]) for r in records) / len(records)
        assert 0.1 <= no_entity <= 0.5


def test_conll_documents_do_not_cross_splits(conll):
    seen = set()
    for records in conll.values():
        documents = set(_conll_documents(records))
        assert len(documents) == len(_conll_documents(records))
        assert not documents & seen
        seen |= documents


def test_conll_test_split_has_entities_unseen_in_training(conll):
    train = {span for r in conll["train"] for span in _entity_spans(r)}
    test = [span for r in conll["test"] for span in _entity_spans(r)]
    unseen = [span for span in test if span not in train]
    assert 0.05 <= len(unseen) / len(test) <= 0.7
    assert {kind for kind, _ in unseen} >= {"PER", "ORG", "MISC"}


def test_conll_names_are_ambiguous_across_types(conll):
    """A token can be a person, a place, part of a company or of an event name."""
    types = collections.defaultdict(set)
    for record in conll["train"]:
        for token, tag in zip(record["tokens"], record["ner_tags"]):
            if tag:
                types[token].add(CONLL_LABELS[tag][2:])
    pairs = {frozenset(p) for kinds in types.values() for p in itertools.combinations(kinds, 2)}
    assert {frozenset(p) for p in (("PER", "LOC"), ("PER", "ORG"), ("LOC", "ORG"),
                                   ("LOC", "MISC"))} <= pairs
    assert sum(len(kinds) > 1 for kinds in types.values()) >= 10


def test_conll_entities_come_from_the_world(world, conll):
    """Full names are people (some named like a city), places are cities (or
    abroad, never in the corpus), companies are the world's or named after a
    family or city."""
    names = {p.name for p in world.people}
    firsts, lasts = {p.first for p in world.people}, {p.last for p in world.people}
    cities = {c.name for c in world.cities}
    companies = {c.name for c in world.companies}
    corpus = set(" ".join(s for doc in world.documents() for s in doc).split())
    for records in conll.values():
        for record in records:
            for kind, text in _entity_spans(record):
                words = text.split()
                if kind == "PER":
                    assert (text in names or len(words) == 1 and words[0] in firsts | lasts | cities
                            or words[0] in firsts and words[1] in cities), text
                elif kind == "LOC":
                    assert text in cities or text not in corpus, text
                elif kind == "ORG":
                    assert (text in companies or words[0] in {c.split()[0] for c in companies}
                            or words[0] in lasts | cities), text


def test_conll_dev_and_test_do_not_depend_on_train_size(world):
    small, large = world.task("conll2003", 7, 50), world.task("conll2003", 500, 50)
    assert small["validation"] == large["validation"] and small["test"] == large["test"]
    assert len(small["train"]) == 7  # the last document is cut short
    assert small["train"] == large["train"][:7]


def test_conll_generation_is_fast():
    world = World(seed=0, scale=1.0)
    start = time.perf_counter()
    data = world.task("conll2003", 1000, 300)
    assert time.perf_counter() - start < 1.0
    assert [len(records) for records in data.values()] == [1000, 300, 300]
