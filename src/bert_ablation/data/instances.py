"""Pretraining instances from documents, as google-research/bert's create_pretraining_data.py.

Two packings, independent of the objective that later consumes them:
- ``nsp_pairs``: [CLS] A [SEP] B [SEP]. A is a run of sentences of one document; B is its true
  continuation (label 0, IsNext) or, half of the time, a run from a *different* document
  (label 1, NotNext, HF's convention), whose unused sentences go back to the pool.
- ``contiguous``: [CLS] S [SEP], one run of consecutive sentences of one document.
Target lengths are max_seq_length minus specials, shorter with probability short_seq_prob.
Masks are *not* drawn here: masking is dynamic, per pretraining step.

One job builds the instances of one corpus shard (NotNext segments come from other documents of
the same shard: at scale a shard holds thousands of documents, so the draw is as random as the
paper's). Its documents are held as one flat token array, and the instances are written as
fixed-width ``.npy`` arrays that pretraining reads row by row (instance_store.py): no job holds the
corpus, and pretraining's memory does not grow with it.
"""

from __future__ import annotations

import itertools
import logging
import math
import random

import numpy as np

from ..storage import atomic_dir, derive_seed, write_json
from .corpus import CorpusError, iter_documents
from .instance_store import MANIFEST, Instance, InstanceWriter, write_split
from .tokenizer import load_tokenizer

log = logging.getLogger(__name__)

NO_NSP_LABEL = -1
SPLITS = ("train", "heldout")


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


class NotNextDraw:
    """Where a NotNext segment B starts: (document, sentence) outside the current document.

    ``document`` (google-research/bert's code): a document uniformly, then a sentence of it
    uniformly. ``sentence`` (the paper's words, "a random sentence from the corpus"): a sentence
    uniformly among the other documents' sentences, i.e. a document in proportion to its length.
    The two differ when document lengths do: on a corpus of 151 long commentary chapters and 957
    ten-snippet review documents, ``document`` takes 86% of NotNext segments from the reviews,
    which hold 8% of the text, and NSP becomes "is B a review" (docs/own_corpus.md)."""

    KINDS = ("document", "sentence")

    def __init__(self, docs, kind: str = "document"):
        if kind not in self.KINDS:
            raise ValueError(f"instances.nsp_negatives: unknown '{kind}'; known: {', '.join(self.KINDS)}")
        self.kind, self.n_docs = kind, len(docs)
        # sentence offsets of every document, so that no draw materialises a document to count it
        starts = getattr(docs, "doc_starts", None)
        self.doc_starts = (np.asarray(starts, dtype=np.int64) if starts is not None else
                           np.concatenate([[0], np.cumsum([len(docs[d]) for d in range(len(docs))])]))

    def __call__(self, doc_index: int, rng: random.Random) -> tuple[int, int]:
        if self.kind == "document":
            other = rng.randrange(self.n_docs - 1)
            other += other >= doc_index
            return other, rng.randrange(int(self.doc_starts[other + 1] - self.doc_starts[other]))
        first, end = int(self.doc_starts[doc_index]), int(self.doc_starts[doc_index + 1])
        sentence = rng.randrange(int(self.doc_starts[-1]) - (end - first))
        sentence += (end - first) * (sentence >= first)  # skip the current document's sentences
        other = int(np.searchsorted(self.doc_starts, sentence, side="right")) - 1
        return other, sentence - int(self.doc_starts[other])


def nsp_pair_instances(docs: list[list[list[int]]], doc_index: int, max_seq_length: int,
                       short_seq_prob: float, rng: random.Random,
                       draw_not_next: NotNextDraw | None = None) -> list[Instance]:
    draw_not_next = draw_not_next or NotNextDraw(docs)
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
                other, start = draw_not_next(doc_index, rng)
                random_doc, tokens_b = docs[other], []
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
                         short_seq_prob: float, rng: random.Random, draw_not_next=None) -> list[Instance]:
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


def iter_instances(docs, packing: str, max_seq_length: int, short_seq_prob: float, dupe_factor: int,
                   rng: random.Random, nsp_negatives: str = "document"):
    """Instances in google-research/bert's order: ``dupe_factor`` passes over the documents."""
    if packing not in PACKERS:
        raise ValueError(f"unknown packing '{packing}'; known: {', '.join(PACKERS)}")
    if packing == "nsp_pairs" and len(docs) < 2:
        raise CorpusError("nsp_pairs needs at least 2 documents to draw NotNext segments from.")
    draw_not_next = NotNextDraw(docs, nsp_negatives) if packing == "nsp_pairs" else None
    for _ in range(dupe_factor):
        for d in range(len(docs)):
            yield from PACKERS[packing](docs, d, max_seq_length, short_seq_prob, rng, draw_not_next)


def create_instances(docs, packing: str, max_seq_length: int, short_seq_prob: float,
                     dupe_factor: int, seed: int, nsp_negatives: str = "document") -> list[Instance]:
    rng = random.Random(seed)
    instances = list(iter_instances(docs, packing, max_seq_length, short_seq_prob, dupe_factor, rng,
                                    nsp_negatives))
    rng.shuffle(instances)
    return instances


class TokenizedDocuments:
    """A shard's documents as token ids: one flat array and offsets, 4 bytes a token, where lists
    of Python ints took ~60x the text's size. ``docs[d]`` gives document d as lists of sentence ids."""

    def __init__(self, tokens: np.ndarray, sentence_starts: np.ndarray, doc_starts: np.ndarray):
        self.tokens, self.sentence_starts, self.doc_starts = tokens, sentence_starts, doc_starts

    def __len__(self) -> int:
        return len(self.doc_starts) - 1

    def __getitem__(self, d: int) -> list[list[int]]:
        bounds = self.sentence_starts[self.doc_starts[d]: self.doc_starts[d + 1] + 1].tolist()
        return [self.tokens[a:b].tolist() for a, b in zip(bounds, bounds[1:])]

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)


def tokenize_documents(documents, tokenizer, batch_documents: int = 1000) -> TokenizedDocuments:
    """Tokenise documents with the fast tokenizer, a batch of documents per call; sentences that
    tokenise to nothing, and then documents with no sentence left, are dropped."""
    token_blocks, sentence_lengths, doc_sentences = [], [], []
    documents = iter(documents)
    while batch := list(itertools.islice(documents, batch_documents)):
        flat = [s for doc in batch for s in doc]
        ids = tokenizer(flat, add_special_tokens=False, return_attention_mask=False,
                        return_token_type_ids=False)["input_ids"]
        k = 0
        for doc in batch:
            kept = [ids[k + j] for j in range(len(doc)) if ids[k + j]]
            k += len(doc)
            if kept:
                doc_sentences.append(len(kept))
                sentence_lengths.extend(map(len, kept))
                token_blocks.append(np.fromiter(itertools.chain.from_iterable(kept), dtype=np.int32))
    tokens = np.concatenate(token_blocks) if token_blocks else np.zeros(0, dtype=np.int32)
    sentence_starts = np.concatenate([[0], np.cumsum(sentence_lengths, dtype=np.int64)])
    doc_starts = np.concatenate([[0], np.cumsum(doc_sentences, dtype=np.int64)])
    return TokenizedDocuments(tokens, sentence_starts, doc_starts)


def static_masks(input_ids: np.ndarray, tokenizer, settings: dict, seed: int, block: int = 1 << 15) -> dict:
    """google-research/bert's static masks for every row, drawn a block of rows at a time."""
    import torch

    # Imported here: keeps torch out of the instances job unless it draws static masks.
    from ..models.masking import Masker, MaskingProcedure

    # Only the selection is stored; each run applies its own [MASK]/same/random mix (apply_static),
    # so the mix here is never read: NaN says so.
    procedure = MaskingProcedure(probability=settings["masking"]["probability"], mask=math.nan, same=math.nan,
                                 random=math.nan, max_predictions=settings["masking"]["max_predictions"])
    masker = Masker.for_tokenizer(procedure, tokenizer)
    width = procedure.max_predictions or input_ids.shape[1]
    generator = torch.Generator().manual_seed(seed)
    parts = [masker.static_draws(torch.from_numpy(input_ids[k: k + block].astype(np.int64)), generator, width)
             for k in range(0, len(input_ids), block)]
    return {"masked_positions": np.concatenate([p[0].numpy() for p in parts]).astype(np.int16),
            "mask_fates": np.concatenate([p[1].numpy() for p in parts]).astype(np.float32),
            "mask_random_ids": np.concatenate([p[2].numpy() for p in parts]).astype(input_ids.dtype)}


def build_instances(corpus_dir: str, tokenizer_dir: str, packing: str, settings: dict, out_dir: str,
                    shard: int = 0) -> dict:
    """The instances of one corpus shard, written to ``out_dir/{train,heldout}/<field>.npy`` with
    a manifest (counts and SHA-256 of every file). Shard k seeds from instances.seed + 2k (train)
    and + 2k + 1 (heldout), so an unsharded corpus gives what it always gave."""

    tokenizer = load_tokenizer(tokenizer_dir)
    manifest = {"packing": packing, "max_seq_length": settings["max_seq_length"], "shard": shard,
                "vocab_size": len(tokenizer),
                "static_masking": settings["masking"] if settings.get("static_masking") else None}
    with atomic_dir(out_dir) as tmp:
        for split, dupe in (("train", settings["dupe_factor"]), ("heldout", 1)):
            docs = tokenize_documents(iter_documents(corpus_dir, split), tokenizer)
            rng = random.Random(settings["seed"] + 2 * shard + (split == "heldout"))
            writer = InstanceWriter(settings["max_seq_length"], tokenizer.cls_token_id, tokenizer.sep_token_id,
                                    tokenizer.pad_token_id, len(tokenizer))
            for inst in iter_instances(docs, packing, settings["max_seq_length"], settings["short_seq_prob"],
                                       dupe, rng, settings.get("nsp_negatives", "document")):
                writer.add(inst)
            if not writer.n:
                raise CorpusError(f"the {split} documents of {corpus_dir} yield no {packing} instances; "
                                  "add documents.")
            order = list(range(writer.n))
            rng.shuffle(order)  # the permutation google-research/bert's shuffle of the instance list makes
            arrays = writer.arrays(order)
            if split == "train" and settings.get("static_masking"):
                # each dupe_factor copy gets masks of its own; held-out scoring keeps fixed dynamic masks
                arrays.update(static_masks(arrays["input_ids"], tokenizer, settings,
                                           derive_seed(settings["seed"], shard, "static-masks")))
            files = write_split(tmp / split, arrays)
            lengths = arrays["lengths"]
            manifest[split] = {"instances": int(writer.n), "tokens": int(lengths.sum()),
                               "mean_length": round(float(lengths.mean()), 1), "documents": len(docs),
                               "document_tokens": docs.n_tokens, "files": files}
            del arrays, docs
        write_json(tmp / MANIFEST, manifest)
    summary = {split: {k: v for k, v in manifest[split].items() if k != "files"} for split in SPLITS}
    log.info("instances[%s] shard %d: %s", packing, shard, summary)
    return summary
