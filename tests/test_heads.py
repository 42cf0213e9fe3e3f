"""Fine-tuning heads: feature-based layer combinations, the frozen encoder, tagging features."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import BertModel

from bert_ablation.data.features import classification_features, pad_batch, tagging_features
from bert_ablation.evaluation.metrics import ner_scores
from bert_ablation.facts.tasks import TASKS
from bert_ablation.models.heads import HEADS
from bert_ablation.models.masking import IGNORE_INDEX
from bert_ablation.models.modeling import FinetuneModel, bert_config

MODEL = {"layers": 4, "hidden": 32, "heads": 2, "intermediate": 64, "dropout": 0.1, "max_position_embeddings": 64}


@pytest.fixture()
def encoder(tokenizer):
    torch.manual_seed(0)
    return BertModel(bert_config(MODEL, len(tokenizer), tokenizer.pad_token_id, causal=False))


def inputs(tokenizer):
    enc = tokenizer(["the cat sat on the mat", "a big red car ran far"], padding=True, return_tensors="pt")
    return {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask")}


@pytest.mark.parametrize("name, expected", [
    ("features_embeddings", lambda hs, head: hs[0]),
    ("features_second_to_last", lambda hs, head: hs[3]),
    ("features_last", lambda hs, head: hs[4]),
    ("features_concat_last_four", lambda hs, head: torch.cat([hs[1], hs[2], hs[3], hs[4]], dim=-1)),
    ("features_sum_last_four", lambda hs, head: head.combine.scale * sum(
        w * h for w, h in zip(torch.softmax(head.combine.weights, 0), hs[1:5]))),
    ("features_sum_all", lambda hs, head: head.combine.scale * sum(
        w * h for w, h in zip(torch.softmax(head.combine.weights, 0), hs[1:]))),
])
def test_layer_combinations_equal_hand_computed_ones(tokenizer, encoder, name, expected):
    model = FinetuneModel(encoder, "tagging", 9, name, dropout=0.0).eval()
    head = model.head
    if hasattr(head.combine, "weights"):  # non-uniform weights, so a wrong layer set would show
        head.combine.weights.data = torch.arange(len(head.combine.weights), dtype=torch.float)
        head.combine.scale.data.fill_(1.7)
    batch = inputs(tokenizer)
    hidden_states = encoder(**batch, output_hidden_states=True).hidden_states
    assert len(hidden_states) == MODEL["layers"] + 1
    torch.testing.assert_close(head.combine(model._encode(**batch)), expected(hidden_states, head))
    width = {"features_concat_last_four": 4 * MODEL["hidden"]}.get(name, MODEL["hidden"])
    assert head.lstm.input_size == width and head.lstm.num_layers == 2 and head.lstm.bidirectional
    assert head.lstm.hidden_size == MODEL["hidden"]


def test_frozen_encoder_gets_no_gradient_and_no_dropout(tokenizer, encoder):
    model = FinetuneModel(encoder, "tagging", 9, "features_concat_last_four", dropout=0.1).train()
    assert not model.encoder.training and model.head.training
    batch = inputs(tokenizer)
    labels = torch.randint(0, 9, batch["input_ids"].shape)
    before = {n: p.clone() for n, p in model.encoder.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    model(**batch, labels=labels).loss.backward()
    optimizer.step()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.head.lstm.parameters())
    assert all(torch.equal(p, before[n]) for n, p in model.encoder.named_parameters())
    # eval-mode encoder: the same features twice, despite model.train()
    torch.testing.assert_close(model._encode(**batch)[-1], model._encode(**batch)[-1])


def test_fine_tuning_heads_train_the_encoder(tokenizer, encoder):
    model = FinetuneModel(encoder, "tagging", 9, "linear", dropout=0.1)
    batch = inputs(tokenizer)
    model(**batch, labels=torch.randint(0, 9, batch["input_ids"].shape)).loss.backward()
    assert model.encoder.embeddings.word_embeddings.weight.grad is not None


@pytest.mark.parametrize("head", ["linear", "bilstm"])
def test_regression_predicts_one_float_trained_with_mse(tokenizer, encoder, head):
    records = {"sentence1": ["the cat sat", "a big red car"], "sentence2": ["the cat ran", "a tree"],
               "label": [4.25, 0.5]}
    features = classification_features(TASKS["stsb"], records, tokenizer, 64)
    batch = pad_batch(features, [0, 1], tokenizer.pad_token_id, ("labels",))
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [4.25, 0.5]
    model = FinetuneModel(encoder, "regression", len(TASKS["stsb"].labels), head, dropout=0.0).eval()
    out = model(**batch)
    assert out.logits.shape == (2, 1) and out.logits.dtype == torch.float32
    torch.testing.assert_close(out.loss, ((out.logits[:, 0] - torch.tensor([4.25, 0.5])) ** 2).mean())
    out.loss.backward()
    assert model.output.weight.grad is not None and model.encoder.embeddings.word_embeddings.weight.grad is not None
    # class labels stay integers for the cross-entropy
    sst2 = classification_features(TASKS["sst2"], {"sentence": ["the cat", "a dog"], "label": [1, 0]}, tokenizer, 64)
    assert pad_batch(sst2, [0, 1], tokenizer.pad_token_id, ("labels",))["labels"].dtype == torch.long


def test_head_layer_requirements():
    assert HEADS["features_concat_last_four"].min_layers() == 4
    assert HEADS["features_second_to_last"].min_layers() == 2
    assert HEADS["features_embeddings"].min_layers() == 1 and HEADS["features_sum_all"].min_layers() == 1


def test_first_sub_token_carries_the_label(tokenizer):
    words = ["the", "summerhouse", "sat", "catdog"]  # two words that split into several pieces
    pieces = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]
    assert len(pieces[1]) > 1 and len(pieces[3]) > 1
    records = {"tokens": [words], "ner_tags": [[0, 1, 0, 5]], "document": [0]}
    features = tagging_features(records, tokenizer, max_seq_length=64, document_context=True)
    ids, labels, positions = features["input_ids"][0], features["labels"][0], features["word_positions"][0]
    assert ids == [tokenizer.cls_token_id, *[p for w in pieces for p in w], tokenizer.sep_token_id]
    expected = [IGNORE_INDEX]
    for word, tag in zip(pieces, [0, 1, 0, 5]):
        expected += [tag] + [IGNORE_INDEX] * (len(word) - 1)
    assert labels == expected + [IGNORE_INDEX]
    assert [ids[p] for p in positions] == [w[0] for w in pieces]


def test_document_context_surrounds_the_sentence_and_is_never_labelled(tokenizer):
    records = {"tokens": [["the", "cat"], ["a", "dog", "ran"], ["the", "mat"], ["big", "car"]],
               "ner_tags": [[0, 1], [0, 1, 0], [0, 5], [0, 3]], "document": [0, 0, 0, 1]}
    with_context = tagging_features(records, tokenizer, 64, document_context=True)
    alone = tagging_features(records, tokenizer, 64, document_context=False)
    decode = tokenizer.convert_ids_to_tokens
    assert decode(with_context["input_ids"][1]) == ["[CLS]", "the", "cat", "a", "dog", "ran", "the", "mat", "[SEP]"]
    assert decode(alone["input_ids"][1]) == ["[CLS]", "a", "dog", "ran", "[SEP]"]
    # the other document never leaks in; only the sentence's own words are labelled
    assert decode(with_context["input_ids"][3]) == ["[CLS]", "big", "car", "[SEP]"]
    assert [x for x in with_context["labels"][1] if x != IGNORE_INDEX] == [0, 1, 0]
    # a tight budget keeps the whole sentence and trims the context word by word, nearest first
    tight = tagging_features(records, tokenizer, 7, document_context=True)
    assert decode(tight["input_ids"][1]) == ["[CLS]", "cat", "a", "dog", "ran", "the", "[SEP]"]
    # a sentence longer than the budget loses its last words, which get no position
    cut = tagging_features(records, tokenizer, 4, document_context=True)
    assert cut["word_positions"][1] == [1, 2, None]


def test_tag_labels_pad_with_the_ignored_label(tokenizer):
    records = {"tokens": [["the"], ["the", "big", "cat"]], "ner_tags": [[1], [0, 0, 1]], "document": [0, 1]}
    features = tagging_features(records, tokenizer, 64, document_context=True)
    batch = pad_batch(features, [0, 1], tokenizer.pad_token_id, ("labels",))
    assert batch["labels"].tolist()[0] == [IGNORE_INDEX, 1, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]


def test_ner_scores_are_entity_level_conll_semantics():
    truth = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "O", "B-MISC"]]
    guess = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O", "B-MISC"]]
    # entities: PER right; LOC typed wrong; ORG boundary wrong; MISC right -> 2 of 4 both ways
    scores = ner_scores(guess, truth)
    assert scores["precision"] == pytest.approx(50.0) and scores["recall"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(50.0) and scores["accuracy"] == pytest.approx(75.0)
    # conlleval treats an I- after O as the start of an entity
    assert ner_scores([["O", "I-PER", "I-PER"]], [["O", "B-PER", "I-PER"]])["f1"] == pytest.approx(100.0)


def test_tagging_bilstm_reads_the_words_only(tokenizer, encoder):
    records = {"tokens": [["the", "catdog", "sat"], ["a", "summerhouse"]], "ner_tags": [[0, 1, 0], [0, 5]],
               "document": [0, 0]}
    features = tagging_features(records, tokenizer, 64, document_context=True)
    batch = pad_batch(features, [0, 1], tokenizer.pad_token_id, ("labels",))
    positions = [[p for p in row if p is not None] for row in features["word_positions"]]
    assert batch["word_index"].tolist() == [positions[0], positions[1] + [-1]]
    model = FinetuneModel(encoder, "tagging", 9, "features_last", dropout=0.0).eval()
    hidden_states = model._encode(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    placed = model.head.tokens(hidden_states, batch["attention_mask"], batch["word_index"])
    for r, words in enumerate(positions):
        by_hand, _ = model.head.lstm(hidden_states[-1][r, words][None])  # the sentence's words, nothing else
        torch.testing.assert_close(placed[r, words], by_hand[0])
        others = [t for t in range(placed.size(1)) if t not in words]
        assert placed[r, others].abs().sum() == 0


@pytest.mark.parametrize("name", ["features_second_to_last", "features_sum_all", "features_concat_last_four"])
def test_cached_features_give_the_same_outputs_as_running_the_encoder(tokenizer, encoder, name):
    from bert_ablation.training.finetune import cache_hidden_states

    records = {"tokens": [["the", "catdog", "sat"], ["a", "summerhouse"], ["big", "car"]],
               "ner_tags": [[0, 1, 0], [0, 5], [0, 3]], "document": [0, 0, 1]}
    features = tagging_features(records, tokenizer, 64, document_context=True)
    fresh = pad_batch(features, [0, 1, 2], tokenizer.pad_token_id, ("labels",))
    cache_hidden_states(encoder, name, features, tokenizer.pad_token_id, batch_size=2, device="cpu")
    kept = HEADS[name].cached_layers(encoder.config)
    # only the words' first sub-tokens are kept: the positions the tagger reads
    assert features["hidden_states"][1].shape == (len(kept), 2, MODEL["hidden"])
    cached = pad_batch(features, [0, 1, 2], tokenizer.pad_token_id, ("labels",))
    model = FinetuneModel(encoder, "tagging", 9, name, dropout=0.0).eval()
    with torch.no_grad():
        states = model._encode(fresh["input_ids"], fresh["attention_mask"], fresh["token_type_ids"])
        for r, words in enumerate(fresh["word_index"].tolist()):  # the features the head sees: fp16's tolerance
            words = [w for w in words if w >= 0]
            for j, k in enumerate(kept):
                torch.testing.assert_close(cached["hidden_states"][j, r, words], states[k][r, words],
                                           atol=2e-3, rtol=1e-3)
        mask = fresh["labels"] != IGNORE_INDEX
        torch.testing.assert_close(model(**cached).logits[mask], model(**fresh).logits[mask], atol=2e-3, rtol=1e-3)


def test_the_feature_cache_keeps_fp16_first_sub_tokens_on_disk_not_layers_x_tokens_in_memory(
        tokenizer, encoder, tmp_path):
    """The fault: fp32 (layers, T_i, H) tensors of every example in host memory. Now the memmap
    holds 2 bytes x layers x H per word (first sub-tokens only) on disk under the given folder,
    and host memory holds no per-example tensors."""
    import numpy as np

    from bert_ablation.data.features import FeatureCache
    from bert_ablation.training.finetune import cache_hidden_states

    records = {"tokens": [["the", "catdog", "sat", "on", "the", "summerhouse"]] * 40,
               "ner_tags": [[0] * 6] * 40, "document": list(range(40))}
    features = tagging_features(records, tokenizer, 64, document_context=True)
    tokens = sum(map(len, features["input_ids"]))
    words = sum(p is not None for row in features["word_positions"] for p in row)
    assert (words, tokens) == (240, sum(len(tokenizer(" ".join(r))["input_ids"]) for r in records["tokens"]))
    cache_hidden_states(encoder, "features_sum_all", features, tokenizer.pad_token_id, 8, "cpu", str(tmp_path / "tmp"))
    cache = features["hidden_states"]
    assert isinstance(cache, FeatureCache) and isinstance(cache.values, np.memmap)
    assert cache.values.dtype == np.float16 and cache.values.shape == (words, MODEL["layers"], MODEL["hidden"])
    on_disk = list((tmp_path / "tmp").rglob("hidden_states.f16"))
    assert len(on_disk) == 1 and on_disk[0].stat().st_size == words * MODEL["layers"] * MODEL["hidden"] * 2
    before = tokens * MODEL["layers"] * MODEL["hidden"] * 4  # the old cache's host bytes
    assert on_disk[0].stat().st_size * 2 < before  # here 240 words of 400+ tokens, half the bytes per value
    # host memory: the index only (offsets), whatever the layers x tokens
    assert cache.offsets.nbytes == 8 * (len(features["input_ids"]) + 1)
    del features["hidden_states"], cache
    import gc

    gc.collect()
    assert not list((tmp_path / "tmp").rglob("hidden_states.f16"))  # deleted with the cache


def test_head_modules_are_built_from_the_torch_free_head_kinds():
    from bert_ablation.facts.head_kinds import HEAD_KINDS

    assert list(HEADS) == list(HEAD_KINDS)
    for name, kind in HEAD_KINDS.items():
        assert HEADS[name].frozen == kind.frozen, name
        if kind.frozen:
            assert (HEADS[name].layers, HEADS[name].mode, HEADS[name].min_layers()) == (
                kind.layers, kind.mode, kind.min_layers())
    assert HEAD_KINDS["features_concat_last_four"].min_layers() == 4


def test_validating_and_planning_a_config_imports_no_torch():
    """Every `snakemake` start validates the config and plans the DAG: without torch and
    transformers that costs a fraction of a second, not their ~3 s import."""
    code = ("import sys, yaml; from bert_ablation import config as cfg, plan; "
            "c = cfg.validate(yaml.safe_load(open('config.yaml'))); plan.finetune_runs(c); plan.pretrain_runs(c); "
            "[plan.grid_points(c, t) for t in c['tasks']]; "
            "heavy = sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules); "
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_feature_based_job_leaves_no_cache_behind(tmp_path, tokenizer, encoder):
    """The caches live under the job's state folder: a stale one (an interrupted run) is cleared
    first, and the finished job leaves none."""
    import json

    from bert_ablation import config as cfg
    from bert_ablation import plan
    from bert_ablation.data.task_sources import build_task
    from bert_ablation.models.checkpoints import import_checkpoint
    from bert_ablation.training.finetune import finetune

    encoder.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    entry = {"hub": None, "revision": None, "path": str(tmp_path / "model")}
    import_checkpoint("m", entry, str(tmp_path / "ck"), str(tmp_path / "ck.json"), plan.checkpoint_hash(entry))
    config = cfg.validate({"tasks": {"conll2003": {"n_train": 16, "n_dev": 8, "max_seq_length": 64}},
                           "finetune": {"precision": "fp32", "restarts": 1,
                                        "grid": {"lr": [1e-3], "batch_size": [8], "epochs": [1]}}})
    build_task("conll2003", config["tasks"]["conll2003"], config["world"], str(tmp_path / "task"))
    state = tmp_path / "state"
    (state / "tmp" / "features-stale").mkdir(parents=True)
    (state / "tmp" / "features-stale" / "hidden_states.f16").write_bytes(b"\0" * 64)
    key = plan.grid_points(config, "conll2003")[0].key
    out = tmp_path / "ft" / "metrics.json"
    finetune(str(tmp_path / "ck" / "final"), str(tmp_path / "task"), "conll2003", "features_sum_all",
             plan.finetune_settings(config, "conll2003", "features_sum_all", key), [str(out)], threads=1,
             device="cpu", state_root=str(state))
    assert 0 <= json.loads(out.read_text())["dev"]["f1"] <= 100
    assert not list(state.rglob("*.f16"))
