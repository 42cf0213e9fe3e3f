"""The world rendered as text: sentences about its people (introductions, facts, reviews,
mentions) as (token, entity type, role) triples, and the pretraining corpus of stories,
review and city documents (``Corpus.documents``), with the controls that change the corpus.
"""

from __future__ import annotations

import random
from functools import cached_property

from .lexicon import Entities, Person, _zipf_cum_weights

PLACES = ("market", "cafe", "theatre", "library", "harbour", "museum", "park", "station")
EVENTS = ("Festival", "Fair", "Games", "Regatta", "Carnival")
PRAISE_CONTEXTS = ("everyone smiled", "we will come back", "the crowd cheered",
                   "it was worth every penny", "my friends loved it")
CRITICISM_CONTEXTS = ("everyone complained", "we will not come back", "the crowd left early",
                      "it was a waste of money", "my friends hated it")

# Contexts that fit a person, a city and a company alike.
_UNINFORMATIVE = (("everyone talked about", "."), ("", "was in the news again ."), ("we read about", "today ."),
                  ("", "made the headlines ."))

_DOCUMENTS_PER_SCALE = 3600


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


class Corpus(Entities):
    """The world's sentences and its pretraining corpus."""

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
