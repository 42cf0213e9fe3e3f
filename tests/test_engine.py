"""The training engine: gradient accumulation equals the one-batch step, fp16 loss scaling,
and the TensorBoard copy of the step log."""
import copy
from types import SimpleNamespace

import pytest
import torch

from bert_ablation.models.masking import IGNORE_INDEX
from bert_ablation.models.modeling import pretraining_model
from bert_ablation.schema import schema_defaults
from bert_ablation.settings import PretrainSettings
from bert_ablation.training.engine import Engine, StepLog, split_batch

# dropout 0: the micro-batches of an accumulated step then compute exactly what the whole batch does
MODEL = {"architecture": "bert", "layers": 2, "hidden": 32, "heads": 2, "intermediate": 64, "dropout": 0.0,
         "max_position_embeddings": 32}


def _model():
    torch.manual_seed(0)
    return pretraining_model(MODEL, 50, 0, causal=False)


def _engine(model, **settings):
    """An engine with the schema's pretraining defaults, ``settings`` on top (10 steps, no warmup)."""
    return Engine.from_settings(model, PretrainSettings.from_dict(settings), lr=1e-3, total_steps=10,
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
    assert float(parts.grad_norm) == pytest.approx(float(whole.grad_norm), rel=1e-5)


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
        # the engine reads fields by name, as both loops' typed settings hold them
        engine = Engine.from_settings(torch.nn.Linear(3, 2), SimpleNamespace(**defaults), lr=1e-3, total_steps=10,
                                      warmup_steps=0)
        assert engine.optimizer_settings() == {"name": "AdamW", "bias_correction": defaults["adam_bias_correction"],
                                               "betas": defaults["adam_betas"], "eps": defaults["adam_eps"],
                                               "weight_decay": defaults["weight_decay"]}
        assert engine.grad_clip == defaults["grad_clip"]
    # No second default that could disagree with the schema's.
    parameters = inspect.signature(Engine).parameters
    for name in ("warmup_steps", "weight_decay", "betas", "eps", "grad_clip", "precision", "bias_correction"):
        assert parameters[name].default is inspect.Parameter.empty, name


@pytest.mark.parametrize("capability, expected", [((7, 0), "fp16"), ((7, 5), "fp16"), ((8, 0), "bf16"),
                                                  ((9, 0), "bf16")])
def test_auto_precision_is_bf16_only_from_compute_capability_8(monkeypatch, capability, expected):
    """V100 (7.0) and T4 (7.5) report bf16 support, but emulate it: fp16 with loss scaling is their
    fast path. The capability is faked: no GPU is needed to check the decision."""
    from bert_ablation.training import engine

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what a V100 says too
    assert engine.resolve_precision("auto", torch.device("cuda")) == expected
    assert engine.resolve_precision("fp32", torch.device("cuda")) == "fp32"  # an explicit choice stands


def test_auto_precision_on_a_cpu_is_bf16_where_native_else_fp32(monkeypatch):
    from bert_ablation.training import engine

    for native, expected in ((False, "fp32"), (True, "bf16")):
        monkeypatch.setattr(engine, "native_bf16", lambda device, native=native: native)
        assert engine.resolve_precision("auto", torch.device("cpu")) == expected


def test_foreach_bert_adam_equals_the_per_parameter_loop():
    from bert_ablation.training.engine import BertAdam

    torch.manual_seed(0)
    shapes = [(4, 3), (3,), (5, 2), (2,)]
    start = [torch.randn(s) for s in shapes]
    runs = {}
    for foreach in (False, True):
        params = [torch.nn.Parameter(w.clone()) for w in start]
        groups = [{"params": params[:2], "weight_decay": 0.01}, {"params": params[2:], "weight_decay": 0.0}]
        opt = BertAdam(groups, lr=1e-2, betas=(0.9, 0.999), eps=1e-6, foreach=foreach)
        generator = torch.Generator().manual_seed(1)
        for step in range(4):
            for k, p in enumerate(params):
                # the last parameter gets no gradient at step 1: skipped, as the loop skips it
                p.grad = None if (k == 3 and step == 1) else torch.randn(p.shape, generator=generator)
            opt.step()
        runs[foreach] = [p.detach().clone() for p in params]
    for a, b in zip(runs[False], runs[True], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert not torch.equal(runs[True][0], start[0])


def test_a_step_leaves_its_scalars_on_the_device_for_the_loop_to_read_when_it_logs():
    """No float()/int() inside the step: each would wait for a GPU. The loop reads them per log row."""
    engine = _engine(_model(), precision="fp32")
    batch = _batch()
    moved = engine.to_device(batch)  # the labelled positions as slots, computed on the host
    assert len(moved["lm_positions"]) % 8 == 0
    assert int((moved["lm_targets"] != IGNORE_INDEX).sum()) == int((batch["labels"] != IGNORE_INDEX).sum())
    out = engine.step(batch)
    for value in (out.loss, out.lm_loss, out.lm_predictions, out.lm_correct, out.nsp_loss, out.nsp_correct,
                  engine.grad_norm):
        assert isinstance(value, torch.Tensor) and value.dim() == 0 and not value.requires_grad


def test_the_state_carries_the_cuda_generators_where_cuda_is_in_use(monkeypatch):
    """On a GPU, dropout draws from the CUDA generators; their state goes with the run's. Faked
    here (no GPU): the state dict carries what get_rng_state_all gives and hands it back."""
    from bert_ablation.training import engine as engine_module

    engine = _engine(_model(), precision="fp32")
    assert "cuda" not in engine.state_dict()["rng"]  # nothing to save without CUDA in use
    saved, restored = [torch.tensor([1, 2, 3], dtype=torch.uint8)], []
    monkeypatch.setattr(engine_module, "cuda_rng_in_use", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: saved)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    state = engine.state_dict()
    assert state["rng"]["cuda"] is saved
    _engine(_model(), precision="fp32").load_state_dict(state)
    assert restored == [saved]


def test_compile_is_an_option_off_by_default():
    assert schema_defaults("pretrain")["compile"] is False
    engine = _engine(_model(), precision="fp32")
    assert engine.model is engine.module


def test_prefetched_batches_are_the_batches_in_order_and_errors_surface_at_their_step():
    from bert_ablation.training.batching import Prefetcher

    def make(step):
        if step == 7:
            raise ValueError("step 7 is broken")
        return {"x": torch.full((2, 3), step)}

    got = [(step, batch["x"][0, 0].item()) for step, batch in Prefetcher(make, range(2, 6), depth=2)]
    assert got == [(2, 2), (3, 3), (4, 4), (5, 5)]
    seen = []
    with pytest.raises(ValueError, match="step 7"):
        for step, _ in Prefetcher(make, range(5, 10)):
            seen.append(step)
    assert seen == [5, 6]
    early = Prefetcher(make, range(100), depth=1)  # a loop that stops early ends the thread
    for step, _ in early:
        if step == 3:
            break
    early.close()
    assert not early.thread.is_alive()
