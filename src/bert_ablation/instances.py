"""Pretraining instances from documents, as google-research/bert's create_pretraining_data.py.

Two packings, independent of the objective that later consumes them:
- ``nsp_pairs``: [CLS] A [SEP] B [SEP]. A is a run of sentences of one document; B is its true
  continuation (label 0, IsNext) or, half of the time, a run from a *different* document
  (label 1, NotNext, HF's convention), whose unused sentences go back to the pool.
- ``contiguous``: [CLS] S [SEP], one run of consecutive sentences of one document.
Target lengths are max_seq_length minus specials, shorter with probability short_seq_prob.
Masks are *not* drawn here: masking is dynamic, per pretraining step.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np

from .corpus import CorpusError, load_corpus

log = logging.getLogger(__name__)

PACKINGS = ("nsp_pairs", "contiguous")
NO_NSP_LABEL = -1


@dataclass
class Instance:
    tokens_a: list[int]
    tokens_b: list[int]  # empty for contiguous packing
    nsp_label: int  # 0 IsNext, 1 NotNext (random), -1 none
    doc_a: int
    doc_b: int  # source document of B (== doc_a unless random), -1 if no B


def _target_length(max_num_tokens: int, short_seq_prob: float, rng: random.Random) -> int:
    # Drawn once per document, as google-research/bert does: occasional short sequences
    # teach the model the lengths it meets at fine-tuning.
    return rng.randint(2, max_num_tokens) if rng.random() < short_seq_prob else max_num_tokens


def _truncate_pair(tokens_a: list[int], tokens_b: list[int], max_num_tokens: int, rng: random.Random) -> None:
    """Trim the longer segment, randomly from its front or back, to avoid a positional bias."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def nsp_pair_instances(docs: list[list[list[int]]], doc_index: int, max_seq_length: int,
                       short_seq_prob: float, rng: random.Random) -> list[Instance]:
    max_num_tokens = max_seq_length - 3  # [CLS] A [SEP] B [SEP]
    doc = docs[doc_index]
    target = _target_length(max_num_tokens, short_seq_prob, rng)
    instances, chunk, length, i = [], [], 0, 0
    while i < len(doc):
        chunk.append(doc[i])
        length += len(doc[i])
        if i == len(doc) - 1 or length >= target:
            a_end = 1 if len(chunk) < 2 else rng.randint(1, len(chunk) - 1)
            tokens_a = [t for s in chunk[:a_end] for t in s]
            if len(chunk) == 1 or rng.random() < 0.5:
                # NotNext: B from another document; the unused sentences of this chunk are reused.
                other = rng.randrange(len(docs) - 1)
                other += other >= doc_index
                random_doc = docs[other]
                tokens_b, start = [], rng.randrange(len(random_doc))
                for sentence in random_doc[start:]:
                    tokens_b.extend(sentence)
                    if len(tokens_b) >= target - len(tokens_a):
                        break
                i -= len(chunk) - a_end
                label, doc_b = 1, other
            else:
                tokens_b = [t for s in chunk[a_end:] for t in s]
                label, doc_b = 0, doc_index
            _truncate_pair(tokens_a, tokens_b, max_num_tokens, rng)
            if tokens_a and tokens_b:
                instances.append(Instance(tokens_a, tokens_b, label, doc_index, doc_b))
            chunk, length = [], 0
        i += 1
    return instances


def contiguous_instances(docs: list[list[list[int]]], doc_index: int, max_seq_length: int,
                         short_seq_prob: float, rng: random.Random) -> list[Instance]:
    max_num_tokens = max_seq_length - 2  # [CLS] S [SEP]
    doc = docs[doc_index]
    target = _target_length(max_num_tokens, short_seq_prob, rng)
    instances, chunk = [], []
    for i, sentence in enumerate(doc):
        chunk.extend(sentence)
        if i == len(doc) - 1 or len(chunk) >= target:
            if chunk:
                instances.append(Instance(chunk[:max_num_tokens], [], NO_NSP_LABEL, doc_index, -1))
            chunk = []
    return instances


PACKERS = {"nsp_pairs": nsp_pair_instances, "contiguous": contiguous_instances}


def create_instances(docs: list[list[list[int]]], packing: str, max_seq_length: int, short_seq_prob: float,
                     dupe_factor: int, seed: int) -> list[Instance]:
    if packing not in PACKERS:
        raise ValueError(f"unknown packing '{packing}'; known: {', '.join(PACKERS)}")
    if packing == "nsp_pairs" and len(docs) < 2:
        raise CorpusError("nsp_pairs needs at least 2 documents to draw NotNext segments from.")
    rng = random.Random(seed)
    instances = [inst for _ in range(dupe_factor) for d in range(len(docs))
                 for inst in PACKERS[packing](docs, d, max_seq_length, short_seq_prob, rng)]
    rng.shuffle(instances)
    return instances


def encode(instances: list[Instance], max_seq_length: int, cls_id: int, sep_id: int, pad_id: int) -> dict:
    """Pad instances into arrays: input_ids/token_type_ids (N, L), lengths, nsp labels, doc ids."""
    n = len(instances)
    input_ids = np.full((n, max_seq_length), pad_id, dtype=np.int32)
    token_type_ids = np.zeros((n, max_seq_length), dtype=np.int8)
    lengths = np.zeros(n, dtype=np.int32)
    for row, inst in enumerate(instances):
        ids = [cls_id, *inst.tokens_a, sep_id]
        if inst.tokens_b:
            token_type_ids[row, len(ids): len(ids) + len(inst.tokens_b) + 1] = 1
            ids += [*inst.tokens_b, sep_id]
        input_ids[row, : len(ids)] = ids
        lengths[row] = len(ids)
    return {
        "input_ids": input_ids, "token_type_ids": token_type_ids, "lengths": lengths,
        "next_sentence_label": np.array([i.nsp_label for i in instances], dtype=np.int8),
        "doc_a": np.array([i.doc_a for i in instances], dtype=np.int32),
        "doc_b": np.array([i.doc_b for i in instances], dtype=np.int32),
    }


def tokenize_documents(documents: list[list[str]], tokenizer) -> list[list[list[int]]]:
    flat = [s for doc in documents for s in doc]
    ids = tokenizer(flat, add_special_tokens=False)["input_ids"]
    out, k = [], 0
    for doc in documents:
        out.append([ids[k + j] for j in range(len(doc)) if ids[k + j]])
        k += len(doc)
    return [doc for doc in out if doc]


def build_instances(corpus_dir: str, tokenizer_dir: str, packing: str, settings: dict,
                    train_path: str, heldout_path: str) -> dict:
    from .storage import atomic_file
    from .tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    summary = {}
    for split, path, dupe in (("train", train_path, settings["dupe_factor"]), ("heldout", heldout_path, 1)):
        docs = tokenize_documents(load_corpus(corpus_dir, split), tokenizer)
        instances = create_instances(docs, packing, settings["max_seq_length"], settings["short_seq_prob"],
                                     dupe, settings["seed"] + (split == "heldout"))
        if not instances:
            raise CorpusError(f"the {split} corpus yields no {packing} instances; add documents.")
        arrays = encode(instances, settings["max_seq_length"], tokenizer.cls_token_id,
                        tokenizer.sep_token_id, tokenizer.pad_token_id)
        with atomic_file(path, "wb") as handle:
            np.savez(handle, **arrays)
        summary[split] = {"instances": len(instances), "tokens": int(arrays["lengths"].sum()),
                          "mean_length": round(float(arrays["lengths"].mean()), 1)}
    log.info("instances[%s]: %s", packing, summary)
    return summary
