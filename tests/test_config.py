import copy

import pytest
import yaml

from bert_ablation import config as cfg

BASE = yaml.safe_load(open(__file__.replace("tests/test_config.py", "config.yaml")))


def with_changes(**changes):
    config = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return config


def test_default_config_is_valid_and_filled_with_defaults():
    config = cfg.validate(BASE)
    assert config["pretrain"]["adam_eps"] == 1e-6
    assert config["tasks"]["squad"]["n_best"] == 20
    assert cfg.resolve_ablation(config, "ltr")["packing"] == "contiguous"


@pytest.mark.parametrize("changes, message", [
    ({"pretrain__warmup_step": 10}, r"unknown key 'warmup_step' \(did you mean 'warmup_steps'\?\) under pretrain"),
    ({"pretrain__steps": "many"}, r"pretrain.steps: 'many' is not of type 'integer'"),
    ({"model__heads": 3}, r"model.hidden=128 is not divisible by model.heads=3"),
    ({"masking__mask": 0.7}, r"mask\+same\+random = 0.9, must be 1"),
    ({"ablations__odd": {"objective": "mlm_sop"}}, r"ablations.odd.objective: unknown objective 'mlm_sop'"),
    ({"ablations__odd": {"objective": "mlm_nsp", "packing": "contiguous"}}, r"cannot use packing 'contiguous'"),
    ({"ablations__odd": {"objective": "mlm", "model": {"layer": 3}}}, r"unknown model key 'layer'.*Did you mean 'layers'"),
    ({"tables__table5__rows__X": {"ablation": "bert_large"}}, r"unknown ablation 'bert_large'"),
    ({"tables__table5__rows__X": {"ablation": "ltr", "head": "lstm"}}, r"unknown head 'lstm'"),
    ({"tables__table5__columns__X": {"task": "mnli", "metric": "f1"}}, r"unknown metric 'f1'"),
    ({"tables__table5__columns__X": {"task": "cola", "metric": "mcc"}}, r"unknown task 'cola'"),
    ({"tables__table5__rows__X": {"ablation": "ltr", "step": "step-7"}}, r"not a saved checkpoint"),
    ({"pretrain__save_steps": [100000]}, r"save_steps \[100000\] exceed pretrain.steps"),
    ({"tasks__squad__doc_stride": 500}, r"doc_stride must be smaller"),
    ({"tasks__mnli__max_seq_length": 512}, r"tasks.mnli.max_seq_length=512 exceeds the max_position_embeddings=128"),
])
def test_bad_config_names_the_key_and_the_fix(changes, message):
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.validate(with_changes(**changes))


def test_grid_points_and_runs_are_sorted_and_deterministic():
    config = cfg.validate(with_changes(finetune__grid={"lr": [3e-5, 5e-5], "batch_size": [32, 16], "epochs": [3]}))
    keys = [p["key"] for p in cfg.grid_points(config, "mnli")]
    assert keys == ["lr3e-05_bs16_ep3", "lr3e-05_bs32_ep3", "lr5e-05_bs16_ep3", "lr5e-05_bs32_ep3"]
    runs = cfg.finetune_runs(config)
    assert runs == sorted(runs, key=lambda r: tuple(r.values()))
    assert len(runs) == 4 * 5 * 4  # rows x tasks x grid points
    assert {r["head"] for r in runs if r["ablation"] == "ltr"} == {"linear", "bilstm"}
