"""Task records -> model inputs, by task kind (``featurize``); decoding the outputs back into
predictions is evaluation's (``evaluation.scoring``).

Classification and regression: segment A (and B) truncated to max_seq_length. Span QA follows
the BERT / HF run_qa recipe: the question (cut to max_query_length tokens) followed by windows
of the context of max_seq_length tokens; doc_stride is either the overlap of consecutive windows
(HF's stride) or, as in google-research/bert run_squad.py, the step between their starts
(doc_stride_meaning). A window that does not contain the whole answer is trained to point at
[CLS]. At evaluation (``evaluation.scoring.best_spans``) the best span over all windows of a question wins, with score
start_logit(i) + end_logit(j), j >= i, at most max_answer_length tokens, from the n_best starts
and ends of each window; with max_context, a start counts only in the window where that token
has the most context (run_squad.py's rule). A question with no valid span gets no prediction.

Tagging (NER) follows the paper: each word is labelled at its first sub-token and the other
sub-tokens are not scored. As the paper did for CoNLL-2003, a sentence is fed with as much of
its document around it as fits (whole words from the neighbouring sentences, alternately
before and after); only the sentence's own words carry labels.
"""

from __future__ import annotations

import bisect
import logging
import os

import numpy as np
import torch

from ..facts.tasks import TaskSpec
from ..models.masking import IGNORE_INDEX
from ..settings import TaskSettings

log = logging.getLogger(__name__)


def _truncate_questions(questions: list[str], tokenizer, max_query_length: int) -> list[str]:
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for question, offsets in zip(questions, encoded["offset_mapping"]):
        out.append(question[: offsets[max_query_length - 1][1]] if len(offsets) > max_query_length else question)
    return out


def classification_features(spec: TaskSpec, records, tokenizer, max_seq_length: int) -> dict:
    texts = [records[field] for field in spec.text_fields]
    encoded = tokenizer(*texts, truncation=True, max_length=max_seq_length)
    return {"input_ids": encoded["input_ids"], "token_type_ids": encoded["token_type_ids"],
            "labels": list(records["label"])}


def _window_overlaps(questions: list[str], tokenizer, settings: TaskSettings) -> list[int]:
    """The HF stride (context tokens shared by consecutive windows) of each question's windows."""
    if settings.doc_stride_meaning == "overlap":
        return [settings.doc_stride] * len(questions)
    # run_squad.py: windows of max_tokens_for_doc = max_seq_length - len(query) - 3 context tokens,
    # each starting doc_stride tokens after the last (never past its end). HF's windows overlap by
    # its stride instead, so a step is the overlap max_tokens_for_doc - step: this question's own.
    room = settings.max_seq_length - tokenizer.num_special_tokens_to_add(pair=True)
    query_lengths = map(len, tokenizer(questions, add_special_tokens=False)["input_ids"])
    return [max(0, room - n - settings.doc_stride) for n in query_lengths]


def _encode_windows(questions: list[str], contexts: list[str], tokenizer, settings: TaskSettings) -> dict:
    """The windows of every question, in example order: input_ids, token_type_ids, offset_mapping,
    sequence_ids, example, and doc_start (the window's first context token, counted in tokens of
    the context)."""
    overlaps = _window_overlaps(questions, tokenizer, settings)
    groups: dict[int, list[int]] = {}  # the tokenizer takes one stride per call
    for i, overlap in enumerate(overlaps):
        groups.setdefault(overlap, []).append(i)
    windows = []
    for overlap, members in groups.items():
        encoded = tokenizer([questions[i] for i in members], [contexts[i] for i in members],
                            truncation="only_second", max_length=settings.max_seq_length, stride=overlap,
                            return_overflowing_tokens=True, return_offsets_mapping=True)
        for k, sample in enumerate(encoded["overflow_to_sample_mapping"]):
            windows.append((members[sample], encoded["input_ids"][k], encoded["token_type_ids"][k],
                            encoded["offset_mapping"][k], encoded.sequence_ids(k)))
    windows.sort(key=lambda window: window[0])  # stable: an example's windows keep their order
    out = {key: [] for key in ("input_ids", "token_type_ids", "offset_mapping", "sequence_ids", "example",
                               "doc_start")}
    for example, input_ids, token_type_ids, offsets, sequence_ids in windows:
        start = 0
        if out["example"] and out["example"][-1] == example:  # the last window's start + its length - overlap
            start = out["doc_start"][-1] + out["sequence_ids"][-1].count(1) - overlaps[example]
        out["input_ids"].append(input_ids)
        out["token_type_ids"].append(token_type_ids)
        out["offset_mapping"].append(offsets)
        out["sequence_ids"].append(sequence_ids)
        out["example"].append(example)
        out["doc_start"].append(start)
    return out


def _max_context(windows: dict) -> list[list[bool]]:
    """Per window and token: whether this window gives the (context) token the most context of
    all its question's windows, by run_squad.py's _check_is_max_context: score min(tokens left,
    tokens right) + 0.01 * window length, the first window winning a tie."""
    spans: dict[int, list[tuple[int, int]]] = {}  # example -> (doc_start, length) of its windows, by start
    for example, start, sequence_ids in zip(windows["example"], windows["doc_start"], windows["sequence_ids"]):
        spans.setdefault(example, []).append((start, sequence_ids.count(1)))
    masks, seen = [], {}
    for example, sequence_ids in zip(windows["example"], windows["sequence_ids"]):
        index = seen[example] = seen.get(example, -1) + 1  # this window among its example's
        starts = [first for first, _ in spans[example]]
        longest = max(length for _, length in spans[example])
        mask, position = [], starts[index]
        for s in sequence_ids:
            if s != 1:
                mask.append(False)
                continue
            best, best_window = None, None
            # only windows starting within `longest` tokens before the position can hold it
            for w in range(bisect.bisect_right(starts, position - longest), bisect.bisect_right(starts, position)):
                first, length = spans[example][w]
                if position < first + length:
                    score = min(position - first, first + length - 1 - position) + 0.01 * length
                    if best is None or score > best:
                        best, best_window = score, w
            mask.append(best_window == index)
            position += 1
        masks.append(mask)
    return masks


def span_features(records, tokenizer, settings: TaskSettings, train: bool) -> dict:
    """Windows of (question, context) pairs. ``example`` maps each window to its record; ``offsets``
    hold the character span of each context token (None elsewhere). Training: the answer's token
    positions (0, [CLS], where the window lacks it). Evaluation with settings.max_context:
    ``max_context``, per token, whether this window is the token's max-context one."""
    questions = _truncate_questions(list(records["question"]), tokenizer, settings.max_query_length)
    encoded = _encode_windows(questions, list(records["context"]), tokenizer, settings)
    features = {"input_ids": encoded["input_ids"], "token_type_ids": encoded["token_type_ids"],
                "example": encoded["example"], "offsets": [],
                "start_positions": [], "end_positions": []}
    if not train and settings.max_context:
        features["max_context"] = _max_context(encoded)
    for k, offsets in enumerate(encoded["offset_mapping"]):
        sequence_ids = encoded["sequence_ids"][k]
        context = [i for i, s in enumerate(sequence_ids) if s == 1]
        # Only context tokens may be predicted; others get no offsets.
        features["offsets"].append([offsets[i] if sequence_ids[i] == 1 else None for i in range(len(offsets))])
        if not train:
            continue
        answer = records["answers"][features["example"][k]]
        start_char = answer["answer_start"][0]
        end_char = start_char + len(answer["text"][0])
        first, last = context[0], context[-1]
        if offsets[first][0] > start_char or offsets[last][1] < end_char:
            start = end = 0  # the answer is not (wholly) in this window: point at [CLS]
        else:
            start = next(i for i in context if offsets[i][1] > start_char)
            end = next(i for i in reversed(context) if offsets[i][0] < end_char)
        features["start_positions"].append(start)
        features["end_positions"].append(end)
    return features


def _word_pieces(tokenizer, words: list[str]) -> list[list[int]]:
    pieces = tokenizer(words, add_special_tokens=False)["input_ids"]
    return [p or [tokenizer.unk_token_id] for p in pieces]  # a word normalised away still holds a place


def _fit_context(own: list[list[int]], before: list[list[int]], after: list[list[int]],
                 budget: int) -> tuple[int, int, int]:
    """How many words (pieces per word given) fit in ``budget`` pieces: the sentence's own
    first, then context words alternately from just before and just after it.

    Returns (sentence words kept, context words before, context words after).
    """
    kept = used = 0
    while kept < len(own) and used + len(own[kept]) <= budget:
        used += len(own[kept])
        kept += 1
    n_before = n_after = 0
    grew = kept == len(own)  # a truncated sentence gets no context
    while grew:
        grew = False
        if n_before < len(before) and used + len(before[-1 - n_before]) <= budget:
            used += len(before[-1 - n_before])
            n_before += 1
            grew = True
        if n_after < len(after) and used + len(after[n_after]) <= budget:
            used += len(after[n_after])
            n_after += 1
            grew = True
    return kept, n_before, n_after


def tagging_features(records, tokenizer, max_seq_length: int, document_context: bool) -> dict:
    """[CLS] context + sentence + context [SEP]; ``labels`` hold a tag at each sentence word's
    first sub-token and IGNORE_INDEX elsewhere; ``word_positions`` map words to those positions
    (None for words cut by max_seq_length: they are predicted "O")."""
    tokens, tags = list(records["tokens"]), list(records["ner_tags"])
    with_documents = document_context and "document" in records
    if document_context and not with_documents:
        # The hub's conll2003 rows carry no document ids (its -DOCSTART- rows are dropped), so the
        # paper's document context cannot be rebuilt from them; local CoNLL files keep it.
        log.warning("NER document context is OFF for these %d sentences: the records have no 'document' field "
                    "(the hub's conll2003 has none). Each sentence is fed alone; use source: local with the "
                    "CoNLL files (their -DOCSTART- lines) for the paper's maximal document context.", len(tokens))
    documents = list(records["document"]) if with_documents else list(range(len(tokens)))
    pieces = [_word_pieces(tokenizer, words) for words in tokens]  # sentence -> word -> piece ids
    features = {"input_ids": [], "token_type_ids": [], "labels": [], "word_positions": []}
    for i, own in enumerate(pieces):
        # Records of a document are consecutive: its other sentences are the neighbours with its id.
        first, last = i, i
        while first > 0 and documents[first - 1] == documents[i]:
            first -= 1
        while last + 1 < len(tokens) and documents[last + 1] == documents[i]:
            last += 1
        before = [w for s in range(first, i) for w in pieces[s]]
        after = [w for s in range(i + 1, last + 1) for w in pieces[s]]
        kept, n_before, n_after = _fit_context(own, before, after, max_seq_length - 2)
        left = [p for w in before[len(before) - n_before:] for p in w]
        right = [p for w in after[:n_after] for p in w]
        ids, labels, positions = [tokenizer.cls_token_id, *left], [IGNORE_INDEX] * (1 + len(left)), []
        for k, word in enumerate(own):
            if k >= kept:
                positions.append(None)
                continue
            positions.append(len(ids))
            ids += word
            labels += [tags[i][k]] + [IGNORE_INDEX] * (len(word) - 1)
        ids += [*right, tokenizer.sep_token_id]
        labels += [IGNORE_INDEX] * (len(right) + 1)
        features["input_ids"].append(ids)
        features["token_type_ids"].append([0] * len(ids))
        features["labels"].append(labels)
        features["word_positions"].append(positions)
    return features


def _sequence_features(spec: TaskSpec, records, tokenizer, settings: TaskSettings, train: bool) -> dict:
    return classification_features(spec, records, tokenizer, settings.max_seq_length)


def _span_features(spec: TaskSpec, records, tokenizer, settings: TaskSettings, train: bool) -> dict:
    return span_features(records, tokenizer, settings, train)


def _tagging_features(spec: TaskSpec, records, tokenizer, settings: TaskSettings, train: bool) -> dict:
    return tagging_features(records, tokenizer, settings.max_seq_length, settings.document_context)


# How records of each task kind (facts.kinds.KINDS) become features: classification and
# regression alike (one row per sequence), SQuAD windows, NER words.
FEATURIZERS = {"classification": _sequence_features, "regression": _sequence_features,
               "span": _span_features, "tagging": _tagging_features}


def featurize(spec: TaskSpec, records, tokenizer, settings: TaskSettings, train: bool) -> dict:
    """A split's records as the model's inputs (and labels), as the task's kind builds them."""
    return FEATURIZERS[spec.kind](spec, records, tokenizer, settings, train)


class FeatureCache:
    """A frozen encoder's layers for every example, in fp16 on a disk memmap, read per batch.

    Fine-tuning a feature-based head reads the same encoder outputs every epoch and restart, so
    they are computed once. Held in host memory as fp32 (layers x tokens x hidden x 4 bytes) they
    are tens of GB for BERT-Base on CoNLL-2003; here host memory holds one batch, the rest stays
    on disk in ``folder`` (the job's state/tmp), deleted with the cache. A tagger reads only each
    word's first sub-token (``word_positions``), so for tagging only those positions are kept:
    row i holds (layers, words_i, H); otherwise every token: (layers, T_i, H)."""

    def __init__(self, layers: int, hidden: int, lengths: list[int], word_level: bool, folder: str | None = None):
        import tempfile

        if folder is not None:
            os.makedirs(folder, exist_ok=True)
        self._dir = tempfile.TemporaryDirectory(prefix="features-", dir=folder)  # removed when the cache goes
        self.word_level, self.layers, self.hidden = word_level, layers, hidden
        self.offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        # (positions, layers, H): one example's positions are contiguous, a row is one read
        self.values = np.memmap(os.path.join(self._dir.name, "hidden_states.f16"), dtype=np.float16, mode="w+",
                                shape=(max(1, int(self.offsets[-1])), layers, hidden))

    @classmethod
    def for_features(cls, features: dict, layers: int, hidden: int, folder: str | None = None) -> FeatureCache:
        if "word_positions" in features:
            lengths = [sum(p is not None for p in row) for row in features["word_positions"]]
            return cls(layers, hidden, lengths, True, folder)
        return cls(layers, hidden, [len(row) for row in features["input_ids"]], False, folder)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def put(self, i: int, states: torch.Tensor, positions: list[int]) -> None:
        """``states``: (layers, T, H) of example i's tokens; keeps ``positions`` of them."""
        self.values[self.offsets[i]:self.offsets[i + 1]] = states[:, positions].transpose(0, 1).to(
            torch.float16).numpy()

    def __getitem__(self, i: int) -> torch.Tensor:
        """(layers, n_i, H) float32 of example i."""
        return torch.from_numpy(np.asarray(self.values[self.offsets[i]:self.offsets[i + 1]], dtype=np.float32)
                                ).transpose(0, 1)

    def batch(self, features: dict, index, width: int) -> torch.Tensor:
        """(layers, B, width, H) float32, zero where nothing is kept (padding; for tagging, all but
        the words' first sub-tokens, the only positions the tagger reads)."""
        out = torch.zeros((self.layers, len(index), width, self.hidden))
        for r, i in enumerate(index):
            positions = (_kept_positions(features, i) if self.word_level
                         else list(range(len(features["input_ids"][i]))))
            out[:, r, positions] = self[i]
        return out


def _kept_positions(features: dict, i: int) -> list[int]:
    return [p for p in features["word_positions"][i] if p is not None]


def pad_batch(features: dict, index, pad_id: int, label_keys: tuple[str, ...]) -> dict:
    """Rows ``index`` of ``features`` padded to their own longest row (dynamic padding)."""
    rows = [features["input_ids"][i] for i in index]
    width = max(map(len, rows))
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    token_type_ids = torch.zeros((len(rows), width), dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, i in enumerate(index):
        n = len(features["input_ids"][i])
        input_ids[r, :n] = torch.tensor(features["input_ids"][i])
        token_type_ids[r, :n] = torch.tensor(features["token_type_ids"][i])
        attention_mask[r, :n] = 1
    batch = {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}
    if "hidden_states" in features:  # cached frozen-encoder layers (FeatureCache): (layers, B, T, H)
        batch["hidden_states"] = features["hidden_states"].batch(features, index, width)
    if "word_positions" in features:  # tagging: where each labelled word starts, (B, W), -1 = no word
        words = [[p for p in features["word_positions"][i] if p is not None] for i in index]
        word_index = torch.full((len(rows), max(1, max(map(len, words)))), -1, dtype=torch.long)
        for r, positions in enumerate(words):
            word_index[r, : len(positions)] = torch.tensor(positions, dtype=torch.long)
        batch["word_index"] = word_index
    for key in label_keys:
        values = [features[key][i] for i in index]
        if isinstance(values[0], list):  # one label per token: pad with the ignored label
            padded = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
            for r, row in enumerate(values):
                padded[r, : len(row)] = torch.tensor(row)
            batch[key] = padded
        else:
            batch[key] = torch.tensor(values)  # class indices -> int64, regression scores -> float32
    return batch


@torch.no_grad()
def build_feature_cache(encoder, layers: tuple[int, ...], features: dict, pad_id: int, batch_size: int, device: str,
                        folder: str | None = None) -> FeatureCache:
    """Run the frozen encoder once over every example and keep ``layers`` (indices of its
    ``hidden_states``) at the positions the head reads, in a FeatureCache under ``folder``."""
    cache = FeatureCache.for_features(features, len(layers), encoder.config.hidden_size, folder)
    encoder = encoder.to(device).eval()
    for start in range(0, len(cache), batch_size):
        index = list(range(start, min(start + batch_size, len(cache))))
        batch = {k: v.to(device) for k, v in pad_batch(features, index, pad_id, ()).items() if k != "word_index"}
        states = encoder(**batch, output_hidden_states=True, use_cache=False).hidden_states
        chosen = torch.stack([states[k] for k in layers]).float().cpu()  # (layers, B, T, H)
        for r, i in enumerate(index):
            positions = (_kept_positions(features, i) if cache.word_level
                         else list(range(len(features["input_ids"][i]))))
            cache.put(i, chosen[:, r], positions)
    cache.values.flush()
    return cache
