"""Train a WordPiece vocabulary on the corpus and save it as an HF BERT tokenizer."""

from __future__ import annotations

import heapq
import logging
from collections import Counter, defaultdict

from .corpus import load_corpus
from .storage import atomic_dir

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def word_counts(sentences, lowercase: bool) -> Counter:
    """Words as BERT's normaliser and pre-tokeniser split them, with their frequencies."""
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter = Counter()
    for sentence in sentences:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(sentence)))
    return counts


def learn_wordpiece_vocab(counts: Counter, vocab_size: int, min_frequency: int) -> list[str]:
    """WordPiece vocabulary by greedy merges of the most frequent adjacent pair.

    The same algorithm as ``tokenizers``' WordPiece trainer, but deterministic: its trainer
    breaks ties in pair counts by hash-map order, so the same corpus gives a different
    vocabulary in every process. Here ties go to the lexicographically smallest pair.
    """
    words = [[w[0], *("##" + c for c in w[1:])] for w in sorted(counts)]
    freqs = [counts[w] for w in sorted(counts)]
    vocab = list(SPECIAL_TOKENS) + sorted({s for word in words for s in word})
    known = set(vocab)
    pair_counts: Counter = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        negative, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative:
            continue  # stale entry: the count changed since it was pushed
        if -negative < min_frequency:
            break
        merged = pair[0] + pair[1].removeprefix("##")
        changed: set[tuple[str, str]] = set()
        for i in sorted(where.pop(pair)):
            word, n = words[i], freqs[i]
            for old in zip(word, word[1:]):
                pair_counts[old] -= n
                changed.add(old)
            k, out = 0, []
            while k < len(word):
                if k + 1 < len(word) and (word[k], word[k + 1]) == pair:
                    out.append(merged)
                    k += 2
                else:
                    out.append(word[k])
                    k += 1
            words[i] = out
            for new in zip(out, out[1:]):
                pair_counts[new] += n
                where[new].add(i)
                changed.add(new)
        del pair_counts[pair]
        for other in changed - {pair}:
            if pair_counts.get(other, 0) > 0:
                heapq.heappush(heap, (-pair_counts[other], other))
            else:
                pair_counts.pop(other, None)
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
    return vocab


def train_wordpiece(sentences, vocab_size: int, lowercase: bool, min_frequency: int):
    """A ``BertTokenizerFast`` whose vocabulary was learnt from ``sentences``."""
    from transformers import BertTokenizerFast

    vocab = learn_wordpiece_vocab(word_counts(sentences, lowercase), vocab_size, min_frequency)
    # BertTokenizerFast brings the normalisation, [CLS]/[SEP] templates and saved files of any
    # HF BERT tokenizer.
    return BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=lowercase,
                             strip_accents=lowercase)


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
