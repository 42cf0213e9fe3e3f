"""A small generated world: an offline stand-in for BERT's corpus and GLUE/SQuAD.

The BERT ablations (MLM+NSP vs MLM only vs left-to-right LM, ...) need an
unlabeled pretraining corpus plus fine-tuning tasks whose solution benefits from
what pretraining learnt.  Downloading BooksCorpus/Wikipedia and GLUE is neither
possible offline nor affordable for tiny models, so this module *generates* a
consistent world from one seed:

* Entities with pseudo-word names built from a small syllable inventory (so
  names share sub-word pieces, and a WordPiece vocabulary smaller than the
  name inventory splits rare ones): people (first + last name; the first
  name's ending marks the gender, hence he/she), cities and companies.  People
  come in sibling pairs that share a last name and a birth city.
* Real English lexicons: jobs, foods, hobbies, places, review aspects and
  sentiment adjectives (25 positive, 25 negative).
* A fact table per person (``World.people``): birth city and year, job,
  employer (usually a company based where they live), the city they moved to
  and when, hobby, favourite food, sibling, a friend and opinions about places.

``World.documents()`` renders the facts as natural text: mostly biographies
(temporal order, pronoun coreference, several paraphrase templates per fact,
occasional sentences about a sibling or friend), plus city descriptions and
review-style documents in which sentiment adjectives occur in context.
Frequencies are Zipfian: some people, cities, jobs and foods are far more
common than others.  All sentences end with a full stop and carry no document
marker, so next-sentence prediction cannot rely on punctuation or ids.

``World.task(name, ...)`` builds the fine-tuning tasks from the same facts and
lexicons, with the record schema of their Hugging Face hub datasets (GLUE
``mnli``/``qnli``/``mrpc``/``sst2``, ``squad`` and ``conll2003``).  Most
negatives are near copies (a value swapped for one of similar length, another
person, the same value under a related relation), so neither length nor
bag-of-words solves them.  Like the real datasets, each task also has a share
of lexically easier cases (negated contradictions and speculative neutrals in
MNLI, fact-free sentences in QNLI, another fact in MRPC) so that tiny, briefly
fine-tuned models get off the ground.  A few sentiment adjectives and the MNLI
"mismatched" templates appear in the corpus but never in training data, so
pretraining helps generalisation.

``conll2003`` is named-entity recognition (tags ``CONLL_LABELS``, BIO) on
CoNLL-tokenised documents of 3-8 sentences written with the corpus's templates:
biographies (later naming the person by last or first name, as news does),
city, company and event reports, and reviews, whose bodies name no entities.
It adds entities the corpus lacks (MISC: demonyms, languages, events and
awards; foreign countries) and name clashes that only context resolves:
companies named after a family or a city, people whose last name is a city's,
events named after their city.  A quarter of these task-only entities never
occur in the training split, and most world people occur in few documents, so
dev/test mention many names training never saw (the corpus has the world's).

Determinism: every random stream is seeded through ``_stable_seed`` (BLAKE2 of
the parts), never Python's per-process randomised ``hash()``.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

WORLD_TASKS = ("mnli", "qnli", "mrpc", "sst2", "squad", "conll2003")

# --------------------------------------------------------------------------- lexicons

JOBS = (
    "teacher", "nurse", "engineer", "baker", "carpenter", "doctor", "lawyer", "pilot",
    "farmer", "architect", "journalist", "electrician", "librarian", "chemist",
    "accountant", "plumber", "musician", "chef", "mechanic", "dentist", "photographer",
    "tailor", "firefighter", "pharmacist", "translator", "gardener", "economist",
    "surgeon", "editor", "astronomer",
)
FOODS = (
    "pasta", "fish soup", "apple pie", "rice pudding", "cheese", "dumplings",
    "roast chicken", "lentil stew", "pancakes", "noodles", "tomato salad",
    "mushroom risotto", "lamb curry", "fried potatoes", "honey cake", "grilled salmon",
    "bean soup", "plum jam", "porridge", "pizza", "goulash", "corn bread", "chocolate",
    "strawberries", "onion tart",
)
HOBBIES = (
    "painting", "fishing", "playing chess", "hiking", "gardening", "cycling", "swimming",
    "reading poetry", "playing the piano", "baking bread", "birdwatching", "sailing",
    "knitting", "running", "collecting stamps", "taking photographs", "dancing",
    "climbing", "cooking", "playing football", "writing stories", "carving wood",
    "singing", "playing the violin", "skiing",
)
PLACES = (
    "bakery", "museum", "library", "theatre", "park", "market", "cafe", "restaurant",
    "hotel", "zoo", "cinema", "gallery", "harbour", "stadium", "bookshop",
    "concert hall", "old castle", "botanical garden", "swimming pool", "town hall",
)
# Things a review can talk about, with whether the noun is plural ("were").
ASPECTS = (
    ("food", False), ("service", False), ("staff", True), ("music", False),
    ("view", False), ("rooms", True), ("coffee", False), ("atmosphere", False),
    ("prices", True), ("exhibition", False), ("show", False), ("bread", False),
    ("seats", True), ("guide", False), ("concert", False), ("soup", False),
    ("decor", False), ("waiters", True), ("cakes", True), ("tour", False),
)
POSITIVE_ADJECTIVES = (
    "wonderful", "excellent", "delightful", "superb", "pleasant", "lovely", "charming",
    "brilliant", "fantastic", "impressive", "enjoyable", "marvellous", "splendid",
    "terrific", "outstanding", "remarkable", "fabulous", "magnificent", "stunning",
    "amazing", "great", "good", "nice", "beautiful", "memorable",
)
NEGATIVE_ADJECTIVES = (
    "awful", "terrible", "horrible", "dreadful", "dull", "boring", "disappointing",
    "unpleasant", "mediocre", "poor", "bad", "miserable", "dismal", "appalling",
    "tedious", "lousy", "shabby", "annoying", "frustrating", "depressing", "gloomy",
    "ugly", "pathetic", "atrocious", "bland",
)
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)
TRAITS = ("quiet", "patient", "curious", "shy", "stubborn", "practical", "calm", "tidy")

# How many sentiment adjectives of each polarity never occur in SST-2 training data.
N_HELDOUT_ADJECTIVES = 5

# --------------------------------------------------------------------------- facts & templates

# The per-person attributes that sentences state and tasks ask about.
FACT_KINDS = (
    "birth_city", "birth_year", "job", "employer", "moved_city", "moved_year",
    "hobby", "food", "sibling",
)

# Fact sentences about a subject.  {S}/{s}/{P}/{p}/{o} refer to the subject
# (subject / possessive / object, capitalised at sentence start); the first
# reference becomes the name when the sentence is "named", later ones pronouns.
# {a} is the article of {job}; {sib_rel} is "brother" or "sister".
STANDARD_TEMPLATES = (
    "{S} was born in {birth_city} in {birth_year}.",
    "{S} was born in {birth_year} in the city of {birth_city}.",
    "In {birth_year}, {s} was born in {birth_city}.",
    "{S} was born in {birth_city}.",
    "{S} grew up in {birth_city}.",
    "{P} hometown is {birth_city}.",
    "{S} comes from {birth_city}.",
    "{S} was born in {birth_year}.",
    "{S} was born in the year {birth_year}.",
    "{P} year of birth is {birth_year}.",
    "{S} works as {a} {job}.",
    "{S} is {a} {job} by trade.",
    "{S} earns a living as {a} {job}.",
    "{S} works for {employer}.",
    "{S} is employed by {employer}.",
    "{S} has a job at {employer}.",
    "{S} works as {a} {job} at {employer}.",
    "After finishing school, {s} found work as {a} {job} at {employer}.",
    "{S} is {a} {job} at {employer}.",
    "{S} found work as {a} {job} at {employer}.",
    "In {moved_year}, {s} moved to {moved_city}.",
    "{S} moved to {moved_city} in {moved_year}.",
    "{S} relocated to {moved_city} in {moved_year}.",
    "In {moved_year}, {s} left {p} hometown and moved to {moved_city}.",
    "{S} now lives in {moved_city}.",
    "{S} moved to {moved_city} as an adult.",
    "These days {s} lives in {moved_city}.",
    "{S} left {p} hometown in {moved_year}.",
    "{S} moved away from home in {moved_year}.",
    "{S} changed cities in {moved_year}.",
    "In {p} free time, {s} enjoys {hobby}.",
    "{S} loves {hobby}.",
    "{P} favourite hobby is {hobby}.",
    "When {s} is not working, {s} enjoys {hobby} with friends.",
    "{P} favourite food is {food}.",
    "{S} loves eating {food}.",
    "{S} likes {food} more than anything.",
    "{S} could happily eat {food} every single day of the week.",
    "{P} {sib_rel} is {sibling}.",
    "{S} has a {sib_rel} named {sibling}.",
    "{S} grew up with {p} {sib_rel}, {sibling}.",
)
# A second "genre" with its own wording.  MNLI's mismatched split uses only
# these; its train and matched splits never see them (the corpus does).
HELDOUT_TEMPLATES = (
    "{S} was born in {birth_city} back in {birth_year}.",
    "{S} is a native of {birth_city}.",
    "{birth_city} is where {s} was born.",
    "{S} came into the world in {birth_year}.",
    "The year {s} was born was {birth_year}.",
    "By profession, {s} is {a} {job}.",
    "{S} makes a living working as {a} {job}.",
    "{employer} is {p} employer.",
    "{S} is on the payroll of {employer}.",
    "{S} is on the payroll of {employer} as {a} {job}.",
    "{S} has made {p} home in {moved_city}.",
    "{moved_city} is where {s} lives today.",
    "{moved_year} was the year {s} moved away.",
    "{S} packed {p} bags and left home in {moved_year}.",
    "{S} packed up and moved to {moved_city} in {moved_year}.",
    "{S} spends {p} weekends {hobby}.",
    "Nothing makes {o} happier than {hobby}.",
    "{S} never says no to {food}.",
    "If {s} could eat one thing, it would be {food}.",
    "{sibling} is {p} {sib_rel}.",
    "{S} is very close to {p} {sib_rel} {sibling}.",
)
# Negated statements, one per fact kind and genre: MNLI hypotheses that
# contradict a stated value, or are entailed when they deny a wrong value.
NEGATED_TEMPLATES = (
    "{S} was not born in {birth_city}.",
    "{S} was not born in {birth_year}.",
    "{S} does not work as {a} {job}.",
    "{S} does not work for {employer}.",
    "{S} does not live in {moved_city}.",
    "{S} did not move away in {moved_year}.",
    "{S} does not enjoy {hobby}.",
    "{S} does not like {food}.",
    "{S} does not have a {sib_rel} named {sibling}.",
)
HELDOUT_NEGATED_TEMPLATES = (
    "{S} is not a native of {birth_city}.",
    "The year {s} was born was not {birth_year}.",
    "By profession, {s} is not {a} {job}.",
    "{employer} is not {p} employer.",
    "{moved_city} is not where {s} lives today.",
    "{moved_year} was not the year {s} moved away.",
    "{S} never spends {p} weekends {hobby}.",
    "{S} would never eat {food}.",
    "{sibling} is not {p} {sib_rel}.",
)
# Plans, wishes and feelings: never world facts, so always neutral (MNLI
# neutral hypotheses also tend to add such new content).  {city}, {job} and
# {hobby} are filled at random.
SPECULATION_TEMPLATES = (
    "{S} hopes to live in {city}.",
    "{S} plans to visit {city}.",
    "{S} wants to become {a2} {job2}.",
    "{S} wants to try {hobby2}.",
    "{S} would like a house in {city}.",
    "{S} enjoys {p} work.",
)
HELDOUT_SPECULATION_TEMPLATES = (
    "{S} dreams of visiting {city}.",
    "{S} may soon train as {a2} {job2}.",
    "{S} wishes {s} had time for {hobby2}.",
    "{S} is tired of {p} routine.",
)
# Kinds with exactly one true value: denying a wrong value is entailed.
SINGLE_VALUED = frozenset(FACT_KINDS) - {"hobby", "food"}
# Same kind of value, different relation ("born in X" vs "moved to X").
SWAPPED_KIND = {"birth_city": "moved_city", "moved_city": "birth_city",
                "birth_year": "moved_year", "moved_year": "birth_year"}

# Sentences about a second person ({x_...}: their facts) related to the
# subject by {rel}: distractors for SQuAD/MNLI/QNLI, and corpus variety.
DISTRACTOR_TEMPLATES = (
    "{P} {rel}, {x_name}, works as {x_a} {x_job}.",
    "{P} {rel} {x_name} was born in {x_birth_year}.",
    "{P} {rel} {x_name} moved to {x_moved_city} in {x_moved_year}.",
    "{P} {rel} {x_name} works for {x_employer}.",
    "{P} {rel} {x_name} loves {x_hobby}.",
    "{P} {rel} {x_name} grew up in {x_birth_city}.",
    "{P} {rel}, {x_name}, loves eating {x_food}.",
)
OPINION_TEMPLATES = (
    "{S} thinks the {place} in {city} is {adj}.",
    "According to {o}, the {place} in {city} is {adj}.",
    "{S} often says that the {place} in {city} is {adj}.",
)
_REVIEW_OPENERS = (
    "Last {month}, {who} visited the {place} in {city}.",
    "In {month}, {who} spent an afternoon at the {place} in {city}.",
    "On a rainy day in {month}, {who} went to the {place} in {city}.",
)
# Review closers by polarity (0 negative, 1 positive).
_REVIEW_CLOSERS = (
    ("{S} will never go back.", "{S} would not recommend it to anyone.",
     "{S} left feeling let down."),
    ("{S} would happily go back.", "{S} would recommend it to anyone.",
     "{S} cannot wait to return."),
)
# Fact-free sentences: early ones belong to childhood, late ones anywhere after.
CHILDHOOD_FILLERS = (
    "As a child, {s} spent every summer near the sea.",
    "{S} was a {trait} child who read a lot.",
    "At school, {s} was known for {p} neat handwriting.",
    "{P} parents ran a small shop near the station.",
)
LATE_FILLERS = (
    "{S} rarely talks about {p} childhood.",
    "Friends describe {o} as {trait} and {trait2}.",
    "{S} is known for {p} sense of humour.",
    "{S} spends most evenings at home with a good book.",
    "{S} once travelled across the whole country by train.",
    "{S} keeps a small diary on {p} desk.",
    "Neighbours say {s} is always {trait}.",
    "{S} has never owned a car and walks everywhere.",
    "{S} usually wakes up before sunrise and goes for a long walk.",
    "On Sundays, {s} likes to visit old friends in the countryside.",
    "Every winter, {s} spends a few quiet weeks by the lake.",
)
QUESTIONS = {
    "birth_city": ("Where was {name} born?", "In which city was {name} born?",
                   "What is {name}'s hometown?"),
    "birth_year": ("When was {name} born?", "In what year was {name} born?",
                   "What year was {name} born in?"),
    "job": ("What does {name} do for a living?", "What does {name} work as?",
            "What is {name}'s job?"),
    "employer": ("Which company does {name} work for?", "Who is {name} employed by?",
                 "Where does {name} have a job?"),
    "moved_city": ("Where does {name} live now?", "To which city did {name} move?",
                   "Where did {name} move to?"),
    "moved_year": ("When did {name} move to {moved_city}?",
                   "In what year did {name} leave {p} hometown?", "When did {name} move away?"),
    "hobby": ("What does {name} enjoy doing in {p} free time?",
              "What is {name}'s favourite hobby?", "What does {name} love doing?"),
    "food": ("What is {name}'s favourite food?", "What does {name} love eating?",
             "Which food does {name} like best?"),
    "sibling": ("Who is {name}'s {sib_rel}?", "What is the name of {name}'s {sib_rel}?",
                "Who did {name} grow up with?"),
}

_PRONOUNS = {
    "female": {"S": "She", "s": "she", "P": "Her", "p": "her", "o": "her"},
    "male": {"S": "He", "s": "he", "P": "His", "p": "his", "o": "him"},
}
_REFERENCE_SLOTS = frozenset(_PRONOUNS["female"])

# Syllables for pseudo-word names; endings make names look like a name class.
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
           "br", "dr", "gr", "kr", "st", "th", "tr", "sh")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou", "ia")
_CODAS = ("", "", "", "n", "r", "l", "s", "m", "k")
_FEMALE_ENDINGS = ("a", "ina", "ella", "ora", "isa", "ene")
_MALE_ENDINGS = ("o", "an", "ek", "us", "ar", "ion")
_LAST_ENDINGS = ("", "sen", "mir", "ov", "wick", "dal")
_CITY_ENDINGS = ("holm", "ford", "burg", "port", "vale", "stad", "mouth", "gard")
_COMPANY_SUFFIXES = ("Industries", "Labs", "Group", "Systems", "Motors", "Foods",
                     "Media", "Works", "Bank", "Textiles")

_SIZES = ("small", "large", "busy", "quiet", "old", "growing")
_REGIONS = ("north", "south", "east", "west")

# Corpus composition per person at scale 1.0 (about 3000 documents in total).
_PEOPLE_PER_SCALE = 1200
_CITIES_PER_SCALE = 80
_COMPANIES_PER_SCALE = 150
_EXTRA_BIOGRAPHIES_PER_PERSON = 0.6
_REVIEWS_PER_PERSON = 0.65
_DOCUMENTS_PER_CITY = 4

_MAX_ATTEMPTS = 1000  # redraws allowed per task record before giving up on dedupe


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    gender: str  # "female" | "male"
    birth_city: str
    birth_year: int
    job: str
    employer: str
    moved_city: str
    moved_year: int
    hobby: str
    food: str
    sibling: str  # full name of the sibling (same last name and birth city)
    sibling_relation: str  # "brother" | "sister": what the sibling is to this person
    friend: str  # full name of another person
    opinions: tuple[tuple[str, str, str], ...]  # (place, city, adjective)

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def facts(self) -> dict[str, str]:
        """The FACT_KINDS values as they appear in text."""
        return {kind: str(getattr(self, kind)) for kind in FACT_KINDS}


@dataclass(frozen=True)
class City:
    name: str
    size: str
    region: str
    founded: int
    landmark: str  # a place from PLACES
    landmark_adjective: str  # what visitors say about the landmark
    speciality: str  # a food from FOODS


@dataclass(frozen=True)
class Company:
    name: str
    city: str  # headquarters


@dataclass(frozen=True)
class _Template:
    """A sentence pattern pre-split into (is_slot, text) pieces."""

    text: str
    pieces: tuple[tuple[bool, str], ...]
    kinds: frozenset[str]  # subject facts it states
    other_kinds: frozenset[str]  # facts of the second person ({x_...} slots)


@dataclass(frozen=True)
class _Sentence:
    text: str
    # (person name, fact kind, start, end) for every fact value in the text.
    mentions: tuple[tuple[str, str, int, int], ...] = ()


_SLOT = re.compile(r"\{(\w+)\}")


def _parse(text: str) -> _Template:
    pieces, last = [], 0
    for match in _SLOT.finditer(text):
        if match.start() > last:
            pieces.append((False, text[last:match.start()]))
        pieces.append((True, match.group(1)))
        last = match.end()
    if last < len(text):
        pieces.append((False, text[last:]))
    slots = {piece for is_slot, piece in pieces if is_slot}
    return _Template(
        text=text,
        pieces=tuple(pieces),
        kinds=frozenset(slots & set(FACT_KINDS)),
        other_kinds=frozenset(s[2:] for s in slots if s[2:] in FACT_KINDS and s.startswith("x_")),
    )


class _TemplatePool:
    """Fact templates of one genre, indexed the ways the generators need them."""

    def __init__(self, texts):
        self.templates = tuple(_parse(t) for t in texts)
        self.by_kinds: dict[frozenset, list[_Template]] = {}
        for template in self.templates:
            self.by_kinds.setdefault(template.kinds, []).append(template)
        # Biographies open with the name and the birth city.
        self.openers = [t for t in self.templates if t.text.startswith("{S}")
                        and "birth_city" in t.kinds and t.kinds <= {"birth_city", "birth_year"}]

    def single(self, kind: str) -> list[_Template]:
        return self.by_kinds.get(frozenset([kind]), [])

    def stating(self, kind: str) -> list[_Template]:
        return [t for t in self.templates if kind in t.kinds]

    def within(self, allowed, exclude=frozenset()) -> list[_Template]:
        return [t for t in self.templates if t.kinds <= allowed and not t.kinds & exclude]


_STANDARD = _TemplatePool(STANDARD_TEMPLATES)
_HELDOUT = _TemplatePool(HELDOUT_TEMPLATES)
_ALL = _TemplatePool(STANDARD_TEMPLATES + HELDOUT_TEMPLATES)
_STANDARD_NEGATED = _TemplatePool(NEGATED_TEMPLATES)
_HELDOUT_NEGATED = _TemplatePool(HELDOUT_NEGATED_TEMPLATES)
_STANDARD_SPECULATION = tuple(_parse(t) for t in SPECULATION_TEMPLATES)
_HELDOUT_SPECULATION = tuple(_parse(t) for t in HELDOUT_SPECULATION_TEMPLATES)
_DISTRACTORS = tuple(_parse(t) for t in DISTRACTOR_TEMPLATES)
_OPINIONS = tuple(_parse(t) for t in OPINION_TEMPLATES)
_CHILDHOOD = tuple(_parse(t) for t in CHILDHOOD_FILLERS)
_LATE = tuple(_parse(t) for t in LATE_FILLERS)

# Optional biography sections in temporal order; each yields one sentence.
_BIO_SECTIONS = (
    "birth_year", "childhood", "sibling", "sibling_detail", "move", "work", "work_rest",
    "friend", "food", "hobby", "opinion", "late", "late", "late",
)
_SECTION_KINDS = {
    "birth_year": frozenset({"birth_year"}),
    "sibling": frozenset({"sibling"}),
    "move": frozenset({"moved_city", "moved_year"}),
    "work": frozenset({"job", "employer"}),
    "work_rest": frozenset({"job", "employer"}),
    "food": frozenset({"food"}),
    "hobby": frozenset({"hobby"}),
}


# --------------------------------------------------------------------------- named entities

# CoNLL-2003 NER labels in the hub dataset's index order.
CONLL_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
_CONLL_INDEX = {label: i for i, label in enumerate(CONLL_LABELS)}

# The NER task adds entities the corpus lacks (MISC: demonyms, languages,
# events, awards; foreign countries) and name clashes across types: companies
# named after a surname or a city, people whose surname is a city's name.
_EVENT_KINDS = ("Marathon", "Film Festival", "Book Fair", "Music Festival", "Open", "Jazz Week")
_AWARD_KINDS = ("Prize", "Medal", "Award")
_LANGUAGE_ENDINGS = ("ish", "ic", "ese")
_COUNTRY_ENDINGS = ("ia", "land", "istan")
_ORDINALS = ("second", "third", "fifth", "tenth", "twelfth", "twentieth", "fiftieth")
# NER-only entities at scale 1.0; a share of each kind never occurs in training.
_NAMESAKE_PAIRS_PER_SCALE = 10
_DERIVED_COMPANIES_PER_SCALE = 30
_AWARDS_PER_SCALE = 12
_RARE_SHARE = 0.25

# Entity slots of the fact templates ({S}-style references are PER when named).
_ENTITY_SLOTS = {"birth_city": "LOC", "moved_city": "LOC", "employer": "ORG", "sibling": "PER",
                 "name": "PER"}

# Sentences about a person beyond the corpus's facts, filled like fact templates.
NER_PERSON_TEMPLATES = (
    "{S} speaks {language} at home.",
    "{S} grew up speaking {language}.",
    "{S} also speaks {other_language}.",
    "{S} is proud of {p} {demonym} roots.",
    "In {year}, {s} won the {award}.",
    "{S} won the {award} in {year}.",
    "{S} ran the {event} in {year}.",
    "{S} has never missed the {event}.",
    "{S} joined {employer} in {year} after a few years at {company}.",
    "Before joining {employer}, {s} worked for {company}.",
    "{S} once spent a year working in {country}.",
    "{S} has many {country_demonym} friends.",
    "{S} once met {person} at the {event}.",
)
_NER_PERSON = tuple(_parse(t) for t in NER_PERSON_TEMPLATES)


# --------------------------------------------------------------------------- helpers


def _stable_seed(*parts) -> int:
    """A process-independent 64-bit seed from arbitrary printable parts."""
    key = "\x1f".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def _zipf_cum_weights(n: int, exponent: float) -> list[float]:
    total, cumulative = 0.0, []
    for rank in range(1, n + 1):
        total += rank ** -exponent
        cumulative.append(total)
    return cumulative


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _capitalise(text: str) -> str:
    return text[0].upper() + text[1:]


def _pseudo_word(rng, syllables: tuple[int, int], endings, taken: set[str]) -> str:
    """A capitalised pseudo-word not in ``taken``, which it is added to."""
    while True:
        n = rng.randint(*syllables)
        stem = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                       for _ in range(n))
        name = _capitalise(stem + rng.choice(endings))
        if name not in taken:
            taken.add(name)
            return name


def _biography_length(rng) -> int:
    """5-12 sentences, skewed towards long biographies (mean about 10.5)."""
    return 12 - min(rng.randint(0, 7), rng.randint(0, 7), rng.randint(0, 7))


def _some(rng, items, k: int = 2) -> list:
    """Up to ``k`` random items."""
    return rng.sample(items, min(k, len(items)))


def _word_count(sentences) -> int:
    return sum(len(s.text.split()) for s in sentences)


def _join(sentences) -> tuple[str, list[tuple[str, str, int, int]]]:
    """Concatenate sentences into a paragraph, shifting mention offsets."""
    texts, mentions, offset = [], [], 0
    for sentence in sentences:
        texts.append(sentence.text)
        mentions.extend((who, kind, start + offset, end + offset)
                        for who, kind, start, end in sentence.mentions)
        offset += len(sentence.text) + 1
    return " ".join(texts), mentions


# --------------------------------------------------------------------------- named-entity helpers

_TOKEN = re.compile(r"'s\b|\w+(?:-\w+)*|[^\w\s]")  # CoNLL style: "'s" and punctuation apart
_DEMONYM_RULES = (("holm", "holmer"), ("burg", "burger"), ("stad", "stader"), ("vale", "valian"),
                  ("ia", "ian"), ("land", "landic"), ("istan", "istani"))

_Segment = tuple[str, str | None]  # (text, entity type or None)


def _demonym(place: str) -> str:
    """'Kaimholm' -> 'Kaimholmer', 'Douport' -> 'Douportian', 'Velmaria' -> 'Velmarian'."""
    for ending, replacement in _DEMONYM_RULES:
        if place.endswith(ending):
            return place[:-len(ending)] + replacement
    return place + "ian"


@lru_cache(maxsize=None)
def _template(text: str) -> _Template:
    return _parse(text)


def _fill(template: _Template | str, values: dict, name: str | None = None) -> list[_Segment]:
    """Fill a template into segments; ``values`` maps slots to text or (text, type).

    As in ``World._render``, the first reference slot ({S}, {p}, ...) becomes
    ``name`` (a person) when one is given, later ones pronouns from ``values``.
    """
    if isinstance(template, str):
        template = _template(template)
    segments, use_name = [], name is not None
    for is_slot, piece in template.pieces:
        if not is_slot:
            segments.append((piece, None))
        elif piece in _REFERENCE_SLOTS and use_name:
            segments.append((name, "PER"))
            if piece in "Pp":
                segments.append(("'s", None))
            use_name = False
        else:
            value = values[piece]
            segments.append(value if isinstance(value, tuple) else (value, None))
    return segments


def _tokenise(segments: list[_Segment]) -> tuple[list[str], list[int]]:
    """CoNLL tokens and BIO tag indices of a filled sentence."""
    tokens, tags = [], []
    for text, kind in segments:
        words = _TOKEN.findall(text)
        tokens.extend(words)
        if kind is None:
            tags.extend([0] * len(words))
        else:
            tags.append(_CONLL_INDEX[f"B-{kind}"])
            tags.extend([_CONLL_INDEX[f"I-{kind}"]] * (len(words) - 1))
    return tokens, tags


@dataclass(frozen=True)
class _Pool:
    """Entities only the NER task has: ``rare`` ones never occur in its training split."""

    common: tuple
    rare: tuple

    @classmethod
    def split(cls, rng, items) -> _Pool:
        items = rng.sample(items, len(items))
        n_rare = max(1, round(len(items) * _RARE_SHARE))
        return cls(common=tuple(items[n_rare:]), rare=tuple(items[:n_rare]))

    def items(self, rare: bool) -> tuple:
        return self.common + self.rare if rare else self.common

    def pick(self, rng, rare: bool):
        return rng.choice(self.items(rare))


@dataclass(frozen=True)
class _NamedEntities:
    """What the NER task draws on beyond the corpus's entities."""

    people: dict[str, Person]  # world people and namesakes by full name
    popular: list[Person]  # world people, most often in the news first
    popular_weights: list[float]
    namesakes: _Pool  # sibling pairs whose last name is a city's name
    companies: _Pool  # companies named after a last name or a city
    employees: dict[str, list[Person]]  # world company -> people working there
    events: _Pool  # (name, city), e.g. ("Douport Marathon", "Douport")
    awards: _Pool  # e.g. "Dralpudal Prize"
    languages: dict[str, str]  # region -> language
    other_languages: _Pool
    countries: _Pool  # abroad: places no person lives in
    demonyms: dict[str, str]  # city or country -> demonym
    cities: dict[str, City]


# --------------------------------------------------------------------------- the world


class World:
    """Entities, facts and lexicons derived deterministically from ``seed``.

    ``scale`` multiplies the number of people, cities and companies, and so the
    size of the corpus returned by :meth:`documents`.
    """

    def __init__(self, seed: int = 0, scale: float = 1.0):
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.seed = seed
        self.scale = scale
        rng = self._rng("entities")
        self._used_names: set[str] = set()
        self.cities = self._make_cities(rng, max(6, round(_CITIES_PER_SCALE * scale)))
        self.companies = self._make_companies(rng, max(6, round(_COMPANIES_PER_SCALE * scale)))
        self._lexicon_order = {  # which jobs/foods/hobbies are common differs per seed
            name: rng.sample(words, len(words))
            for name, words in (("job", JOBS), ("food", FOODS), ("hobby", HOBBIES))
        }
        self.people = self._make_people(rng, 2 * max(4, round(_PEOPLE_PER_SCALE * scale / 2)))
        self._by_name = {person.name: person for person in self.people}
        self._slot_values = {person.name: self._values_of(person) for person in self.people}
        heldout = (rng.sample(NEGATIVE_ADJECTIVES, N_HELDOUT_ADJECTIVES),
                   rng.sample(POSITIVE_ADJECTIVES, N_HELDOUT_ADJECTIVES))
        # Sentiment adjectives indexed by polarity (0 negative, 1 positive).
        self.adjectives = (NEGATIVE_ADJECTIVES, POSITIVE_ADJECTIVES)
        self.train_adjectives = tuple(tuple(a for a in words if a not in held)
                                      for words, held in zip(self.adjectives, heldout))
        self.heldout_adjectives = tuple(sorted(heldout[0] + heldout[1]))

    def person(self, name: str) -> Person:
        return self._by_name[name]

    def _rng(self, *parts) -> random.Random:
        return random.Random(_stable_seed(self.seed, *parts))

    # ------------------------------------------------------------------ entities

    def _new_name(self, rng, syllables: tuple[int, int], endings) -> str:
        return _pseudo_word(rng, syllables, endings, self._used_names)

    def _make_cities(self, rng, n: int) -> list[City]:
        return [City(name=self._new_name(rng, (1, 2), _CITY_ENDINGS),
                     size=rng.choice(_SIZES), region=rng.choice(_REGIONS),
                     founded=rng.randint(900, 1850), landmark=rng.choice(PLACES),
                     landmark_adjective=rng.choice(rng.choice((NEGATIVE_ADJECTIVES,
                                                               POSITIVE_ADJECTIVES))),
                     speciality=rng.choice(FOODS))
                for _ in range(n)]

    def _make_companies(self, rng, n: int) -> list[Company]:
        city_weights = _zipf_cum_weights(len(self.cities), 0.8)
        return [Company(name=f"{self._new_name(rng, (1, 2), ('ex', 'on', 'ia', 'ar', ''))} "
                             f"{rng.choice(_COMPANY_SUFFIXES)}",
                        city=rng.choices(self.cities, cum_weights=city_weights)[0].name)
                for _ in range(n)]

    def _zipf_choice(self, rng, items, exponent: float = 0.8):
        return rng.choices(items, cum_weights=_zipf_cum_weights(len(items), exponent))[0]

    def _make_people(self, rng, n: int) -> list[Person]:
        """People come in sibling pairs sharing a last name and a birth city."""
        first_names = {gender: [self._new_name(rng, (1, 2), endings)
                                for _ in range(max(10, n // 3))]
                       for gender, endings in (("female", _FEMALE_ENDINGS),
                                               ("male", _MALE_ENDINGS))}
        city_names = [city.name for city in self.cities]
        companies_in = {}
        for company in self.companies:
            companies_in.setdefault(company.city, []).append(company.name)
        rows = []
        for _ in range(n // 2):
            last = self._new_name(rng, (2, 2), _LAST_ENDINGS)
            birth_city = self._zipf_choice(rng, city_names)
            rows.extend(self._sibling_pair(rng, last, birth_city, first_names, city_names,
                                           companies_in))
        names = [f"{row['first']} {row['last']}" for row in rows]
        for i, row in enumerate(rows):
            friend = rng.choice(names)
            while friend in (names[i], row["sibling"]):
                friend = rng.choice(names)
            row["friend"] = friend
        return [Person(**row) for row in rows]

    def _sibling_pair(self, rng, last, birth_city, first_names, city_names,
                      companies_in) -> list[dict]:
        """Facts of a brother/sister pair (every field but ``friend``)."""
        first_year = rng.randint(1945, 1990)
        pair = []
        for year in (first_year, first_year + rng.randint(1, 9)):
            gender = rng.choice(("female", "male"))
            first = self._zipf_choice(rng, first_names[gender], 0.7)
            while pair and first == pair[0]["first"]:
                first = rng.choice(first_names[gender])
            pair.append(self._personal_facts(rng, first, last, gender, birth_city, year,
                                             city_names, companies_in))
        for me, sibling in ((pair[0], pair[1]), (pair[1], pair[0])):
            me["sibling"] = f"{sibling['first']} {last}"
            me["sibling_relation"] = "sister" if sibling["gender"] == "female" else "brother"
        return pair

    def _personal_facts(self, rng, first, last, gender, birth_city, birth_year,
                        city_names, companies_in) -> dict:
        moved_city = birth_city
        while moved_city == birth_city:
            moved_city = self._zipf_choice(rng, city_names)
        local = companies_in.get(moved_city)
        employer = (rng.choice(local) if local and rng.random() < 0.8
                    else self._zipf_choice(rng, [c.name for c in self.companies]))
        opinions = tuple(
            (rng.choice(PLACES), rng.choice((birth_city, moved_city)),
             self._zipf_choice(rng, rng.choice((NEGATIVE_ADJECTIVES, POSITIVE_ADJECTIVES)), 0.5))
            for _ in range(rng.randint(1, 2)))
        return dict(first=first, last=last, gender=gender, birth_city=birth_city,
                    birth_year=birth_year, job=self._zipf_choice(rng, self._lexicon_order["job"]),
                    employer=employer, moved_city=moved_city,
                    moved_year=min(2023, birth_year + rng.randint(18, 35)),
                    hobby=self._zipf_choice(rng, self._lexicon_order["hobby"]),
                    food=self._zipf_choice(rng, self._lexicon_order["food"]), opinions=opinions)

    @staticmethod
    def _values_of(person: Person) -> dict[str, str]:
        return {**person.facts, "name": person.name, "a": _article(person.job),
                "sib_rel": person.sibling_relation}

    # ------------------------------------------------------------------ rendering

    def _render(self, template: _Template, subject: Person, named: bool = False,
                other: Person | None = None, override: dict | None = None,
                extra: dict | None = None) -> _Sentence:
        """Fill a template for ``subject`` and record where each fact value sits.

        ``override`` replaces subject facts (used for contradictions); ``other``
        fills the {x_...} slots; ``extra`` fills non-fact slots (place, adj...).
        """
        values = self._slot_values[subject.name]
        if override:
            values = {**values, **override}
            values["a"] = _article(values["job"])
        other_values = self._slot_values[other.name] if other else {}
        pronouns = _PRONOUNS[subject.gender]
        parts, mentions, position, use_name = [], [], 0, named
        for is_slot, piece in template.pieces:
            if not is_slot:
                value = piece
            elif piece in _REFERENCE_SLOTS:
                value = pronouns[piece]
                if use_name:
                    value = subject.name + ("'s" if piece in "Pp" else "")
                use_name = False
            elif piece.startswith("x_"):
                value = other_values[piece[2:]]
                if piece[2:] in FACT_KINDS:
                    mentions.append((other.name, piece[2:], position, position + len(value)))
                elif piece == "x_name" and other.name == subject.sibling:
                    mentions.append((subject.name, "sibling", position, position + len(value)))
            elif piece == "rel":
                value = subject.sibling_relation if other.name == subject.sibling else "friend"
            elif piece in values:
                value = values[piece]
                if piece in FACT_KINDS:
                    mentions.append((subject.name, piece, position, position + len(value)))
            else:
                value = extra[piece]
            parts.append(value)
            position += len(value)
        return _Sentence("".join(parts), tuple(mentions))

    def _question(self, rng, person: Person, kind: str) -> str:
        return rng.choice(QUESTIONS[kind]).format(
            name=person.name, p=_PRONOUNS[person.gender]["p"],
            sib_rel=person.sibling_relation, moved_city=person.moved_city)

    def _alternative(self, rng, kind: str, value: str, person: Person) -> str:
        """A wrong value for ``kind`` of about the same length (no length cue)."""
        if kind in ("birth_year", "moved_year"):
            return str(int(value) + rng.choice((-1, 1)) * rng.randint(1, 12))
        if kind == "sibling":  # same gender keeps "brother"/"sister" right
            gender = self.person(value).gender
            pool = [p.name for p in self.people if p.gender == gender and p.name != person.name]
        else:
            pool = {"birth_city": [c.name for c in self.cities],
                    "moved_city": [c.name for c in self.cities],
                    "employer": [c.name for c in self.companies],
                    "job": JOBS, "hobby": HOBBIES, "food": FOODS}[kind]
        words = len(value.split())
        candidates = [v for v in pool if v != value and len(v.split()) == words
                      and abs(len(v) - len(value)) <= 2]
        if not candidates:
            candidates = sorted((v for v in pool if v != value),
                                key=lambda v: abs(len(v) - len(value)))[:5]
        return rng.choice(candidates)

    def _similar_person(self, rng, person: Person) -> Person:
        """Another person: the sibling (same last name) or one with a similar name length."""
        if rng.random() < 0.5:
            return self.person(person.sibling)
        while True:
            other = rng.choice(self.people)
            if other is not person and abs(len(other.name) - len(person.name)) <= 2:
                return other

    # ------------------------------------------------------------------ documents

    @cached_property
    def _documents(self) -> tuple[tuple[str, ...], ...]:
        rng = self._rng("documents")
        n = len(self.people)
        docs = [self._biography(rng, person, _biography_length(rng)) for person in self.people]
        # Zipfian extra biographies: popular people are written about again and again.
        popular = rng.sample(self.people, n)
        weights = _zipf_cum_weights(n, 0.7)
        for _ in range(round(_EXTRA_BIOGRAPHIES_PER_PERSON * n)):
            person = rng.choices(popular, cum_weights=weights)[0]
            docs.append(self._biography(rng, person, _biography_length(rng)))
        city_weights = _zipf_cum_weights(len(self.cities), 0.8)
        for _ in range(_DOCUMENTS_PER_CITY * len(self.cities)):
            city = rng.choices(self.cities, cum_weights=city_weights)[0]
            docs.append(self._city_document(rng, city))
        for _ in range(round(_REVIEWS_PER_PERSON * n)):
            docs.append(self._review_document(rng))
        rng.shuffle(docs)
        return tuple(tuple(s.text for s in doc) for doc in docs)

    def documents(self) -> list[list[str]]:
        """The pretraining corpus: documents as ordered lists of sentences."""
        return [list(doc) for doc in self._documents]

    def _biography(self, rng, person: Person, n_sentences: int,
                   required: tuple[str, ...] = ()) -> list[_Sentence]:
        """``n_sentences`` sentences about ``person``, in temporal order.

        The first names the person and their birth city; the rest mostly use
        pronouns.  Sections in ``required`` are always included.
        """
        opener = rng.choice(_ALL.openers)
        sentences = [self._render(opener, person, named=True)]
        stated = set(opener.kinds)
        optional = [i for i, s in enumerate(_BIO_SECTIONS) if s not in required]
        chosen = {i for i, s in enumerate(_BIO_SECTIONS) if s in required}
        n_optional = min(len(optional), max(0, n_sentences - 1 - len(chosen)))
        chosen.update(rng.sample(optional, n_optional))
        late = rng.sample(_LATE, len(_LATE))  # fillers, each used at most once
        for i in sorted(chosen):
            sentences.append(self._bio_section(rng, _BIO_SECTIONS[i], person, stated, late))
        return sentences

    def _bio_section(self, rng, section, person, stated, late) -> _Sentence:
        """One sentence for ``section``; a filler when it has nothing new to say."""
        named = rng.random() < 0.15
        if section in _SECTION_KINDS:
            allowed = _SECTION_KINDS[section]
            if section == "work_rest":  # whichever of job/employer is still unsaid
                allowed = frozenset(k for k in allowed if k not in stated)
            candidates = [t for t in _ALL.within(allowed, exclude=stated) if t.kinds]
            if not candidates:
                return self._filler(rng, late.pop(), person)
            template = rng.choice(candidates)
            stated.update(template.kinds)
            return self._render(template, person, named)
        if section in ("sibling_detail", "friend"):
            other = self.person(person.sibling if section == "sibling_detail" else person.friend)
            return self._render(rng.choice(_DISTRACTORS), person, named, other=other)
        if section == "opinion":
            return self._opinion(rng, person, named)
        template = rng.choice(_CHILDHOOD) if section == "childhood" else late.pop()
        return self._filler(rng, template, person, named)

    def _opinion(self, rng, person, named) -> _Sentence:
        place, city, adj = rng.choice(person.opinions)
        return self._render(rng.choice(_OPINIONS), person, named,
                            extra={"place": place, "city": city, "adj": adj})

    def _opinion_or_filler(self, rng, person) -> _Sentence:
        """A named sentence about ``person`` that states none of their facts."""
        if rng.random() < 0.3:
            return self._opinion(rng, person, named=True)
        return self._filler(rng, rng.choice(_CHILDHOOD + _LATE), person, named=True)

    def _filler(self, rng, template, person, named=False) -> _Sentence:
        trait, trait2 = rng.sample(TRAITS, 2)
        return self._render(template, person, named, extra={"trait": trait, "trait2": trait2})

    @cached_property
    def _city_index(self) -> dict[str, tuple[list[Person], list[Person], list[Company]]]:
        """City name -> (people born there, people who moved there, companies)."""
        index = {city.name: ([], [], []) for city in self.cities}
        for person in self.people:
            index[person.birth_city][0].append(person)
            index[person.moved_city][1].append(person)
        for company in self.companies:
            index[company.city][2].append(company)
        return index

    def _city_document(self, rng, city: City) -> list[_Sentence]:
        """A description of the city; the people and companies named are real."""
        name = city.name
        natives, movers, companies = self._city_index[name]
        pool = [
            f"It was founded in {city.founded}.",
            f"The {city.landmark} in {name} is famous across the region.",
            f"Visitors often say that the {city.landmark} there is {city.landmark_adjective}.",
            f"The local speciality is {city.speciality}.",
            f"Every {rng.choice(MONTHS)}, the city holds a large market.",
            f"Many people in {name} enjoy {rng.choice(HOBBIES)}.",
        ]
        pool += [f"{c.name} has its headquarters in {name}." for c in _some(rng, companies)]
        pool += [f"{p.name} was born in {name} in {p.birth_year}." for p in _some(rng, natives)]
        pool += [f"{p.name} moved to {name} in {p.moved_year}." for p in _some(rng, movers)]
        body = sorted(rng.sample(range(len(pool)), min(len(pool), rng.randint(4, 7))))
        intro = f"{name} is a {city.size} city in the {city.region} of the country."
        return [_Sentence(intro)] + [_Sentence(pool[i]) for i in body]

    # ------------------------------------------------------------------ sentiment

    def _sentiment_clause(self, rng, polarity: int, adjectives, negate: bool,
                          place: str | None = None) -> str:
        """'the <thing> was [not] <adj>' whose overall polarity is ``polarity``.

        With ``place`` (a review) the thing is an aspect of that place.
        """
        roll = rng.random()
        if roll < 0.75:
            noun, plural = rng.choice(ASPECTS)
            at = place or rng.choice(PLACES)
            thing = f"the {noun}" if roll < 0.5 else f"the {noun} at the {at}"
        else:
            plural = False
            thing = f"the {place}" if place else (
                f"the {rng.choice(PLACES)} in {rng.choice(self.cities).name}")
        verb = "were" if plural else "was"
        negation = rng.choice(("not ", "never ")) if negate else ""
        adverb = rng.choice(("", "", "", "very ", "really ", "quite ", "truly "))
        adjective = rng.choice(adjectives[polarity ^ negate])
        return f"{thing} {verb} {negation}{adverb}{adjective}"

    def _sentiment_sentence(self, rng, polarity: int, adjectives, prefixes,
                            place: str | None = None) -> str:
        """A sentence whose sentiment is ``polarity``: plain, negated or contrastive.

        In contrastive sentences ('A but B', 'Although A, B') the last clause
        decides the polarity, as in SST-2.
        """
        def clause(p):
            return self._sentiment_clause(rng, p, adjectives, rng.random() < 0.25, place)

        form = rng.random()
        if form < 0.65:
            return _capitalise(rng.choice(prefixes) + clause(polarity)) + "."
        first = clause(1 - polarity if rng.random() < 0.8 else polarity)
        if form < 0.9:
            return _capitalise(f"{first}{rng.choice((' but ', ', but '))}{clause(polarity)}.")
        return f"Although {first}, {clause(polarity)}."

    def _review_document(self, rng) -> list[_Sentence]:
        """A short review in which one polarity dominates, by a person or by 'I'."""
        reviewer = rng.choice(self.people)
        if rng.random() < 0.6:
            place, city, adjective = rng.choice(reviewer.opinions)
            polarity = int(adjective in POSITIVE_ADJECTIVES)
            ref = dict(_PRONOUNS[reviewer.gender])
            first = reviewer.name
        else:
            place, city = rng.choice(PLACES), rng.choice(self.cities).name
            polarity = rng.randint(0, 1)
            ref = {"S": "I", "s": "I", "P": "My", "p": "my", "o": "me"}
            first = "I"
        opener = rng.choice(_REVIEW_OPENERS).format(month=rng.choice(MONTHS), who=first,
                                                    place=place, city=city)
        prefixes = ("", "", "", f"{ref['s']} thought ", f"{ref['s']} felt that ")
        body = []
        for _ in range(rng.randint(3, 6)):
            # Reviews are mostly, not entirely, of one polarity.
            p = polarity if rng.random() < 0.85 else 1 - polarity
            body.append(self._sentiment_sentence(rng, p, self.adjectives, prefixes, place))
        closer = rng.choice(_REVIEW_CLOSERS[polarity]).format(**ref)
        return [_Sentence(t) for t in [opener, *body, closer]]

    # ------------------------------------------------------------------ tasks

    def task(self, name: str, n_train: int, n_dev: int, seed: int = 0) -> dict[str, list[dict]]:
        """Fine-tuning data for ``name`` in the schema of its hub dataset.

        Development splits are drawn first (so they do not depend on n_train),
        then the training split, skipping any example already drawn.
        """
        if name not in WORLD_TASKS:
            raise ValueError(f"unknown task {name!r}; expected one of {WORLD_TASKS}")
        if n_train < 0 or n_dev < 0:
            raise ValueError("n_train and n_dev must be non-negative")
        if name == "conll2003":
            return self._conll2003(n_train, n_dev, seed)
        splits = _SPLITS[name]
        generate = {"mnli": self._mnli_example, "qnli": self._qnli_example,
                    "mrpc": self._mrpc_example, "sst2": self._sst2_example,
                    "squad": self._squad_example}[name]
        seen: set = set()
        out = {}
        for split, variant in splits[1:] + splits[:1]:
            rng = self._rng("task", name, seed, split)
            n = n_train if split == "train" else n_dev
            labels = [i % _N_LABELS[name] for i in range(n)] if _N_LABELS[name] else [None] * n
            rng.shuffle(labels)
            records = []
            for i, label in enumerate(labels):
                record = self._draw_unique(rng, generate, label, variant, seen)
                if name == "squad":
                    uid = hashlib.md5(f"{self.seed}/{seed}/{split}/{i}".encode()).hexdigest()[:24]
                    record = {"id": uid, **record}
                else:
                    record["idx"] = i
                records.append(record)
            out[split] = records
        return {split: out[split] for split, _ in splits}

    @staticmethod
    def _draw_unique(rng, generate, label, variant, seen) -> dict:
        for _ in range(_MAX_ATTEMPTS):
            record = generate(rng, label, variant)
            key = tuple(v for k, v in record.items() if k not in ("label", "answers"))
            if key not in seen:
                seen.add(key)
                return record
        raise RuntimeError("could not draw a new unique example; ask for fewer")

    def _mnli_example(self, rng, label, variant) -> dict:
        """Premise: 1-3 sentences about a person (sometimes with a distractor
        about another).  Entailment paraphrases a stated fact, contradiction
        changes its value, neutral is about an attribute the premise never
        mentions or about a plan or feeling of the person.  Some hypotheses
        are negated ("does not work as ..."); as in MNLI, negation is most
        frequent in contradictions but occurs with every label."""
        pool, negated_pool, speculation = (
            (_HELDOUT, _HELDOUT_NEGATED, _HELDOUT_SPECULATION) if variant == "heldout"
            else (_STANDARD, _STANDARD_NEGATED, _STANDARD_SPECULATION))
        person = rng.choice(self.people)
        stated, used, premise = set(), set(), []
        for i in range(rng.choices((1, 2, 3), weights=(45, 40, 15))[0]):
            template = rng.choice([t for t in pool.templates if t.kinds and not t.kinds & stated])
            stated.update(template.kinds)
            used.add(template.text)
            premise.append(self._render(template, person, named=i == 0 or rng.random() < 0.2))
        if rng.random() < 0.15:
            other = self.person(rng.choice((person.sibling, person.friend)))
            premise.insert(rng.randint(1, len(premise)),
                           self._render(rng.choice(_DISTRACTORS), person, other=other))
        if label == 1 and rng.random() < 0.4:
            job, hobby = rng.choice(JOBS), rng.choice(HOBBIES)
            extra = {"city": rng.choice(self.cities).name, "a2": _article(job), "job2": job,
                     "hobby2": hobby}
            hypothesis = self._render(rng.choice(speculation), person, True, extra=extra)
            return {"premise": " ".join(s.text for s in premise),
                    "hypothesis": hypothesis.text, "label": label}
        if label == 1:
            kind = rng.choice([k for k in FACT_KINDS if k not in stated])
        else:
            kind = rng.choice(sorted(stated))
        negate = rng.random() < (0.15, 0.15, 0.45)[label]
        if label == 0 and kind not in SINGLE_VALUED:
            negate = False  # "does not like X" does not follow from liking Y best
        # Affirmed values are true for entailment, false for contradiction;
        # negated ones the other way round; neutral ones either (unknowable).
        wrong = (label == 2) != negate if label != 1 else rng.random() < 0.5
        override = None
        if wrong:
            override = {kind: self._alternative(rng, kind, person.facts[kind], person)}
        templates = negated_pool.single(kind) if negate else pool.single(kind)
        template = rng.choice([t for t in templates if t.text not in used])
        hypothesis = self._render(template, person, named=True, override=override)
        return {"premise": " ".join(s.text for s in premise), "hypothesis": hypothesis.text,
                "label": label}

    def _qnli_example(self, rng, label, variant) -> dict:
        """Does the sentence answer the question about a person?  Negatives
        are like the other sentences of a QNLI paragraph: about the person but
        stating no fact, stating another attribute, or stating the asked
        attribute of someone else (sometimes naming the asked person too)."""
        person = rng.choice(self.people)
        kind = rng.choice(FACT_KINDS)
        question = self._question(rng, person, kind)
        two_people = [t for t in _DISTRACTORS if kind in t.other_kinds]
        mode = rng.random()
        if two_people and mode < 0.15:
            # Both labels use sentences naming two people, so that is no cue.
            template = rng.choice(two_people)
            if label == 0:  # "<sibling>'s brother, <person>, works as ..."
                sentence = self._render(template, self.person(person.sibling), True, other=person)
            else:  # "<person>'s brother, <sibling>, works as ..."
                other = self.person(rng.choice((person.sibling, person.friend)))
                sentence = self._render(template, person, True, other=other)
        elif label == 0:
            sentence = self._render(rng.choice(_ALL.stating(kind)), person, True)
        elif mode < 0.4:  # another sentence of the person's biography, stating no fact
            sentence = self._opinion_or_filler(rng, person)
        elif mode < 0.7:
            other_kind = [t for t in _ALL.templates if t.kinds and kind not in t.kinds]
            sentence = self._render(rng.choice(other_kind), person, True)
        else:
            other = self._similar_person(rng, person)
            sentence = self._render(rng.choice(_ALL.stating(kind)), other, True)
        return {"question": question, "sentence": sentence.text, "label": label}

    def _mrpc_example(self, rng, label, variant) -> dict:
        """Two wordings of a fact.  Not equivalent: mostly near-copies with one
        value changed, another person with the same values, or the same value
        under a related relation ("born in X" vs "moved to X"); sometimes just
        another fact about the same person."""
        person = rng.choice(self.people)
        kinds = rng.choice(_PARAPHRASE_KINDS)
        first, second = rng.sample(_ALL.by_kinds[kinds], 2)
        sentence1 = self._render(first, person, True)
        mode = rng.random()
        if label == 1:
            sentence2 = self._render(second, person, True)
        elif mode < 0.35 and kinds <= SWAPPED_KIND.keys():
            swapped = {SWAPPED_KIND[k]: person.facts[k] for k in kinds}
            template = rng.choice(_ALL.by_kinds[frozenset(swapped)])
            sentence2 = self._render(template, person, True, override=swapped)
        elif mode < 0.55:  # another fact about the same person
            template = rng.choice([t for t in _ALL.templates if t.kinds and not t.kinds & kinds])
            sentence2 = self._render(template, person, True)
        elif mode < 0.7 and "sibling" not in kinds:  # someone else, same values
            other = self._similar_person(rng, person)
            override = {k: person.facts[k] for k in kinds}
            sentence2 = self._render(second, other, True, override=override)
        else:
            kind = rng.choice(sorted(kinds))
            override = {kind: self._alternative(rng, kind, person.facts[kind], person)}
            sentence2 = self._render(second, person, True, override=override)
        return {"sentence1": sentence1.text, "sentence2": sentence2.text, "label": label}

    def _sst2_example(self, rng, label, variant) -> dict:
        """A review sentence; training never sees the held-out adjectives."""
        adjectives = self.train_adjectives if variant == "train" else self.adjectives
        name = rng.choice(self.people).name
        prefixes = ("", "", "", "", "Honestly, ", "I thought ", "In my opinion, ",
                    f"{name} said that ", "Everyone agreed that ", "To be fair, ")
        return {"sentence": self._sentiment_sentence(rng, label, adjectives, prefixes),
                "label": label}

    def _squad_example(self, rng, label, variant) -> dict:
        """A 60-150 word biography, often with a distractor sentence about a
        sibling or friend; the question asks for one attribute stated in it."""
        person = rng.choice(self.people)
        distractor = (rng.choice(("sibling_detail", "friend")),) if rng.random() < 0.6 else ()
        sentences = []
        while not 60 <= _word_count(sentences) <= 150:
            sentences = self._biography(rng, person, rng.randint(7, 10), required=distractor)
        context, mentions = _join(sentences)
        about = [m for m in mentions if m[0] == person.name]
        kind = rng.choice(sorted({m[1] for m in about}))
        # The answer is the first mention of the subject's value, not a distractor's.
        start, end = min((m[2], m[3]) for m in about if m[1] == kind)
        return {"title": person.name, "context": context,
                "question": self._question(rng, person, kind),
                "answers": {"text": [context[start:end]], "answer_start": [start]}}

    # ------------------------------------------------------------------ named entities

    def _conll2003(self, n_train: int, n_dev: int, seed: int) -> dict[str, list[dict]]:
        """Sentences of whole documents; a split's last document may be cut short.

        As for the other tasks, validation and test are drawn first (so they do
        not depend on n_train), and no document occurs twice.
        """
        seen: set = set()
        out = {}
        for split in ("validation", "test", "train"):
            rng = self._rng("task", "conll2003", seed, split)
            n = n_train if split == "train" else n_dev
            records, document = [], 0
            while len(records) < n:
                for tokens, tags in self._ner_document(rng, split != "train", seen):
                    if len(records) == n:
                        break
                    records.append({"id": str(len(records)), "tokens": tokens, "ner_tags": tags,
                                    "document": document})
                document += 1
            out[split] = records
        return {split: out[split] for split in ("train", "validation", "test")}

    def _ner_document(self, rng, rare: bool, seen: set) -> list[tuple[list, list]]:
        """A new document of a random kind, as (tokens, tag indices) per sentence;
        ``rare``: it may name the task-only entities training never sees."""
        for _ in range(_MAX_ATTEMPTS):
            kind = rng.choices(("person", "city", "company", "event", "review"),
                               weights=(45, 14, 22, 9, 10))[0]
            generate = {"person": self._ner_biography, "city": self._ner_city_document,
                        "company": self._ner_company_document, "event": self._ner_event_document,
                        "review": self._ner_review}[kind]
            document = [_tokenise(s) for s in generate(rng, rng.randint(3, 8), rare)]
            key = tuple(tuple(tokens) for tokens, _ in document)
            if key not in seen:
                seen.add(key)
                return document
        raise RuntimeError("could not draw a new unique document; ask for fewer")

    @cached_property
    def _named_entities(self) -> _NamedEntities:
        rng = self._rng("conll2003", "entities")
        taken = set(self._used_names)
        city_names = [city.name for city in self.cities]
        last_names = list(dict.fromkeys(person.last for person in self.people))
        companies_in: dict[str, list[str]] = {}
        for company in self.companies:
            companies_in.setdefault(company.city, []).append(company.name)

        # People named like a city: "Stadholm" alone is a person or a place.
        first_names = {g: list(dict.fromkeys(p.first for p in self.people if p.gender == g))
                       for g in ("female", "male")}
        pairs = []
        for last in rng.sample(city_names, max(2, round(_NAMESAKE_PAIRS_PER_SCALE * self.scale))):
            birth_city = last
            while birth_city == last:
                birth_city = self._zipf_choice(rng, city_names)
            pair = self._sibling_pair(rng, last, birth_city, first_names, city_names, companies_in)
            for row in pair:
                row["friend"] = rng.choice(self.people).name
            pairs.append(tuple(Person(**row) for row in pair))

        # Companies named after a family or a city ("Dralpudal Bank", "Douport Motors").
        names = {company.name for company in self.companies}
        companies = []
        while len(companies) < max(4, round(_DERIVED_COMPANIES_PER_SCALE * self.scale)):
            after_city = rng.random() < 0.5
            stem = rng.choice(city_names if after_city else last_names)
            name = f"{stem} {rng.choice(_COMPANY_SUFFIXES)}"
            if name not in names:
                names.add(name)
                companies.append(Company(name, stem if after_city else rng.choice(city_names)))

        events = [(f"{city} {rng.choice(_EVENT_KINDS)}", city)
                  for city in rng.sample(city_names, max(2, len(city_names) // 2))]
        n_awards = max(4, round(_AWARDS_PER_SCALE * self.scale))
        awards = [f"{last} {rng.choice(_AWARD_KINDS)}"
                  for last in rng.sample(last_names, n_awards)]
        languages = [_pseudo_word(rng, (1, 2), _LANGUAGE_ENDINGS, taken) for _ in range(6)]
        countries = [_pseudo_word(rng, (1, 2), _COUNTRY_ENDINGS, taken) for _ in range(8)]
        popular = rng.sample(self.people, len(self.people))
        employees: dict[str, list[Person]] = {company.name: [] for company in self.companies}
        for person in self.people:
            employees[person.employer].append(person)
        return _NamedEntities(
            people={**self._by_name, **{p.name: p for pair in pairs for p in pair}},
            popular=popular, popular_weights=_zipf_cum_weights(len(popular), 0.6),
            namesakes=_Pool.split(rng, pairs), companies=_Pool.split(rng, companies),
            employees=employees, events=_Pool.split(rng, events), awards=_Pool.split(rng, awards),
            languages=dict(zip(_REGIONS, languages)),
            other_languages=_Pool(common=tuple(languages[:4]), rare=tuple(languages[4:])),
            countries=_Pool.split(rng, countries),
            demonyms={place: _demonym(place) for place in city_names + countries},
            cities={city.name: city for city in self.cities})

    def _ner_person(self, rng, rare: bool = False) -> Person:
        """A world person, the famous more often; sometimes a namesake of a city."""
        entities = self._named_entities
        if rng.random() < 0.1:
            return rng.choice(entities.namesakes.pick(rng, rare))
        return rng.choices(entities.popular, cum_weights=entities.popular_weights)[0]

    def _ner_company(self, rng, rare: bool) -> Company:
        if rng.random() < 0.25:
            return self._named_entities.companies.pick(rng, rare)
        return self._zipf_choice(rng, self.companies)

    def _ner_values(self, person: Person) -> dict:
        """Slot values of ``person`` for ``_fill``: facts, pronouns and typed entities."""
        entities = self._named_entities
        values = {**_PRONOUNS[person.gender], **self._values_of(person)}
        for slot, kind in _ENTITY_SLOTS.items():
            values[slot] = (values[slot], kind)
        region = entities.cities[person.birth_city].region
        values["demonym"] = (entities.demonyms[person.birth_city], "MISC")
        values["language"] = (entities.languages[region], "MISC")
        return values

    @staticmethod
    def _ner_reference(rng, person: Person) -> str | None:
        """A later mention: mostly a pronoun (None), else, as in the news, the last name."""
        roll = rng.random()
        if roll < 0.55:
            return None
        return person.last if roll < 0.8 else person.first if roll < 0.92 else person.name

    def _ner_biography(self, rng, n: int, rare: bool) -> list[list[_Segment]]:
        """Like the corpus's biographies (same templates), with more named references
        and sentences about languages, roots, events, awards and past employers."""
        entities = self._named_entities
        person = self._ner_person(rng, rare)
        values = self._ner_values(person)
        opener = rng.choice(_ALL.openers)
        sentences = [_fill(opener, values, person.name)]
        stated = set(opener.kinds)
        late = rng.sample(_LATE, len(_LATE))
        for _ in range(n - 1):
            name = self._ner_reference(rng, person)
            roll = rng.random()
            facts = [t for t in _ALL.templates if t.kinds and not t.kinds & stated]
            if roll < 0.4 and facts:
                template = rng.choice(facts)
                stated.update(template.kinds)
                sentences.append(_fill(template, values, name))
            elif roll < 0.6:
                sentences.append(_fill(rng.choice(_NER_PERSON),
                                       {**values, **self._ner_extra(rng, person, rare)}, name))
            elif roll < 0.7:
                other = entities.people[rng.choice((person.sibling, person.friend))]
                relation = person.sibling_relation if other.name == person.sibling else "friend"
                other_values = {f"x_{k}": v for k, v in self._ner_values(other).items()}
                sentences.append(_fill(rng.choice(_DISTRACTORS),
                                       {**values, **other_values, "rel": relation}, name))
            elif roll < 0.8:
                place, city, adjective = rng.choice(person.opinions)
                sentences.append(_fill(rng.choice(_OPINIONS), {
                    **values, "place": place, "city": (city, "LOC"), "adj": adjective}, name))
            else:
                template = late.pop() if rng.random() < 0.7 else rng.choice(_CHILDHOOD)
                trait, trait2 = rng.sample(TRAITS, 2)
                sentences.append(_fill(template, {**values, "trait": trait, "trait2": trait2},
                                       name))
        return sentences

    def _ner_extra(self, rng, person: Person, rare: bool) -> dict:
        """Values for the NER-only person templates."""
        entities = self._named_entities
        own = entities.languages[entities.cities[person.birth_city].region]
        country = entities.countries.pick(rng, rare)
        other = person
        while other is person:
            other = self._ner_person(rng, rare)
        return {
            "other_language": (rng.choice([language for language in
                                           entities.other_languages.items(rare)
                                           if language != own]), "MISC"),
            "award": (entities.awards.pick(rng, rare), "MISC"),
            "event": (entities.events.pick(rng, rare)[0], "MISC"),
            "company": (self._ner_company(rng, rare).name, "ORG"),
            "country": (country, "LOC"),
            "country_demonym": (entities.demonyms[country], "MISC"),
            "person": (other.name, "PER"),
            "year": str(rng.randint(person.birth_year + 18, 2023)),
        }

    def _ner_city_document(self, rng, n: int, rare: bool) -> list[list[_Segment]]:
        """Like the corpus's city descriptions, plus its language, demonym and event."""
        entities = self._named_entities
        city = self._zipf_choice(rng, self.cities)
        natives, movers, companies = self._city_index[city.name]
        companies = companies + [c for c in entities.companies.items(rare) if c.city == city.name]
        values = {"city": (city.name, "LOC"), "size": city.size, "region": city.region,
                  "founded": str(city.founded), "landmark": city.landmark,
                  "landmark_adjective": city.landmark_adjective,
                  "speciality": city.speciality, "month": rng.choice(MONTHS),
                  "hobby": rng.choice(HOBBIES),
                  "language": (entities.languages[city.region], "MISC"),
                  "demonym": (entities.demonyms[city.name], "MISC")}
        pool = [_fill(text, values) for text in (
            "It was founded in {founded}.",
            "The {landmark} in {city} is famous across the region.",
            "Visitors often say that the {landmark} there is {landmark_adjective}.",
            "The local speciality is {speciality}.",
            "Many people in {city} enjoy {hobby}.",
            "Most people in {city} speak {language}.",
            "{demonym} cooking is famous for its {speciality}.",
        )]
        for event, where in entities.events.items(rare):
            if where == city.name:
                pool.append(_fill("Every {month}, {city} hosts the {event}.",
                                  {**values, "event": (event, "MISC")}))
        pool.append(_fill("The {demonym} team won the {event} in {year}.", {
            **values, "event": (entities.events.pick(rng, rare)[0], "MISC"),
            "year": str(rng.randint(1950, 2023))}))
        pool += [_fill("{company} has its headquarters in {city}.",
                       {**values, "company": (c.name, "ORG")})
                 for c in _some(rng, companies)]
        pool += [_fill("{person} was born in {city} in {year}.",
                       {**values, "person": (p.name, "PER"), "year": str(p.birth_year)})
                 for p in _some(rng, natives)]
        pool += [_fill("{person} moved to {city} in {year}.",
                       {**values, "person": (p.name, "PER"), "year": str(p.moved_year)})
                 for p in _some(rng, movers)]
        body = sorted(rng.sample(range(len(pool)), min(len(pool), n - 1)))
        intro = _fill("{city} is a {size} city in the {region} of the country.", values)
        return [intro] + [pool[i] for i in body]

    def _ner_company_document(self, rng, n: int, rare: bool) -> list[list[_Segment]]:
        """A company, its offices and staff; after the first mention, often its short name."""
        entities = self._named_entities
        company = self._ner_company(rng, rare)
        # "Gukar Labs" may become "Gukar", but "Douport Motors" stays whole.
        short = company.name.split()[0] if company.name in entities.employees else company.name
        other_city = rng.choice([c for c in self.cities if c.name != company.city]).name
        values = {"city": (company.city, "LOC"), "other_city": (other_city, "LOC"),
                  "year": str(rng.randint(1900, 2000)), "year2": str(rng.randint(2001, 2023)),
                  "number": str(rng.choice((40, 120, 300, 800, 2000, 5000))),
                  "month": rng.choice(MONTHS),
                  "event": (entities.events.pick(rng, rare)[0], "MISC"),
                  "country": (entities.countries.pick(rng, rare), "LOC")}

        def say(text, **extra):
            name = short if rng.random() < 0.6 else company.name
            return _fill(text, {**values, "company": (name, "ORG"), **extra})

        pool = [say(text) for text in (
            "The company was founded in {year}.",
            "It employs about {number} people.",
            "{company} sponsors the {event}.",
            "{company} opened a new office in {other_city} in {year2}.",
            "{company} also has an office in {country}.",
            "Shares in {company} rose sharply in {month}.",
            "A spokesperson for {company} declined to comment.",
            "{company} said it would hire more staff next year.",
        )]
        pool += [say("{person} works for {company} as {a} {job}.", person=(p.name, "PER"),
                     a=_article(p.job), job=p.job)
                 for p in _some(rng, entities.employees.get(company.name, []), 3)]
        body = rng.sample(pool, min(len(pool), n - 1))
        intro = _fill(rng.choice(("{company} is a company based in {city}.",
                                  "{company} has its headquarters in {city}.")),
                      {**values, "company": (company.name, "ORG")})
        return [intro] + body

    def _ner_event_document(self, rng, n: int, rare: bool) -> list[list[_Segment]]:
        """A report on an event: winners, prizes and sponsors."""
        entities = self._named_entities
        event, city = entities.events.pick(rng, rare)
        winner, second, third = (self._ner_person(rng, rare) for _ in range(3))
        values = {"event": (event, "MISC"), "city": (city, "LOC"), "month": rng.choice(MONTHS),
                  "year": str(rng.randint(1990, 2023)),
                  "demonym": (entities.demonyms[city], "MISC"),
                  "award": (entities.awards.pick(rng, rare), "MISC"),
                  "company": (self._ner_company(rng, rare).name, "ORG"),
                  "ordinal": rng.choice(_ORDINALS),
                  "adj": rng.choice(rng.choice(self.adjectives)),
                  "winner": (winner.name, "PER"), "a": _article(winner.job), "job": winner.job,
                  "home": (winner.moved_city, "LOC"),
                  "second": (second.name, "PER"), "employer": (second.employer, "ORG"),
                  "third": (third.name, "PER"), "birth_city": (third.birth_city, "LOC")}
        pool = [_fill(text, values) for text in (
            "The winner was {winner}, {a} {job} from {home}.",
            "{second} of {employer} came second.",
            "{third}, who was born in {birth_city}, finished third.",
            "Many {demonym} visitors came to watch.",
            "The {award} went to {winner}.",
            "{company} sponsored the event.",
            "Tickets sold out within a week.",
            "Visitors said the atmosphere was {adj}.",
            "It was the {ordinal} time the event was held.",
        )]
        body = sorted(rng.sample(range(len(pool)), min(len(pool), n - 1)))
        intro = _fill(rng.choice(("The {event} took place in {month} {year}.",
                                  "The {event} was held in {city} in {month}.")), values)
        return [intro] + [pool[i] for i in body]

    def _ner_review(self, rng, n: int, rare: bool) -> list[list[_Segment]]:
        """A review as in the corpus: a named opener, then mostly entity-free sentences."""
        reviewer = self._ner_person(rng, rare)
        if rng.random() < 0.6:
            place, city, adjective = rng.choice(reviewer.opinions)
            polarity = int(adjective in POSITIVE_ADJECTIVES)
            ref, who = _PRONOUNS[reviewer.gender], (reviewer.name, "PER")
        else:
            place, city = rng.choice(PLACES), rng.choice(self.cities).name
            polarity = rng.randint(0, 1)
            ref, who = {"S": "I", "s": "I", "P": "My", "p": "my", "o": "me"}, "I"
        opener = _fill(rng.choice(_REVIEW_OPENERS), {"month": rng.choice(MONTHS), "who": who,
                                                     "place": place, "city": (city, "LOC")})
        prefixes = ("", "", "", f"{ref['s']} thought ", f"{ref['s']} felt that ")
        body = []
        for _ in range(n - 2):
            p = polarity if rng.random() < 0.85 else 1 - polarity
            body.append([(self._sentiment_sentence(rng, p, self.adjectives, prefixes, place),
                          None)])
        closer = [(rng.choice(_REVIEW_CLOSERS[polarity]).format(**ref), None)]
        return [opener, *body, closer]


# Split names with the generation variant passed to the task's example
# generator: "train", "dev" (same distribution, but SST-2 may use every sentiment
# adjective) or "heldout" (MNLI mismatched: templates of the other genre).
_SPLITS = {
    "mnli": (("train", "train"), ("validation_matched", "dev"),
             ("validation_mismatched", "heldout")),
    "qnli": (("train", "train"), ("validation", "dev")),
    "mrpc": (("train", "train"), ("validation", "dev")),
    "sst2": (("train", "train"), ("validation", "dev")),
    "squad": (("train", "train"), ("validation", "dev")),
}
_N_LABELS = {"mnli": 3, "qnli": 2, "mrpc": 2, "sst2": 2, "squad": 0}
# Fact combinations with at least two wordings, so MRPC can paraphrase them.
_PARAPHRASE_KINDS = sorted((k for k, ts in _ALL.by_kinds.items() if k and len(ts) >= 2),
                           key=sorted)
