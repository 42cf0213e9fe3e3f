"""The world's six fine-tuning tasks in the record schema of their hub datasets (``World.task``):
GLUE ``mnli``/``qnli``/``mrpc``/``sst2``, ``squad`` and ``conll2003``, each generated from the
world's people and facts with held-out members in half of every dev/test split.
"""

from __future__ import annotations

import hashlib

from ...facts.tasks import CONLL_LABELS, TASKS, WORLD_TASKS
from .corpus import Corpus, _text, detokenize
from .lexicon import Person

_MAX_ATTEMPTS = 1000


class World(Corpus):
    """The built-in world: its entities (``lexicon.Entities``), its corpus (``corpus.Corpus``) and
    its tasks; ``World(seed, scale, remove)``."""

    # ------------------------------------------------------------------ tasks

    def task(self, name: str, n_train: int, n_dev: int, seed: int = 0) -> dict[str, list[dict]]:
        """Fine-tuning data for ``name`` in the schema of its hub dataset.

        Dev splits are drawn first (so they do not depend on n_train), then the training
        split, skipping any example already drawn. Training examples use only the training
        members of every class; half of the dev examples hinge on a held-out member.
        """
        if name not in WORLD_TASKS:
            raise ValueError(f"unknown task {name!r}; expected one of {WORLD_TASKS}")
        if n_train < 0 or n_dev < 0:
            raise ValueError("n_train and n_dev must be non-negative")
        if name == "conll2003":
            return self._conll2003(n_train, n_dev, seed)
        splits = _SPLITS[name]
        generate = getattr(self, f"_{name}_example")
        seen: set = set()
        out = {}
        for split, variant in splits[1:] + splits[:1]:
            rng = self._rng("task", name, seed, split)
            n = n_train if split == "train" else n_dev
            labels = [i % _N_LABELS[name] for i in range(n)] if _N_LABELS[name] else [None] * n
            rng.shuffle(labels)
            records = []
            for i, label in enumerate(labels):
                heldout = False if split == "train" else (i % 2 == 0)  # half of dev/test: held-out words
                record = self._draw_unique(rng, generate, label, heldout, variant, seen)
                if name == "squad":
                    record = {"id": hashlib.md5(f"{self.seed}/{seed}/{split}/{i}".encode()).hexdigest()[:24], **record}
                else:
                    record["idx"] = i
                records.append(record)
            out[split] = records
        return {split: out[split] for split, _ in splits}

    @staticmethod
    def _draw_unique(rng, generate, label, heldout, variant, seen) -> dict:
        for _ in range(_MAX_ATTEMPTS):
            record = generate(rng, label, heldout, variant)
            key = repr(sorted((k, v) for k, v in record.items() if k not in ("label", "answers", "ner_tags")))
            if key not in seen:
                seen.add(key)
                return record
        raise RuntimeError("could not draw a new unique example; ask for fewer")

    def _value(self, rng, kind: str, heldout: bool, exclude=()) -> str:
        lexicon = {"job": self.jobs, "city": self.cities, "food": self.foods, "hobby": self.hobbies,
                   "employer": self.companies}[kind]
        return lexicon.pick(rng, heldout, exclude)

    def _cast(self, rng, n: int, heldout: bool) -> list[Person]:
        """``n`` people with different first names (from any side in a world too tiny for n)."""
        pool = self.people.heldout if heldout else self.people.train
        if len({p.first for p in pool}) < n:
            pool = self.people.all
        cast = []
        while len(cast) < n:
            person = rng.choice(pool)
            if person.first not in {p.first for p in cast}:
                cast.append(person)
        return cast

    def _two_people(self, rng, heldout: bool) -> tuple[Person, Person]:
        return tuple(self._cast(rng, 2, heldout))

    def _with_values(self, rng, person: Person, heldout: bool, **fixed) -> Person:
        """The person with task-time values: training uses training members only."""
        values = {kind: fixed.get(kind) or self._value(rng, kind, heldout)
                  for kind in ("job", "city", "food", "hobby", "employer")}
        return Person(person.first, person.last, person.gender, **values)

    def _sst2_example(self, rng, label, heldout, variant) -> dict:
        """Sentiment from an adjective (held-out ones only in dev), under negation or contrast."""
        adjectives = tuple(lexicon.pick(rng, heldout) for lexicon in self.adjectives)
        form = rng.random()
        w = self._words
        if form < 0.5:
            tokens = self.review(rng, label, adjectives, context=False, heldout=heldout)
        elif form < 0.75:  # negation flips the adjective's polarity
            tokens = self.review(rng, 1 - label, adjectives, context=False, heldout=heldout)
            tokens = tokens[:-2] + w("not") + tokens[-2:]
        else:  # contrast: the clause after "but" decides
            first = self.review(rng, 1 - label, self._adjectives(rng, False), context=False, heldout=heldout)
            tokens = first[:-1] + w(", but the service was") + w(adjectives[label]) + w(".")
        return {"sentence": _text(tokens), "label": label}

    def _mnli_example(self, rng, label, heldout, variant) -> dict:
        """Premise: two facts about each of two people. Entailment restates a stated fact,
        contradiction gives it another value of its class or the other person's value, neutral
        states a fact of a kind the premise does not give for that person. Which kinds are
        stated is random, so no relation word predicts the label. Mismatched: the second fact
        about each person names them by pronoun."""
        kinds = ("job", "city", "food", "hobby", "employer")
        a, b = self._two_people(rng, heldout)
        a = self._with_values(rng, a, heldout)
        b = self._with_values(rng, b, heldout, **{k: self._value(rng, k, heldout, (getattr(a, k),)) for k in kinds})
        stated = {a.first: rng.sample(kinds, 2), b.first: rng.sample(kinds, 2)}
        premise = []
        for person in (a, b):
            for k, kind in enumerate(stated[person.first]):
                premise += self.fact(rng, person, kind, full=k == 0, pronoun=k == 1 and variant == "mismatched")
        subject, other = (a, b) if rng.random() < 0.5 else (b, a)
        if label == 1:
            kind = rng.choice([k for k in kinds if k not in stated[subject.first]])
            value = self._value(rng, kind, heldout)
        else:
            kind = rng.choice(stated[subject.first])
            value = getattr(subject, kind)
            if label == 2:
                value = (getattr(other, kind) if rng.random() < 0.5
                         else self._value(rng, kind, heldout, (getattr(a, kind), getattr(b, kind))))
        hypothesis = self.fact(rng, subject, kind, full=True, value=value)
        return {"premise": _text(premise),
                "hypothesis": _text(hypothesis), "label": label}

    def _qnli_example(self, rng, label, heldout, variant) -> dict:
        """Does the sentence answer the question about a person? Negatives state another fact
        of that person, or the asked fact of someone else; both name the same kinds of words."""
        a, b = self._two_people(rng, heldout)
        a, b = self._with_values(rng, a, heldout), self._with_values(rng, b, heldout)
        kind = rng.choice(("job", "city", "food", "hobby", "employer"))
        question = {"job": f"what does {a.name} do for a living ?", "city": f"where does {a.name} live ?",
                    "food": f"what does {a.name} like to eat ?", "hobby": f"what does {a.name} do for fun ?",
                    "employer": f"which company employs {a.name} ?"}[kind]
        if label == 0:
            sentence = self.fact(rng, a, kind, full=True)
        elif rng.random() < 0.5:
            sentence = self.fact(rng, a, rng.choice([k for k in ("job", "city", "food", "hobby", "employer")
                                                    if k != kind]), full=True)
        else:
            sentence = self.fact(rng, b, kind, full=True)
        return {"question": question.replace(" ?", "?"), "sentence": _text(sentence),
                "label": label}

    def _mrpc_example(self, rng, label, heldout, variant) -> dict:
        """Two wordings of who is who. Not paraphrases: the two people's attributes swapped
        (the same words: only the binding differs) or one value replaced by another. In the
        right_context control ``sentence1`` names each person after their job and city."""
        a, b = self._two_people(rng, heldout)
        a = self._with_values(rng, a, heldout)
        b = self._with_values(rng, b, heldout, job=self._value(rng, "job", heldout, (a.job,)),
                              city=self._value(rng, "city", heldout, (a.city,)))
        attribute_first = "right_context" in self.remove
        first = (self.introduce(rng, a, attribute_first=attribute_first)
                 + self.introduce(rng, b, attribute_first=attribute_first))
        kind = rng.choice(("job", "city"))
        values = {a.first: getattr(a, kind), b.first: getattr(b, kind)}
        if label == 0 and rng.random() < 0.6:  # swapped: the same words, other binding
            values = {a.first: values[b.first], b.first: values[a.first]}
        elif label == 0:
            changed = rng.choice((a, b))
            values[changed.first] = self._value(rng, kind, heldout, tuple(values.values()))
        # Either person may come first in either label, so order is no cue.
        second = [t for person in rng.sample((a, b), 2)
                  for t in self.fact(rng, person, kind, True, value=values[person.first])]
        return {"sentence1": _text(first),
                "sentence2": _text(second), "label": label}

    def _squad_example(self, rng, label, heldout, variant) -> dict:
        """A short story about 2-3 people; most questions ask *who* has an attribute, which the
        context states to the right of the name (in the right_context control: to its left)."""
        cast, jobs, cities = [], set(), set()
        for person in self._cast(rng, rng.choice((2, 3)), heldout):
            person = self._with_values(rng, person, heldout, job=self._value(rng, "job", heldout, jobs),
                                       city=self._value(rng, "city", heldout, cities))
            jobs.add(person.job)
            cities.add(person.city)
            cast.append(person)
        # Introductions are rendered once the question is known (the control orders them by it);
        # until then the index into cast stands for one, and its template is drawn as introduce does.
        templates = [rng.randrange(3) for _ in cast]
        sentences = list(range(len(cast)))
        for person in rng.sample(cast, len(cast)):
            sentences.insert(rng.randint(1, len(sentences)), self.fact(rng, person, rng.choice(("food", "hobby"))))
        subject = rng.choice(cast)
        kind = rng.choices(("who_job", "who_city", "job", "city"), weights=(4, 3, 2, 1))[0]
        # The control puts the answer after what identifies it: a "who" answer (a name) after the
        # job and city of every introduction; a "what" answer (the attribute) already follows its name.
        attribute_first = "right_context" in self.remove and kind.startswith("who")
        tokens = [t for s in sentences for t in (
            self._introduction(cast[s], True, cast[s].job, cast[s].city, templates[s], attribute_first)
            if isinstance(s, int) else s)]
        text, offsets = detokenize([t for t, _, _ in tokens])
        if kind.startswith("who"):
            attribute = kind[4:]
            value = getattr(subject, attribute)
            question = f"who is the {value} ?" if attribute == "job" else f"who lives in {value} ?"
            span = [i for i, (_, _, role) in enumerate(tokens) if role == ("intro", subject)]  # full name
        else:
            question = (f"what does {subject.first} do ?" if kind == "job" else f"where does {subject.first} live ?")
            span = [i for i, (_, _, role) in enumerate(tokens) if role == (kind, subject)][:1] * 2
        start, end = offsets[span[0]], offsets[span[-1]] + len(tokens[span[-1]][0])
        # Titled by the first person's city: a title naming the subject would give "who" answers away.
        return {"title": cast[0].city, "context": text, "question": question.replace(" ?", "?"),
                "answers": {"text": [text[start:end]], "answer_start": [start]}}

    def _conll2003(self, n_train: int, n_dev: int, seed: int) -> dict[str, list[dict]]:
        """Every sentence of a story is a record (tokens, BIO tags) and the records of a story
        are consecutive, with one ``document`` id, as in the hub's CoNLL-2003. Dev/test are
        drawn first; half of their stories are about held-out people and values."""
        seen: set = set()
        out = {}
        for split in ("validation", "test", "train"):
            rng = self._rng("task", "conll2003", seed, split)
            n = n_train if split == "train" else n_dev
            records, document = [], 0
            while len(records) < n:
                heldout = split != "train" and document % 2 == 0
                for _ in range(_MAX_ATTEMPTS):
                    story = self._ner_story(rng, heldout)
                    key = tuple(tuple(tokens) for tokens, _ in story)
                    if key not in seen:
                        seen.add(key)
                        break
                for tokens, tags in story[: n - len(records)]:
                    records.append({"id": str(len(records)), "tokens": tokens, "ner_tags": tags,
                                    "document": document})
                document += 1
            out[split] = records
        return {split: out[split] for split in ("train", "validation", "test")}

    def _ner_story(self, rng, heldout: bool) -> list[tuple[list[str], list[int]]]:
        """A story of 1-2 people; a quarter of them carry a first name that is also a city's (in
        the context_ambiguity control: its replacement, a first name only)."""
        cast = []
        for person in self._cast(rng, rng.choice((1, 2)), heldout):
            word = self._first_name[rng.choice(tuple(self._first_name))]
            if rng.random() < 0.25 and word not in {p.first for p in cast}:
                person = Person(word, person.last, "female", *(
                    getattr(person, k) for k in ("job", "city", "food", "hobby", "employer")))
            cast.append(self._with_values(rng, person, heldout))
        return [_bio(sentence) for sentence in self.story(rng, cast, length=rng.randint(3, 6), heldout=heldout)]


def _bio(sentence: list[tuple]) -> tuple[list[str], list[int]]:
    """BIO tags (indices into CONLL_LABELS) of consecutive same-type tokens."""
    tokens, tags, previous = [], [], None
    for token, entity, _ in sentence:
        tokens.append(token)
        if entity is None:
            tags.append(0)
        else:
            inside = previous == entity and token not in (",", ".")
            tags.append(CONLL_LABELS.index(f"{'I' if inside else 'B'}-{entity}"))
        previous = entity
    return tokens, tags


# What each task is (its splits, its labels) is the registry's (tasks.TASKS); the world adds only
# how it renders a split: MNLI's mismatched dev set names the second fact by pronoun.
_SPLITS = {name: tuple((split, "mismatched" if split.endswith("mismatched") else "matched" if name == "mnli" else None)
                       for split in ("train", *TASKS[name].eval_splits))
           for name in WORLD_TASKS}
_N_LABELS = {name: len(TASKS[name].labels) if TASKS[name].kind == "classification" else 0 for name in WORLD_TASKS}
