"""Cluster submission on a real SLURM: a single-node cluster on this machine (tests/slurm/start.sh),
Snakemake with snakemake-executor-plugin-slurm from .venv-slurm and the test profile
tests/slurm/profile. A small table built through sbatch must equal, number for number, the same
table built locally.

Skipped when sbatch, the SLURM daemons or .venv-slurm are missing, unless
BERT_ABLATION_REQUIRE_SLURM=1 (CI), where that is a failure. Set it up with
    apt-get install -y slurm-wlm munge && bash tests/slurm/start.sh
    python -m venv --system-site-packages .venv-slurm && .venv-slurm/bin/pip install -r requirements-slurm.txt
"""
import functools
import json
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from test_workflow import MICRO, ROOT

pytestmark = [pytest.mark.slurm, pytest.mark.integration]

VENV_PYTHON = ROOT / ".venv-slurm" / "bin" / "python"
TEST_PROFILE = ROOT / "tests" / "slurm" / "profile"
SLURM_PROFILE = ROOT / "profiles" / "slurm"
REQUIRED = os.environ.get("BERT_ABLATION_REQUIRE_SLURM") == "1"
TARGET = "slurm_check"
# One column, two rows: SQuAD F1 varies between restarts and models on the micro config (the
# micro classification tasks sit at chance, so equal tables would prove little).
TABLE = {"tables": {TARGET: {"rows": {"BERT-Base": {"ablation": "bert_base"},
                                      "No pretraining": {"ablation": "no_pretraining"}},
                             "columns": {"SQuAD (F1)": {"task": "squad", "metric": "f1"}}}}}
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)")
SETUP = ("set it up with: apt-get install -y slurm-wlm munge && bash tests/slurm/start.sh && "
         "python -m venv --system-site-packages .venv-slurm && "
         ".venv-slurm/bin/pip install -r requirements-slurm.txt")


def _run(*command, timeout=30):
    try:
        return subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        return subprocess.CompletedProcess(command, 1, "", str(err))


@functools.cache
def missing_slurm() -> str | None:
    """Why the SLURM tests cannot run here, or None. Cheap checks first: without a controller,
    SLURM's commands (and the plugin's import, which calls them) retry for many seconds."""
    if not VENV_PYTHON.exists():
        return f"{VENV_PYTHON.relative_to(ROOT)} not found"
    if shutil.which("sbatch") is None:
        return "sbatch not found"
    if "is UP" not in _run("scontrol", "ping", timeout=15).stdout:
        return "no slurmctld answers `scontrol ping`"
    states = _run("sinfo", "--noheader", "--partition", "test", "--format", "%T").stdout.split()
    if not any(state.rstrip("*") in ("idle", "mixed", "allocated", "completing") for state in states):
        return f"SLURM partition 'test' has no usable node (states: {states or 'none'})"
    if _run(VENV_PYTHON, "-c", "import snakemake_executor_plugin_slurm").returncode != 0:
        return "snakemake-executor-plugin-slurm is not installed in .venv-slurm"
    return None


def require(reason: str | None) -> None:
    if reason is None:
        return
    message = f"SLURM test setup missing: {reason}; {SETUP}"
    if REQUIRED:
        pytest.fail(f"{message} (BERT_ABLATION_REQUIRE_SLURM=1)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same target and config through SLURM (.venv-slurm, test profile) and locally (this
    environment, --cores 2). The local run goes on in the background meanwhile: the SLURM run
    mostly waits between status checks."""
    require(missing_slurm())
    root = tmp_path_factory.mktemp("slurm")
    configfile = root / "table.yaml"
    configfile.write_text(json.dumps(TABLE))  # JSON is YAML
    local, cluster = root / "local", root / "cluster"
    local.mkdir()
    cluster.mkdir()
    local_command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(local),
                     "--cores", "2", TARGET, "--configfile", str(MICRO), str(configfile)]
    with open(root / "local.log", "w") as local_log:
        background = subprocess.Popen(local_command, stdout=local_log, stderr=subprocess.STDOUT)
        try:
            result = subprocess.run(
                [str(VENV_PYTHON), "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(cluster),
                 "--profile", str(TEST_PROFILE), TARGET, "--configfile", str(MICRO), str(configfile)],
                capture_output=True, text=True, timeout=900)
        finally:
            local_rc = background.wait(timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:] + "".join(
        f"\n--- {log}\n" + log.read_text()[-1500:] for log in (cluster / ".snakemake/slurm_logs").rglob("*.log"))
    assert local_rc == 0, (root / "local.log").read_text()[-4000:]
    return local, cluster, output


def test_jobs_are_submitted_with_sbatch_and_known_to_slurm(runs):
    _, cluster, output = runs
    submitted = SUBMITTED.findall(output)
    # One sbatch per data-stage job (one corpus shard on the micro config), per pretraining run
    # (each of the table's two ablations at every pretraining seed), and one for both fine-tuning
    # jobs (group-components); the table and the target run on the submit host. The plugin's log
    # folder names the rule or group (rule_<rule>/, group_<group>_<rules>/).
    seeds = yaml.safe_load(MICRO.read_text())["world_recipe"]["pretrain"]["seeds"]
    folders = sorted(log.split("slurm_logs/")[1].split("/")[0] for _, log in submitted)
    assert folders == sorted(["group_finetune_finetune", "rule_corpus", "rule_instances", "rule_tasks",
                              "rule_tokenizer", "rule_word_counts"] + ["rule_pretrain"] * 2 * seeds), output[-3000:]
    assert "localrule table:" in output and f"localrule {TARGET}:" in output
    ids = [job_id for job_id, _ in submitted]
    listed = _run("squeue", "--noheader", "--states", "all", "--jobs", ",".join(ids), "--format", "%i %T").stdout
    assert {line.split()[0]: line.split()[1] for line in listed.splitlines()} == dict.fromkeys(ids, "COMPLETED")
    for job_id in ids:
        job = _run("scontrol", "show", "job", job_id).stdout
        assert "JobState=COMPLETED" in job and "Partition=test" in job, job
        assert f"WorkDir={cluster}" in job, job


def test_the_table_built_on_slurm_equals_the_local_one(runs):
    local, cluster, _ = runs
    csv = f"results/tables/{TARGET}.csv"
    assert (cluster / csv).read_text() == (local / csv).read_text()
    table = pd.read_csv(cluster / csv).set_index("row")
    assert len(table) == 2 and (table["n"] == 2).all()
    assert table.loc["BERT-Base", "mean"] != table.loc["No pretraining", "mean"]  # not a trivial match
    for run in ("bert_base", "no_pretraining"):
        a, b = (json.loads((root / f"results/pretrain/{run}/metrics.json").read_text()) for root in (local, cluster))
        assert a["heldout_perplexity"] == b["heldout_perplexity"]


def test_the_slurm_profile_retries_with_growing_requests():
    profile = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["retries"] == 2
    assert profile["group-components"] == {"finetune": 20}
    assert {"slurm_partition", "slurm_account"} <= set(profile["default-resources"])
    resources = profile["set-resources"]
    assert resources["pretrain"]["gpu"] >= 1 and resources["finetune"]["gpu"] >= 1
    for rule, names in (("instances", ("mem_mb",)), ("tasks", ("mem_mb", "runtime"))):
        for name in names:
            first, second = (eval(str(resources[rule][name]), {"attempt": attempt}) for attempt in (1, 2))
            assert second > first > 0, (rule, name)
    # pretrain and finetune size theirs from the plan, the corpus data stages their runtime
    # (rules/common.smk, x attempt): a constant here would override that (tests/test_estimate.py
    # checks the requests)
    for rule in ("pretrain", "finetune"):
        assert not {"mem_mb", "runtime"} & set(resources[rule]), rule
    for rule in ("corpus", "word_counts", "tokenizer", "instances"):
        assert "runtime" not in resources[rule], rule
    for rule in ("pretrain.smk", "finetune.smk"):
        text = (ROOT / "rules" / rule).read_text()
        assert re.search(r"mem_mb=\w+_request\(\"mem_mb\"\)", text) and re.search(r"runtime=\w+_request\(\"runtime\"\)", text)
    for rule in ("corpus.smk", "tokenizer.smk", "instances.smk"):
        assert re.search(r"runtime=data_request\(\"\w+\"\)", (ROOT / "rules" / rule).read_text()), rule
    # partitions and accounts belong to profiles, never to rules or the default profile
    for path in [*(ROOT / "rules").glob("*.smk"), ROOT / "Snakefile", ROOT / "profiles/default/config.yaml"]:
        assert "slurm_partition" not in path.read_text() and "slurm_account" not in path.read_text(), path


def test_snakemake_accepts_the_slurm_profile(tmp_path):
    """A dry run with the plugin: the profile parses, and its requests reach the jobs (no job is
    submitted; SLURM is required only because the plugin's start is slow without it)."""
    require(missing_slurm())
    result = subprocess.run(
        [str(VENV_PYTHON), "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
         "--profile", str(SLURM_PROFILE), "-n", "results/pretrain/bert_base/metrics.json",
         "--configfile", str(MICRO)], capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    pretrain = output.split("rule pretrain:")[1]
    resources = dict(re.findall(r"(\w+)=([^,\s]+)", pretrain.split("resources:")[1].splitlines()[0]))
    from bert_ablation import config as cfg
    from bert_ablation.estimate import pretrain_request

    asked = pretrain_request(cfg.load(str(ROOT / "config.yaml"), [str(MICRO)]), "bert_base")  # attempt 1
    assert (int(resources["mem_mb"]), int(resources["runtime"])) == (asked["mem_mb"], asked["runtime"])
    assert resources["gpu"] == "1"
    assert resources["slurm_partition"] == "gpu" and resources["slurm_account"] == "my_account"
    assert "threads: 4" in pretrain.split("resources:")[0]
