"""What produces each of the paper's findings on our benchmark: the one list of mechanism names.

Every claim in ``evaluation/claims.yaml`` names one of these (``claims.py`` rejects any other name),
and the world can generate a *control* without each mechanism of ``REMOVABLE``
(``World(remove=...)``, the config's ``world.remove``). A claim that names a removed mechanism
should then stop being reproduced; one that still is was not produced by that mechanism.
Model properties and ``none`` name no part of the world, so no control removes them.
"""

from __future__ import annotations

# name -> one line: what it is, where the world (or the model) has it.
MECHANISMS = {
    "heldout_words": "a third of every word class (names, cities, companies, jobs, foods, hobbies, adjectives) "
                     "occurs only in the corpus and dev/test: only pretraining teaches what these words are",
    "right_context": "an attribute follows the name it belongs to, so the name's token learns it only from its "
                     "right, which a left-to-right encoder lacks (SQuAD 'who' answers, MRPC's introductions)",
    "cross_segment": "the sentences of a document share people and facts, so a true next segment is told from a "
                     "random one by comparing names and facts, the comparison MNLI/QNLI/MRPC/SQuAD pairs ask for",
    "context_ambiguity": "some words are both a first name and a city, so only context decides their entity type "
                         "(NER), which an input embedding alone cannot",
    "capacity": "model property, not the world: a larger encoder fits the corpus and the tasks better",
    "masking_mix": "model property, not the world: [MASK] never occurs at fine-tuning and random replacements "
                   "make every input token less trustworthy (the masked LM's corruption mix)",
    "none": "no mechanism of the world or of the model is built to produce it (an absence of effect, or an "
            "effect of the paper's scale)",
}

# The world mechanisms that World(remove=...) can take out; config.schema.yaml's world.remove
# enum lists the same names (tests/test_controls.py checks that).
REMOVABLE = ("heldout_words", "right_context", "cross_segment", "context_ambiguity")
