"""The claim checker: known verdicts on synthetic cells, YAML validation, the packaged claims
against the paper's own numbers, and the file outputs."""

import json
import math

import numpy as np
import pytest

from bert_ablation.claims import (ClaimError, cells_from_paper, cells_from_provenance, check_claims, judge_claims,
                                  load_claims, validate_claims, write_claims)

CLEAR_HIGH = [80.0, 80.4, 79.8, 80.2, 80.1]
CLEAR_LOW = [70.0, 70.3, 69.9, 70.2, 69.8]


def greater(better="A", worse="B", **extra):
    return {"id": "t", "claim": "A > B", "source": "test", "kind": "greater", "table": "t", "column": "c",
            "better": better, "worse": worse, **extra}


def cells_of(**rows):
    return {("t", row, "c"): np.asarray(values, float) for row, values in rows.items()}


def verdict(claim, cells, **kwargs):
    return judge_claims([claim], cells, **kwargs).iloc[0]


# ----------------------------------------------------------------------------- greater

def test_clearly_separated_is_reproduced():
    row = verdict(greater(), cells_of(A=CLEAR_HIGH, B=CLEAR_LOW))
    assert row.verdict == "reproduced" and row.method == "welch" and row.min_p < 1e-6
    assert "A 80.10±0.22 (n=5) > B 70.04±0.21 (n=5): p=" in row.comparisons


def test_reversed_is_contradicted():
    row = verdict(greater(), cells_of(A=CLEAR_LOW, B=CLEAR_HIGH))
    assert row.verdict == "contradicted" and "reverse p=" in row.comparisons


def test_overlapping_noise_is_inconclusive():
    row = verdict(greater(), cells_of(A=[70.0, 74.0, 66.0], B=[69.0, 73.0, 66.5]))
    assert row.verdict == "inconclusive" and 0.05 < row.min_p < 0.95


def test_margin_holds_without_but_not_with():
    cells = cells_of(A=[72.0, 72.1, 71.9, 72.05, 71.95], B=CLEAR_LOW)  # about 2 points apart
    assert verdict(greater(), cells).verdict == "reproduced"
    assert verdict(greater(margin=5.0), cells).verdict == "contradicted"  # significantly less than 5 ahead
    assert "(margin 5)" in verdict(greater(margin=5.0), cells).comparisons


def test_perplexity_is_a_point_comparison_lower_is_better():
    cells = cells_of(A=[3.2], B=[4.7])
    row = verdict(greater(lower_is_better=True), cells)
    assert row.verdict == "reproduced" and row.method == "point" and math.isnan(row.min_p)
    assert "A 3.20 (n=1) < B 4.70 (n=1): point" in row.comparisons
    assert verdict(greater(lower_is_better=True), cells_of(A=[4.7], B=[3.2])).verdict == "contradicted"


def test_constant_sides_fall_back_to_points():
    row = verdict(greater(), cells_of(A=[50.0, 50.0], B=[49.0, 49.0]))
    assert (row.verdict, row.method) == ("reproduced", "point")
    assert verdict(greater(), cells_of(A=[50.0, 50.0], B=[50.0, 50.0])).verdict == "inconclusive"


# ----------------------------------------------------------------------------- order, best, worst

def test_order_with_one_violated_pair_is_contradicted():
    claim = {**greater(), "kind": "order", "rows": ["A", "B", "C"]}
    del claim["better"], claim["worse"]
    assert verdict(claim, cells_of(A=CLEAR_HIGH, B=np.add(CLEAR_LOW, 5), C=CLEAR_LOW)).verdict == "reproduced"
    row = verdict(claim, cells_of(A=CLEAR_HIGH, B=CLEAR_LOW, C=np.add(CLEAR_LOW, 5)))
    assert row.verdict == "contradicted" and row.comparisons.count(";") == 1


def best_or_worst(kind, row, **extra):
    return {"id": "t", "claim": "x", "source": "s", "kind": kind, "table": "t", "column": "c", "row": row, **extra}


def test_best_and_worst():
    cells = cells_of(A=CLEAR_HIGH, B=np.add(CLEAR_LOW, 5), C=CLEAR_LOW)
    assert verdict(best_or_worst("best", "A"), cells).verdict == "reproduced"
    assert verdict(best_or_worst("worst", "C"), cells).verdict == "reproduced"
    assert verdict(best_or_worst("best", "B"), cells).verdict == "contradicted"
    # `among` restricts the competitors: B is best once A is left out.
    assert verdict(best_or_worst("best", "B", among=["B", "C"]), cells).verdict == "reproduced"
    assert verdict(best_or_worst("best", "A"), cells).comparisons.count(";") == 1  # A vs B, A vs C


# ----------------------------------------------------------------------------- close

def close(tolerance):
    return {"id": "t", "claim": "A ≈ B", "source": "s", "kind": "close", "table": "t", "column": "c",
            "cells": ["A", "B"], "tolerance": tolerance}


def test_close_inside_and_outside_tolerance():
    near = cells_of(A=[84.2, 84.25, 84.15, 84.2, 84.22], B=[84.3, 84.35, 84.28, 84.32, 84.3])
    row = verdict(close(1.0), near)
    assert row.verdict == "reproduced" and "TOST p=" in row.comparisons and row.method == "welch TOST"
    assert verdict(close(1.0), cells_of(A=CLEAR_HIGH, B=CLEAR_LOW)).verdict == "contradicted"
    # Noisy restarts cannot establish equivalence within a tight band.
    assert verdict(close(1.0), cells_of(A=[80, 84, 88], B=[81, 85, 83])).verdict == "inconclusive"
    assert verdict(close(1.0), cells_of(A=[84.2], B=[84.9])).verdict == "reproduced"  # point, inside


# ----------------------------------------------------------------------------- selectors, missing cells

def figure_cells():
    steps = ["100", "200", "350"]
    return {("figure5", "MLM", s): np.asarray(v, float) for s, v in zip(steps, [CLEAR_LOW, CLEAR_HIGH, CLEAR_HIGH])} | {
        ("figure5", "LTR", "350"): np.asarray(CLEAR_LOW, float)}


def test_column_selectors_first_last_and_index():
    claim = {"id": "t", "claim": "x", "source": "s", "kind": "greater", "table": "figure5",
             "better": {"row": "MLM", "column": "@last"}, "worse": {"row": "MLM", "column": "@first"}}
    row = verdict(claim, figure_cells())
    assert row.verdict == "reproduced" and "MLM [350]" in row.comparisons and "MLM [100]" in row.comparisons
    claim["better"]["column"], claim["worse"]["column"] = "@1", "@-3"
    assert "MLM [200]" in verdict(claim, figure_cells()).comparisons
    at_last = {**claim, "column": "@last", "better": "MLM", "worse": "LTR"}
    assert verdict(at_last, figure_cells()).verdict == "reproduced"


def test_missing_cell_is_not_evaluated_with_reason():
    row = verdict(greater(), cells_of(A=CLEAR_HIGH))
    assert row.verdict == "not evaluated" and "missing cell t / B / c" in row.reason
    out_of_range = {"id": "t", "claim": "x", "source": "s", "kind": "greater", "table": "figure5",
                    "better": {"row": "MLM", "column": "@5"}, "worse": {"row": "MLM", "column": "@first"}}
    assert "out of range" in verdict(out_of_range, figure_cells()).reason


# ----------------------------------------------------------------------------- bootstrap

def test_bootstrap_agrees_with_welch_and_is_deterministic():
    cases = [(cells_of(A=CLEAR_HIGH, B=CLEAR_LOW), "reproduced"), (cells_of(A=CLEAR_LOW, B=CLEAR_HIGH), "contradicted")]
    for cells, expected in cases:
        rows = [verdict(greater(), cells, test=t, bootstrap_samples=2000) for t in ("welch", "bootstrap")]
        assert [r.verdict for r in rows] == [expected, expected]
    noisy = cells_of(A=[70.0, 74.0, 66.0, 71.0], B=[69.0, 73.0, 66.5, 70.0])
    first, again, other_seed = (verdict(greater(), noisy, test="bootstrap", bootstrap_samples=2000, seed=s)
                                for s in (1, 1, 2))
    assert first.min_p == again.min_p and first.comparisons == again.comparisons
    assert first.min_p != other_seed.min_p and first.method == "bootstrap"


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("change, message", [
    ({"kind": "bigger"}, "unknown kind 'bigger'"),
    ({"worse": None}, "field 'worse': missing"),
    ({"margin": -1}, "field 'margin'"),
    ({"typo_field": 1}, "field 'typo_field': not a field"),
    ({"better": {"row": "A", "colum": "c"}}, "field 'better': unknown key"),
    ({"better": {"row": "A", "column": "@lastt"}}, "bad column selector"),
])
def test_validation_names_claim_and_field(change, message):
    claim = {**greater(), "id": "my-claim", **change}
    claim = {k: v for k, v in claim.items() if v is not None}
    with pytest.raises(ClaimError, match=f"claim 'my-claim'.*{message}"):
        validate_claims([claim])


def test_validation_missing_table_and_duplicate_id(tmp_path):
    no_table = {**greater(), "id": "orphan"}
    del no_table["table"]
    with pytest.raises(ClaimError, match="claim 'orphan': field 'better'.*'table'"):
        validate_claims([no_table])
    path = tmp_path / "claims.yaml"
    path.write_text("claims:\n"
                    "  - {id: twice, claim: x, source: s, kind: best, table: t, column: c, row: A}\n"
                    "  - {id: twice, claim: y, source: s, kind: worst, table: t, column: c, row: B}\n")
    with pytest.raises(ClaimError, match="claim 'twice': duplicate id"):
        load_claims(path)


def test_validation_is_idempotent():
    claims = load_claims()
    assert validate_claims(claims) == claims


# ----------------------------------------------------------------------------- the packaged claims

def test_packaged_claims_hold_on_the_papers_numbers():
    claims = load_claims()
    assert len(claims) >= 22
    frame = judge_claims(claims, cells_from_paper(restarts=5, spread=0.05))
    failing = frame[frame.verdict != "reproduced"]
    assert failing.empty, failing[["id", "verdict", "comparisons", "reason"]].to_string()
    assert set(frame.kind) == {"greater", "order", "best", "worst", "close"}
    bootstrap = judge_claims(claims, cells_from_paper(), test="bootstrap", bootstrap_samples=500)
    assert (bootstrap.verdict == "reproduced").all()


# ----------------------------------------------------------------------------- files

def write_provenance(directory, table, cells):
    path = directory / f"{table}.provenance.json"
    path.write_text(json.dumps({"table": table, "caption": table, "cells": [
        {"row": row, "column": column, "restarts": [{"restart": i, "value": v} for i, v in enumerate(values)]}
        for row, column, values in cells]}))
    return path


def test_cells_from_provenance_keeps_file_order(tmp_path):
    path = write_provenance(tmp_path, "figure5", [("MLM", "100", [1.0, 2.0]), ("MLM", "200", [3.0]),
                                                  ("MLM", "350", [4.0, 5.0, 6.0])])
    cells = cells_from_provenance([path])
    assert list(cells) == [("figure5", "MLM", "100"), ("figure5", "MLM", "200"), ("figure5", "MLM", "350")]
    np.testing.assert_array_equal(cells[("figure5", "MLM", "350")], [4.0, 5.0, 6.0])


def test_write_and_check_claims(tmp_path):
    provenance = write_provenance(tmp_path, "table5", [
        ("BERT-Base", "QNLI (Acc)", CLEAR_HIGH), ("No NSP", "QNLI (Acc)", CLEAR_LOW),
        ("BERT-Base", "MNLI-m (Acc)", CLEAR_LOW), ("No NSP", "MNLI-m (Acc)", CLEAR_HIGH)])
    csv_path, md_path = tmp_path / "out" / "claims.csv", tmp_path / "out" / "claims.md"
    frame = check_claims([provenance], csv_path, md_path)
    by_id = frame.set_index("id").verdict
    assert by_id["nsp-helps-qnli"] == "reproduced" and by_id["nsp-helps-mnli"] == "contradicted"
    assert (frame.verdict == "not evaluated").sum() == len(frame) - 2
    text = md_path.read_text()
    assert (f"1 reproduced, 1 contradicted, 0 inconclusive, {len(frame) - 2} not evaluated of {len(frame)} claims "
            "(one-sided Welch t-test, alpha 0.05)") in text
    assert "| nsp-helps-qnli |" in text and csv_path.read_text().startswith("id,claim,source,kind,verdict")

    small = frame[frame.verdict != "not evaluated"]
    write_claims(small, csv_path, md_path, alpha=0.01, test="bootstrap")
    assert "1 reproduced, 1 contradicted, 0 inconclusive of 2 claims (one-sided percentile bootstrap, alpha 0.01)" \
        in md_path.read_text()
    assert not list((tmp_path / "out").glob(".*tmp*"))  # atomic writes leave no temporaries
