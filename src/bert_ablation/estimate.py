"""What a configuration will cost before it runs: tokens, FLOPs and GPU-hours per pretraining
run, and the disk the data stages and checkpoints take (``snakemake estimate``).

FLOPs per trained token (forward + backward = 3x forward; the model is ``flops.py``'s, which
the throughput benchmark's MFU shares):
  6 x N            N = non-embedding parameters (the encoder layers, exact for our models)
  + 12 x L x H x T attention scores and values at sequence length T
  + 6 x H x V x p  the vocabulary projection, at the share p of positions that are scored
                   (the masking probability for masked-LM, every position for LTR)
Sequences are counted at their full length, as the paper's budget is (packed instances are).
GPU-hours = FLOPs / (MFU x peak), at ``estimate.mfu`` of ``estimate.peak_tflops``. Nothing here
imports torch: the estimate is instant, whatever the preset.

Fine-tuning: per job (one grid point, all its restarts) restarts x epochs x (training examples x
length x (6 N + 12 L H T) + evaluated examples x length x (2 N + 4 L H T)), plus the task head's
BiLSTM where it has one; a feature-based head runs the frozen encoder forward once per example
(its cached features) and trains only its BiLSTM. Examples count at the task's max_seq_length
(an upper bound: batches are trimmed to their longest row). Task sizes: the built-in world's
n_train/n_dev x world.scale; a hub or local task, its standard dataset's (TASK_SIZES).
GPU-hours at ``estimate.finetune_mfu`` (small batches of short sequences keep it low).

Cluster requests (rules' ``resources:``): each pretraining and fine-tuning job asks for its own
estimated time x ``estimate.request_margin`` (at least ``estimate.min_runtime_minutes``) and its
host memory (``pretrain_request``, ``finetune_request``), times Snakemake's ``attempt``; each
corpus data-stage job for its share of the corpus at the stages' measured rates (``data_request``).
"""

from __future__ import annotations

import logging
import math
import os

from . import plan
from .data.corpus import CorpusError, input_files
from .facts.head_kinds import HEAD_KINDS
from .facts.tasks import TASKS
from .flops import TRAINED, dense_forward, token_forward
from .settings import AblationSpec, ModelShape
from .storage import atomic_file, write_json

log = logging.getLogger(__name__)

BYTES_PER_TOKEN = 4.4  # raw English text per WordPiece token at a 30k vocabulary (~1.3 tokens a word)
ROW_BYTES = 4 * 4 + 1  # an instance's lengths, segment_b, doc_a, doc_b (int32) and NSP label (int8)
# (training examples, evaluated examples) of each task's standard dataset, the ones the paper used
# (the hub's copies): GLUE's train and dev splits (MNLI: dev matched + mismatched), SQuAD v1.1's
# questions (a window each: at 384 tokens ~1% of contexts need a second), CoNLL-2003's sentences
# (dev testa + test testb). A hub or local task is estimated at these sizes before it is read.
TASK_SIZES = {
    "mnli": (392_702, 9_815 + 9_832),
    "qnli": (104_743, 5_463),
    "mrpc": (3_668, 408),
    "sst2": (67_349, 872),
    "cola": (8_551, 1_043),
    "stsb": (5_749, 1_500),
    "qqp": (363_846, 40_430),
    "rte": (2_490, 277),
    "squad": (87_599, 10_570),
    "conll2003": (14_041, 3_250 + 3_453),
}
BASE_PROCESS_BYTES = 3e9  # Python, torch, CUDA's host-side context, tokenizer: measured jobs sit at 1-3 GB
STATE_BYTES_PER_PARAMETER = 32  # fp32 weights, gradients, Adam's two moments (16), and a copy being saved
INSTANCE_BYTES = 17  # pretraining's host memory per stored instance (README: 12-17 bytes, measured)


def layer_parameters(hidden: int, intermediate: int) -> int:
    """One post-LN encoder layer: Q, K, V, O projections, the feed-forward pair, two LayerNorms."""
    return 4 * (hidden * hidden + hidden) + 2 * hidden * intermediate + intermediate + hidden + 4 * hidden


def non_embedding_parameters(model: ModelShape | dict) -> int:
    model = ModelShape.of(model)
    return model.layers * layer_parameters(model.hidden, model.intermediate)


def total_parameters(model: ModelShape | dict, vocab_size: int) -> int:
    """Encoder layers + embeddings (words, positions, segments), the MLM transform and the pooler."""
    model = ModelShape.of(model)
    return (non_embedding_parameters(model) + (vocab_size + model.max_position_embeddings + 2) * model.hidden
            + 2 * model.hidden * model.hidden)


def run_estimate(spec: AblationSpec, vocab_size: int, max_seq_length: int) -> dict:
    train, model = spec.pretrain, spec.model
    short = min(train.short_seq_steps, train.steps)  # a run of 0 steps has no phases
    phases = [(short, train.short_seq_length), (train.steps - short, max_seq_length)]
    scored = 1.0 if spec.objective == "ltr" else spec.masking.probability
    n = non_embedding_parameters(model)
    tokens = flops = 0
    for steps, length in phases:
        phase_tokens = steps * train.batch_size * length
        per_token = (TRAINED * token_forward(n, model.layers, model.hidden, length)
                     + TRAINED * dense_forward(model.hidden, vocab_size) * scored)
        tokens += phase_tokens
        flops += phase_tokens * per_token
    return {"ablation": spec.name, "steps": train.steps, "batch_size": train.batch_size,
            "non_embedding_parameters": n, "tokens": tokens, "flops": float(flops)}


def corpus_text_bytes(config: dict) -> tuple[float | None, str]:
    """The corpus's raw text size and where that number comes from."""
    given = config["estimate"]["corpus_text_gb"]
    if given is not None:
        return given * 1e9, "estimate.corpus_text_gb"
    source = config["corpus"]["source"]
    if source in ("text", "jsonl"):
        return float(sum(os.path.getsize(p) for p in input_files(config))), "the local files"
    if source == "synthetic":
        return 2e6 * config["world"]["scale"], "the generated world (~2 MB at scale 1)"
    return None, "unknown for hub datasets until downloaded: set estimate.corpus_text_gb"


def estimate(config: dict, names: list[str] | None = None) -> dict:
    """The estimate of what the given tables and figures need (None: all the config defines)."""
    settings = config["estimate"]
    vocab = config["tokenizer"]["vocab_size"]
    runs = []
    for name in plan.pretrain_runs(config, names):
        spec = plan.ablation_spec(config, name)
        run = run_estimate(spec, vocab, config["instances"]["max_seq_length"])
        run["gpu_hours"] = run["flops"] / (settings["mfu"] * settings["peak_tflops"] * 1e12) / 3600
        # weights + Adam's two moments in the resumable state; weights alone per kept checkpoint
        params = total_parameters(spec.model, vocab)
        run["checkpoint_gb"] = params * 4 * (1 + len(spec.pretrain.save_steps)) / 1e9
        run["state_gb"] = params * 4 * 3 / 1e9
        runs.append(run)
    text_bytes, text_from = corpus_text_bytes(config)
    disk = {"corpus_text_gb": None if text_bytes is None else text_bytes / 1e9, "corpus_text_from": text_from}
    if text_bytes is not None:
        tokens = text_bytes / BYTES_PER_TOKEN
        specs = [plan.ablation_spec(config, name) for name in plan.pretrain_runs(config, names)]
        builds = {(s.packing, config["instances"]["max_seq_length"]) for s in specs} | {
            (s.packing, s.pretrain.short_seq_length) for s in specs if s.pretrain.short_seq_steps}
        token_bytes = 2 if vocab <= 1 << 16 else 4
        instances = 0.0
        for _, length in builds:  # fixed-width rows, most of them full (short_seq_prob shortens a few)
            rows = tokens * config["instances"]["dupe_factor"] / (length * 0.9)
            instances += rows * (length * token_bytes + ROW_BYTES)
        disk.update(corpus_arrow_gb=text_bytes * 1.1 / 1e9, instances_gb=instances / 1e9,
                    instance_builds=sorted(f"{p}/len{n}" for p, n in builds))
    disk["checkpoints_gb"] = sum(r["checkpoint_gb"] for r in runs)
    disk["state_gb"] = sum(r["state_gb"] for r in runs)
    finetune = finetune_estimate(config, names)
    return {
        "assumption": f"{settings['mfu']:.0%} MFU of {settings['peak_tflops']:g} TFLOP/s ({settings['device']})",
        "finetune_assumption": f"{settings['finetune_mfu']:.0%} MFU",
        "runs": runs,
        "total": {"runs": sum(1 for r in runs if r["tokens"]), "tokens": sum(r["tokens"] for r in runs),
                  "flops": sum(r["flops"] for r in runs), "gpu_hours": sum(r["gpu_hours"] for r in runs)},
        "disk": disk,
        "finetune": finetune,
    }


# --- fine-tuning -----------------------------------------------------------------------------

def task_examples(config: dict, task: str) -> tuple[int, int] | None:
    """(training, evaluated) examples of a task: the built-in world's own sizes, else its standard
    dataset's (TASK_SIZES); None for a task with no standard dataset (ner)."""
    settings = config["tasks"][task]
    if settings["source"] == "world":
        scale = config["world"]["scale"]
        return (round(settings["n_train"] * scale),
                round(settings["n_dev"] * scale) * len(TASKS[task].eval_splits))
    return TASK_SIZES.get(task)


def checkpoint_model(entry: dict) -> dict:
    """The shape of an imported checkpoint, from its name: the miniatures' L-<n>_H-<n>_A-<n>
    (Turc et al. 2019), "large" (24/1024/16), else BERT-Base's 12/768/12."""
    import re

    name = entry.get("hub") or entry.get("path") or ""
    match = re.search(r"L-(\d+)_H-(\d+)_A-(\d+)", name)
    layers, hidden, heads = (map(int, match.groups()) if match else
                             (24, 1024, 16) if "large" in name.lower() else (12, 768, 12))
    return {"layers": layers, "hidden": hidden, "heads": heads, "intermediate": 4 * hidden,
            "max_position_embeddings": 512}


def lstm_parameters(input_size: int, hidden: int, layers: int) -> int:
    """A bidirectional LSTM: per layer and direction four gates of (input + hidden + bias) x hidden."""
    total, size = 0, input_size
    for _ in range(layers):
        total += 2 * 4 * (size + hidden + 1) * hidden
        size = 2 * hidden
    return total


def run_model(config: dict, ablation: str) -> dict:
    if ablation in config["checkpoints"]:
        return checkpoint_model(config["checkpoints"][ablation])
    return plan.resolve_ablation(config, ablation)["model"]


def finetune_job_estimate(config: dict, run: plan.FinetuneRun,
                          examples: tuple[int, int] | None = None) -> dict | None:
    """FLOPs of one fine-tuning job (every restart of one grid point) on ``examples`` (training,
    evaluated; default: the task's, ``task_examples``); None when the task's size is unknown
    before it is read."""
    examples = examples or task_examples(config, run.task)
    if examples is None:
        return None
    train, evaluated = examples
    model, head = run_model(config, run.ablation), HEAD_KINDS[run.head]
    length = config["tasks"][run.task]["max_seq_length"]
    # a job fine-tunes every pretraining seed's checkpoint, finetune.restarts times each
    epochs, restarts = plan.grid_point(config, run.task, run.head, run.hp).epochs, plan.job_restarts(config)
    n, layers, hidden = non_embedding_parameters(model), model["layers"], model["hidden"]
    if head.frozen:  # heads.py: a two-layer BiLSTM (H a direction) over the combined layers
        read = len(head.layers) if head.layers else layers + 1
        lstm = lstm_parameters(hidden * (read if head.mode == "concat" else 1), hidden, 2)
    elif head.name == "bilstm":
        read, lstm = 0, lstm_parameters(hidden, hidden, 1)
    else:
        read, lstm = 0, 0
    # per token, forward: the encoder at the task's length, the head's LSTM at 2 FLOPs a weight
    encoder_forward, lstm_forward = token_forward(n, layers, hidden, length), 2 * lstm
    if head.frozen and config["finetune"]["cache_features"]:
        flops = (train + evaluated) * length * encoder_forward + restarts * epochs * length * (
            train * TRAINED * lstm_forward + evaluated * lstm_forward)
    elif head.frozen:
        flops = restarts * epochs * length * ((train + evaluated) * encoder_forward + train * TRAINED * lstm_forward
                                              + evaluated * lstm_forward)
    else:
        flops = restarts * epochs * length * (train * TRAINED * (encoder_forward + lstm_forward)
                                              + evaluated * (encoder_forward + lstm_forward))
    return {"task": run.task, "train_examples": train, "evaluated_examples": evaluated, "epochs": epochs,
            "length": length, "flops": float(flops), "layers_read": read, "model": model}


def finetune_estimate(config: dict, names: list[str] | None = None) -> dict:
    settings = config["estimate"]
    runs = plan.finetune_runs(config, names)
    by_task: dict[str, dict] = {}
    unknown = set()
    for run in runs:
        job = finetune_job_estimate(config, run)
        if job is None:
            unknown.add(run.task)
            continue
        entry = by_task.setdefault(run.task, {"jobs": 0, "train_examples": job["train_examples"], "flops": 0.0})
        entry["jobs"] += 1
        entry["flops"] += job["flops"]
    for entry in by_task.values():
        entry["gpu_hours"] = entry["flops"] / (settings["finetune_mfu"] * settings["peak_tflops"] * 1e12) / 3600
    return {"jobs": len(runs), "restarts": plan.job_restarts(config), "by_task": by_task,
            "flops": sum(e["flops"] for e in by_task.values()),
            "gpu_hours": sum(e["gpu_hours"] for e in by_task.values()), "unknown_tasks": sorted(unknown)}


# --- cluster requests ---------------------------------------------------------------------------

def _minutes(flops: float, mfu: float, settings: dict) -> int:
    seconds = flops / (mfu * settings["peak_tflops"] * 1e12)
    return max(settings["min_runtime_minutes"], math.ceil(seconds * settings["request_margin"] / 60))


def pretrain_request(config: dict, ablation: str) -> dict:
    """runtime (minutes) and mem_mb of one pretraining job on one GPU, before Snakemake's attempt:
    its estimated FLOPs at estimate.mfu of estimate.peak_tflops; host memory for the process, the
    model's training state and the instance index (activations live on the GPU: a CPU-only
    cluster's profile raises mem_mb)."""
    settings, vocab = config["estimate"], config["tokenizer"]["vocab_size"]
    spec = plan.ablation_spec(config, ablation)
    length = config["instances"]["max_seq_length"]
    run = run_estimate(spec, vocab, length)
    text_bytes, _ = corpus_text_bytes_known(config)
    instances = (text_bytes / BYTES_PER_TOKEN * config["instances"]["dupe_factor"] / (length * 0.9)
                 * (2 if spec.pretrain.short_seq_steps else 1)) if text_bytes else 0.0
    memory = (BASE_PROCESS_BYTES + STATE_BYTES_PER_PARAMETER * total_parameters(spec.model, vocab)
              + INSTANCE_BYTES * instances)
    return {"runtime": _minutes(run["flops"], settings["mfu"], settings),
            "mem_mb": int(memory * settings["request_margin"] / 1e6)}


# CPU seconds per MB of corpus text a data-stage job handles, measured on this project's 2-core
# machine by benchmarks/data_stages.py (docs/scale.md, "Measured on this 2-core machine"): the data
# stages' cluster runtimes are sized by them. Sentence splitting (pysbd) runs for the sources that
# give paragraphs (hf, jsonl), not for a one-sentence-a-line text corpus or the generated world.
# Instances: per copy of the shard (instances.dupe_factor), at either length.
DATA_SECONDS_PER_MB = {"corpus": 0.05, "sentence_split": 4.0, "word_counts": 0.41, "instances": 0.18}
TOKENIZER_SECONDS_PER_WORD = 436 / 1e6  # the WordPiece learner: 1M distinct words in 436 s, peak 2.1 GB
SPLIT_SOURCES = ("hf", "jsonl")
DATA_RULES = ("corpus", "word_counts", "tokenizer", "instances")


def data_stage_seconds(config: dict, rule: str) -> tuple[float | None, str]:
    """CPU seconds of one job of a data stage on the full corpus, from the measured rates, and how."""
    text, _ = corpus_text_bytes_known(config)
    if text is None:
        return None, "unknown corpus size: set estimate.corpus_text_gb"
    shard_mb = text / 1e6 / config["corpus"]["shards"]
    if rule == "tokenizer":  # the learner's words: the cap, or (uncapped) about one new word type per 10 kB
        words = config["tokenizer"]["max_words"] or text / 1e4
        return words * TOKENIZER_SECONDS_PER_WORD, f"{words:,.0f} words x {TOKENIZER_SECONDS_PER_WORD * 1e6:.0f} s per 1M"
    rate = DATA_SECONDS_PER_MB[rule]
    if rule == "corpus" and config["corpus"]["source"] in SPLIT_SOURCES:
        rate += DATA_SECONDS_PER_MB["sentence_split"]
    if rule == "instances":
        rate *= config["instances"]["dupe_factor"]
    return shard_mb * rate, f"{shard_mb:,.0f} MB a shard x {rate:g} CPU s per MB"


def data_request(config: dict, rule: str) -> dict:
    """runtime (minutes) of one job of a corpus data stage, from the measured rates x
    estimate.request_margin (at least estimate.min_runtime_minutes), before Snakemake's attempt.
    Their memory is flat in the corpus size (measured: 0.2-0.9 GB a job; the tokenizer's grows
    with the distinct words), so the rules keep fixed mem_mb requests."""
    settings = config["estimate"]
    seconds, _ = data_stage_seconds(config, rule)
    if seconds is None:  # a hub corpus of unstated size: the profile's default hour, as before
        return {"runtime": max(60, settings["min_runtime_minutes"])}
    return {"runtime": max(settings["min_runtime_minutes"], math.ceil(seconds * settings["request_margin"] / 60))}


def corpus_text_bytes_known(config: dict) -> tuple[float | None, str]:
    """corpus_text_bytes, or unknown where the local files are missing: sizing a request is no
    place to report that (check_corpus_shards does, when the DAG is built)."""

    try:
        return corpus_text_bytes(config)
    except CorpusError:
        return None, "unknown"


def finetune_request(config: dict, run: plan.FinetuneRun) -> dict:
    """runtime (minutes) and mem_mb of one fine-tuning job (all restarts of one grid point):
    its FLOPs at estimate.finetune_mfu; host memory for the process, the model's state and the
    encoded task. A feature-based head's cached layers are not in it: they live on disk, in fp16
    (data.features.FeatureCache, a memmap under the job's state folder), one batch in memory at a
    time; counted in host memory (fp32, every layer read) they asked for ~59 GB for a BERT-Base
    CoNLL-2003 job whose measured peak is 2.4 GB (the released preset's rehearsal)."""
    settings = config["estimate"]
    # a task of unknown size (ner) is asked for as if it were the largest the paper used
    job = finetune_job_estimate(config, run) or finetune_job_estimate(config, run, max(TASK_SIZES.values()))
    model, examples = job["model"], job["train_examples"] + job["evaluated_examples"]
    # an imported checkpoint brings its own vocabulary: BERT's uncased 30,522 stands for it
    vocab = 30_522 if run.ablation in config["checkpoints"] else config["tokenizer"]["vocab_size"]
    memory = (BASE_PROCESS_BYTES + STATE_BYTES_PER_PARAMETER * total_parameters(model, vocab)
              + examples * job["length"] * 8 * 3)  # input ids, segments, mask as int64
    return {"runtime": _minutes(job["flops"], settings["finetune_mfu"], settings),
            "mem_mb": int(memory * settings["request_margin"] / 1e6)}


def markdown(result: dict) -> str:
    lines = [f"# Compute estimate ({result['assumption']})", "",
             "| pretraining run | steps x batch | non-embedding params | tokens | FLOPs | GPU-hours |",
             "|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['ablation']} | {r['steps']:,} x {r['batch_size']} | {r['non_embedding_parameters'] / 1e6:.1f}M "
                     f"| {r['tokens'] / 1e9:.2f}B | {r['flops']:.2e} | {r['gpu_hours']:.1f} |")
    t = result["total"]
    lines.append(f"| **all {t['runs']} trained runs** | | | {t['tokens'] / 1e9:.1f}B | {t['flops']:.2e} "
                 f"| {t['gpu_hours']:,.0f} |")
    d = result["disk"]
    lines += ["", "| disk | GB |", "|---|---|"]
    if d["corpus_text_gb"] is None:
        lines.append(f"| corpus text | {d['corpus_text_from']} |")
    else:
        lines += [f"| corpus text ({d['corpus_text_from']}) | {d['corpus_text_gb']:.1f} |",
                  f"| corpus shards (Arrow) | {d['corpus_arrow_gb']:.1f} |",
                  f"| instances ({', '.join(d['instance_builds'])}) | {d['instances_gb']:.1f} |"]
    lines += [f"| checkpoints (final + save_steps) | {d['checkpoints_gb']:.1f} |",
              f"| resumable states under state/ | {d['state_gb']:.1f} |", ""]
    f = result["finetune"]
    lines += [f"Fine-tuning: {f['jobs']} jobs x {f['restarts']} restarts, {f['flops']:.2e} FLOPs, "
              f"~{f['gpu_hours']:,.1f} GPU-hours at {result['finetune_assumption']}", "",
              "| task | jobs | training examples | FLOPs | GPU-hours |", "|---|---|---|---|---|"]
    for task, entry in sorted(f["by_task"].items()):
        lines.append(f"| {task} | {entry['jobs']} | {entry['train_examples']:,} | {entry['flops']:.2e} "
                     f"| {entry['gpu_hours']:,.1f} |")
    if f["unknown_tasks"]:
        lines.append(f"| {', '.join(f['unknown_tasks'])} | not estimated: no standard dataset size | | | |")
    return "\n".join(lines) + "\n"


def write_estimate(config: dict, markdown_path: str, json_path: str) -> dict:
    result = estimate(config)
    text = markdown(result)
    with atomic_file(markdown_path) as handle:
        handle.write(text)
    write_json(json_path, result)
    log.info("\n%s", text)
    print(text)
    return result


# --- the README's preset table --------------------------------------------------------------------

# What each preset's header tells you to build, when that is not everything it defines (released:
# its checkpoint tables; families: its side-by-side table). The rest: all their tables.


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:,.1f} h"
