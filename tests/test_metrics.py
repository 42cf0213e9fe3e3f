import numpy as np
import pytest

from bert_ablation.evaluation.metrics import (
    classification_scores,
    normalize_answer,
    regression_scores,
    squad_f1,
    squad_scores,
)
from bert_ablation.evaluation.scoring import best_spans


@pytest.mark.parametrize("raw, normal", [
    ("The Eiffel Tower", "eiffel tower"),
    ("  a  cat, an owl!  ", "cat owl"),
    ("Theatre", "theatre"),  # 'the' only as a whole word
    ("U.S.A.", "usa"),
])
def test_official_squad_normalisation(raw, normal):
    assert normalize_answer(raw) == normal


def test_squad_scores_take_the_best_ground_truth_and_average_questions():
    predictions = {"q1": "the Denver Broncos", "q2": "Santa Clara, California", "q3": "blue"}
    references = {"q1": ["Denver Broncos", "Broncos"], "q2": ["Levi's Stadium"], "q3": ["red", "Blue"]}
    scores = squad_scores(predictions, references)
    assert scores["exact_match"] == pytest.approx(200 / 3)
    assert scores["f1"] == pytest.approx(200 / 3)
    # partial overlap: precision 1/2, recall 1/1 -> F1 2/3
    assert squad_f1("Denver Broncos", "Broncos") == pytest.approx(2 / 3)
    assert squad_scores({}, {"q": ["x"]}) == {"exact_match": 0.0, "f1": 0.0}


def test_a_question_without_a_prediction_scores_zero_like_the_official_script():
    # evaluate-v1.1.py skips a qid missing from the predictions but counts it in the total: an
    # answer that normalises to nothing ("The", ".") is not matched by a missing prediction
    references = {"q1": ["The"], "q2": ["Paris"], "q3": ["."]}
    assert squad_scores({"q2": "paris"}, references) == {"exact_match": pytest.approx(100 / 3),
                                                         "f1": pytest.approx(100 / 3)}
    # a prediction that is there is compared, even if empty, as there
    assert squad_scores({"q1": "", "q2": "paris", "q3": "a"}, references)["exact_match"] == 100.0
    assert squad_scores({"other": "Paris"}, {"q": ["Paris"]}) == {"exact_match": 0.0, "f1": 0.0}


def test_a_question_with_no_valid_span_gets_no_prediction():
    records = {"id": ["q", "r"], "context": ["Mira was born in Vesk", "Olm"]}
    # q: every candidate ends before it starts; r: a window of the question's tokens only
    features = {"example": [0, 1], "offsets": [[None, (0, 4), (5, 8)], [None, None]]}
    starts, ends = [np.array([0.0, 0.0, 5.0]), np.zeros(2)], [np.array([0.0, 5.0, 0.0]), np.zeros(2)]
    assert best_spans(records, features, starts, ends, 1, 30) == {}
    assert best_spans(records, features, starts, ends, 2, 30) == {"q": "was"}
    # r's answer normalises to "": compared as an empty prediction it would score 1 (50 here)
    assert squad_scores(best_spans(records, features, starts, ends, 1, 30), {"q": ["Mira"], "r": ["the"]}) == {
        "exact_match": 0.0, "f1": 0.0}


def test_classification_scores_accuracy_and_mrpc_f1():
    scores = classification_scores([1, 0, 1, 1], [1, 0, 0, 1], ("accuracy", "f1"))
    assert scores["accuracy"] == 75.0
    assert scores["f1"] == pytest.approx(100 * 0.8)  # tp=2, fp=1, fn=0


def test_span_decoding_picks_the_best_valid_span_across_windows():
    context = "Mira was born in Vesk and moved to Olm"
    records = {"id": ["q"], "context": [context]}
    words = [(0, 4), (5, 8), (9, 13), (14, 16), (17, 21), (22, 25), (26, 31), (32, 34), (35, 38)]
    # window 0: question tokens (no offsets) then the first 6 words; window 1: the last 5 words
    features = {"example": [0, 0], "offsets": [[None, None] + words[:6], [None] + words[4:]]}
    start0, end0 = np.zeros(8), np.zeros(8)
    start0[0] = end0[0] = 100.0  # a question token scores highest: it must be ignored
    start0[6], end0[6] = 5.0, 5.0  # "Vesk" (word 4) scores 10
    start1, end1 = np.zeros(6), np.zeros(6)
    start1[5], end1[3] = 9.0, 9.0  # end before start: invalid
    start1[5], end1[5] = 6.0, 6.0  # "Olm" scores 12: best overall
    assert best_spans(records, features, [start0, start1], [end0, end1], 20, 30) == {"q": "Olm"}
    # the same span is rejected when longer than max_answer_length
    start1[:] = 0
    end1[:] = 0
    start1[1], end1[5] = 7.0, 7.0  # "Vesk and moved to Olm": 5 tokens
    assert best_spans(records, features, [start0, start1], [end0, end1], 20, 4) == {"q": "Vesk"}


def test_matthews_correlation_of_cola():
    # tp=1, fp=1, tn=2, fn=0: (1*2 - 1*0) / sqrt(2*1*3*2) = 2 / sqrt(12)
    scores = classification_scores([1, 1, 0, 0], [1, 0, 0, 0], ("matthews_correlation",))
    assert scores["matthews_correlation"] == pytest.approx(100 * 2 / 12 ** 0.5)
    assert scores["accuracy"] == 75.0
    assert classification_scores([1, 0, 0, 1], [0, 1, 1, 0], ("matthews_correlation",))["matthews_correlation"] == -100
    assert classification_scores([1, 1, 1], [1, 0, 1], ("matthews_correlation",))["matthews_correlation"] == 0


def test_stsb_pearson_and_spearman():
    # deviations (-1, 0, 1) and (-1, 1, 0): covariance 1, variances 2 and 2 -> r = 0.5
    assert regression_scores([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])["pearson"] == pytest.approx(50.0)
    # Spearman correlates ranks: (1, 2, 3, 4) vs (1, 3, 2, 4), sum d^2 = 2 -> 1 - 6 * 2 / (4 * 15) = 0.8
    scores = regression_scores([0.1, 0.2, 0.3, 0.4], [1.0, 30.0, 20.0, 1000.0])
    assert scores["spearman"] == pytest.approx(80.0)
    assert scores["pearson"] < 80.0  # the outlier weighs in Pearson, not in Spearman
    # tied gold scores share their mean rank: ranks (1, 2.5, 2.5, 4), r = 4.5 / sqrt(5 * 4.5)
    assert regression_scores([1, 2, 3, 4], [1.0, 2.0, 2.0, 3.0])["spearman"] == pytest.approx(100 * 4.5 / 22.5 ** 0.5)
    assert regression_scores([2.5, 2.5, 2.5], [1.0, 2.0, 3.0]) == {"pearson": 0.0, "spearman": 0.0}
