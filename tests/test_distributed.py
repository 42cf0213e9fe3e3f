"""DDP pretraining under torchrun, on CPU (gloo): two ranks train the single-process model."""
import json
import os
import subprocess

import torch
from safetensors.torch import load_file

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.training.distributed import Distributed, torchrun_command
from tests.test_pretrain import prepared, run  # noqa: F401  (the fixture and the single-process run)


def test_shards_split_the_global_batch_without_overlap():
    batch = {"input_ids": torch.arange(10)[:, None], "labels": torch.arange(10)}
    shards = [Distributed(rank, 3, rank).shard(batch) for rank in range(3)]
    assert sorted(int(x) for s in shards for x in s["labels"]) == list(range(10))
    assert Distributed().shard(batch) is batch


def test_two_ranks_train_the_model_one_process_trains(prepared, tmp_path):  # noqa: F811
    config, root = prepared
    config = cfg.deep_merge(config, {"model": {"dropout": 0.0}})  # only the loss weighting may differ
    name = "no_nsp"  # MLM only: the NSP head gets no gradient, which DDP must be told
    single = run(config, root, name, tmp_path / "single", state="state-single")
    spec = plan.resolve_ablation(config, name)
    out = tmp_path / "ddp"
    kwargs = dict(spec=spec, instances_dir=str(root / spec["packing"]), tokenizer_dir=str(root / "tokenizer"),
                  checkpoints_dir=str(out / "checkpoints"), metrics_path=str(out / "metrics.json"),
                  log_path=str(out / "log.csv"), state_root=str(tmp_path / "state-ddp"), threads=1, device="cpu")
    args = tmp_path / "args.json"
    args.write_text(json.dumps(kwargs))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    # One retry: in 1 of ~10 local runs the two ranks stalled (cause not found yet; see the
    # closing note of the performance issue); a stall fails after 120 s instead of hanging CI.
    for attempt in range(2):
        process = subprocess.Popen(torchrun_command(2, "bert_ablation.training.pretrain", str(args)), text=True,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _, stderr = process.communicate(timeout=120)
            break
        except subprocess.TimeoutExpired:
            # SIGTERM, not SIGKILL: torchrun then stops its ranks (each in a session of its own, out
            # of reach of a process-group kill); a killed torchrun left a rank asleep in its collective.
            process.terminate()
            process.communicate(timeout=60)
            if attempt:
                raise
    assert process.returncode == 0, stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data_parallel_processes"] == 2
    assert metrics["tokens_seen"] == single["tokens_seen"]  # the same global batches
    ddp = load_file(out / "checkpoints/final/model.safetensors")
    one = load_file(tmp_path / "single/checkpoints/final/model.safetensors")
    key = "bert.encoder.layer.0.attention.self.query.weight"
    moved = (one[key] - ddp[key]).norm() / (one[key].norm() + 1e-12)
    assert moved < 0.05, moved  # same data, same steps: the runs agree up to per-rank loss weighting
    assert (out / "checkpoints/step-6").is_dir() and (out / "log.csv").read_text().count("\n") > 3


def test_a_rank_builds_only_its_rows_where_no_draw_spans_the_batch(prepared):  # noqa: F811
    """LTR (and static masking) has no random draw over the global batch: a rank reads and builds
    only its rows, and gets exactly the rows and labels of the global batch's shard; dynamic
    masking draws over the global batch, so a rank builds it and keeps its rows."""
    from types import SimpleNamespace

    from bert_ablation.models.masking import Masker, MaskingProcedure
    from bert_ablation.models.objectives import OBJECTIVES
    from bert_ablation.schema import schema_defaults
    from bert_ablation.training.instance_batches import InstanceBatches, step_generator
    from bert_ablation.training.pretrain import step_batch

    config, root = prepared
    from bert_ablation.data.tokenizer import load_tokenizer

    masker = Masker.for_tokenizer(MaskingProcedure.from_config(schema_defaults("masking")),
                                  load_tokenizer(str(root / "tokenizer")))
    for objective, packing in (("ltr", "contiguous"), ("mlm", "nsp_pairs")):
        batches = InstanceBatches(str(root / packing), "train", 8, 3, group_by_length=True)
        assert not batches.static_masks
        for step in (0, 5):
            whole = OBJECTIVES[objective].targets(batches.for_step(step), masker, step_generator(3, step))
            shards = []
            for rank in range(3):
                fake = SimpleNamespace(dist=Distributed(rank, 3, rank), train=SimpleNamespace(short_seq_steps=0), short=None,
                                       batches=batches, objective=OBJECTIVES[objective], masker=masker,
                                       seeds={"mask_seed": 3})
                shard, tokens = step_batch(fake, step)
                assert tokens == int(whole["attention_mask"].sum())  # every rank counts the global batch
                expected = Distributed(rank, 3, rank).shard(whole)
                assert shard.keys() == expected.keys()
                for key in ("input_ids", "labels", "attention_mask", "token_type_ids"):
                    assert torch.equal(shard[key], expected[key]), (objective, key)
                shards.append(shard)
            assert sum(len(s["input_ids"]) for s in shards) == 8


def test_ranks_share_the_jobs_threads():
    assert Distributed(0, 4, 0).threads(8) == 2
    assert Distributed(0, 4, 0).threads(2) == 1  # never none
    assert Distributed().threads(4) == 4 and Distributed().threads(None) is None
