"""benchmarks/finetune_probe.py's encoder changes (docs/own_corpus.md): each does what it says and
nothing else."""
import importlib.util
from pathlib import Path

import torch
from transformers.models.bert.modeling_bert import BertPooler

from bert_ablation.models.modeling import ARCHITECTURES, pretraining_model

PROBE = Path(__file__).resolve().parents[1] / "benchmarks" / "finetune_probe.py"
SHAPE = {"architecture": "roformer", "layers": 3, "hidden": 16, "heads": 2, "intermediate": 32, "dropout": 0.0,
         "max_position_embeddings": 32}


def _probe():
    spec = importlib.util.spec_from_file_location("finetune_probe", PROBE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _encoder():
    torch.manual_seed(0)
    encoder = ARCHITECTURES["roformer"].encoder_of(pretraining_model(SHAPE, 50, 0, causal=False))
    encoder.pooler = BertPooler(encoder.config)
    with torch.no_grad():  # as after pretraining: far from the initialisation, LayerNorms included
        for parameter in encoder.parameters():
            parameter.add_(1.0)
    return encoder


def _state(encoder) -> dict:
    return {k: v.clone() for k, v in encoder.state_dict().items()}


def test_reinit_restores_the_pooler_and_the_top_layers_only():
    encoder = _encoder()
    before = _state(encoder)
    _probe().adjust_encoder(encoder, reinit_layers=1)
    after = encoder.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    reset = {k for k in before if k.startswith(("pooler.", "encoder.layer.2."))}  # the pooler, the top of 3 layers
    assert changed == reset
    top = encoder.encoder.layer[2]
    assert torch.equal(top.output.LayerNorm.weight, torch.ones(16)) and not top.output.dense.bias.any()
    assert top.output.dense.weight.std() < 0.05  # initializer_range 0.02, not the shifted weights
    # K = 0: the pooler alone
    encoder = _encoder()
    before = _state(encoder)
    _probe().adjust_encoder(encoder, reinit_layers=0)
    assert {k for k in before if not torch.equal(before[k], encoder.state_dict()[k])} == {"pooler.dense.weight",
                                                                                           "pooler.dense.bias"}


def test_centering_removes_the_shared_direction_and_dropout_reaches_every_module():
    encoder = _encoder()
    before = encoder.get_input_embeddings().weight.detach().clone()
    _probe().adjust_encoder(encoder, dropout=0.1, center=True)
    words = encoder.get_input_embeddings().weight.detach()
    assert words.mean(0).abs().max() < 1e-6
    assert torch.allclose(words, before - before.mean(0, keepdim=True))
    dropouts = [m.p for m in encoder.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and set(dropouts) == {0.1}


def test_reinit_attention_resets_only_the_queries_and_keys():
    encoder = _encoder()
    before = _state(encoder)
    _probe().adjust_encoder(encoder, reinit_attention=True)
    after = encoder.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f"encoder.layer.{i}.attention.self.{p}.{w}" for i in range(3) for p in ("query", "key")
                       for w in ("weight", "bias")}
    query = encoder.encoder.layer[0].attention.self.query
    assert query.weight.std() < 0.05 and not query.bias.any()
