"""snakemake estimate: tokens, FLOPs, GPU-hours and disk, computed without torch, and the preset
headers quote it."""
import re
from pathlib import Path

import pytest
import yaml

from bert_ablation import config as cfg
from bert_ablation.estimate import estimate, markdown, non_embedding_parameters

ROOT = Path(__file__).resolve().parents[1]


def preset(name: str) -> dict:
    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    return cfg.validate(cfg.deep_merge(base, yaml.safe_load((ROOT / "presets" / f"{name}.yaml").read_text())))


@pytest.mark.parametrize("layers, hidden, intermediate", [(12, 768, 3072), (2, 64, 256), (3, 48, 100)])
def test_non_embedding_parameters_are_the_encoder_layers_of_the_real_model(layers, hidden, intermediate):
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(vocab_size=100, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                                 intermediate_size=intermediate), add_pooling_layer=False)
    assert non_embedding_parameters({"layers": layers, "hidden": hidden, "intermediate": intermediate}) == sum(
        p.numel() for p in model.encoder.parameters())


def test_the_paper_run_is_the_papers_budget():
    result = estimate(preset("paper"))
    base = next(r for r in result["runs"] if r["ablation"] == "bert_base")
    # 900k steps x 256 x 128 tokens, then 100k x 256 x 512
    assert base["tokens"] == 900_000 * 256 * 128 + 100_000 * 256 * 512
    n = non_embedding_parameters({"layers": 12, "hidden": 768, "intermediate": 3072})
    per_token_128 = 6 * n + 12 * 12 * 768 * 128 + 6 * 768 * 30000 * 0.15
    per_token_512 = 6 * n + 12 * 12 * 768 * 512 + 6 * 768 * 30000 * 0.15
    assert base["flops"] == pytest.approx(900_000 * 256 * 128 * per_token_128 + 100_000 * 256 * 512 * per_token_512)
    assert base["gpu_hours"] == pytest.approx(base["flops"] / (0.3 * 312e12) / 3600)
    ltr = next(r for r in result["runs"] if r["ablation"] == "ltr")
    assert ltr["flops"] > base["flops"]  # LTR scores every position: its vocabulary projection costs more
    assert result["total"]["flops"] == pytest.approx(sum(r["flops"] for r in result["runs"]))
    assert result["disk"]["corpus_text_gb"] is not None  # the preset states its corpus size
    assert set(result["disk"]["instance_builds"]) == {"nsp_pairs/len128", "nsp_pairs/len512", "contiguous/len128",
                                                      "contiguous/len512"}


def test_local_corpus_size_is_measured_and_hub_size_is_said_unknown(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("A sentence here.\nAnd one more.\n\nAnother document.\n" * 1000)
    config = cfg.validate({"corpus": {"source": "text", "text": {"paths": [str(text)]}}, "tables": {}})
    result = estimate(config)
    assert result["disk"]["corpus_text_gb"] == pytest.approx(text.stat().st_size / 1e9)
    hub = estimate(cfg.validate({"corpus": {"source": "hf"}, "tables": {}}))
    assert hub["disk"]["corpus_text_gb"] is None
    assert "set estimate.corpus_text_gb" in markdown(hub)


HEADER = re.compile(r"snakemake --cores 1 estimate --configfile presets/(\w+)\.yaml\): (\d+) pretraining runs, "
                    r"([\d.]+)B tokens and ([\d.]+e\+\d+) FLOPs in all, ~([\d,]+) A100-hours at 30% MFU; the bert_base "
                    r"run ([\d.]+)B tokens, ([\d.]+e\+\d+) FLOPs, ~([\d,.]+) A100-hours")


@pytest.mark.parametrize("name", ["small", "base", "paper"])
def test_preset_headers_quote_the_estimate(name):
    header = " ".join(line.lstrip("# ").strip() for line in (ROOT / "presets" / f"{name}.yaml").read_text().splitlines()
                      if line.startswith("#"))
    match = HEADER.search(header)
    assert match, f"presets/{name}.yaml: no estimate line of the expected form in its header"
    result = estimate(preset(name))
    base = next(r for r in result["runs"] if r["ablation"] == "bert_base")
    total = result["total"]
    assert match.group(1) == name
    assert int(match.group(2)) == total["runs"]
    assert match.group(3) == f"{total['tokens'] / 1e9:.1f}" and match.group(4) == f"{total['flops']:.1e}"
    assert match.group(5) == f"{total['gpu_hours']:,.0f}"
    assert match.group(6) == f"{base['tokens'] / 1e9:.1f}" and match.group(7) == f"{base['flops']:.1e}"
    assert match.group(8) == (f"{base['gpu_hours']:,.0f}" if base["gpu_hours"] >= 10 else f"{base['gpu_hours']:.1f}")


def test_the_estimate_target_prints_and_writes_the_estimate(tmp_path):
    from tests.test_workflow import MICRO, snakemake

    output = snakemake(tmp_path, "estimate", configfiles=(MICRO,))
    written = (tmp_path / "results/estimate.md").read_text()
    assert "| pretraining run | steps x batch |" in written and "| bert_base | 20 x 16 |" in written
    assert "| bert_base | 20 x 16 |" in output  # printed as well
    assert not (tmp_path / "results/corpus").exists()  # nothing else ran
