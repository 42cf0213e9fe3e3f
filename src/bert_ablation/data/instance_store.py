"""The instances' on-disk store: fixed-width ``.npy`` rows per field, written once, read row by row.

A shard's split is a folder of one ``.npy`` file per field and the shard's ``manifest.json``
(counts and each file's SHA-256, from which ``instances_digest`` names the data without rereading
it). ``InstanceWriter`` encodes instances (instances.py makes them) into rows as they come;
``InstanceStore`` reads the rows a batch asks for with ``pread``, so pretraining's memory holds the
rows' lengths and the batch, never the files.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..storage import file_digest, read_json

# One file per field: fixed width (N, max_seq_length) for the tokens, one value per row otherwise.
# Segment ids are not stored: token_type_ids = 1 from segment_b (where B starts) to the row's end.
FIELDS = ("input_ids", "lengths", "segment_b", "next_sentence_label", "doc_a", "doc_b")
# With instances.static_masking, the training split also stores each instance's masks (masking.py).
STATIC_FIELDS = ("masked_positions", "mask_fates", "mask_random_ids")
MANIFEST = "manifest.json"


@dataclass
class Instance:
    """One instance as a packer (instances.py) makes it and a row stores it."""

    tokens_a: list[int]
    tokens_b: list[int]  # empty for contiguous packing
    nsp_label: int  # 0 IsNext, 1 NotNext (random), -1 none
    doc_a: int
    doc_b: int  # source document of B (== doc_a unless random), -1 if no B


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


def write_split(folder: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """One split's stored fields as .npy files in ``folder``; returns their SHA-256 by file name."""

    folder.mkdir(parents=True)
    fields = [f for f in (*FIELDS, *STATIC_FIELDS) if f in arrays]
    for field in fields:
        np.save(folder / f"{field}.npy", arrays[field])
    return {f"{field}.npy": file_digest(folder / f"{field}.npy", 64) for field in fields}


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
