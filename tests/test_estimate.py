"""snakemake estimate: tokens, FLOPs, GPU-hours and disk, computed without torch, and the preset
headers quote it."""
import math
import re
from pathlib import Path

import pytest
import yaml

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.estimate import (
    DATA_RULES,
    data_request,
    data_stage_seconds,
    estimate,
    finetune_request,
    markdown,
    non_embedding_parameters,
    pretrain_request,
)
from bert_ablation.preset_table import presets_table

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


# --- issue 26, fault 6: fine-tuning in the estimate, requests from the plan, the README's table ----

def test_fine_tuning_is_estimated_from_the_tasks_sizes():
    """A hub task at its standard dataset's size (MNLI: 392,702 training pairs, 9,815 + 9,832 dev),
    every restart and epoch of a grid point; a world task at its own n_train x world.scale."""
    config = preset("released")
    result = estimate(config, ["table5_released"])["finetune"]
    assert result["jobs"] == 100 and result["restarts"] == 5  # 5 checkpoints x 5 tasks x 4 learning rates
    n = non_embedding_parameters({"layers": 12, "hidden": 768, "intermediate": 3072})
    train_token, eval_token = 6 * n + 12 * 12 * 768 * 128, 2 * n + 4 * 12 * 768 * 128
    one_job = 5 * 3 * 128 * (392_702 * train_token + (9_815 + 9_832) * eval_token)
    base_mnli = result["by_task"]["mnli"]
    assert base_mnli["train_examples"] == 392_702 and base_mnli["jobs"] == 20
    # bert-base's four jobs, then the miniatures' (L-8_H-512_A-8 ... L-2_H-128_A-2), all 3 epochs at 128
    assert base_mnli["flops"] > 4 * one_job
    mini = {"layers": 2, "hidden": 128, "heads": 2, "intermediate": 512, "max_position_embeddings": 512}
    from bert_ablation.estimate import finetune_job_estimate
    job = finetune_job_estimate(config, plan.FinetuneRun("bert_base_uncased", "final", "mnli", "linear", "lr2e-05_bs32_ep3"))
    assert job["flops"] == pytest.approx(one_job)
    tiny = finetune_job_estimate(config, plan.FinetuneRun("bert_tiny", "final", "mnli", "linear", "lr2e-05_bs32_ep3"))
    assert tiny["model"] == mini and tiny["flops"] < job["flops"] / 50
    world = cfg.load(str(ROOT / "config.yaml"))
    assert estimate(world)["finetune"]["by_task"]["mnli"]["train_examples"] == 400  # n_train x scale 1
    assert "| mnli |" in markdown(estimate(world)) and "GPU-hours at 10% MFU" in markdown(estimate(world))


def test_a_feature_based_head_runs_the_frozen_encoder_once_and_trains_its_bilstm():
    from bert_ablation.estimate import finetune_job_estimate

    config = preset("base")
    point = plan.grid_points(config, "conll2003", "features_concat_last_four")[0].key
    frozen = finetune_job_estimate(config, plan.FinetuneRun("bert_base", "final", "conll2003",
                                                            "features_concat_last_four", point))
    tuned = finetune_job_estimate(config, plan.FinetuneRun("bert_base", "final", "conll2003", "linear",
                                                           plan.grid_points(config, "conll2003")[0].key))
    assert frozen["layers_read"] == 4 and frozen["flops"] < tuned["flops"]
    # its cached features (examples x tokens x 4 layers x 768, ~32 GB as fp32) live on disk in fp16,
    # not in its host memory request (test_a_feature_based_job_asks_for_no_host_memory_for_its_cached_layers)
    request = finetune_request(config, plan.FinetuneRun("bert_base", "final", "conll2003",
                                                        "features_concat_last_four", point))
    assert request["mem_mb"] < (14_041 + 3_250 + 3_453) * 128 * 4 * 768 * 4 / 1e6 / 3


FINETUNE_HEADER = re.compile(r"Fine-tuning: ([\d,]+) jobs x (\d+) restarts, ([\d.]+e\+\d+) FLOPs, ~([\d,.]+) "
                             r"A100-hours at 10% MFU")


@pytest.mark.parametrize("name, targets", [("small", None), ("base", None), ("paper", None),
                                           ("released", ["table5_released", "table7_released"])])
def test_preset_headers_quote_the_fine_tuning_estimate(name, targets):
    header = " ".join(line.lstrip("# ").strip() for line in (ROOT / "presets" / f"{name}.yaml").read_text().splitlines()
                      if line.startswith("#"))
    match = FINETUNE_HEADER.search(header)
    assert match, f"presets/{name}.yaml: no fine-tuning estimate of the expected form in its header"
    result = estimate(preset(name), targets)["finetune"]
    assert int(match.group(1).replace(",", "")) == result["jobs"] and int(match.group(2)) == result["restarts"]
    assert match.group(3) == f"{result['flops']:.1e}"
    hours = result["gpu_hours"]
    assert match.group(4) == (f"{hours:,.0f}" if hours >= 10 else f"{hours:.1f}")


def test_the_readme_preset_table_is_the_generated_one():
    """python -m bert_ablation.preset_table --write-readme README.md regenerates it."""
    readme = (ROOT / "README.md").read_text()
    assert presets_table(str(ROOT)) in readme


def test_cluster_requests_are_sized_by_the_plan(tmp_path):
    """The pretrain and finetune rules ask for their own estimated time and memory: the base
    preset's BERT-Base run (~11 A100-hours by its header) no longer gets 240 minutes, and the
    24-layer row asks for more than the 3-layer one."""
    from tests.test_workflow import snakemake

    config = preset("base")
    output = snakemake(tmp_path, "-n", "table6", configfiles=(ROOT / "presets" / "base.yaml",))
    asked = {}
    for block in output.split("rule ")[1:]:
        name = block.split(":")[0]
        if name not in ("pretrain", "finetune", *DATA_RULES):
            continue
        wildcards = (dict(re.findall(r"(\w+)=([^,\s]+)", block.split("wildcards:")[1].splitlines()[0]))
                     if "wildcards:" in block else {})
        resources = dict(re.findall(r"(\w+)=([^,\s]+)", block.split("resources:")[1].splitlines()[0]))
        asked[name, tuple(sorted(wildcards.items()))] = {k: int(resources[k]) for k in ("runtime", "mem_mb")}
    pretrain = {dict(w)["ablation"]: r for (rule, w), r in asked.items() if rule == "pretrain"}
    assert pretrain["bert_base"] == pretrain_request(config, "bert_base")
    assert pretrain["bert_base"]["runtime"] >= 11 * 60 > 240
    assert pretrain["size_wide_deep"]["runtime"] > pretrain["size_shallow"]["runtime"] * 3
    finetune = [(dict(w), r) for (rule, w), r in asked.items() if rule == "finetune"]
    assert finetune
    for w, r in finetune:
        assert r == finetune_request(config, plan.FinetuneRun(w["ablation"], w["step"], w["task"], w["head"], w["hp"]))
    mnli = max(r["runtime"] for w, r in finetune if w["task"] == "mnli" and w["ablation"] == "bert_base")
    assert mnli > 30  # a BERT-Base MNLI job (5 restarts x 3 epochs of 393k pairs) is hours, not 30 minutes
    # the corpus data stages: each job's share of the 20 GB at the measured CPU rates, x the margin
    data = {rule: r["runtime"] for (rule, _), r in asked.items() if rule in DATA_RULES}
    assert set(data) == set(DATA_RULES)
    shard_mb = 20e9 / 1e6 / 64
    assert data["corpus"] == math.ceil(shard_mb * (0.05 + 4.0) * 1.5 / 60) == 32  # pysbd: a hub corpus
    assert data["instances"] == max(15, math.ceil(shard_mb * 0.18 * 5 * 1.5 / 60))  # dupe_factor 5; the floor
    assert data["tokenizer"] == max(15, math.ceil(1e6 * 436e-6 * 1.5 / 60))  # the 1M-word cap; the floor
    assert data["word_counts"] == config["estimate"]["min_runtime_minutes"]  # 128 s: the floor


def test_a_data_stage_request_grows_with_its_share_of_the_corpus(tmp_path):
    """A one-sentence-a-line corpus skips sentence splitting; fewer shards, longer jobs; an
    unstated hub corpus keeps the hour it always had."""
    text = tmp_path / "corpus.txt"
    text.write_bytes(b"A sentence of real text.\n" * 400_000)  # 10 MB
    config = cfg.validate({**cfg.load(str(ROOT / "config.yaml")),
                           "corpus": {"source": "text", "text": {"paths": [str(text)]}, "shards": 1},
                           "estimate": {"corpus_text_gb": 2000, "request_margin": 1.0, "min_runtime_minutes": 1}})
    seconds, how = data_stage_seconds(config, "corpus")
    assert seconds == pytest.approx(2e6 * 0.05) and "0.05 CPU s per MB" in how  # no pysbd for text
    assert data_request(config, "corpus") == {"runtime": math.ceil(2e6 * 0.05 / 60)}
    halves = cfg.validate({**config, "corpus": {**config["corpus"], "shards": 2}})
    assert data_stage_seconds(halves, "instances")[0] == pytest.approx(1e6 * 0.18 * config["instances"]["dupe_factor"])
    hub = cfg.validate({**config, "corpus": {"source": "hf"}, "estimate": {**config["estimate"], "corpus_text_gb": None}})
    assert data_stage_seconds(hub, "corpus")[0] is None and data_request(hub, "corpus") == {"runtime": 60}


def test_a_feature_based_job_asks_for_no_host_memory_for_its_cached_layers():
    """The cached layers live on disk in fp16 (data.features.FeatureCache), one batch in memory:
    a BERT-Base CoNLL-2003 feature-based job (measured peak 2.4 GB in the released rehearsal) asks
    for what its fine-tuned twin asks, not for ~59 GB of fp32 layers."""
    config = preset("released")
    run = plan.FinetuneRun("bert_base_cased", "final", "conll2003", "features_concat_last_four",
                           plan.grid_points(config, "conll2003", "features_concat_last_four")[0].key)
    tuned = plan.FinetuneRun("bert_base_cased", "final", "conll2003", "linear",
                             plan.grid_points(config, "conll2003", "linear")[0].key)
    assert finetune_request(config, run)["mem_mb"] == finetune_request(config, tuned)["mem_mb"] < 12_000
