"""Every preset validates and plans its whole DAG in seconds (no data is touched by a dry run)."""
import pytest

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.facts.head_kinds import HEAD_KINDS
from tests.test_workflow import ROOT, planned_jobs, snakemake


@pytest.mark.parametrize("preset, finetune_jobs, restarts", [("small", 125, 3), ("base", 239, 5), ("paper", 1084, 5)])
def test_preset_plans_the_full_dag(tmp_path, preset, finetune_jobs, restarts):
    path = ROOT / "presets" / f"{preset}.yaml"
    config = cfg.load(str(ROOT / "config.yaml"), [str(path)])
    assert config["finetune"]["restarts"] == restarts
    assert {t["source"] for t in config["tasks"].values()} == {"hub"} and config["corpus"]["source"] == "hf"
    # no task keeps config.yaml's learning rates for tiny models
    assert all(p.lr <= 1e-4 for task in config["tasks"] for p in plan.grid_points(config, task))
    jobs = planned_jobs(snakemake(tmp_path, "-n", configfiles=(path,)))
    assert jobs["pretrain"] == 14 and jobs["finetune"] == finetune_jobs
    assert jobs["table"] == 5 and jobs["claims"] == 1
    # per corpus shard: two packings, at 128 and 512 for the paper; word counts per shard, one vocabulary
    shards = config["corpus"]["shards"]
    assert shards > 1 and jobs["corpus"] == jobs["word_counts"] == shards and jobs["tokenizer"] == 1
    assert jobs["instances"] == (4 if preset == "paper" else 2) * shards


def test_paper_preset_has_the_papers_hyperparameters():
    config = cfg.load(str(ROOT / "config.yaml"), [str(ROOT / "presets" / "paper.yaml")])
    base = plan.resolve_ablation(config, "bert_base")
    assert (base["model"]["layers"], base["model"]["hidden"], base["model"]["heads"]) == (12, 768, 12)
    assert base["pretrain"]["steps"] == 1_000_000 and base["pretrain"]["batch_size"] == 256
    assert base["pretrain"]["lr"] == 1e-4 and base["pretrain"]["warmup_steps"] == 10_000
    assert (base["pretrain"]["short_seq_steps"], base["pretrain"]["short_seq_length"]) == (900_000, 128)
    assert config["instances"]["max_seq_length"] == 512
    assert len(plan.grid_points(config, "mnli")) == 18
    wide_deep = plan.resolve_ablation(config, "size_wide_deep")["model"]
    assert (wide_deep["layers"], wide_deep["hidden"], wide_deep["heads"]) == (24, 1024, 16)


def test_families_preset_plans_table5_under_both_encoder_families(tmp_path):
    """The side-by-side table reuses the default (rotary) runs and adds the BERT-encoder ones."""
    path = ROOT / "presets" / "families.yaml"
    config = cfg.load(str(ROOT / "config.yaml"), [str(path)])
    rows = config["tables"]["table5_families"]["rows"]
    families = {plan.resolve_ablation(config, r["ablation"])["model"]["architecture"] for r in rows.values()}
    assert families == {"bert", "roformer"} and len(rows) == 10
    assert plan.resolve_ablation(config, "bert_base")["model"]["architecture"] == "roformer"
    assert plan.resolve_ablation(config, "bert_base_abs")["model"]["architecture"] == "bert"
    jobs = planned_jobs(snakemake(tmp_path, "-n", "table5_families", configfiles=(path,)))
    assert jobs["pretrain"] == 8 * 3  # 4 ablations x 2 families x 3 pretraining seeds
    # every cell is its own run: 10 rows x 5 columns, each at every point of the task's grid
    assert jobs["finetune"] == sum(len(plan.grid_points(config, t)) for t in ("mnli", "qnli", "mrpc", "sst2", "squad")) * 10


def test_long_pretraining_preset_changes_only_the_pretraining_length(tmp_path):
    """5x the steps for every pretraining run, warmup and Figure 5's checkpoints scaled with them;
    everything else (the 8-layer row's own rate, No pretraining's 0 steps) is config.yaml's."""
    path = ROOT / "presets" / "long_pretraining.yaml"
    default = cfg.load(str(ROOT / "config.yaml"), [])
    config = cfg.load(str(ROOT / "config.yaml"), [str(path)])
    before, after = default["pretrain"], config["pretrain"]
    assert after["steps"] == 5 * before["steps"]
    assert after["save_steps"] == [5 * s for s in before["save_steps"]]
    for ablation in config["ablations"]:
        long, short = plan.resolve_ablation(config, ablation), plan.resolve_ablation(default, ablation)
        assert long["pretrain"]["lr"] == short["pretrain"]["lr"]
        assert long["pretrain"]["steps"] == (0 if ablation == "no_pretraining" else 3500)
        assert long["pretrain"]["warmup_steps"] == 5 * short["pretrain"]["warmup_steps"]  # the world's, scaled
        assert {k: v for k, v in long.items() if k != "pretrain"} == {k: v for k, v in short.items() if k != "pretrain"}
    # Figure 5's columns: the scaled checkpoints, then the final model
    def figure_steps(c):
        return sorted({int(cell.column) for cell in plan.table_cells(c, "figure5")})
    assert figure_steps(config) == [5 * s for s in figure_steps(default)] == [700, 1400, 2100, 3500]
    config["pretrain"], config["world_recipe"] = default["pretrain"], default["world_recipe"]
    assert config == default
    jobs = planned_jobs(snakemake(tmp_path, "-n", configfiles=(path,)))
    assert jobs["pretrain"] == 14 * 3 and jobs["finetune"] == 68 and jobs["claims"] == 1  # 3 seeds a job


# --- issue 26, fault 1: a preset resolves to the protocol it states, never to the world's tuning -------
# Each preset's protocol, as its header states it (the preset files cite the paper or their own
# measurement; this table restates them as data, and the test below resolves every ablation of every
# preset against it). A row: (lr, warmup_steps, dropout, batch_size, steps, architecture,
# (layers, hidden, heads, intermediate)). "*" is every ablation the preset has; named ablations
# replace it. The presets' files hold the settings, this table the promise: a leak of one into the
# other fails here.
WORLD_SHAPES = {"*": (4, 64, 2, 256), "size_shallow": (1, 64, 2, 256), "size_few_heads": (2, 64, 1, 256),
                "size_half_depth": (2, 64, 2, 256), "size_wide": (4, 96, 3, 384), "size_wide_deep": (8, 96, 3, 384)}
# Table 6 at the paper's sizes (base.yaml, paper.yaml: "the paper's Table 6 rows at their real sizes")
PAPER_SHAPES = {"*": (12, 768, 12, 3072), "size_shallow": (3, 768, 12, 3072), "size_few_heads": (6, 768, 3, 3072),
                "size_half_depth": (6, 768, 12, 3072), "size_wide": (12, 1024, 16, 4096),
                "size_wide_deep": (24, 1024, 16, 4096)}
# small.yaml: "Table 6 at this scale: depth 1-2-2-4-4-8, few heads, wider 384/6"
SMALL_SHAPES = {"*": (4, 256, 4, 1024), "size_shallow": (1, 256, 4, 1024), "size_few_heads": (2, 256, 1, 1024),
                "size_half_depth": (2, 256, 4, 1024), "size_wide": (4, 384, 6, 1536),
                "size_wide_deep": (8, 384, 6, 1536)}
# config.yaml (world_recipe): rotary, no dropout, lr 4e-3, the 8-layer row at 2e-3; 700 steps of 16, 70 warmup
WORLD = {"lr": 4e-3, "warmup_steps": 70, "dropout": 0.0, "batch_size": 16, "steps": 700, "architecture": "roformer"}
NO_PRETRAINING = {"steps": 0, "warmup_steps": 0}  # config.yaml's random-init row, in every preset
PROTOCOLS = {
    "default": (WORLD, WORLD_SHAPES, {"size_wide_deep": {"lr": 2e-3}, "no_pretraining": NO_PRETRAINING}),
    # long_pretraining.yaml: "3,500 steps x 16 sequences instead of 700 ... 10% warmup"
    "long_pretraining": ({**WORLD, "steps": 3500, "warmup_steps": 350}, WORLD_SHAPES,
                         {"size_wide_deep": {"lr": 2e-3}, "no_pretraining": NO_PRETRAINING}),
    # families.yaml: the BERT rows "at the recipe the previous default used for it (lr 1e-3, dropout 0.1)"
    "families": (WORLD, WORLD_SHAPES, {
        "size_wide_deep": {"lr": 2e-3}, "no_pretraining": NO_PRETRAINING,
        **{f"{a}_abs": {"architecture": "bert", "dropout": 0.1, "lr": 1e-3} for a in ("bert_base", "no_nsp", "ltr")},
        "no_pretraining_abs": {**NO_PRETRAINING, "architecture": "bert", "dropout": 0.1}}),
    **{f"control_{m}": (WORLD, WORLD_SHAPES, {"size_wide_deep": {"lr": 2e-3}, "no_pretraining": NO_PRETRAINING})
       for m in ("context_ambiguity", "cross_segment", "heldout_words", "right_context")},
    # released.yaml pretrains nothing of its own (checkpoint rows); config.yaml's world runs stay the world's
    "released": (WORLD, WORLD_SHAPES, {"size_wide_deep": {"lr": 2e-3}, "no_pretraining": NO_PRETRAINING}),
    # bench.yaml: "3,500 x 64 ... the rate scaled by sqrt(4) (4e-3 -> 8e-3, the 8-layer row's 2e-3 -> 4e-3)", 350 warmup
    "bench": ({**WORLD, "lr": 8e-3, "steps": 3500, "batch_size": 64, "warmup_steps": 350}, WORLD_SHAPES,
              {"size_wide_deep": {"lr": 4e-3}, "no_pretraining": NO_PRETRAINING}),
    # own_corpus_example.yaml: "the recipe is the default one (rotary encoder, lr 4e-3, dropout 0, 700 x 16,
    # warmup 350)": config.yaml's generic recipe, no world_recipe (its corpus is text)
    "own_corpus_example": ({**WORLD, "warmup_steps": 350}, WORLD_SHAPES, {"no_pretraining": NO_PRETRAINING}),
    # own_corpus_budget.yaml: own_corpus_example's recipe, BERT-Base also at "1x, 5x and 10x the default 700 steps"
    "own_corpus_budget": ({**WORLD, "warmup_steps": 350}, WORLD_SHAPES, {
        "no_pretraining": NO_PRETRAINING, "bert_base_5x": {"steps": 3500}, "bert_base_10x": {"steps": 7000}}),
    # verdicts.yaml: the default world at 10 pretraining seeds, nothing else changed
    "verdicts": (WORLD, WORLD_SHAPES, {"size_wide_deep": {"lr": 2e-3}, "no_pretraining": NO_PRETRAINING}),
    # base.yaml: "200k steps x 256 x 128 tokens", lr 1e-4, 10k warmup, BERT's encoder with dropout 0.1
    "base": ({"lr": 1e-4, "warmup_steps": 10_000, "dropout": 0.1, "batch_size": 256, "steps": 200_000,
              "architecture": "bert"}, PAPER_SHAPES, {"no_pretraining": NO_PRETRAINING}),
    # paper.yaml: "1M steps of 256 sequences, Adam lr 1e-4 with 10k warmup ... dropout 0.1"
    "paper": ({"lr": 1e-4, "warmup_steps": 10_000, "dropout": 0.1, "batch_size": 256, "steps": 1_000_000,
               "architecture": "bert"}, PAPER_SHAPES, {"no_pretraining": NO_PRETRAINING}),
    # small.yaml: BERT-mini, 100k steps of 128 at lr 5e-4, 2k warmup
    "small": ({"lr": 5e-4, "warmup_steps": 2000, "dropout": 0.1, "batch_size": 128, "steps": 100_000,
               "architecture": "bert"}, SMALL_SHAPES, {"no_pretraining": NO_PRETRAINING}),
}


def _load(preset: str) -> dict:
    return cfg.load(str(ROOT / "config.yaml"), [] if preset == "default" else [str(ROOT / "presets" / f"{preset}.yaml")])


def test_every_preset_is_in_the_protocol_table():
    assert {p.stem for p in (ROOT / "presets").glob("*.yaml")} == set(PROTOCOLS) - {"default"}


@pytest.mark.parametrize("preset", sorted(PROTOCOLS))
def test_every_ablation_resolves_to_the_protocol_its_preset_states(preset):
    """Issue 26, fault 1: base's and paper's 24/1024/16 row pretrained at the world's lr 2e-3 (the
    paper: 1e-4), small's 8-layer row likewise (its header: 5e-4)."""
    config = _load(preset)
    common, shapes, rows = PROTOCOLS[preset]
    for name in config["ablations"]:
        spec = plan.resolve_ablation(config, name)
        model, train = spec["model"], spec["pretrain"]
        got = {"lr": train["lr"], "warmup_steps": train["warmup_steps"], "dropout": model["dropout"],
               "batch_size": train["batch_size"], "steps": train["steps"], "architecture": model["architecture"],
               "shape": (model["layers"], model["hidden"], model["heads"], model["intermediate"])}
        want = {**common, "shape": shapes.get(name, shapes["*"]), **rows.get(name, {})}
        assert got == want, f"{preset}: {name}"


# The spec hash of every ablation of config.yaml and of each world preset, recorded at baf4dfb (before
# world_recipe and the execution keys left the identity): the default run's cached results keep them.
DEFAULT_HASHES = {
    "bert_base": "748ad6a2f355", "ltr": "ccf25bbce97e", "mask_0_0_100": "dac4a51e6e4a", "mask_0_20_80": "854f1f5cda45",
    "mask_100_0_0": "5899dd21086f", "mask_80_0_20": "af220c80d09c", "mask_80_20_0": "6bca9881e34d",
    "no_nsp": "36718c08ec9d", "no_pretraining": "3409184a5e3d", "size_few_heads": "10f00db9a78c",
    "size_half_depth": "4c44e19b87e3", "size_shallow": "c10b445a2824", "size_wide": "2a933d40bbc4",
    "size_wide_deep": "8ea1143443fd"}
WORLD_PRESET_HASHES = {
    "default": DEFAULT_HASHES,
    **{f"control_{m}": DEFAULT_HASHES for m in ("context_ambiguity", "cross_segment", "heldout_words", "right_context")},
    "families": {**DEFAULT_HASHES, "bert_base_abs": "a3801f7f37b4", "ltr_abs": "b8ed90cbb8cd",
                 "no_nsp_abs": "2ad304755834", "no_pretraining_abs": "9f1d062899ae"},
    "long_pretraining": {
        "bert_base": "8309ac1d210f", "ltr": "2e62449180d6", "mask_0_0_100": "3daf5aacef8d",
        "mask_0_20_80": "08700876f2c6", "mask_100_0_0": "abe46f4e4675", "mask_80_0_20": "01ec12bc8482",
        "mask_80_20_0": "37ca9cec7e18", "no_nsp": "f09bf849b6b0", "no_pretraining": "3409184a5e3d",
        "size_few_heads": "7730a92ca723", "size_half_depth": "03dc5db9d951", "size_shallow": "ade016952b28",
        "size_wide": "45e436e325cb", "size_wide_deep": "5c6a3c793d0b"},
    "released": {
        "bert_base": "ab79f888d104", "ltr": "873462623104", "mask_0_0_100": "ef3baf0858f8",
        "mask_0_20_80": "8b9cf0705658", "mask_100_0_0": "d256311a39c1", "mask_80_0_20": "22d8c0c8de7d",
        "mask_80_20_0": "cbfe8a127a52", "no_nsp": "457dd3a37c99", "no_pretraining": "467f61df89e2",
        "size_few_heads": "d4b0a0bfdccb", "size_half_depth": "fe71937e988b", "size_shallow": "dd821fec2372",
        "size_wide": "fb6368648884", "size_wide_deep": "5217d3a63773"},
}


@pytest.mark.parametrize("preset", sorted(WORLD_PRESET_HASHES))
def test_world_runs_keep_their_spec_hashes(preset):
    config = _load(preset)
    assert {name: plan.spec_hash(config, name) for name in config["ablations"]} == WORLD_PRESET_HASHES[preset]


def test_world_recipe_applies_only_to_the_generated_world(tmp_path):
    """config.yaml's own runs get the world's tuning; the same file on a text corpus gets the
    generic recipe (top-level model/pretrain), the 8-layer row included."""
    text = tmp_path / "text.yaml"
    (tmp_path / "a.txt").write_text("One sentence.\nAnother one.\n\nA second document.\n")
    text.write_text(f"corpus: {{source: text, text: {{paths: ['{tmp_path / 'a.txt'}']}}}}\n")
    world, own = _load("default"), cfg.load(str(ROOT / "config.yaml"), [str(text)])
    for name in ("bert_base", "size_wide_deep"):
        generic = plan.resolve_ablation(own, name)
        assert (generic["model"]["architecture"], generic["model"]["dropout"], generic["pretrain"]["lr"]) == (
            own["model"]["architecture"], own["model"]["dropout"], own["pretrain"]["lr"])
        tuned = plan.resolve_ablation(world, name)
        assert (tuned["model"]["architecture"], tuned["pretrain"]["lr"]) == (
            "roformer", 2e-3 if name == "size_wide_deep" else 4e-3)


def test_nsp_negatives_leave_the_params_of_earlier_instances_alone(tmp_path):
    """The default draw (by document, the only one before the key) is left out of the instances'
    params, so no finished run is rebuilt for the key; the other draw is a param of its own."""
    world = _load("default")
    assert world["instances"]["nsp_negatives"] == "document"
    assert plan.instance_settings(world, 64) == {
        **{k: v for k, v in world["instances"].items() if k != "nsp_negatives"}, "max_seq_length": 64}
    change = tmp_path / "draw.yaml"
    change.write_text("instances: {nsp_negatives: sentence}\n")
    config = cfg.load(str(ROOT / "config.yaml"), [str(change)])
    assert plan.instance_settings(config, 128)["nsp_negatives"] == "sentence"


def test_a_real_data_preset_cannot_inherit_half_an_ablation(tmp_path):
    """Redefining an ablation on real text states all of it: a width left out would be the world's."""
    preset = tmp_path / "mine.yaml"
    preset.write_text((ROOT / "presets" / "small.yaml").read_text().replace(
        "size_wide:       {objective: mlm_nsp, model: {hidden: 384, heads: 6, intermediate: 1536}}",
        "size_wide:       {objective: mlm_nsp, model: {heads: 8}}"))
    with pytest.raises(cfg.ConfigError, match=r"ablations.size_wide .*model.hidden=96, model.intermediate=384"):
        cfg.load(str(ROOT / "config.yaml"), [str(preset)])
    # a file that only adjusts runs keeps its partial overrides (tests/micro.yaml shrinks them), on
    # the built-in world and under a file that switches the corpus (tests/test_workflow_local.py)
    micro = str(ROOT / "tests" / "micro.yaml")
    assert cfg.load(str(ROOT / "config.yaml"), [micro])
    (tmp_path / "a.txt").write_text("One sentence.\nAnother one.\n\nA second document.\n")
    text = tmp_path / "text.yaml"
    text.write_text(f"corpus: {{source: text, text: {{paths: ['{tmp_path / 'a.txt'}']}}}}\n")
    config = cfg.load(str(ROOT / "config.yaml"), [micro, str(text)])
    assert plan.resolve_ablation(config, "size_wide")["model"]["heads"] == 3  # micro's choice, as before


def test_world_recipe_names_known_keys_and_ablations(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("world_recipe: {ablations: {size_wide_dep: {pretrain: {lr: 1.0e-3}}}}\n")
    with pytest.raises(cfg.ConfigError, match="world_recipe.ablations.size_wide_dep.*Did you mean 'size_wide_deep'"):
        cfg.load(str(ROOT / "config.yaml"), [str(bad)])
    bad.write_text("world_recipe: {pretrain: {learning_rate: 1.0e-3}}\n")
    with pytest.raises(cfg.ConfigError, match="world_recipe.pretrain"):
        cfg.load(str(ROOT / "config.yaml"), [str(bad)])


def test_a_top_level_value_the_world_recipe_overrides_is_refused_on_the_world(tmp_path):
    """pretrain.lr changed on the built-in world would be a silent no-op (world_recipe sets it)."""
    change = tmp_path / "lr.yaml"
    change.write_text("pretrain: {lr: 2.0e-3}\n")
    with pytest.raises(cfg.ConfigError, match=r"pretrain.lr=0.002 has no effect .* world_recipe.pretrain.lr"):
        cfg.load(str(ROOT / "config.yaml"), [str(change)])
    change.write_text("world_recipe: {pretrain: {lr: 2.0e-3}}\n")  # the way to change the world's rate
    config = cfg.load(str(ROOT / "config.yaml"), [str(change)])
    assert plan.resolve_ablation(config, "bert_base")["pretrain"]["lr"] == 2e-3
    assert plan.resolve_ablation(config, "size_wide_deep")["pretrain"]["lr"] == 2e-3  # its own entry


def test_a_preset_stating_a_value_the_world_recipe_overrides_is_refused_whatever_the_value(tmp_path):
    """A world preset that states the generic warmup (350, config.yaml's own top-level value) would
    still train at the world's 70: stated in a preset, a shadowed key is refused even unchanged;
    stated at the world_recipe's own value it is harmless (tests/micro.yaml states both)."""
    change = tmp_path / "warmup.yaml"
    change.write_text("pretrain: {steps: 3500, warmup_steps: 350}\n")
    with pytest.raises(cfg.ConfigError, match=r"warmup.yaml: pretrain.warmup_steps=350 has no effect .* "
                                               r"world_recipe.pretrain.warmup_steps=70"):
        cfg.load(str(ROOT / "config.yaml"), [str(change)])
    change.write_text("pretrain: {warmup_steps: 70}\n")
    assert cfg.load(str(ROOT / "config.yaml"), [str(change)])["pretrain"]["warmup_steps"] == 70
    change.write_text("pretrain: {steps: 3500}\nworld_recipe: {pretrain: {warmup_steps: 350}}\n")
    config = cfg.load(str(ROOT / "config.yaml"), [str(change)])
    assert plan.resolve_ablation(config, "bert_base")["pretrain"]["warmup_steps"] == 350


# The fine-tuning protocol each real-data preset's header states: (learning rates, batch sizes, epochs)
# of the GLUE/SQuAD grid, the feature-based heads' grid, restarts. None of config.yaml's tiny-model
# rates (1e-3; CoNLL 2e-3; features 3e-3 x 6 epochs) may reach them.
FINETUNE_PROTOCOLS = {
    "base": (({5e-5, 4e-5, 3e-5, 2e-5}, {32}, {3}), ({1e-3}, {32}, {4}), 5),  # "the paper's GLUE grid"
    "paper": (({5e-5, 3e-5, 2e-5}, {16, 32}, {2, 3, 4}), ({1e-3}, {16, 32}, {4}), 5),  # "the paper's general grid"
    "small": (({1e-4, 5e-5}, {32}, {3}), ({1e-3}, {32}, {4}), 3),
    "released": (({5e-5, 4e-5, 3e-5, 2e-5}, {32}, {3}), ({1e-3}, {32}, {4}), 5),  # "batch 32, 3 epochs, 4 rates"
}


@pytest.mark.parametrize("preset", sorted(FINETUNE_PROTOCOLS))
def test_every_fine_tuning_job_of_a_real_data_preset_follows_its_protocol(preset):
    config = _load(preset)
    tuned, frozen, restarts = FINETUNE_PROTOCOLS[preset]
    tables = ["table5_released", "table7_released"] if preset == "released" else None
    if preset == "released":  # its tables fine-tune released checkpoints: nothing is pretrained
        assert plan.pretrain_runs(config, tables) == []
    assert config["finetune"]["restarts"] == restarts
    runs = plan.finetune_runs(config, tables)
    assert runs
    for run in runs:
        want = frozen if HEAD_KINDS[run.head].frozen else tuned
        points = plan.grid_points(config, run.task, run.head)
        got = ({p.lr for p in points}, {p.batch_size for p in points}, {p.epochs for p in points})
        assert got == want, (preset, run)
