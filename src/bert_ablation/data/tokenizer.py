"""Train a WordPiece vocabulary on the corpus and save it as an HF BERT tokenizer.

At scale this is two stages: each corpus shard's words are counted by a job of its own
(``count_words``, a sorted TSV), and the vocabulary is learnt from the merged counts
(``build_tokenizer``), optionally from the ``max_words`` most frequent words only.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import Counter, defaultdict

from ..storage import atomic_dir, atomic_file
from .corpus import iter_documents

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def word_counts(sentences, lowercase: bool, batch_size: int = 2000) -> Counter:
    """Words as BERT's normaliser and pre-tokeniser split them, with their frequencies.

    Sentences are joined by newlines, ``batch_size`` at a time, into one call of each: both
    work character by character and split on whitespace, so a batch gives the words its
    sentences give one by one, at a fraction of the per-call cost."""
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter = Counter()
    sentences = iter(sentences)
    while batch := list(itertools.islice(sentences, batch_size)):
        text = normalizer.normalize_str("\n".join(batch))
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(text))
    return counts


def write_word_counts(counts: Counter, path: str) -> None:
    """``word<TAB>count`` lines sorted by word (words never hold whitespace: the pre-tokeniser
    splits on it)."""
    with atomic_file(path) as handle:
        for word in sorted(counts):
            handle.write(f"{word}\t{counts[word]}\n")


def read_word_counts(paths: list[str]) -> Counter:
    """The merged counts of several shards' files."""
    counts: Counter = Counter()
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                word, _, n = line.rstrip("\n").rpartition("\t")
                counts[word] += int(n)
    return counts


def most_frequent(counts: Counter, max_words: int | None) -> Counter:
    """The ``max_words`` most frequent words (ties to the smaller word), or all of them."""
    if max_words is None or len(counts) <= max_words:
        return counts
    return Counter(dict(heapq.nsmallest(max_words, counts.items(), key=lambda item: (-item[1], item[0]))))


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
    return tokenizer_from_vocab(learn_wordpiece_vocab(word_counts(sentences, lowercase), vocab_size, min_frequency),
                                lowercase)


def count_words(corpus_dir: str, out_path: str, lowercase: bool) -> dict:
    """Count the words of one corpus shard's training documents into ``out_path``."""
    counts = word_counts((s for doc in iter_documents(corpus_dir, "train") for s in doc), lowercase)
    write_word_counts(counts, out_path)
    summary = {"distinct_words": len(counts), "words": sum(counts.values())}
    log.info("word counts of %s: %s", corpus_dir, summary)
    return summary


def tokenizer_from_vocab(vocab: list[str], lowercase: bool):
    """A ``BertTokenizerFast`` over ``vocab``: it brings the normalisation, [CLS]/[SEP] templates
    and saved files of any HF BERT tokenizer."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=lowercase,
                             strip_accents=lowercase)


def build_tokenizer(count_paths: list[str], out_dir: str, tokenizer_config: dict) -> dict:
    """Learn the vocabulary from the merged word counts of every corpus shard and save it."""
    counts = read_word_counts(count_paths)
    learnt_from = most_frequent(counts, tokenizer_config["max_words"])
    vocab = learn_wordpiece_vocab(learnt_from, tokenizer_config["vocab_size"], tokenizer_config["min_frequency"])
    tokenizer = tokenizer_from_vocab(vocab, tokenizer_config["lowercase"])
    with atomic_dir(out_dir) as tmp:
        tokenizer.save_pretrained(str(tmp))
    summary = {"vocab_size": len(tokenizer), "requested": tokenizer_config["vocab_size"], "shards": len(count_paths),
               "distinct_words": len(counts), "learnt_from_words": len(learnt_from), "words": sum(counts.values())}
    if len(tokenizer) < tokenizer_config["vocab_size"]:
        log.warning("tokenizer: the corpus supports only %d of the %d requested tokens.",
                    len(tokenizer), tokenizer_config["vocab_size"])
    log.info("tokenizer: %s", summary)
    return summary


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)
