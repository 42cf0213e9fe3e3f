"""The built-in benchmark: a generated world whose corpus and tasks exercise what BERT ablates.

Downloading BooksCorpus/Wikipedia and GLUE is neither possible offline nor affordable for
tiny models, so this package *generates* a consistent world from one seed and renders it as
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

The package follows the seams: ``lexicon`` (pseudo-words, word classes, the entities),
``corpus`` (sentences and documents) and ``tasks`` (the six task generators), each class
extending the one before, so that ``World`` is all three.
"""

from .corpus import detokenize
from .lexicon import FOODS, HOBBIES, JOBS, NEGATIVE, POSITIVE
from .tasks import World

__all__ = ["FOODS", "HOBBIES", "JOBS", "NEGATIVE", "POSITIVE", "World", "detokenize"]
