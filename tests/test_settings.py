"""Typed settings: one field per schema key, built from the validated config, written back as the
same JSON document (so that hashes, params and caches do not move)."""
import dataclasses
from pathlib import Path

import pytest

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.schema import schema
from bert_ablation.settings import TASK_DATA_KEYS, AblationSpec, Masking, ModelShape, PretrainSettings, TaskSettings

ROOT = Path(__file__).resolve().parents[1]


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_each_settings_class_has_one_field_per_schema_key():
    definitions = schema()["definitions"]
    assert _fields(ModelShape) == set(definitions["model"]["properties"])
    assert _fields(Masking) == set(definitions["masking"]["properties"])
    # pretrain.seeds says how many runs there are: the plan's, not one run's
    assert _fields(PretrainSettings) == set(definitions["pretrain"]["properties"]) - {"seeds"}
    assert _fields(TaskSettings) == set(definitions["task"]["properties"]) - set(TASK_DATA_KEYS)


@pytest.mark.parametrize("preset", [None, "paper.yaml", "base.yaml", "own_corpus_example.yaml"])
def test_every_run_of_a_preset_types_and_writes_back_its_own_document(preset):
    config = cfg.load(str(ROOT / "config.yaml"), [str(ROOT / "presets" / preset)] if preset else [])
    for run in plan.pretrain_runs(config):
        document = plan.resolve_ablation(config, run)
        spec = plan.ablation_spec(config, run)
        assert spec.to_dict() == document
        assert plan.ablation_hash(spec.to_dict()) == plan.spec_hash(config, run)
        assert spec.pretrain.seeds() == {f"{k}_seed": document["pretrain"][f"{k}_seed"] if
                                         document["pretrain"][f"{k}_seed"] is not None else
                                         document["pretrain"]["seed"] for k in ("init", "data", "mask")}
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.model.layers = 1


def test_a_spec_with_an_unknown_key_is_refused_by_name():
    config = cfg.load(str(ROOT / "config.yaml"))
    document = plan.resolve_ablation(config, "bert_base")
    with pytest.raises(TypeError, match="layer_count"):
        AblationSpec.from_dict({**document, "model": {**document["model"], "layer_count": 3}})


def test_task_settings_take_the_schema_default_for_a_key_left_out():
    settings = TaskSettings.from_dict({"max_seq_length": 64, "n_train": 10})
    assert settings.max_seq_length == 64 and settings.doc_stride_meaning == "overlap"
    assert settings.max_context is False and settings.document_context is True
