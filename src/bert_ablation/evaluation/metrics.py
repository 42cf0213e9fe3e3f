"""Task metrics with the official semantics, on a 0-100 scale as the paper reports them.

GLUE: accuracy; F1 of the positive class (MRPC, QQP); Matthews correlation (CoLA); Pearson and
Spearman correlation of predicted and gold scores (STS-B), as GLUE and HF run_glue compute them.

NER: entity-level precision, recall and F1 with the CoNLL-2003 conlleval semantics, computed by
seqeval (an entity counts only if its type and both boundaries are right), plus token accuracy.

SQuAD v1.1: the official evaluate-v1.1.py normalisation (lower-case, strip punctuation,
articles and extra whitespace), exact match and token-overlap F1, each the maximum over the
ground-truth answers, averaged over questions; a question without a prediction scores 0, as
there. (``evaluate.load("squad")`` would need the hub.)
"""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_exact(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def squad_f1(prediction: str, truth: str) -> float:
    pred_tokens, true_tokens = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = Counter(pred_tokens) & Counter(true_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(true_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: dict[str, str], references: dict[str, list[str]]) -> dict[str, float]:
    """predictions: id -> text; references: id -> answer texts. A question missing from the
    predictions scores 0 but counts in the total (evaluate-v1.1.py): it is not compared as an
    empty answer, which would match an answer that normalises to nothing, such as "the"."""
    exact = f1 = 0.0
    for qid, truths in references.items():
        if qid not in predictions:
            continue
        prediction = predictions[qid]
        exact += max(squad_exact(prediction, t) for t in truths)
        f1 += max(squad_f1(prediction, t) for t in truths)
    n = len(references)
    return {"exact_match": 100.0 * exact / n, "f1": 100.0 * f1 / n}


def classification_scores(predictions, labels, metrics: tuple[str, ...]) -> dict[str, float]:
    predictions, labels = list(map(int, predictions)), list(map(int, labels))
    scores = {"accuracy": 100.0 * sum(p == y for p, y in zip(predictions, labels)) / len(labels)}
    if "f1" in metrics:  # GLUE's MRPC/QQP F1: binary, positive class 1
        from sklearn.metrics import f1_score  # imported here: 1.4 s that most fine-tuning jobs never need

        scores["f1"] = 100.0 * f1_score(labels, predictions, pos_label=1, zero_division=0)
    if "matthews_correlation" in metrics:  # CoLA; 0 when either side is constant
        from sklearn.metrics import matthews_corrcoef

        scores["matthews_correlation"] = 100.0 * matthews_corrcoef(labels, predictions)
    return scores


def regression_scores(predictions, labels) -> dict[str, float]:
    """STS-B. A correlation with a constant side is undefined (scipy gives NaN); it counts as 0,
    as sklearn's Matthews correlation does, so that such a run still ranks below any other."""
    from scipy.stats import pearsonr, spearmanr

    predictions, labels = np.asarray(predictions, dtype=float), np.asarray(labels, dtype=float)
    if np.ptp(predictions) == 0 or np.ptp(labels) == 0:
        return {"pearson": 0.0, "spearman": 0.0}
    return {"pearson": 100.0 * float(pearsonr(predictions, labels).statistic),
            "spearman": 100.0 * float(spearmanr(predictions, labels).statistic)}


def ner_scores(predictions: list[list[str]], references: list[list[str]]) -> dict[str, float]:
    """Entity-level scores of BIO tag sequences (one list of tag names per sentence)."""
    from seqeval.metrics import accuracy_score, precision_score, recall_score
    from seqeval.metrics import f1_score as entity_f1

    return {
        "f1": 100.0 * float(entity_f1(references, predictions, zero_division=0)),
        "precision": 100.0 * float(precision_score(references, predictions, zero_division=0)),
        "recall": 100.0 * float(recall_score(references, predictions, zero_division=0)),
        "accuracy": 100.0 * float(accuracy_score(references, predictions)),
    }
