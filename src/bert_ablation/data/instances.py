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
fixed-width ``.npy`` arrays that pretraining reads row by row (``InstanceStore``): no job holds the
corpus, and pretraining's memory does not grow with it.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..storage import atomic_dir, derive_seed, file_digest, read_json, write_json
from .corpus import CorpusError, iter_documents
from .tokenizer import load_tokenizer

log = logging.getLogger(__name__)

NO_NSP_LABEL = -1
SPLITS = ("train", "heldout")
# One file per field: fixed width (N, max_seq_length) for the tokens, one value per row otherwise.
# Segment ids are not stored: token_type_ids = 1 from segment_b (where B starts) to the row's end.
FIELDS = ("input_ids", "lengths", "segment_b", "next_sentence_label", "doc_a", "doc_b")
# With instances.static_masking, the training split also stores each instance's masks (masking.py).
STATIC_FIELDS = ("masked_positions", "mask_fates", "mask_random_ids")
MANIFEST = "manifest.json"


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


def iter_instances(docs, packing: str, max_seq_length: int, short_seq_prob: float, dupe_factor: int,
                   rng: random.Random):
    """Instances in google-research/bert's order: ``dupe_factor`` passes over the documents."""
    if packing not in PACKERS:
        raise ValueError(f"unknown packing '{packing}'; known: {', '.join(PACKERS)}")
    if packing == "nsp_pairs" and len(docs) < 2:
        raise CorpusError("nsp_pairs needs at least 2 documents to draw NotNext segments from.")
    for _ in range(dupe_factor):
        for d in range(len(docs)):
            yield from PACKERS[packing](docs, d, max_seq_length, short_seq_prob, rng)


def create_instances(docs, packing: str, max_seq_length: int, short_seq_prob: float,
                     dupe_factor: int, seed: int) -> list[Instance]:
    rng = random.Random(seed)
    instances = list(iter_instances(docs, packing, max_seq_length, short_seq_prob, dupe_factor, rng))
    rng.shuffle(instances)
    return instances


def token_dtype(vocab_size: int):
    """The narrowest integer type that holds every token id: uint16 up to 65,536 ids."""
    return np.uint16 if vocab_size <= 1 << 16 else np.int32


class InstanceWriter:
    """Encodes instances into fixed-width rows as they come, a block of rows at a time."""

    BLOCK = 1 << 14

    def __init__(self, max_seq_length: int, cls_id: int, sep_id: int, pad_id: int, vocab_size: int):
        self.width, self.cls_id, self.sep_id, self.pad_id = max_seq_length, cls_id, sep_id, pad_id
        self.dtype = token_dtype(vocab_size)
        self.blocks: list[dict] = []
        self.n = 0

    def _new_block(self) -> dict:
        rows = self.BLOCK
        return {"input_ids": np.full((rows, self.width), self.pad_id, dtype=self.dtype),
                "lengths": np.zeros(rows, dtype=np.int32), "segment_b": np.zeros(rows, dtype=np.int32),
                "next_sentence_label": np.zeros(rows, dtype=np.int8),
                "doc_a": np.zeros(rows, dtype=np.int32), "doc_b": np.zeros(rows, dtype=np.int32)}

    def add(self, inst: Instance) -> None:
        block, row = divmod(self.n, self.BLOCK)
        if block == len(self.blocks):
            self.blocks.append(self._new_block())
        arrays = self.blocks[block]
        ids = [self.cls_id, *inst.tokens_a, self.sep_id]
        segment_b = self.width  # no B: every position is segment A
        if inst.tokens_b:
            segment_b = len(ids)
            ids += [*inst.tokens_b, self.sep_id]
        arrays["input_ids"][row, : len(ids)] = ids
        arrays["lengths"][row], arrays["segment_b"][row] = len(ids), segment_b
        arrays["next_sentence_label"][row] = inst.nsp_label
        arrays["doc_a"][row], arrays["doc_b"][row] = inst.doc_a, inst.doc_b
        self.n += 1

    def arrays(self, order: list[int] | None = None) -> dict[str, np.ndarray]:
        """All rows, in ``order`` when given."""
        out = {}
        for field in FIELDS:
            column = np.concatenate([b[field] for b in self.blocks])[: self.n] if self.blocks else np.zeros(0)
            out[field] = column if order is None else column[order]
        self.blocks = []
        return out


def encode(instances: list[Instance], max_seq_length: int, cls_id: int, sep_id: int, pad_id: int,
           vocab_size: int = 1 << 16) -> dict:
    """Fixed-width arrays of ``instances`` (the stored format), with token_type_ids derived."""
    writer = InstanceWriter(max_seq_length, cls_id, sep_id, pad_id, vocab_size)
    for inst in instances:
        writer.add(inst)
    arrays = writer.arrays()
    arrays["token_type_ids"] = token_type_ids(arrays["segment_b"], arrays["lengths"], max_seq_length)
    return arrays


def token_type_ids(segment_b: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    positions = np.arange(width)
    return ((positions >= segment_b[:, None]) & (positions < lengths[:, None])).astype(np.int64)


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


def write_split(folder: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """One split's stored fields as .npy files in ``folder``; returns their SHA-256 by file name."""

    folder.mkdir(parents=True)
    fields = [f for f in (*FIELDS, *STATIC_FIELDS) if f in arrays]
    for field in fields:
        np.save(folder / f"{field}.npy", arrays[field])
    return {f"{field}.npy": file_digest(folder / f"{field}.npy", 64) for field in fields}


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
                                       dupe, rng):
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


def read_manifest(shard_dir: str) -> dict:
    return read_json(os.path.join(shard_dir, MANIFEST))


def instances_digest(shard_dirs: list[str], split: str) -> str:
    """SHA-256 over the files of ``split`` in every shard, from their manifests (nothing re-read)."""
    digest = hashlib.sha256()
    for shard_dir in shard_dirs:
        for name, sha in sorted(read_manifest(shard_dir)[split]["files"].items()):
            digest.update(f"{Path(shard_dir).name}/{split}/{name}\0{sha}\n".encode())
    return digest.hexdigest()


class InstanceStore:
    """The instances of one split across shards, read from disk row by row (``pread``) when a
    batch asks for them: memory holds the rows' lengths (4 bytes each) and the batch, never the
    files. (Memory-mapping would count every page read, and the kernel's read-ahead around it, in
    the process's resident memory: +900 MB after 50 random batches of a 2 GB store.)"""

    def __init__(self, shard_dirs: list[str], split: str):
        if isinstance(shard_dirs, (str, os.PathLike)):
            shard_dirs = [shard_dirs]
        self.paths = [os.path.join(d, split) for d in shard_dirs]
        for path in self.paths:
            if not os.path.exists(os.path.join(path, "input_ids.npy")):
                raise FileNotFoundError(f"{path}: no instances here (input_ids.npy); build them with "
                                        "snakemake's instances rule.")
        self.fields = FIELDS + tuple(f for f in STATIC_FIELDS if os.path.exists(os.path.join(self.paths[0], f"{f}.npy")))
        self.shards = [{f: _NpyRows(os.path.join(p, f"{f}.npy")) for f in self.fields} for p in self.paths]
        self.width = self.shards[0]["input_ids"].shape[1]
        self.lengths = np.concatenate([np.load(os.path.join(p, "lengths.npy")) for p in self.paths]).astype(
            np.int32, copy=False)
        self.starts = np.cumsum([0] + [s["lengths"].shape[0] for s in self.shards])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def gather(self, index: np.ndarray, width: int, fields: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Rows ``index`` (global) of ``fields`` (all by default), input_ids cut to ``width`` columns."""
        fields = self.fields if fields is None else ("input_ids", *[f for f in fields if f in self.fields
                                                                      and f != "input_ids"])
        index = np.asarray(index, dtype=np.int64)
        shard_of = np.searchsorted(self.starts, index, side="right") - 1
        out = {}
        for field in fields:
            shape = self.shards[0][field].shape[1:]
            if field == "input_ids":
                shape = (width,)
            out[field] = np.empty((len(index), *shape), dtype=np.float32 if field == "mask_fates" else np.int64)
        for s in np.unique(shard_of):
            where = np.nonzero(shard_of == s)[0]
            rows = index[where] - self.starts[s]
            for field in fields:
                columns = width if field == "input_ids" else None
                out[field][where] = self.shards[s][field].read(rows, columns)
        return out


class _NpyRows:
    """Rows of a C-ordered .npy file, read with os.pread (the header says where the data starts)."""

    def __init__(self, path: str):
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            self.shape, fortran, self.dtype = read_header(handle)
            self.offset = handle.tell()
        assert not fortran, path
        self.row_items = int(np.prod(self.shape[1:], dtype=np.int64))
        self.path, self._fd = path, None

    def read(self, rows: np.ndarray, columns: int | None = None) -> np.ndarray:
        """``rows`` (any order, repeats allowed), each its first ``columns`` items (all by default).

        The distinct rows are read in file order, rows that lie close together (within
        ``GAP_BYTES`` of each other) in one ``pread`` of the span that holds them: a batch of
        neighbouring rows (held-out batches, a small store) costs one syscall instead of one per
        row; scattered rows still cost one each, as they must."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        rows = np.asarray(rows, dtype=np.int64)
        items = self.row_items if columns is None else columns
        row_bytes, size = self.row_items * self.dtype.itemsize, items * self.dtype.itemsize
        distinct, where = np.unique(rows, return_inverse=True)  # sorted
        if not len(distinct):
            return np.empty((0, *((items,) if self.shape[1:] else ())), dtype=self.dtype)
        out = np.empty((len(distinct), items), dtype=self.dtype)
        # runs: a new one starts where the gap to the previous row exceeds GAP_BYTES
        breaks = np.nonzero(np.diff(distinct) * row_bytes > self.GAP_BYTES)[0] + 1
        for run in np.split(np.arange(len(distinct)), breaks):
            first, last = int(distinct[run[0]]), int(distinct[run[-1]])
            if first == last:
                out[run[0]] = np.frombuffer(os.pread(self._fd, size, self.offset + first * row_bytes), self.dtype)
                continue
            span = os.pread(self._fd, (last - first) * row_bytes + size, self.offset + first * row_bytes)
            block = np.frombuffer(span + b"\0" * (row_bytes - size), self.dtype).reshape(-1, self.row_items)
            out[run] = block[distinct[run] - first, :items]
        out = out[where.reshape(-1)]
        return out if self.shape[1:] else out.reshape(len(rows))

    GAP_BYTES = 64 * 1024  # reading this much unwanted data costs less than a syscall and a seek

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
