"""Released or local checkpoints as table rows (config's checkpoints:), offline.

A small BERT and its tokenizer are saved to a folder the way a user's download is laid out;
the import checks it and records its digests, and a table puts it beside a pretrained ablation.
"""
import hashlib
import json
import socket

import pytest
import torch
import yaml
from test_workflow import MICRO, ROOT, planned_jobs, snakemake
from transformers import BertModel, GPT2Config

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.evaluation.claims import check_claims
from bert_ablation.models.checkpoints import CheckpointImportError, import_checkpoint
from bert_ablation.models.modeling import bert_config

SHAPE = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64, "dropout": 0.1, "max_position_embeddings": 64}


def save_released(folder, tokenizer, vocab_size=None):
    torch.manual_seed(0)
    BertModel(bert_config(SHAPE, vocab_size or len(tokenizer), tokenizer.pad_token_id, causal=False)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_local_folder_is_imported_with_its_digests(tmp_path, tokenizer):
    folder = save_released(tmp_path / "download", tokenizer)
    entry = {"hub": None, "revision": None, "path": str(folder)}
    metrics = import_checkpoint("mine", entry, str(tmp_path / "out"), str(tmp_path / "metrics.json"),
                                plan.checkpoint_hash(entry))
    final = tmp_path / "out" / "final"
    assert json.loads((final / "ablation.json").read_text()) == {
        "name": "mine", "step": "final", "spec_hash": plan.checkpoint_hash(entry), "source": entry}
    weights = (folder / "model.safetensors").read_bytes()
    assert metrics["digests"]["model.safetensors"] == hashlib.sha256(weights).hexdigest()
    assert set(metrics["digests"]) >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert metrics["model"] == {"architecture": "bert", "layers": 2, "hidden": 32, "heads": 2, "intermediate": 64}
    assert metrics["tokenizer_size"] == len(tokenizer) and metrics["revision"] is None
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics


def test_bad_checkpoints_are_refused_with_the_config_key(tmp_path, tokenizer):
    def refused(entry, match):
        with pytest.raises(CheckpointImportError, match=match):
            import_checkpoint("x", {"hub": None, "revision": None, "path": None, **entry}, str(tmp_path / "out"),
                              str(tmp_path / "m.json"), "0")
        assert not (tmp_path / "out").exists() and not (tmp_path / "m.json").exists()

    refused({"path": str(tmp_path / "nowhere")}, r"checkpoints\.x\.path: '.*nowhere' does not exist")
    (tmp_path / "empty").mkdir()
    refused({"path": str(tmp_path / "empty")}, r"checkpoints\.x: .*empty is not an HF checkpoint: it has no config.json")
    GPT2Config(n_layer=1, n_embd=16, n_head=2).save_pretrained(tmp_path / "gpt2")
    refused({"path": str(tmp_path / "gpt2")}, r"checkpoints\.x: model type 'gpt2' cannot be served by the task heads "
                                              r"\(supported: bert, electra, roformer")
    small = save_released(tmp_path / "small-vocab", tokenizer, vocab_size=len(tokenizer) - 20)
    refused({"path": str(small)}, rf"the tokenizer has {len(tokenizer)} tokens but the model {len(tokenizer) - 20} "
                                  "embedding rows")
    no_tokenizer = tmp_path / "no-tokenizer"
    BertModel(bert_config(SHAPE, len(tokenizer), 0, causal=False)).save_pretrained(no_tokenizer)
    refused({"path": str(no_tokenizer)}, r"checkpoints\.x: .* has no usable tokenizer")


def test_a_hub_id_that_cannot_be_fetched_names_the_key(tmp_path, monkeypatch):
    """Only the network is mocked: every socket fails, as on this machine, and the cache is empty."""
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    with pytest.raises(CheckpointImportError, match=r"checkpoints\.base\.hub: cannot fetch 'google-bert/bert-base-"
                                                    r"uncased' at revision main .*give its folder as checkpoints\.base\.path"):
        import_checkpoint("base", {"hub": "google-bert/bert-base-uncased", "revision": "main", "path": None},
                          str(tmp_path / "out"), str(tmp_path / "m.json"), "0")


@pytest.mark.parametrize("entry, message", [
    ({}, r"checkpoints\.c: give exactly one of hub .* or path"),
    ({"hub": "a/b", "path": "x"}, r"checkpoints\.c: give exactly one of hub"),
    ({"path": "x", "revision": "v1"}, r"checkpoints\.c\.revision: only a hub checkpoint has revisions"),
])
def test_checkpoint_entries_are_validated(entry, message):
    config = {"checkpoints": {"c": entry}, "tables": {"t": {"rows": {"R": {"checkpoint": "c"}},
                                                            "columns": {"SST-2": {"task": "sst2", "metric": "accuracy"}}}}}
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.validate(config)


def test_checkpoint_rows_are_validated():
    base = {"checkpoints": {"c": {"path": "x"}}}
    with pytest.raises(cfg.ConfigError, match=r"tables.t.rows.R.checkpoint: unknown checkpoint 'd'"):
        cfg.validate({**base, "tables": {"t": {"rows": {"R": {"checkpoint": "d"}},
                                               "columns": {"S": {"task": "sst2", "metric": "accuracy"}}}}})
    with pytest.raises(cfg.ConfigError, match=r"a pretraining metric needs a pretraining run; row 'R' is checkpoint 'c'"):
        cfg.validate({**base, "tables": {"t": {"rows": {"R": {"checkpoint": "c"}},
                                               "columns": {"ppl": {"source": "pretrain", "metric": "heldout_perplexity"}}}}})
    with pytest.raises(cfg.ConfigError, match=r"checkpoints.bert_base: 'bert_base' is also an ablation"):
        cfg.validate({"checkpoints": {"bert_base": {"path": "x"}}, "ablations": {"bert_base": {"objective": "mlm"}}})
    with pytest.raises(cfg.ConfigError, match=r"tables.t.rows.R: .*A row names exactly one of ablation .* or checkpoint"):
        cfg.validate({**base, "tables": {"t": {"rows": {"R": {"checkpoint": "c", "ablation": "ltr"}},
                                               "columns": {"S": {"task": "sst2", "metric": "accuracy"}}}}})


def test_released_preset_plans_its_calibration_tables(tmp_path):
    path = ROOT / "presets" / "released.yaml"
    config = cfg.load(str(ROOT / "config.yaml"), [str(path)])
    assert config["checkpoints"]["bert_base_uncased"]["hub"] == "google-bert/bert-base-uncased"
    jobs = planned_jobs(snakemake(tmp_path, "-n", "table5_released", "table7_released", configfiles=(path,)))
    assert jobs["import_checkpoint"] == 6 and "pretrain" not in jobs and "corpus" not in jobs
    assert jobs["finetune"] == 5 * 5 * 4 + 4 + 6 and jobs["tasks"] == 6 and jobs["table"] == 2


@pytest.mark.integration
def test_a_released_checkpoint_is_a_row_beside_a_pretrained_ablation(tmp_path, tokenizer):
    """End to end: import, fine-tuning with the checkpoint's own tokenizer, the table (with the
    paper's Table 5 beside it), its provenance, and a claim judged on the two rows."""
    folder = save_released(tmp_path / "download", tokenizer)
    extra = tmp_path / "calibration.yaml"
    extra.write_text(yaml.safe_dump({
        "checkpoints": {"released_tiny": {"path": str(folder)}},
        "tables": {"calibration": {"paper_table": "table5", "rows": {
            "BERT-Base": {"checkpoint": "released_tiny"},
            "No pretraining": {"ablation": "no_pretraining"}},
            "columns": {"SST-2 (Acc)": {"task": "sst2", "metric": "accuracy"}}}},
    }))
    work = tmp_path / "run"
    snakemake(work, "calibration", configfiles=(MICRO, extra))
    provenance = json.loads((work / "results/tables/calibration.provenance.json").read_text())
    released = next(c for c in provenance["cells"] if c["row"] == "BERT-Base")
    assert released["checkpoint"] == ["results/checkpoints/released_tiny/checkpoints/final"]
    assert released["pretrain_spec_hash"] == [plan.checkpoint_hash({"path": str(folder)})]
    assert len(released["restarts"]) == 2
    metrics = json.loads((work / "results/checkpoints/released_tiny/metrics.json").read_text())
    assert metrics["digests"]["model.safetensors"] == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    table = (work / "results/tables/calibration.md").read_text()
    assert "[92.7]" in table  # the paper's BERT-Base SST-2 beside the released row
    # the checkpoint's own tokenizer fine-tuned it: the restart recorded its checkpoint folder
    restart = json.loads(open(work / released["restarts"][0]["metrics"]).read())
    assert restart["ablation"] == "released_tiny" and restart["pretrain_step"] == "final"
    claims = tmp_path / "claims.yaml"
    claims.write_text(yaml.safe_dump({"claims": [{
        "id": "released-vs-random", "claim": "released > random init", "source": "test", "kind": "greater",
        "table": "calibration", "column": "SST-2 (Acc)", "better": "BERT-Base", "worse": "No pretraining"}]}))
    frame = check_claims([work / "results/tables/calibration.provenance.json"], tmp_path / "c.csv", tmp_path / "c.md",
                         claims_path=claims)
    assert list(frame["id"]) == ["released-vs-random"] and frame["verdict"].iloc[0] != "not evaluated"


def test_an_electra_discriminator_fine_tunes_with_a_fresh_pooler(tmp_path, tokenizer):
    """Another encoder family through the same fine-tuning: ELECTRA has no pooler, so the
    sentence heads get a new one; a feature head that needs more layers than it has is refused."""
    from transformers import ElectraConfig, ElectraModel

    from bert_ablation.data.task_sources import build_task
    from bert_ablation.training.finetune import CheckpointError, finetune

    folder = tmp_path / "electra"
    torch.manual_seed(0)
    ElectraModel(ElectraConfig(vocab_size=len(tokenizer), embedding_size=16, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                               pad_token_id=tokenizer.pad_token_id)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    entry = {"hub": None, "revision": None, "path": str(folder)}
    metrics = import_checkpoint("electra", entry, str(tmp_path / "ck"), str(tmp_path / "ck.json"),
                                plan.checkpoint_hash(entry))
    assert metrics["model_type"] == "electra" and metrics["model"]["layers"] == 2
    config = cfg.validate({"tasks": {"sst2": {"n_train": 32, "n_dev": 16, "max_seq_length": 64}},
                           "finetune": {"precision": "fp32", "grid": {"lr": [1e-3], "batch_size": [8], "epochs": [1]}}})
    build_task("sst2", config["tasks"]["sst2"], config["world"], str(tmp_path / "task"))
    key = plan.grid_points(config, "sst2")[0].key
    out = tmp_path / "ft" / "seed0" / "metrics.json"
    finetune(str(tmp_path / "ck" / "final"), str(tmp_path / "task"), "sst2", "linear",
             plan.finetune_settings(config, "sst2", "linear", key), [str(out)], threads=1, device="cpu",
             expected_spec_hash=plan.checkpoint_hash(entry))
    result = json.loads(out.read_text())
    assert result["ablation"] == "electra" and 0 <= result["dev"]["accuracy"] <= 100
    with pytest.raises(CheckpointError, match=r"head 'features_concat_last_four' reads 4 layers but this encoder has 2"):
        finetune(str(tmp_path / "ck" / "final"), str(tmp_path / "task"), "sst2", "features_concat_last_four",
                 plan.finetune_settings(config, "sst2", "features_concat_last_four", key), [str(tmp_path / "x.json")],
                 threads=1, device="cpu")
