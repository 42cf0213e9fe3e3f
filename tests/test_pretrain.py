"""Pretraining end to end on a small text corpus: determinism, resume, outputs."""
import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.data.corpus import CorpusError, build_corpus, read_text_file
from bert_ablation.data.instances import build_instances
from bert_ablation.data.tokenizer import build_tokenizer, count_words
from bert_ablation.training.pretrain import pretrain


@pytest.fixture(scope="module")
def prepared(text_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    config = cfg.validate({
        "corpus": {"source": "text", "text": {"paths": [str(text_corpus)]}},
        "tokenizer": {"vocab_size": 128, "min_frequency": 1},
        "instances": {"max_seq_length": 48},
        "model": {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "max_position_embeddings": 48},
        "pretrain": {"steps": 12, "batch_size": 8, "warmup_steps": 2, "state_every": 4, "log_every": 2,
                     "save_steps": [6], "eval_batches": 2},
        "tables": {},
    })
    build_corpus(config, root / "corpus")
    count_words(str(root / "corpus"), str(root / "counts.tsv"), lowercase=True)
    build_tokenizer([str(root / "counts.tsv")], str(root / "tokenizer"), config["tokenizer"])
    for packing in ("nsp_pairs", "contiguous"):
        build_instances(str(root / "corpus"), str(root / "tokenizer"), packing, config["instances"], str(root / packing))
    return config, root


def run(config, root, name, out, stop_after=None, state="state"):
    spec = plan.resolve_ablation(config, name)
    return pretrain(spec, str(root / spec["packing"]), str(root / "tokenizer"), str(out / "checkpoints"),
                    str(out / "metrics.json"), str(out / "log.csv"), str(root / state / name), threads=1,
                    device="cpu", stop_after=stop_after)


def test_interrupted_run_resumes_to_the_same_model(prepared, tmp_path):
    config, root = prepared
    straight = run(config, root, "bert_base", tmp_path / "straight", state="state-a")
    assert run(config, root, "bert_base", tmp_path / "resumed", stop_after=5, state="state-b") is None
    assert not (tmp_path / "resumed" / "metrics.json").exists()  # nothing published by a killed run
    resumed = run(config, root, "bert_base", tmp_path / "resumed", state="state-b")
    assert resumed["resumed_from_step"] == 4  # last state written every 4 steps
    assert resumed["heldout_perplexity"] == pytest.approx(straight["heldout_perplexity"], rel=1e-6)
    assert resumed["tokens_seen"] == straight["tokens_seen"] > 12 * 8
    a = load_file(tmp_path / "straight/checkpoints/final/model.safetensors")
    b = load_file(tmp_path / "resumed/checkpoints/final/model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)
    assert (tmp_path / "resumed/checkpoints/step-6/config.json").exists()
    # the killed run logged step 6 after its last state (step 4); the log has it once
    steps = [int(line.split(",")[0]) for line in (tmp_path / "resumed/log.csv").read_text().splitlines()[1:]]
    assert steps == [2, 4, 6, 8, 10, 12]
    spec = json.loads((tmp_path / "straight/checkpoints/final/ablation.json").read_text())
    assert spec["step"] == 12 and spec["spec_hash"] == straight["spec_hash"]
    assert spec["health"] == straight["health"]["status"]  # fine-tuning reads it (no retries of a run not learnt)


def test_tokenizer_loads_as_a_bert_tokenizer(prepared):
    from transformers import BertTokenizerFast

    _, root = prepared
    tokenizer = BertTokenizerFast.from_pretrained(root / "tokenizer")
    assert tokenizer.do_lower_case and 64 < len(tokenizer) <= 128
    assert tokenizer("the cat", "a dog")["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]


def test_objectives_report_their_own_perplexity(prepared, tmp_path):
    config, root = prepared
    ltr = run(config, root, "ltr", tmp_path / "ltr")
    mlm = run(config, root, "no_nsp", tmp_path / "mlm")
    assert ltr["heldout_perplexity_kind"] == "next-token" and mlm["heldout_perplexity_kind"] == "masked-LM"
    assert "heldout_nsp_accuracy" not in mlm
    assert 1 < ltr["heldout_perplexity"] < 128 and 1 < mlm["heldout_perplexity"] < 128


def test_corpus_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"A fine line.\nAnother \xff line.\n")
    with pytest.raises(CorpusError, match=r"bad.txt:2: not valid UTF-8"):
        list(read_text_file(bad))
    config = cfg.validate({"corpus": {"source": "text", "text": {"paths": [str(tmp_path / "missing")]}}})
    with pytest.raises(CorpusError, match="does not exist"):
        build_corpus(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zero_steps_saves_the_random_initialisation(prepared, tmp_path):
    """Table 5's "No pretraining" row: steps 0 publishes the seeded initial model, untrained."""
    config, root = prepared
    config = cfg.deep_merge(config, {"ablations": {"none": {"objective": "mlm_nsp", "pretrain": {
        "steps": 0, "warmup_steps": 0, "save_steps": []}}}})
    metrics = run(config, root, "none", tmp_path / "none")
    assert metrics["steps"] == 0 and metrics["tokens_seen"] == 0 and metrics["final_train_loss"] is None
    # an untrained masked LM is about as perplexed as a uniform guess over the vocabulary
    assert 0.5 * 128 < metrics["heldout_perplexity"] < 2 * 128
    assert metrics["health"]["status"] == "exempt"  # far above its unigram baseline, by design
    run(config, root, "none", tmp_path / "again", state="state-again")
    a = load_file(tmp_path / "none/checkpoints/final/model.safetensors")
    b = load_file(tmp_path / "again/checkpoints/final/model.safetensors")
    assert all(torch.equal(a[key], b[key]) for key in a)  # the same seed gives the same init
    header = "step,elapsed_s,loss,lm_loss,nsp_loss,lr,tokens,tokens_per_second,grad_norm"
    assert (tmp_path / "none/log.csv").read_text().strip() == header


def test_short_sequence_phase_trains_on_the_short_instances_first(prepared, tmp_path):
    config, root = prepared
    short = root / "short" / "nsp_pairs"
    build_instances(str(root / "corpus"), str(root / "tokenizer"), "nsp_pairs",
                    {**config["instances"], "max_seq_length": 16}, str(short))
    spec = plan.resolve_ablation(config, "bert_base")
    spec["pretrain"].update(short_seq_steps=6, short_seq_length=16)
    metrics = pretrain(spec, str(root / "nsp_pairs"), str(root / "tokenizer"), str(tmp_path / "checkpoints"),
                       str(tmp_path / "metrics.json"), str(tmp_path / "log.csv"), str(tmp_path / "state"), threads=1,
                       device="cpu", short_instances_dir=str(short))
    tokens = [int(t) for t in pd.read_csv(tmp_path / "log.csv")["tokens"]]
    per_step = [(b - a) / 2 for a, b in zip([0, *tokens], tokens)]  # a log row every 2 steps
    assert max(per_step[:3]) <= 8 * 16 < min(per_step[3:])  # steps 1-6 at length <= 16, then longer rows
    assert metrics["steps"] == 12 and metrics["tokens_seen"] == tokens[-1]
    # what a rehearsal extrapolates from: each step's time (the phases apart) and the peak RSS
    assert len(metrics["step_seconds"]) == 12 and all(s > 0 for s in metrics["step_seconds"])
    assert metrics["peak_rss_mb"] > 100
    with pytest.raises(ValueError, match="short_seq_steps=6 needs the instances of length 16"):
        pretrain(spec, str(root / "nsp_pairs"), str(root / "tokenizer"), str(tmp_path / "c2"), str(tmp_path / "m2.json"),
                 str(tmp_path / "l2.csv"), str(tmp_path / "state2"), threads=1, device="cpu")


def test_a_corpus_too_small_is_reported_before_training(prepared, tmp_path):
    config, root = prepared
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n   \n")
    with pytest.raises(CorpusError, match="corpus source 'text' produced no documents; check corpus.text"):
        build_corpus(cfg.validate({"corpus": {"source": "text", "text": {"paths": [str(empty)]}}}), tmp_path / "out")
    spec = plan.resolve_ablation(config, "bert_base")
    spec["pretrain"]["batch_size"] = 100_000
    with pytest.raises(ValueError, match=r"nsp_pairs/train: \d+ instances, fewer than one batch of 100000; use a larger "
                                         r"corpus, a larger instances.dupe_factor or a smaller batch_size"):
        pretrain(spec, str(root / "nsp_pairs"), str(root / "tokenizer"), str(tmp_path / "c"), str(tmp_path / "m.json"),
                 str(tmp_path / "l.csv"), str(tmp_path / "state"), threads=1, device="cpu")
    assert not (tmp_path / "c").exists() and not (tmp_path / "m.json").exists()


def test_seeds_vary_one_source_of_randomness_at_a_time(prepared, tmp_path):
    """init_seed changes the initial weights only; data_seed and mask_seed leave them alone."""
    config, root = prepared
    base = cfg.deep_merge(config, {"ablations": {"none": {"objective": "mlm_nsp", "pretrain": {
        "steps": 0, "warmup_steps": 0, "save_steps": []}}}})

    def init_weights(name, **seeds):
        changed = cfg.deep_merge(base, {"ablations": {"none": {"pretrain": seeds}}})
        metrics = run(changed, root, "none", tmp_path / name, state=f"state-{name}")
        assert metrics["seeds"] == {"init_seed": seeds.get("init_seed", 0), "data_seed": seeds.get("data_seed", 0),
                                    "mask_seed": seeds.get("mask_seed", 0)}
        return load_file(tmp_path / name / "checkpoints/final/model.safetensors")

    reference = init_weights("ref")
    for name, seeds, same in (("init", {"init_seed": 5}, False), ("data", {"data_seed": 5}, True),
                              ("mask", {"mask_seed": 5}, True)):
        weights = init_weights(name, **seeds)
        assert all(torch.equal(reference[k], weights[k]) for k in reference) == same, name
    # over training steps, the data and mask seeds change the run and the init seed is held
    trained = {}
    for name, seeds in (("t-ref", {}), ("t-mask", {"mask_seed": 5})):
        changed = cfg.deep_merge(config, {"pretrain": seeds})
        trained[name] = run(changed, root, "bert_base", tmp_path / name, state=f"state-{name}")["final_train_loss"]
    assert trained["t-ref"] != trained["t-mask"]


def test_metrics_record_the_recipe_optimizer_and_input_digests(prepared, tmp_path):
    import hashlib

    config, root = prepared
    metrics = run(config, root, "ltr", tmp_path / "ltr", state="state-digests")
    tokenizer_bytes = (root / "tokenizer" / "tokenizer.json").read_bytes()
    assert metrics["inputs"]["tokenizer"] == hashlib.sha256(tokenizer_bytes).hexdigest()
    files = sorted((root / "contiguous" / "train").glob("*.npy"))
    listed = "".join(f"contiguous/train/{f.name}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n" for f in files)
    assert metrics["inputs"]["train_instances"] == hashlib.sha256(listed.encode()).hexdigest()
    assert set(metrics["inputs"]) == {"tokenizer", "train_instances", "heldout_instances"}
    assert metrics["optimizer"]["bias_correction"] is True and metrics["optimizer"]["name"] == "AdamW"
    assert metrics["recipe"]["architecture"] == "bert" and metrics["recipe"]["lr"] == config["pretrain"]["lr"]
    # The unigram baseline scores the held-out positions the LTR loss scores (every next token)
    # by training frequency; its guess, the most frequent training target, is right this often:
    from collections import Counter

    from bert_ablation.training.instance_batches import InstanceBatches

    def next_tokens(batch):
        return [t for ids, n in zip(batch["input_ids"].tolist(), batch["attention_mask"].sum(1).tolist())
                for t in ids[1:n]]

    train = InstanceBatches(str(root / "contiguous"), "train", 8, 0)
    frequent = Counter(t for k in range(train.steps_per_epoch) for t in next_tokens(train.for_step(k))).most_common(1)
    heldout = [t for batch in InstanceBatches(str(root / "contiguous"), "heldout", 8, 0).in_order(2)
               for t in next_tokens(batch)]
    assert metrics["heldout_predictions"] == len(heldout)
    assert metrics["unigram_accuracy"] == pytest.approx(heldout.count(frequent[0][0]) / len(heldout))
    assert 1 < metrics["unigram_perplexity"] < 128 and 0 <= metrics["last_layer_cosine"] <= 1
    assert metrics["health"]["unigram_perplexity"] == metrics["unigram_perplexity"]
