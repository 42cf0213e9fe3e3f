"""Issue 26, fault 5: execution-only settings (accumulation, log and state intervals, TensorBoard)
are no part of a run's identity. A run that ran out of memory resumes with more accumulation steps
where it stopped, on the same batches; Snakemake sees no changed param."""
import copy

import pytest
import torch
from safetensors.torch import load_file

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.settings import AblationSpec
from bert_ablation.training.distributed import Distributed
from bert_ablation.training.pretrain import prepare, pretrain
from tests.test_pretrain import prepared  # noqa: F401  (the module's fixture: a tiny text corpus, built once)
from tests.test_workflow import ROOT

EXECUTION = {"accumulation_steps": 4, "log_every": 3, "state_every": 5, "tensorboard": False}


def test_execution_settings_leave_the_spec_hash_alone_and_training_settings_do_not():
    config = cfg.load(str(ROOT / "config.yaml"), [str(ROOT / "presets" / "paper.yaml")])
    spec = plan.resolve_ablation(config, "bert_base")
    assert spec["pretrain"]["accumulation_steps"] == 8  # the paper's 256 x 512 in micro-batches of 32
    executed = copy.deepcopy(spec)
    executed["pretrain"].update(EXECUTION)
    assert plan.ablation_hash(executed) == plan.ablation_hash(spec) == plan.spec_hash(config, "bert_base")
    assert plan.identity_spec(executed) == plan.identity_spec(spec)  # what Snakemake's params compare
    assert plan.execution_settings(executed) == {**EXECUTION, "compile": False, "health": "warn"}
    for key, value in (("lr", 2e-4), ("batch_size", 128), ("precision", "fp32"), ("eval_batches", 1)):
        changed = copy.deepcopy(spec)
        changed["pretrain"][key] = value
        assert plan.ablation_hash(changed) != plan.ablation_hash(spec), key


def _spec(config, **execution):
    spec = plan.resolve_ablation(config, "bert_base")
    spec["model"]["dropout"] = 0.0  # dropout draws its masks per micro-batch; without it a step is exact
    spec["pretrain"]["precision"] = "fp32"  # bf16 rounds each micro-batch on its own
    spec["pretrain"].update(execution)
    return spec


def _pretrain(spec, root, out, state, stop_after=None):
    return pretrain(spec, str(root / spec["packing"]), str(root / "tokenizer"), str(out / "checkpoints"),
                    str(out / "metrics.json"), str(out / "log.csv"), str(root / state), threads=1, device="cpu",
                    stop_after=stop_after)


def test_batches_are_a_function_of_the_step_and_the_global_batch_only(prepared):  # noqa: F811
    config, root = prepared
    runs = [prepare(AblationSpec.from_dict(_spec(config, accumulation_steps=k)), str(root / "nsp_pairs"),
                    str(root / "tokenizer"), str(root / f"state-rows-{k}"), "cpu", None, Distributed.from_env())
            for k in (1, 4)]
    assert runs[0].state_dir.name == runs[1].state_dir.name  # one run, whatever its micro-batching
    for step in range(12):
        a, b = (run.rows(step) for run in runs)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), step


def test_a_run_resumed_with_other_execution_settings_continues_the_same_run(prepared, tmp_path):  # noqa: F811
    """Stopped at step 5 (last state at 4) with one micro-batch, resumed with 4 micro-batches of 2,
    another log and state interval and no TensorBoard: it continues from step 4 and ends where the
    uninterrupted run ends."""
    config, root = prepared
    straight = _pretrain(_spec(config), root, tmp_path / "straight", "state-a")
    assert _pretrain(_spec(config), root, tmp_path / "resumed", "state-b", stop_after=5) is None
    resumed = _pretrain(_spec(config, **EXECUTION), root, tmp_path / "resumed", "state-b")
    assert resumed["resumed_from_step"] == 4 and straight["resumed_from_step"] == 0
    assert resumed["spec_hash"] == straight["spec_hash"]
    assert len(list((root / "state-b").iterdir())) == 1  # the same state folder, not a second run
    assert resumed["tokens_seen"] == straight["tokens_seen"]
    # micro-batches sum the same gradients in another order: equal to float rounding
    assert resumed["heldout_perplexity"] == pytest.approx(straight["heldout_perplexity"], rel=1e-4)
    a = load_file(tmp_path / "straight/checkpoints/final/model.safetensors")
    b = load_file(tmp_path / "resumed/checkpoints/final/model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.integration
def test_snakemake_reruns_nothing_when_only_execution_settings_change(tmp_path):
    """A finished run stays finished (and so does the fine-tuning behind it) when accumulation,
    log or state intervals or TensorBoard change; a changed rate reruns it."""
    from tests.test_workflow import MICRO, snakemake

    target = "results/pretrain/no_nsp/metrics.json"
    snakemake(tmp_path, target, configfiles=(MICRO,))
    execution = tmp_path / "execution.yaml"
    execution.write_text("pretrain: {accumulation_steps: 2, log_every: 4, state_every: 3, tensorboard: false}\n")
    assert "Nothing to be done" in snakemake(tmp_path, "-n", target, configfiles=(MICRO, execution))
    rate = tmp_path / "rate.yaml"
    rate.write_text("world_recipe: {pretrain: {lr: 1.0e-3}}\n")
    assert "Params have changed" in snakemake(tmp_path, "-n", target, configfiles=(MICRO, rate))
