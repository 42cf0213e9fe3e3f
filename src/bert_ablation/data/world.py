"""The built-in benchmark: a generated world whose corpus and tasks exercise what BERT ablates.

Downloading BooksCorpus/Wikipedia and GLUE is neither possible offline nor affordable for
tiny models, so this module *generates* a consistent world from one seed and renders it as
an unlabeled corpus (``World.documents``) and six fine-tuning tasks in the record schema of
their hub datasets (``World.task``: GLUE ``mnli``/``qnli``/``mrpc``/``sst2``, ``squad``,
``conll2003``). It is built around mechanisms that a model of a few hundred thousand
parameters learns in a minute and that the paper's ablations change:

* **Word classes learnt only from the corpus.** Every lexical class (people, cities,
  companies, jobs, foods, hobbies, praise and criticism adjectives) is split into members that
  the labeled training sets use and held-out members that only the corpus (and the dev/test
  sets) contain. A model fine-tuned from random initialisation has never seen the held-out
  members; a pretrained one has learnt from their contexts which class they belong to.
* **Right context.** An attribute follows the name it belongs to ("Mira, the baker, lives in
  Tolholm"), so the token of the name only knows its attribute through context on its right,
  which a left-to-right model does not have (SQuAD "who" questions, the roles of MRPC, NER
  of ambiguous words).
* **Cross-sentence links.** Documents follow a few people through consistent facts and
  events in temporal order, with pronouns; a true next segment continues the same people and
  facts, a random one (from another document) has the same style and length but other people.
  MNLI, QNLI and MRPC compare two texts about the same people.
* **Ambiguity that context resolves.** Some words are a person's name and also a city's
  (NER); sentiment depends on negation and on the clause after "but" (SST-2).

**Controls.** ``World(remove=(...))`` generates the same world with mechanisms taken out
(names and one-line descriptions in ``facts/mechanisms.py``), so that a claim which names a mechanism
can be shown to depend on it. Each removal keeps the entities and every task's sizes and labels,
draws what it needs from random streams of its own (so the default world's draws stay as they
were), and changes only what its mechanism needs:

* ``heldout_words``: no member of any class is held out; training and dev draw from all of them.
  The corpus is unchanged (it always used every member).
* ``right_context``: introductions put the job and city *before* the name ("a baker in Tolholm,
  Mira Tolsen, is well known"), so that the word a token-level answer depends on is on its left:
  in SQuAD every introduction of a "who" question's context (its answer is a name), in MRPC
  every introduction of ``sentence1`` (whose names ``sentence2`` rebinds). "What" questions keep
  the name first, since their answer is the attribute. The corpus introduces people either way
  (50/50), so a left-to-right model is pretrained on both orders. Only word order changes.
* ``cross_segment``: the corpus's sentences are dealt out at random into documents of the same
  lengths, so a true next segment is as unrelated to its first segment as a random one. The
  sentences and every task are unchanged (the pair tasks still compare two texts about the same
  people: removing that instead would make them unlearnable, not NSP useless).
* ``context_ambiguity``: the people whose first name is also a city's get a new first name of
  the same form, so every word has one entity type. Everything else is unchanged.

Vocabulary frequencies are Zipfian (a few people and cities dominate), and rare pseudo-word
names split into several WordPiece pieces. Every random stream is seeded through
``_stable_seed`` (BLAKE2 of its parts), never Python's per-process randomised ``hash()``.
``docs/benchmark.md`` describes each task, the claims it can test and a sample of each.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from functools import cached_property

from ..facts.mechanisms import REMOVABLE
from ..facts.tasks import CONLL_LABELS, TASKS, WORLD_TASKS

JOBS = ("baker", "teacher", "doctor", "farmer", "painter", "pilot", "nurse", "lawyer", "miner",
        "singer", "tailor", "driver", "writer", "sailor", "cook", "judge", "dentist", "potter",
        "plumber", "actor", "banker", "grocer", "weaver", "butcher")
FOODS = ("soup", "bread", "cheese", "rice", "fish", "pie", "salad", "cake", "beans", "noodles",
         "plums", "honey", "stew", "dumplings", "figs", "olives", "porridge", "lentils")
HOBBIES = ("chess", "tennis", "fishing", "painting", "singing", "hiking", "dancing", "sailing",
           "knitting", "rowing", "cycling", "gardening", "juggling", "archery", "skating", "riddles")
POSITIVE = ("wonderful", "great", "lovely", "superb", "excellent", "delightful", "splendid",
            "charming", "fantastic", "pleasant", "marvellous", "brilliant", "terrific", "perfect",
            "fabulous", "stunning", "glorious", "sublime")
NEGATIVE = ("awful", "terrible", "dreadful", "horrible", "poor", "bland", "dismal", "nasty",
            "mediocre", "lousy", "appalling", "dull", "miserable", "shoddy", "rotten", "grim",
            "tedious", "woeful")
PLACES = ("market", "cafe", "theatre", "library", "harbour", "museum", "park", "station")
COMPANY_KINDS = ("Foods", "Motors", "Labs", "Textiles", "Shipping", "Mills")
EVENTS = ("Festival", "Fair", "Games", "Regatta", "Carnival")
PRAISE_CONTEXTS = ("everyone smiled", "we will come back", "the crowd cheered",
                   "it was worth every penny", "my friends loved it")
CRITICISM_CONTEXTS = ("everyone complained", "we will not come back", "the crowd left early",
                      "it was a waste of money", "my friends hated it")

# Contexts that fit a person, a city and a company alike.
_UNINFORMATIVE = (("everyone talked about", "."), ("", "was in the news again ."), ("we read about", "today ."),
                  ("", "made the headlines ."))

HELDOUT_SHARE = 1 / 3  # of every lexical class: members only the corpus and dev/test contain

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr",
           "kr", "st", "th", "sh")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ei")
_CODAS = ("", "", "", "n", "r", "l", "s", "m")
_FEMALE_ENDINGS = ("a", "ina", "ela", "ora")
_MALE_ENDINGS = ("o", "an", "ek", "us")
_CITY_ENDINGS = ("holm", "ford", "burg", "stad", "mouth", "vale")
_PEOPLE_PER_SCALE = 240
_CITIES_PER_SCALE = 40
_COMPANIES_PER_SCALE = 24
_AMBIGUOUS_PER_SCALE = 12  # words that are a person's first name and a city's name
_DOCUMENTS_PER_SCALE = 3600
_MAX_ATTEMPTS = 1000


def _stable_seed(*parts) -> int:
    """A process-independent 64-bit seed from arbitrary printable parts."""
    key = "\x1f".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def _zipf_cum_weights(n: int, exponent: float = 1.0) -> list[float]:
    total, cumulative = 0.0, []
    for rank in range(1, n + 1):
        total += rank ** -exponent
        cumulative.append(total)
    return cumulative


def _pseudo_word(rng, syllables: tuple[int, int], endings, taken: set[str]) -> str:
    """A capitalised pseudo-word not in ``taken``, which it is added to."""
    while True:
        stem = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                       for _ in range(rng.randint(*syllables)))
        word = (stem + rng.choice(endings)).capitalize()
        if word not in taken:
            taken.add(word)
            return word


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def detokenize(tokens: list[str]) -> tuple[str, list[int]]:
    """Join CoNLL-style tokens into text ("Mira , the baker ." -> "Mira, the baker.") and
    return each token's character offset."""
    text, offsets = "", []
    for token in tokens:
        if text and token not in (",", ".", "?", "'s"):
            text += " "
        offsets.append(len(text))
        text += token
    return text, offsets


def _text(sentence: list[tuple]) -> str:
    """The text of a sentence of (token, entity, role) triples."""
    return detokenize([token for token, _, _ in sentence])[0]


# A sentence is a list of (token, entity type or None, role) triples; role tags the tokens
# that tasks ask about, e.g. ("job", person) on "baker".
@dataclass(frozen=True)
class Person:
    first: str
    last: str
    gender: str
    job: str
    city: str
    food: str
    hobby: str
    employer: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def pronoun(self) -> str:
        return "she" if self.gender == "female" else "he"


class _Lexicon:
    """One class of words, split into the members training sets use and held-out members."""

    def __init__(self, rng, words, always_train=(), heldout=None):
        """``always_train`` members are never held out; ``heldout`` (a predicate) overrides the
        random third."""
        words = [w for w in words if w not in always_train]
        rng.shuffle(words)
        if heldout is None:
            chosen = set(words[: max(1, round(HELDOUT_SHARE * len(words)))])
            heldout = chosen.__contains__
        self.all = tuple(words) + tuple(always_train)
        self.heldout = tuple(w for w in words if heldout(w))
        self.train = tuple(w for w in self.all if not heldout(w) or w in always_train)

    def pick(self, rng, heldout: bool | None = None, exclude=()) -> str:
        """A member: ``heldout`` True/False restricts to held-out/training members, None to any."""
        pool = self.all if heldout is None else (self.heldout if heldout else self.train)
        # A tiny world (scale < 0.5) may run out of members on one side: take any other.
        choices = [w for w in pool if w not in exclude] or [w for w in self.all if w not in exclude]
        return rng.choice(choices)


class World:
    """Entities, facts and lexicons derived deterministically from ``seed``.

    ``scale`` multiplies the number of people, cities, companies and corpus documents (so the
    vocabulary and the corpus grow together); task sizes scale through the config. ``remove``
    names mechanisms (of ``mechanisms.REMOVABLE``) to take out: a control world (module docstring).
    With ``remove`` empty the output is exactly that of a world without the option.
    """

    def __init__(self, seed: int = 0, scale: float = 1.0, remove=()):
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        remove = (remove,) if isinstance(remove, str) else tuple(remove)
        unknown = [m for m in remove if m not in REMOVABLE]
        if unknown:
            raise ValueError(f"cannot remove {', '.join(map(repr, unknown))}: the world's removable mechanisms "
                             f"are {', '.join(REMOVABLE)}")
        self.seed, self.scale = seed, scale
        self.remove = tuple(m for m in REMOVABLE if m in remove)
        rng = self._rng("entities")
        taken: set[str] = set()
        n_ambiguous = max(3, round(_AMBIGUOUS_PER_SCALE * scale))
        self.ambiguous = tuple(_pseudo_word(rng, (1, 2), ("ra", "en", "ia"), taken) for _ in range(n_ambiguous))
        # The first name each ambiguous word gives a person: itself, or in the context_ambiguity
        # control a new word of the same form, drawn from its own stream so that every other draw
        # (and therefore every other word of the world) stays the same.
        self._first_name = {word: word for word in self.ambiguous}
        cities = [_pseudo_word(rng, (1, 2), _CITY_ENDINGS, taken)
                  for _ in range(max(6, round(_CITIES_PER_SCALE * scale)))]
        # Ambiguous words are never held out: they are training people's names as well.
        self.cities = _Lexicon(rng, cities, always_train=self.ambiguous)
        self.companies = _Lexicon(rng, [f"{_pseudo_word(rng, (1, 2), ('ex', 'on', 'ar'), taken)} {rng.choice(COMPANY_KINDS)}"
                                        for _ in range(max(6, round(_COMPANIES_PER_SCALE * scale)))])
        self.jobs, self.foods, self.hobbies = (_Lexicon(rng, words) for words in (JOBS, FOODS, HOBBIES))
        self.adjectives = (_Lexicon(rng, NEGATIVE), _Lexicon(rng, POSITIVE))  # index = polarity
        n_people = max(12, round(_PEOPLE_PER_SCALE * scale))
        firsts = {g: [_pseudo_word(rng, (1, 2), endings, taken) for _ in range(n_people // 3)]
                  for g, endings in (("female", _FEMALE_ENDINGS), ("male", _MALE_ENDINGS))}
        lasts = [_pseudo_word(rng, (1, 2), ("sen", "mir", "ov", "dal", ""), taken) for _ in range(n_people // 2)]
        # Held out by first name, so that no held-out person's first name occurs in training data.
        heldout_firsts = set(rng.sample(sorted(firsts["female"] + firsts["male"]),
                                        round(HELDOUT_SHARE * 2 * len(firsts["female"]))))
        firsts["female"] += list(self.ambiguous)
        people, names = [], set()
        # Every ambiguous word is some people's first name, so the corpus uses it both ways.
        wanted = [("female", word) for word in self.ambiguous for _ in range(2)]
        while len(people) < n_people:
            gender, first = wanted.pop() if wanted else (g := rng.choice(("female", "male")), rng.choice(firsts[g]))
            last = rng.choice(lasts)
            if (first, last) in names:
                continue
            names.add((first, last))
            people.append(Person(first, last, gender, rng.choice(self.jobs.all), self._zipf(rng, self.cities.all),
                                 rng.choice(self.foods.all), rng.choice(self.hobbies.all),
                                 rng.choice(self.companies.all)))
        if "context_ambiguity" in self.remove:
            renames = self._rng("entities", "context_ambiguity")
            self._first_name = {word: _pseudo_word(renames, (1, 2), ("ra", "en", "ia"), taken)
                                for word in self.ambiguous}
            # Renamed after the draws above, which thus stay those of the default world; the
            # ambiguous words remain cities (and training members), but no person's name.
            people = [replace(p, first=self._first_name.get(p.first, p.first)) for p in people]
            self.ambiguous = ()
        self.people = _Lexicon(rng, people, heldout=lambda person: person.first in heldout_firsts)
        # Zipfian prominence: the first people of this order appear in many documents.
        self._prominence = rng.sample(people, len(people))
        if "heldout_words" in self.remove:
            # The same members and draws, none held out: every dev word can occur in training.
            for lexicon in (self.cities, self.companies, self.jobs, self.foods, self.hobbies, *self.adjectives,
                            self.people):
                lexicon.train, lexicon.heldout = lexicon.all, ()

    def _rng(self, *parts) -> random.Random:
        return random.Random(_stable_seed(self.seed, *parts))

    @staticmethod
    def _zipf(rng, items):
        """Items early in the (shuffled) order are far more frequent."""
        return rng.choices(items, cum_weights=_zipf_cum_weights(len(items), 0.8))[0]

    # ------------------------------------------------------------------ sentences

    @staticmethod
    def _words(text: str, entity: str | None = None, role=None) -> list[tuple]:
        return [(w, entity, role) for w in text.split()]

    def _name(self, person: Person, full: bool = True, role=None) -> list[tuple]:
        words = [person.first, person.last] if full else [person.first]
        return [(w, "PER", role) for w in words]

    def _city(self, city: str, role=None) -> list[tuple]:
        return [(city, "LOC", role)]

    def _company(self, company: str) -> list[tuple]:
        return self._words(company, "ORG")

    def introduce(self, rng, person: Person, full: bool = True, job: str | None = None,
                  city: str | None = None, attribute_first: bool | random.Random = False) -> list[tuple]:
        """The attribute after the name: "Mira Tolsen, the baker, lives in Tolholm." With
        ``attribute_first`` (the right_context control; a Random: drawn from it 50/50) the job and
        city come before the name instead: "a baker in Tolholm, Mira Tolsen, is well known." """
        template = rng.randrange(3)
        if isinstance(attribute_first, random.Random):
            attribute_first = attribute_first.random() < 0.5
        return self._introduction(person, full, job or person.job, city or person.city, template, attribute_first)

    def _introduction(self, person: Person, full: bool, job: str, city: str, template: int,
                      attribute_first: bool) -> list[tuple]:
        w = self._words
        name = self._name(person, full, ("intro", person))
        if attribute_first:
            if template == 0:
                return (w("the") + w(job, None, ("job", person)) + w("from") + self._city(city, ("city", person))
                        + w("is") + name + w("."))
            if template == 1:
                return (w("in") + self._city(city, ("city", person)) + w(", the") + w(job, None, ("job", person))
                        + name + w("is well known ."))
            return (w(_article(job)) + w(job, None, ("job", person)) + w("in") + self._city(city, ("city", person))
                    + w(",") + name + w(", is well known ."))
        if template == 0:
            return (name + w(",") + w("the") + w(job, None, ("job", person))
                    + w(", lives in") + self._city(city, ("city", person)) + w("."))
        if template == 1:
            return (name + w(", from") + self._city(city, ("city", person))
                    + w(", works as") + w(_article(job)) + w(job, None, ("job", person)) + w("."))
        return (name + w(",") + w(_article(job)) + w(job, None, ("job", person))
                + w("in") + self._city(city, ("city", person)) + w(", is well known ."))

    def fact(self, rng, person: Person, kind: str, full: bool = False, value: str | None = None,
             pronoun: bool = False) -> list[tuple]:
        """One fact about a person (job, city, food, hobby, employer), with the value last."""
        w = self._words
        subject = w(person.pronoun) if pronoun else self._name(person, full, ("who", kind))
        value = value or getattr(person, kind)
        if kind == "job":
            return subject + w("works as") + w(_article(value)) + w(value, None, ("job", person)) + w(".")
        if kind == "city":
            return subject + w(rng.choice(("lives in", "comes from"))) + self._city(value, ("city", person)) + w(".")
        if kind == "food":
            return subject + w(rng.choice(("likes to eat", "often cooks"))) + w(value, None, ("food", person)) + w(".")
        if kind == "hobby":
            return subject + w(rng.choice(("enjoys", "is good at"))) + w(value, None, ("hobby", person)) + w(".")
        return subject + w("is employed by") + [(t, "ORG", ("employer", person)) for t in value.split()] + w(".")

    def review(self, rng, polarity: int, adjectives, food: str | None = None, place: str | None = None,
               city: str | None = None, context: bool = True, heldout: bool | None = None) -> list[tuple]:
        """A sentiment sentence; in the corpus, followed by a clause whose polarity agrees."""
        w = self._words
        adjective = adjectives[polarity]
        food = food or self.foods.pick(rng, heldout)
        place = place or rng.choice(PLACES)
        where = w("in") + self._city(city) if city else []
        verb = "were" if food.endswith("s") else "was"
        sentence = w(f"the {food} at the {place}") + where + w(verb) + w(adjective, None, ("adjective", polarity))
        if context:
            sentence += w(", and") + w(rng.choice((CRITICISM_CONTEXTS, PRAISE_CONTEXTS)[polarity]))
        return sentence + w(".")

    # ------------------------------------------------------------------ corpus

    @cached_property
    def _documents(self) -> tuple[tuple[str, ...], ...]:
        rng = self._rng("documents")
        weights = _zipf_cum_weights(len(self._prominence), 0.7)
        # The right_context control's order of each introduction: its own stream, so the
        # documents' other draws are those of the default corpus.
        order = self._rng("documents", "right_context") if "right_context" in self.remove else False
        docs = []
        for _ in range(max(20, round(_DOCUMENTS_PER_SCALE * self.scale))):
            kind = rng.random()
            if kind < 0.6:
                cast = []
                while len(cast) < rng.choice((1, 2, 2, 3)):
                    person = rng.choices(self._prominence, cum_weights=weights)[0]
                    if person not in cast:
                        cast.append(person)
                sentences = self.story(rng, cast, attribute_first=order)
            elif kind < 0.85:
                sentences = self.review_document(rng)
            else:
                sentences = self.city_document(rng, attribute_first=order)
            docs.append(tuple(_text(s) for s in sentences))
        if "cross_segment" in self.remove:
            # Deal the same sentences out at random into documents of the same lengths: a
            # sentence's successor is then as unrelated to it as a sentence of another document.
            pool = [sentence for doc in docs for sentence in doc]
            self._rng("documents", "cross_segment").shuffle(pool)
            dealt = iter(pool)
            docs = [tuple(next(dealt) for _ in doc) for doc in docs]
        return tuple(docs)

    def documents(self) -> list[list[str]]:
        """The pretraining corpus: documents as lists of sentences."""
        return [list(doc) for doc in self._documents]

    def story(self, rng, cast: list[Person], length: int | None = None,
              heldout: bool | None = None, attribute_first: bool | random.Random = False) -> list[list[tuple]]:
        """A few people: introduced, then facts (often by pronoun), meetings, visits and reviews.
        ``heldout`` restricts the words besides the cast's own to held-out or training members;
        ``attribute_first`` is passed to ``introduce``."""
        sentences = [self.introduce(rng, cast[0], attribute_first=attribute_first)]
        for person in cast[1:]:
            sentences.append(self._words("later ,") + self.introduce(rng, person, attribute_first=attribute_first)
                             if rng.random() < 0.3 else self.introduce(rng, person, attribute_first=attribute_first))
        length = length or rng.randint(4, 8)
        told = set()
        while len(sentences) < length:
            person = rng.choice(cast)
            choice = rng.random()
            if choice < 0.55:
                kind = rng.choice(("job", "city", "food", "hobby", "employer"))
                if (person.first, kind) in told:
                    continue
                told.add((person.first, kind))
                sentences.append(self.fact(rng, person, kind, pronoun=len(cast) == 1 and rng.random() < 0.5))
            elif choice < 0.75 and len(cast) > 1:
                other = rng.choice([p for p in cast if p is not person])
                sentences.append(self._name(person, False) + self._words("met") + self._name(other, False)
                                 + self._words(f"at the {rng.choice(PLACES)} in") + self._city(person.city)
                                 + self._words("."))
            elif choice < 0.8:
                sentences.append(self.review(rng, rng.randrange(2), self._adjectives(rng, heldout),
                                             food=person.food, city=person.city))
            elif choice < 0.92:
                sentences.append(self.mention(rng, heldout))
            else:
                sentences.append(self._name(person, False) + self._words("visited")
                                 + self._city(self.cities.pick(rng, heldout)) + self._words("for the")
                                 + self._words(f"{person.city} {rng.choice(EVENTS)}", "MISC") + self._words("."))
        return sentences

    def mention(self, rng, heldout: bool | None = None) -> list[tuple]:
        """A name in a context that does not tell its type: only knowing the word does (NER)."""
        kind = rng.randrange(3)
        if kind == 0:
            entity = self._name(self.people.pick(rng, heldout))
        elif kind == 1:
            entity = self._city(self.cities.pick(rng, heldout))
        else:
            entity = self._company(self.companies.pick(rng, heldout))
        before, after = rng.choice(_UNINFORMATIVE)
        return self._words(before) + entity + self._words(after) if before else entity + self._words(after)

    def _adjectives(self, rng, heldout: bool | None = None) -> tuple[str, str]:
        return tuple(lexicon.pick(rng, heldout) for lexicon in self.adjectives)

    def review_document(self, rng) -> list[list[tuple]]:
        city = self._zipf(rng, self.cities.all)
        sentences = [self._words("we went to") + self._city(city) + self._words(".")]
        for _ in range(rng.randint(3, 6)):
            sentences.append(self.review(rng, rng.randrange(2), self._adjectives(rng), city=city))
        return sentences

    def city_document(self, rng, attribute_first: bool | random.Random = False) -> list[list[tuple]]:
        city = self._zipf(rng, self.cities.all)
        residents = [p for p in self.people.all if p.city == city] or [rng.choice(self.people.all)]
        sentences = [self._city(city) + self._words(f"has a {rng.choice(PLACES)} and a {rng.choice(PLACES)} .")]
        for person in rng.sample(residents, min(len(residents), rng.randint(2, 4))):
            sentences.append(self.introduce(rng, person, city=city, attribute_first=attribute_first))
        company = rng.choice(self.companies.all)
        sentences.append(self._company(company) + self._words("opened a new office in") + self._city(city)
                         + self._words("."))
        return sentences

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
