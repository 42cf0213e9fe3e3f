"""The training engine: gradient accumulation equals the one-batch step, fp16 loss scaling,
and the TensorBoard copy of the step log."""
import copy

import pytest
import torch

from bert_ablation.models.masking import IGNORE_INDEX
from bert_ablation.models.modeling import pretraining_model
from bert_ablation.schema import schema_defaults
from bert_ablation.training.engine import Engine, StepLog, split_batch

# dropout 0: the micro-batches of an accumulated step then compute exactly what the whole batch does
MODEL = {"architecture": "bert", "layers": 2, "hidden": 32, "heads": 2, "intermediate": 64, "dropout": 0.0,
         "max_position_embeddings": 32}


def _model():
    torch.manual_seed(0)
    return pretraining_model(MODEL, 50, 0, causal=False)


def _engine(model, **settings):
    """An engine with the schema's pretraining defaults, ``settings`` on top (10 steps, no warmup)."""
    return Engine.from_settings(model, {**schema_defaults("pretrain"), **settings}, lr=1e-3, total_steps=10,
                                warmup_steps=0)


def _batch(rows=8, width=12, nsp=True):
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, 50, (rows, width), generator=generator)
    lengths = torch.randint(4, width + 1, (rows,), generator=generator)
    attention = (torch.arange(width) < lengths[:, None]).long()
    labels = torch.where((torch.rand(rows, width, generator=generator) < 0.3) & attention.bool(), input_ids,
                         torch.full_like(input_ids, IGNORE_INDEX))  # an uneven number of targets per row
    batch = {"input_ids": input_ids * attention, "attention_mask": attention,
             "token_type_ids": torch.zeros_like(input_ids), "labels": labels}
    if nsp:
        batch["next_sentence_label"] = torch.randint(0, 2, (rows,), generator=generator)
    return batch


def _gradients_of_one_step(engine, batch):
    seen = {}
    step = engine.optimizer.step

    def recording(*args, **kwargs):
        seen["grads"] = [p.grad.detach().clone() for p in engine.module.parameters() if p.grad is not None]
        return step(*args, **kwargs)

    engine.optimizer.step = recording
    out = engine.step(batch)
    return out, seen["grads"]


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")  # the recording wrapper
@pytest.mark.parametrize("nsp", [True, False])
def test_accumulated_micro_batches_give_the_one_batch_gradient_and_losses(nsp):
    model = _model()
    batch = _batch(nsp=nsp)
    whole = _engine(copy.deepcopy(model), precision="fp32", grad_clip=0)
    parts = _engine(copy.deepcopy(model), precision="fp32", grad_clip=0, accumulation_steps=4)
    out_whole, grads_whole = _gradients_of_one_step(whole, batch)
    out_parts, grads_parts = _gradients_of_one_step(parts, batch)
    assert [len(p["input_ids"]) for p in split_batch(batch, 4)] == [2, 2, 2, 2]
    assert out_parts.lm_predictions == out_whole.lm_predictions == int((batch["labels"] != IGNORE_INDEX).sum())
    torch.testing.assert_close(out_parts.loss, out_whole.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out_parts.lm_loss, out_whole.lm_loss, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_whole, grads_parts, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
    assert parts.grad_norm == pytest.approx(whole.grad_norm, rel=1e-5)


def test_fp16_scales_the_loss_and_resumes_with_its_scale():
    engine = _engine(_model(), precision="fp16", grad_clip=1.0)
    assert engine.autocast_dtype is torch.float16 and engine.scaler.is_enabled()
    losses = [float(engine.step(_batch()).loss) for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses)))
    state = engine.state_dict()
    assert state["scaler"]["scale"] == engine.scaler.get_scale() > 1  # fp16 starts at 2**16
    again = _engine(_model(), precision="fp16", grad_clip=1.0)
    again.load_state_dict(copy.deepcopy(state))
    assert again.scaler.get_scale() == engine.scaler.get_scale() and again.steps_done == 3
    fp32 = _engine(_model(), precision="fp32")
    assert not fp32.scaler.is_enabled() and fp32.autocast_dtype is None


def test_step_log_writes_the_same_scalars_to_tensorboard_and_purges_on_resume(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = StepLog(tmp_path / "log.csv", ["loss", "nsp_loss"], tensorboard_dir=tmp_path / "tb")
    for step in (1, 2, 3):
        log.write(step, loss=1.0 / step, nsp_loss=None)
    log.close()
    resumed = StepLog(tmp_path / "log.csv", ["loss", "nsp_loss"], resume_step=2, tensorboard_dir=tmp_path / "tb")
    resumed.write(3, loss=0.25, nsp_loss=None)  # the resumed run logs step 3 again, with its own value
    resumed.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert events.Tags()["scalars"] == ["loss"]  # a None value is not written
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("loss")] == [(1, 1.0), (2, 0.5), (3, 0.25)]
    rows = [line.split(",") for line in (tmp_path / "log.csv").read_text().splitlines()[1:]]
    assert [(r[0], r[2]) for r in rows] == [("1", "1.0"), ("2", "0.5"), ("3", "0.25")]


def test_tensorboard_missing_says_how_to_install_it_or_turn_it_off(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # an import of it raises ImportError
    with pytest.raises(ImportError, match=r"pretrain.tensorboard: true needs the tensorboard package: pip install -r "
                                          r"requirements.txt, or set pretrain.tensorboard: false"):
        StepLog(tmp_path / "log.csv", ["loss"], tensorboard_dir=tmp_path / "tb")


def test_optimizer_settings_come_from_the_schema_of_either_loop_and_nowhere_else():
    import inspect

    for section in ("pretrain", "finetune"):
        defaults = schema_defaults(section)
        engine = Engine.from_settings(torch.nn.Linear(3, 2), defaults, lr=1e-3, total_steps=10, warmup_steps=0)
        assert engine.optimizer_settings() == {"name": "AdamW", "bias_correction": defaults["adam_bias_correction"],
                                               "betas": defaults["adam_betas"], "eps": defaults["adam_eps"],
                                               "weight_decay": defaults["weight_decay"]}
        assert engine.grad_clip == defaults["grad_clip"]
    # No second default that could disagree with the schema's.
    parameters = inspect.signature(Engine).parameters
    for name in ("warmup_steps", "weight_decay", "betas", "eps", "grad_clip", "precision", "bias_correction"):
        assert parameters[name].default is inspect.Parameter.empty, name
