import copy
import dataclasses

import pytest
import yaml

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.settings import TASK_DATA_KEYS

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
    assert plan.resolve_ablation(config, "ltr")["packing"] == "contiguous"


@pytest.mark.parametrize("changes, message", [
    ({"pretrain__warmup_step": 10}, r"unknown key 'warmup_step' \(did you mean 'warmup_steps'\?\) under pretrain"),
    ({"pretrain__steps": "many"}, r"pretrain.steps: 'many' is not of type 'integer'"),
    # Snakemake's --config finetune='{restarts: 5}' nests text: the message says so and what to do.
    ({"finetune__restarts": "5"}, r"finetune.restarts: '5' is not of type 'integer'.*--config passes values nested "
                                  r"under a key as text; put this override in a YAML file and add it with --configfile"),
    ({"model__heads": 3}, r"model.hidden=64 is not divisible by model.heads=3"),
    ({"masking__mask": 0.7}, r"mask\+same\+random = 0.9, must be 1"),
    ({"ablations__odd": {"objective": "mlm_sop"}}, r"ablations.odd.objective: unknown objective 'mlm_sop'"),
    ({"ablations__odd": {"objective": "mlm_nsp", "packing": "contiguous"}}, r"cannot use packing 'contiguous'"),
    ({"ablations__odd": {"objective": "mlm", "model": {"layer": 3}}}, r"unknown model key 'layer'.*Did you mean 'layers'"),
    ({"tables__table5__rows__X": {"ablation": "bert_large"}}, r"unknown ablation 'bert_large'"),
    ({"tables__table5__rows__X": {"ablation": "ltr", "head": "lstm"}}, r"unknown head 'lstm'"),
    ({"tables__table5__columns__X": {"task": "mnli", "metric": "f1"}}, r"unknown metric 'f1'"),
    ({"tables__table5__columns__X": {"task": "wnli", "metric": "accuracy"}}, r"unknown task 'wnli'"),
    ({"tables__table5__columns__X": {"task": "cola", "metric": "matthews_correlation"}},
     r"tasks.cola.source: the built-in world has no 'cola' task .*use source: hub .* or local"),
    ({"tasks__stsb": {"source": "hub"}, "tables__table5__columns__X": {"task": "stsb", "metric": "mcc"}},
     r"unknown metric 'mcc'. Known: pearson, spearman"),
    ({"tables__table5__rows__X": {"ablation": "ltr", "step": "step-7"}}, r"not a saved checkpoint"),
    ({"pretrain__save_steps": [100000]}, r"save_steps \[100000\] exceed pretrain.steps"),
    ({"pretrain__accumulation_steps": 3}, r"pretrain.accumulation_steps=3 does not divide pretrain.batch_size=16; "
                                          r"pick micro-batches of equal size"),
    ({"instances__static_masking": True, "ablations__no_nsp__masking": {"max_predictions": 5}},
     r"ablations.no_nsp: masking.max_predictions is drawn with the instances under instances.static_masking"),
    ({"tasks__squad__doc_stride": 500}, r"tasks.squad.doc_stride=500 must be below max_seq_length - "
                                         r"max_query_length - 3 = 128 - 32 - 3 = 93"),
    ({"tasks__squad__doc_stride": 93, "tasks__squad__doc_stride_meaning": "step"},
     r"tasks.squad.doc_stride=93 must be below .* = 93"),
    ({"tasks__squad__max_query_length": 100}, r"tasks.squad.doc_stride=64 must be below .* = 128 - 100 - 3 = 25"),
    ({"tasks__squad__doc_stride_meaning": "stride"}, r"tasks.squad.doc_stride_meaning: 'stride' is not one of "
                                                     r"\['overlap', 'step'\]"),
    ({"tasks__squad__max_context": "yes"}, r"tasks.squad.max_context: 'yes' is not of type 'boolean'"),
    ({"tasks__mnli__max_seq_length": 512}, r"tasks.mnli.max_seq_length=512 exceeds the max_position_embeddings=128"),
    ({"tables__table7__rows__X": {"ablation": "size_half_depth", "head": "features_concat_last_four"}},
     r"head 'features_concat_last_four' needs an encoder with at least 4 layers; ablation 'size_half_depth' has 2"),
    ({"tables__table7__columns__X": {"task": "conll2003", "metric": "f1", "split": "tets"}},
     r"unknown split 'tets'.*Did you mean 'test'"),
    ({"tables__table6__columns__X": {"source": "pretrain", "metric": "perplexity"}},
     r"unknown pretraining metric 'perplexity'"),
    ({"tables__table6__columns__X": {"metric": "accuracy"}}, r"a fine-tuning column needs a task"),
    ({"figures__figure5__series__X": "size_half_depth", "ablations__size_half_depth__pretrain": {"save_steps": [10]}},
     r"figures.figure5: the series' ablations save different steps"),
    ({"figures__table5": {"series": {"A": "ltr"}, "task": "mnli", "metric": "accuracy"}},
     r"table5 is both a table and a figure"),
    ({"tasks__mnli__source": "local"}, r"tasks.mnli: source 'local' needs a path"),
    ({"pretrain__short_seq_steps": 700}, r"pretrain.short_seq_steps=700 at short_seq_length=128 needs fewer steps "
                                         r"than pretrain.steps=700 and a length below instances.max_seq_length=128"),
    ({"claims__test": "ttest"}, r"claims.test: 'ttest' is not one of \['multibootstrap', 'welch', 'bootstrap'\]"),
    ({"model__architecture": "gpt2"}, r"model.architecture: 'gpt2' is not one of \['bert', 'roformer'\]"),
    ({"ablations__odd": {"objective": "mlm", "model": {"architecture": "modernbert"}}},
     r"ablations.odd: architecture: 'modernbert' is not one of \['bert', 'roformer'\]"),
])
def test_bad_config_names_the_key_and_the_fix(changes, message):
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.validate(with_changes(**changes))


def test_squad_window_settings_default_to_hf_overlap_and_the_presets_use_run_squads():
    squad = cfg.validate(BASE)["tasks"]["squad"]
    assert (squad["doc_stride_meaning"], squad["max_context"]) == ("overlap", False)
    # the bound is the window's context room with the longest question: one below it is fine
    assert cfg.validate(with_changes(tasks__squad__doc_stride=92))["tasks"]["squad"]["doc_stride"] == 92
    for preset in ("small", "base", "paper"):
        squad = cfg.load(__file__.replace("tests/test_config.py", f"presets/{preset}.yaml"))["tasks"]["squad"]
        assert (squad["max_seq_length"], squad["doc_stride"], squad["max_query_length"]) == (384, 128, 64)
        assert (squad["doc_stride_meaning"], squad["max_context"]) == ("step", True)


def test_grid_points_and_runs_are_sorted_and_deterministic():
    config = cfg.validate(with_changes(finetune__grid={"lr": [3e-5, 5e-5], "batch_size": [32, 16], "epochs": [3]}))
    keys = [p.key for p in plan.grid_points(config, "mnli")]
    assert keys == ["lr3e-05_bs16_ep3", "lr3e-05_bs32_ep3", "lr5e-05_bs16_ep3", "lr5e-05_bs32_ep3"]
    runs = plan.finetune_runs(config, ["table5"])
    assert runs == sorted(runs, key=dataclasses.astuple)
    assert len(runs) == 5 * 5 * 4  # rows x tasks x grid points (each job fine-tunes every pretraining seed)
    assert {r.head for r in runs if r.ablation == "ltr"} == {"linear", "bilstm"}


def test_shared_runs_are_shared_between_tables():
    config = cfg.validate(BASE)
    runs = plan.finetune_runs(config)
    keys = [dataclasses.astuple(r) for r in runs]
    assert len(keys) == len(set(keys))
    # bert_base fine-tuned on MNLI once, though Tables 5, 6, 8 and Figure 5 all show it
    assert sum(r.ablation == "bert_base" and r.task == "mnli" and r.step == "final" for r in runs) == 1
    per_table = sum(len(plan.finetune_runs(config, [name])) for name in plan.report_names(config))
    assert len(runs) < per_table
    assert "bert_base" in plan.pretrain_runs(config, ["table6"]) and "bert_base" in plan.pretrain_runs(config, ["table8"])


def test_figure_cells_follow_the_checkpoints():
    config = cfg.validate(BASE)
    cells = plan.table_cells(config, "figure5")
    steps = [int(c.column) for c in cells if c.ablation == "ltr"]
    assert steps == sorted(config["pretrain"]["save_steps"] + [config["pretrain"]["steps"]])
    assert [c.step for c in cells if c.ablation == "ltr"][-1] == "final"
    assert {c.step for c in cells} == {"final", *(f"step-{s}" for s in config["pretrain"]["save_steps"])}


def test_column_head_overrides_the_row_head():
    config = cfg.validate(BASE)
    cells = {(c.row, c.column): c for c in plan.table_cells(config, "table8")}
    assert cells[("100/0/0", "NER Feature-based")].head == "features_concat_last_four"
    assert cells[("100/0/0", "NER Fine-tune")].head == "linear"


def test_plan_objects_are_frozen_and_cross_the_params_boundary_as_their_fields():
    import json

    from bert_ablation.storage import canonical_json

    config = cfg.validate(BASE)
    cell = plan.table_cells(config, "table5")[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cell.task = "sst2"
    # The table rule's params: canonical JSON of the fields, turned back into the same Cell by the job.
    assert canonical_json([cell]) == canonical_json([dataclasses.asdict(cell)])
    assert plan.Cell(**json.loads(canonical_json(cell))) == cell
    point = plan.grid_points(config, "mnli")[0]
    assert point.key == plan.hp_key(point.lr, point.batch_size, point.epochs)
    assert plan.finetune_settings(config, "mnli", "linear", point.key)["hp"] == dataclasses.asdict(point)


def test_a_finetuning_jobs_settings_are_typed_and_write_the_json_they_always_wrote():
    """FinetuneSettings has one field per finetune key of the schema (grids aside), plus the task's
    settings and the grid point; its params() are the JSON document jobs received before it existed,
    so every finetune_hash stays (the hash below is the default config's, from before)."""
    from bert_ablation.schema import schema
    from bert_ablation.storage import stable_hash

    keys = set(schema()["properties"]["finetune"]["properties"]) - {"grid", "feature_based_grid"}
    assert {f.name for f in dataclasses.fields(plan.FinetuneSettings)} == keys | {"task", "hp"}
    config = cfg.validate(BASE)
    settings = plan.FinetuneSettings.from_config(config, "sst2", "linear", "lr0.001_bs16_ep3")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.dropout = 0.0
    assert settings.collapse_retry.lr_divisor == config["finetune"]["collapse_retry"]["lr_divisor"]
    assert settings.hp == plan.grid_point(config, "sst2", "linear", "lr0.001_bs16_ep3")
    params = plan.finetune_settings(config, "sst2", "linear", "lr0.001_bs16_ep3")
    assert params == settings.params() and params["adam_betas"] == config["finetune"]["adam_betas"]
    assert not set(TASK_DATA_KEYS) & set(params["task"])
    assert plan.FinetuneSettings.from_params(params) == settings  # the job types its params back
    assert stable_hash(params) == "2112d9ca6841"
