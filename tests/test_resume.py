"""Kill -9 a pretraining job in the middle of a Snakemake run, rerun, and get the numbers of an
uninterrupted run: the resumable state lives outside the declared outputs, which Snakemake
deletes before it reruns the job."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from test_workflow import MICRO, ROOT, snakemake

pytestmark = pytest.mark.integration

TARGET = "results/pretrain/bert_base/metrics.json"
LONGER = "pretrain: {steps: 300, state_every: 25, save_steps: [10]}\n"  # ~10 s of micro pretraining


def test_killed_pretraining_resumes_to_the_uninterrupted_result(tmp_path):
    longer = tmp_path / "longer.yaml"
    longer.write_text(LONGER)
    configs = (MICRO, longer)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    snakemake(straight, TARGET, configfiles=configs)

    # Build the inputs first, so that the kill lands inside the pretraining job.
    snakemake(killed, "results/instances/nsp_pairs/len64/shard-0", "results/tokenizer", configfiles=configs)
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(killed), "--cores", "2",
               TARGET, "--configfile", *map(str, configs)]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list((killed / "state/pretrain/bert_base").glob("*/state.pt")):
        assert run.poll() is None, "the run ended before it wrote a resumable state"
        assert time.monotonic() < deadline, "no resumable state after 120 s"
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)  # Snakemake and its job, as a node failure would
    run.wait()
    assert not (killed / TARGET).exists()

    snakemake(killed, "--unlock", configfiles=configs)  # what a user does after a kill: the lock stayed
    output = snakemake(killed, TARGET, configfiles=configs)  # the default profile sets rerun-incomplete
    assert "pretrain" in output
    a, b = (json.loads((d / TARGET).read_text()) for d in (straight, killed))
    assert b["resumed_from_step"] > 0 and a["resumed_from_step"] == 0
    for key in ("heldout_perplexity", "heldout_lm_accuracy", "heldout_nsp_accuracy", "final_train_loss", "tokens_seen"):
        assert b[key] == pytest.approx(a[key], rel=1e-6), key
    assert (killed / "results/pretrain/bert_base/checkpoints/step-10/model.safetensors").exists()
