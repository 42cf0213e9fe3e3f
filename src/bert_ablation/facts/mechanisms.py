"""What produces each of the paper's findings on our benchmark: the one list of mechanism names.

Every claim in ``evaluation/claims.yaml`` names one of these (``claim_spec.py`` rejects any other name),
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

# What must have formed in the runs a claim uses before its verdict means anything (a
# manipulation check). Every claim also needs its runs to pass the pretraining health check
# (not on the plateau, not diverged, not collapsed: evaluation/health.py). A claim whose check
# fails is "not testable at this scale", with the check and its value, never "inconclusive".
# evaluation/preconditions.py measures each check from the tables' provenance.
CHECKS = {
    "task_learnt": "the claim's task is learnt at all: some row of its column scores at least "
                   "ABOVE_CHANCE points above the best constant classifier on the same split (classification "
                   "columns only; a column where every model sits at chance ranks noise)",
    "nsp_formed": "the claim's NSP-trained runs tell a true next segment from a random one: held-out NSP "
                  "accuracy at least NSP_ACCURACY (chance 0.5) in every seed, the cross-segment comparison the "
                  "pair tasks ask for (measured on the world: 0.66 at the default 700 steps, 0.81 at 5x and 20x, "
                  "where QNLI is learnt)",
    "left_plateau": "every run the claim compares left the unigram plateau (held-out perplexity at most the "
                    "health check's ratio of the unigram baseline's), so a size ordering compares what was learnt",
    "seeds_agree": "the pretraining seeds of every row the claim compares agree on held-out perplexity (the highest "
                   "at most SEED_AGREEMENT x the lowest): seeds further apart left the unigram plateau at different "
                   "times, so an ordering of sizes would compare when each row's runs left it, not what the size "
                   "can learn (measured: the default world's 2/64/1 row, seeds spread over 1.6x, flips its order "
                   "with 2/64/2 when only the corpus's word order changes; docs/benchmark.md, Controls)",
    "no_collapse": "no run the claim compares collapsed (last-layer token states' mean cosine below the health "
                   "check's threshold): a masking mix is compared on encoders that represent their input",
}
ABOVE_CHANCE = 10.0  # points (the scores are 0-100)
SEED_AGREEMENT = 1.25  # highest / lowest held-out perplexity over a row's pretraining seeds
NSP_ACCURACY = 0.75

# mechanism -> the checks its claims must pass, besides the health check every claim needs
PRECONDITIONS = {
    "heldout_words": ("task_learnt",),
    "right_context": ("task_learnt",),
    "cross_segment": ("nsp_formed", "task_learnt"),
    "context_ambiguity": ("task_learnt",),
    "capacity": ("left_plateau", "seeds_agree", "task_learnt"),
    "masking_mix": ("no_collapse", "task_learnt"),
    "none": ("task_learnt",),
}
