"""The world's vocabulary and entities: pseudo-words, the lexical classes (each split into the
members training sets use and held-out members) and the people, cities and companies drawn
from the world's seed (``Entities``). Every random stream is seeded through ``_stable_seed``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace

from ...facts.mechanisms import REMOVABLE

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
COMPANY_KINDS = ("Foods", "Motors", "Labs", "Textiles", "Shipping", "Mills")

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


class Entities:
    """Entities, facts and lexicons derived deterministically from ``seed``.

    ``scale`` multiplies the number of people, cities, companies and corpus documents (so the
    vocabulary and the corpus grow together); task sizes scale through the config. ``remove``
    names mechanisms (of ``facts.mechanisms.REMOVABLE``) to take out: a control world (``data.world``'s
    docstring). With ``remove`` empty the output is exactly that of a world without the option.
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
