"""Released or local checkpoints as table rows: import one, check it, record where it came from.

``import_checkpoint`` turns a config entry (``checkpoints.<name>``: a hub id with an optional
revision, or a local folder in HF format) into the layout a pretraining run leaves behind,
``<out>/final/`` (the model, its own tokenizer and an ``ablation.json`` naming its source), and
a ``metrics.json`` with its shape, the hub commit actually fetched and the SHA-256 of every file.
Fine-tuning, tables and claims then treat it exactly as they treat a pretraining run. Every
check that can fail runs before anything is written, and each error names the config key.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..hub import MirrorError, model_folder
from ..storage import atomic_dir, file_digest, write_json

log = logging.getLogger(__name__)

# Encoders whose inputs the task heads build (input ids, attention mask, two segment types) and
# whose output the heads read (last hidden state, every layer's for the feature-based heads).
SUPPORTED_MODEL_TYPES = ("bert", "electra", "roformer")
MODEL_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")  # a fast tokenizer's file, or WordPiece's vocabulary


class CheckpointImportError(ValueError):
    """A checkpoint entry that cannot serve as a row: says which key, what is wrong and the fix."""


def import_checkpoint(name: str, source: dict, out_dir: str, metrics_path: str, spec_hash: str) -> dict:
    """``spec_hash`` is the entry's identity as the plan computes it (``plan.checkpoint_hash``),
    recorded as a pretraining run records its own, so that results name the checkpoint they came from."""
    where = f"checkpoints.{name}"
    if source.get("path"):
        folder = _local_folder(where, source["path"])
    elif source.get("hub_mirror"):  # the mirror's copy of the hub repo, read as a local folder
        try:
            folder = model_folder(source["hub"], source["hub_mirror"], f"{where}.hub")
        except MirrorError as err:
            raise CheckpointImportError(str(err)) from None
        if source.get("revision"):
            log.info("%s.revision %s ignored: read from the mirror's copy %s", where, source["revision"], folder)
    else:
        folder = _hub_snapshot(where, source)
    config, tokenizer = _check(where, folder)
    with atomic_dir(out_dir) as tmp:
        final = Path(tmp) / "final"
        shutil.copytree(folder, final, ignore=shutil.ignore_patterns(".*"))
        digests = {f.name: file_digest(str(f), length=64) for f in sorted(final.iterdir()) if f.is_file()}
        spec = {"name": name, "step": "final", "spec_hash": spec_hash, "source": source}
        write_json(final / "ablation.json", spec)
    metrics = {
        "ablation": name, "spec_hash": spec["spec_hash"], "source": source,
        "revision": getattr(config, "_commit_hash", None) if source.get("hub") else None,
        "model_type": config.model_type, "steps": None,
        "model": {"architecture": config.model_type, "layers": config.num_hidden_layers,
                  "hidden": config.hidden_size, "heads": config.num_attention_heads,
                  "intermediate": config.intermediate_size},
        "vocab_size": config.vocab_size, "tokenizer_size": len(tokenizer),
        "lowercase": bool(getattr(tokenizer, "do_lower_case", False)), "digests": digests,
    }
    write_json(metrics_path, metrics)
    log.info("checkpoint %s: %s", name, metrics)
    return metrics


def _local_folder(where: str, path: str) -> str:
    if not os.path.isdir(path):
        raise CheckpointImportError(f"{where}.path: '{path}' does not exist or is not a folder; give the folder of an "
                                    "HF checkpoint (what save_pretrained writes or a downloaded hub snapshot).")
    return path


def _hub_snapshot(where: str, source: dict) -> str:
    """The hub repository's files at ``revision`` (the HF cache, downloading what is missing)."""
    from huggingface_hub import snapshot_download

    def fetch(weights: str) -> str:
        return snapshot_download(source["hub"], revision=source.get("revision"),
                                 allow_patterns=["*.json", "*.txt", "*.model", weights])

    try:
        folder = fetch("*.safetensors")
        # Older repositories (Google's BERT miniatures) have PyTorch .bin weights only; fetching
        # them only then avoids downloading a model twice where both exist.
        return folder if any(os.path.exists(os.path.join(folder, f)) for f in MODEL_FILES) else fetch("*.bin")
    except Exception as err:  # offline, unknown id, gated repo: all end the same way for the user
        raise CheckpointImportError(
            f"{where}.hub: cannot fetch '{source['hub']}'" + (f" at revision {source['revision']}" if
                                                             source.get("revision") else "")
            + f" ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no detail'}). Without network "
            "access, download it elsewhere (huggingface-cli download ...) and give its folder as "
            f"{where}.path instead.") from None


def _check(where: str, folder: str):
    """Load the checkpoint's config and tokenizer (cheap) and refuse what the heads cannot serve."""
    from transformers import AutoConfig, AutoTokenizer

    if not os.path.exists(os.path.join(folder, "config.json")):
        raise CheckpointImportError(f"{where}: {folder} is not an HF checkpoint: it has no config.json "
                                    "(save the model with save_pretrained, or point at the snapshot folder).")
    config = AutoConfig.from_pretrained(folder)
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise CheckpointImportError(f"{where}: model type '{config.model_type}' cannot be served by the task heads "
                                    f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)}: encoders with segment "
                                    "embeddings for sentence pairs).")
    if not any(os.path.exists(os.path.join(folder, f)) for f in MODEL_FILES):
        raise CheckpointImportError(f"{where}: {folder} has a config.json but no weights ({' or '.join(MODEL_FILES)}).")
    try:
        if not any(os.path.exists(os.path.join(folder, f)) for f in TOKENIZER_FILES):
            raise FileNotFoundError(f"none of {', '.join(TOKENIZER_FILES)}")
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except Exception as err:
        raise CheckpointImportError(f"{where}: {folder} has no usable tokenizer ({type(err).__name__}: "
                                    f"{str(err).splitlines()[0] if str(err) else ''}); save the tokenizer beside "
                                    "the model (tokenizer.save_pretrained).") from None
    if len(tokenizer) > config.vocab_size:
        raise CheckpointImportError(f"{where}: the tokenizer has {len(tokenizer)} tokens but the model "
                                    f"{config.vocab_size} embedding rows: they are not a pair; use the tokenizer "
                                    "saved with this model.")
    if getattr(config, "type_vocab_size", 2) < 2:
        raise CheckpointImportError(f"{where}: the model has {config.type_vocab_size} segment type(s); sentence-pair "
                                    "tasks need two.")
    return config, tokenizer
