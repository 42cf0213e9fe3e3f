"""Train a WordPiece vocabulary on the corpus and save it as an HF BERT tokenizer."""

from __future__ import annotations

import logging

from .corpus import load_corpus
from .storage import atomic_dir

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(sentences, vocab_size: int, lowercase: bool, min_frequency: int):
    """A ``BertTokenizerFast`` whose vocabulary was learnt from ``sentences``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizerFast

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=SPECIAL_TOKENS, show_progress=False)
    backend.train_from_iterator(sentences, trainer)
    # Rebuild through BertTokenizerFast so that normalisation, [CLS]/[SEP] templates and the
    # saved files are exactly those of any HF BERT tokenizer.
    return BertTokenizerFast(vocab=backend.get_vocab(), do_lower_case=lowercase, strip_accents=lowercase)


def build_tokenizer(corpus_dir: str, out_dir: str, tokenizer_config: dict) -> dict:
    sentences = [s for doc in load_corpus(corpus_dir, "train") for s in doc]
    tokenizer = train_wordpiece(sentences, tokenizer_config["vocab_size"], tokenizer_config["lowercase"],
                                tokenizer_config["min_frequency"])
    with atomic_dir(out_dir) as tmp:
        tokenizer.save_pretrained(str(tmp))
    summary = {"vocab_size": len(tokenizer), "requested": tokenizer_config["vocab_size"], "sentences": len(sentences)}
    if len(tokenizer) < tokenizer_config["vocab_size"]:
        log.warning("tokenizer: the corpus supports only %d of the %d requested tokens.",
                    len(tokenizer), tokenizer_config["vocab_size"])
    log.info("tokenizer: %s", summary)
    return summary


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)
