"""benchmarks/throughput.py --smoke runs end to end and writes well-formed CSVs.

Only the shape of the results is checked, never the speed: timings in CI are noise.
"""
import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"
COLUMNS = {
    "mode", "objective", "size", "impl", "precision", "vocab_size", "batch_size", "max_seq_length",
    "tokens_per_s", "examples_per_s", "ratio_vs_ref", "step_ms", "hw_gflops", "model_gflops", "peak_gflops",
    "hfu", "mfu", "step_mem_mb", "data_share", "first_batch_loss", "loss_rel_diff", "loss_equivalent",
    "machine", "cores", "threads", "device", "torch", "transformers", "peak_fp32_gflops", "peak_bf16_gflops",
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmarks")
    run = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--mode", "all", "--threads", "1",
                          "--device", "cpu", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out, run.stdout


def read(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("mode", ["pretrain", "finetune"])
def test_smoke_csv_is_well_formed(smoke, mode):
    out, _ = smoke
    rows = read(out / f"{mode}.csv")
    assert COLUMNS <= set(rows[0])
    assert sorted((r["size"], r["impl"]) for r in rows) == [("tiny", "ours"), ("tiny", "ref")]
    for row in rows:
        assert row["mode"] == mode
        for column in ("tokens_per_s", "examples_per_s", "ratio_vs_ref", "step_ms", "peak_fp32_gflops", "hfu", "mfu"):
            value = float(row[column])
            assert math.isfinite(value) and value > 0, (column, row[column])
        assert 0 <= float(row["data_share"]) < 1
        assert math.isfinite(float(row["first_batch_loss"]))
        assert row["loss_equivalent"] == "True", row["loss_rel_diff"]
        assert row["precision"] in ("fp32", "bf16")
    ref = next(r for r in rows if r["impl"] == "ref")
    assert float(ref["ratio_vs_ref"]) == 1.0 and ref["precision"] == "fp32"


def test_smoke_prints_a_markdown_table(smoke):
    _, stdout = smoke
    assert "| size | impl |" in stdout and "### pretrain" in stdout and "### finetune" in stdout


def test_smoke_roformer_against_its_own_hf_reference(tmp_path):
    """Each encoder family is timed against its own HF class, and the losses must agree."""
    run = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--mode", "pretrain", "--architecture", "roformer",
                          "--objective", "mlm", "--threads", "1", "--device", "cpu", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = read(tmp_path / "pretrain.csv")
    assert {(r["architecture"], r["objective"], r["impl"]) for r in rows} == {("roformer", "mlm", "ours"),
                                                                           ("roformer", "mlm", "ref")}
    assert all(r["loss_equivalent"] == "True" for r in rows)
    refused = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--architecture", "roformer",
                              "--objective", "mlm_nsp"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "no HF reference class" in refused.stderr


def test_data_stages_smoke_pushes_a_generated_corpus_through_to_50_pretraining_steps(tmp_path):
    """benchmarks/data_stages.py --smoke: a 1 MB corpus in 2 shards, corpus -> word counts ->
    tokenizer -> instances -> 50 pretraining steps through Snakemake, each job's peak memory read."""
    import json

    script = SCRIPT.parent / "data_stages.py"
    run = subprocess.run([sys.executable, str(script), "--smoke", "--cores", "2", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "smoke.json").read_text())
    assert result["shards"] == 2 and 0.8 < result["corpus_mb"] < 1.2
    jobs = {stage: row["jobs"] for stage, row in result["stages"].items()}
    assert jobs == {"corpus": 2, "word_counts": 2, "tokenizer": 1, "instances": 2, "pretrain": 1}
    for row in result["stages"].values():
        assert row["peak_rss_mb"] > 10 and row["cpu_s"] > 0
    assert result["pretrain_metrics"]["steps"] == 50 and result["pretrain_metrics"]["tokens_seen"] > 50 * 32
    assert result["instances"]["shards"] == 2 and result["instances"]["instances"] > 50 * 32 / 2
    assert "| word_counts | 2 |" in run.stdout
