"""SQuAD windows and decoding against google-research/bert run_squad.py's rules, written out
here from the algorithm: windows of max_tokens_for_doc = max_seq_length - len(query) - 3 doc
tokens, each starting min(length, doc_stride) tokens after the last; a token's max-context
window scores min(left, right context) + 0.01 * length, the first best winning."""

import numpy as np
import pytest
from conftest import WORDS

from bert_ablation.data.features import span_features
from bert_ablation.evaluation.scoring import best_spans
from bert_ablation.settings import TaskSettings


def run_squad_windows(doc_tokens: list, max_tokens_for_doc: int, doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) of each doc span, as run_squad.py's convert_examples_to_features loop."""
    spans, start_offset = [], 0
    while start_offset < len(doc_tokens):
        length = min(len(doc_tokens) - start_offset, max_tokens_for_doc)
        spans.append((start_offset, length))
        if start_offset + length == len(doc_tokens):
            break
        start_offset += min(length, doc_stride)
    return spans


def run_squad_is_max_context(spans: list[tuple[int, int]], current: int, position: int) -> bool:
    best_score, best_index = None, None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return best_index == current


def _context(n_words: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), n_words)) + "."


def _settings(max_seq_length, doc_stride, max_query_length, meaning="step", max_context=False):
    return TaskSettings.from_dict({"max_seq_length": max_seq_length, "doc_stride": doc_stride,
                                   "max_query_length": max_query_length, "doc_stride_meaning": meaning,
                                   "max_context": max_context})


QUESTIONS = ["who sat on the mat", "red house", "where did the big dog run far away from the city river"]


@pytest.mark.parametrize("max_seq_length, doc_stride, max_query_length", [
    (384, 128, 64),  # the paper's
    (32, 5, 8), (40, 17, 16), (24, 1, 4), (64, 30, 6),
    (32, 40, 4),  # a step longer than the window: run_squad.py's windows then just touch
])
def test_step_windows_are_run_squads(tokenizer, max_seq_length, doc_stride, max_query_length):
    contexts = [_context(n, seed) for seed, n in enumerate((3, 40, 150, 420))]
    records = {"question": [q for q in QUESTIONS for _ in contexts], "context": contexts * len(QUESTIONS),
               "id": [str(i) for i in range(len(QUESTIONS) * len(contexts))]}
    settings = _settings(max_seq_length, doc_stride, max_query_length, max_context=True)
    features = span_features(records, tokenizer, settings, train=False)
    windows_seen = 0
    for example, (question, context) in enumerate(zip(records["question"], records["context"])):
        query = tokenizer(question, add_special_tokens=False)["input_ids"][:max_query_length]
        doc = tokenizer(context, add_special_tokens=False)["input_ids"]
        spans = run_squad_windows(doc, max_seq_length - len(query) - 3, doc_stride)
        rows = [k for k, e in enumerate(features["example"]) if e == example]
        assert len(rows) == len(spans)
        for index, (k, (start, length)) in enumerate(zip(rows, spans)):
            ids = features["input_ids"][k]
            assert ids == [tokenizer.cls_token_id, *query, tokenizer.sep_token_id, *doc[start: start + length],
                           tokenizer.sep_token_id]
            assert len(ids) <= max_seq_length
            context_mask = features["max_context"][k][len(query) + 2: len(query) + 2 + length]
            assert context_mask == [run_squad_is_max_context(spans, index, start + i) for i in range(length)]
            assert not any(features["max_context"][k][: len(query) + 2]) and not features["max_context"][k][-1]
        windows_seen += len(rows)
    assert windows_seen == len(features["input_ids"])
    assert features["example"] == sorted(features["example"])  # windows in example order
    if (max_seq_length, doc_stride) == (384, 128):
        assert max(map(len, features["input_ids"])) == 384 and len(features["input_ids"]) > len(records["id"])


def test_overlap_keeps_hf_stride_and_its_bytes(tokenizer):
    contexts = [_context(n, seed) for seed, n in enumerate((30, 120, 300))]
    records = {"question": ["who sat on the mat"] * 3, "context": contexts, "id": ["a", "b", "c"]}
    features = span_features(records, tokenizer, _settings(48, 10, 16, meaning="overlap"), train=False)
    direct = tokenizer(records["question"], contexts, truncation="only_second", max_length=48, stride=10,
                       return_overflowing_tokens=True, return_offsets_mapping=True)
    assert features["input_ids"] == direct["input_ids"]
    assert features["example"] == list(direct["overflow_to_sample_mapping"])
    assert "max_context" not in features  # off: nothing computed, decoding unchanged
    # consecutive windows of an example share exactly doc_stride context tokens
    n_query = len(tokenizer("who sat on the mat", add_special_tokens=False)["input_ids"])
    for k in range(1, len(features["input_ids"])):
        if features["example"][k] == features["example"][k - 1]:
            before, after = features["input_ids"][k - 1][n_query + 2: -1], features["input_ids"][k][n_query + 2: -1]
            assert before[-10:] == after[:10] and len(before) == 48 - n_query - 3
    # absent settings mean the schema defaults: overlap, no max-context rule
    plain = span_features(records, tokenizer, TaskSettings.from_dict({"max_seq_length": 48, "doc_stride": 10,
                                                                      "max_query_length": 16}), train=False)
    assert plain["input_ids"] == features["input_ids"]


def test_step_windows_train_on_the_answer(tokenizer):
    context = _context(300, 7)
    start = context.index(" house ") + 1 if " house " in context else context.index(" ") + 1
    word = context[start:].split()[0]
    records = {"question": ["which one"], "context": [context], "id": ["q"],
               "answers": [{"text": [word], "answer_start": [start]}]}
    features = span_features(records, tokenizer, _settings(40, 12, 8), train=True)
    assert len(features["input_ids"]) > 3
    found = 0
    for k, (s, e) in enumerate(zip(features["start_positions"], features["end_positions"])):
        if s:
            offsets = features["offsets"][k]
            assert context[offsets[s][0]: offsets[e][1]] == word
            found += 1
    assert found >= 1


def test_max_context_takes_a_start_from_its_best_window_only(tokenizer):
    """A token near the end of window 0 and in the middle of window 1: window 0's high score for it
    wins without the rule; with it, only window 1 may start there, and its other span wins."""
    context = " ".join(WORDS[:20])  # one token per word at this vocabulary
    doc = tokenizer(context, add_special_tokens=False)["input_ids"]
    assert len(doc) == 20
    records = {"question": ["who"], "context": [context], "id": ["q"]}
    n_query = len(tokenizer("who", add_special_tokens=False)["input_ids"])
    settings = _settings(n_query + 3 + 10, 5, 4, max_context=True)  # 10 doc tokens a window, step 5
    features = span_features(records, tokenizer, settings, train=False)
    spans = run_squad_windows(doc, 10, 5)
    assert spans == [(0, 10), (5, 10), (10, 10)] and len(features["input_ids"]) == 3
    first = n_query + 2  # the first context token of a window
    # doc positions: t in windows 0 (context 8 left, 1 right) and 1 (3, 6); u in windows 1 (6, 3) and 2 (1, 8)
    t, u = 8, 11
    assert features["max_context"][0][first + t] is False and features["max_context"][1][first + t - 5] is True
    assert features["max_context"][1][first + u - 5] is True and features["max_context"][2][first + u - 10] is False
    starts = [np.zeros(len(ids)) for ids in features["input_ids"]]
    ends = [np.zeros(len(ids)) for ids in features["input_ids"]]
    starts[0][first + t] = ends[0][first + t] = 10.0  # "t" in window 0: 20
    starts[1][first + t - 5] = ends[1][first + t - 5] = 4.0  # "t" in window 1: 8
    starts[1][first + u - 5] = ends[1][first + u - 5] = 7.5  # "u" in window 1 (its max-context one): 15
    word = context.split()
    assert best_spans(records, features, starts, ends, 20, 30) == {"q": word[u]}
    without = {k: v for k, v in features.items() if k != "max_context"}
    assert best_spans(records, without, starts, ends, 20, 30) == {"q": word[t]}


def test_the_configs_doc_stride_bound_is_where_hf_panics(tokenizer):
    """config.py refuses doc_stride >= max_seq_length - max_query_length - 3: for a question of
    max_query_length tokens one below works, and at the bound HF's tokenizer panics (a Rust
    PanicException, a BaseException that no `except Exception` would catch)."""
    from bert_ablation import config as cfg

    question = "where did the big dog run far away from the city river"
    max_query_length = 6
    assert len(tokenizer(question, add_special_tokens=False)["input_ids"]) > max_query_length
    records = {"question": [question], "context": [_context(200, 1)], "id": ["q"]}
    bound = 32 - max_query_length - 3
    features = span_features(records, tokenizer, _settings(32, bound - 1, max_query_length, meaning="overlap"),
                             train=False)
    assert len(features["input_ids"]) > 50  # one new context token per window
    with pytest.raises(BaseException, match="stride"):
        span_features(records, tokenizer, _settings(32, bound, max_query_length, meaning="overlap"), train=False)
    with pytest.raises(cfg.ConfigError, match=rf"doc_stride={bound} must be below .* = {bound}"):
        cfg.validate({"tasks": {"squad": {"max_seq_length": 32, "doc_stride": bound,
                                          "max_query_length": max_query_length}}})
