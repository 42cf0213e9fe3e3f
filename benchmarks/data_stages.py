"""Throughput and peak memory of the data stages at scale: corpus -> word counts -> tokenizer ->
instances -> a short pretraining run, through the real workflow (Snakemake), on a generated corpus.

    python benchmarks/data_stages.py --megabytes 60 --shard-mb 30      # 2 shards, minutes
    python benchmarks/data_stages.py --megabytes 600 --shard-mb 30     # 20 shards: per-job memory must not grow
    python benchmarks/data_stages.py --megabytes 1000 --shard-mb 50 --preset presets/small.yaml --stages-only
    python benchmarks/data_stages.py --sentence-splitter 20            # pysbd on 20 MB of jsonl paragraphs
    python benchmarks/data_stages.py --vocab-learner 1000000           # WordPiece on 1M distinct words
    python benchmarks/data_stages.py --smoke                           # seconds; what CI runs

The corpus is pseudo-English in google-research/bert's text format (a sentence per line, a blank
line between documents), cut into files of --shard-mb: words are drawn from a Zipf law (exponent
1.07, as English) over a lexicon of --lexicon syllable words, so the tokenizer meets a long tail
of rare types as it would in Wikipedia. Each Snakemake job's peak resident memory and CPU time
come from its ``benchmark:`` file; MB/s per core = raw text MB / the stage's CPU seconds.
Results: a JSON file per run in --out and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou", "ea")]
STAGES = ("corpus", "word_counts", "tokenizer", "instances", "pretrain")


def lexicon(size: int, seed: int) -> np.ndarray:
    """``size`` distinct pseudo-words of 1-4 syllables, frequent ones short (as in English)."""
    rng = np.random.default_rng(seed)
    words, seen = [], set()
    while len(words) < size:
        n = min(4, 1 + int(math.log10(len(words) + 10)) - 1 + int(rng.integers(0, 2)))
        word = "".join(SYLLABLES[i] for i in rng.integers(0, len(SYLLABLES), max(1, n)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return np.array(words, dtype=object)


def generate_corpus(folder: Path, megabytes: float, shard_mb: float, lexicon_size: int, seed: int = 0) -> list[Path]:
    """Files of ~``shard_mb`` MB, ``megabytes`` in all, a sentence per line, documents apart."""
    folder.mkdir(parents=True, exist_ok=True)
    words = lexicon(lexicon_size, seed)
    ranks = np.arange(1, lexicon_size + 1)
    cdf = np.cumsum(ranks ** -1.07)
    cdf /= cdf[-1]
    rng = np.random.default_rng(seed + 1)
    target, n_files = int(megabytes * 1e6), max(1, round(megabytes / shard_mb))
    paths = []
    for f in range(n_files):
        path = folder / f"part-{f:04d}.txt"
        size, budget = 0, target // n_files
        with open(path, "w", encoding="utf-8") as handle:
            while size < budget:
                # ~6.5 characters a word with its separator: stop near the file's budget
                block = words[np.searchsorted(cdf, rng.random(int(min(200_000, max(1_000, (budget - size) / 6.5)))))]
                sentence_ends = np.cumsum(rng.integers(6, 30, len(block) // 6 + 1))
                sentence_ends = sentence_ends[sentence_ends < len(block)]
                document_ends = set(np.cumsum(rng.integers(5, 40, len(sentence_ends))).tolist())
                separators = np.full(len(block), " ", dtype=object)
                separators[sentence_ends - 1] = ".\n"
                for k, end in enumerate(sentence_ends.tolist()):
                    if k + 1 in document_ends:
                        separators[end - 1] = ".\n\n"
                last = int(sentence_ends[-1])
                text = "".join(w + s for w, s in zip(block[:last].tolist(), separators[:last].tolist()))
                handle.write(text)
                size += len(text)
        paths.append(path)
    return paths


def read_benchmarks(workdir: Path) -> dict[str, dict]:
    """Per stage: jobs, wall seconds (sum), CPU seconds (sum) and the largest peak RSS of its jobs."""
    stages = {}
    for stage in STAGES:
        files = sorted((workdir / "logs").glob(f"{stage}/**/*.benchmark.tsv")) + sorted(
            (workdir / "logs").glob(f"{stage}.benchmark.tsv"))
        rows = []
        for path in files:
            with open(path, newline="") as handle:
                rows += list(csv.DictReader(handle, delimiter="\t"))
        if rows:
            stages[stage] = {"jobs": len(rows), "wall_s": round(sum(float(r["s"]) for r in rows), 1),
                             "cpu_s": round(sum(float(r["cpu_time"]) for r in rows), 1),
                             "peak_rss_mb": round(max(float(r["max_rss"]) for r in rows), 1)}
    return stages


def run_pipeline(args, corpus_dir: Path, workdir: Path, shards: int) -> dict:
    config = {
        "corpus": {"source": "text", "text": {"paths": [str(corpus_dir)]}, "shards": shards},
        "claims": {"enabled": False},
        "warm_start": False,  # each stage's peak memory must be its own process's (the benchmark files')
    }
    if not args.preset:
        config.update({
            "tokenizer": {"vocab_size": args.vocab, "max_words": args.max_words},
            "instances": {"max_seq_length": 128, "dupe_factor": args.dupe_factor},
            "model": {"architecture": "bert", "layers": 4, "hidden": 64, "heads": 2, "intermediate": 256,
                      "max_position_embeddings": 128},
            "pretrain": {"steps": args.steps, "batch_size": 32, "warmup_steps": 5, "log_every": 10,
                         "state_every": args.steps or 1, "eval_batches": 2, "tensorboard": False, "save_steps": []},
            "ablations": {"bert_base": {"objective": "mlm_nsp", "packing": "nsp_pairs"}},
        })
    elif args.max_words:
        config["tokenizer"] = {"max_words": args.max_words}
    override = workdir / "benchmark.yaml"
    override.write_text(json.dumps(config))  # JSON is YAML
    if args.stages_only:
        packings = args.packings.split(",")
        length = args.length
        targets = [f"results/instances/{p}/len{length}/shard-{k}" for p in packings for k in range(shards)]
    else:
        targets = ["results/pretrain/bert_base/metrics.json"]
    configfiles = [str(override)] if not args.preset else [str(ROOT / args.preset), str(override)]
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
               "--cores", str(args.cores), *targets, "--configfile", *configfiles]
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"snakemake failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return {"wall_s": round(time.perf_counter() - began, 1), "stages": read_benchmarks(workdir)}


def instance_summary(workdir: Path) -> dict:
    manifests = [json.loads(p.read_text()) for p in sorted(workdir.glob("results/instances/*/len*/shard-*/manifest.json"))]
    return {"shards": len(manifests), "instances": sum(m["train"]["instances"] for m in manifests),
            "tokens": sum(m["train"]["tokens"] for m in manifests),
            "disk_mb": round(sum(f.stat().st_size for f in workdir.glob("results/instances/**/*.npy")) / 1e6, 1)}


def sentence_splitter(megabytes: float) -> dict:
    """corpus.jsonl's path (pysbd sentence splitting of paragraphs) on generated jsonl."""
    from bert_ablation.data.corpus import read_jsonl_file
    from bert_ablation.data.prose import paragraph_documents

    with tempfile.TemporaryDirectory() as tmp:
        paths = generate_corpus(Path(tmp) / "text", megabytes, megabytes, 50_000)
        documents = Path(paths[0]).read_text().split("\n\n")
        jsonl = Path(tmp) / "docs.jsonl"
        with open(jsonl, "w") as handle:
            for doc in documents:  # paragraphs of ~4 sentences, as Wikipedia's
                sentences = doc.split("\n")
                handle.write(json.dumps({"text": "\n".join(" ".join(sentences[i:i + 4])
                                                           for i in range(0, len(sentences), 4))}) + "\n")
        size = jsonl.stat().st_size
        cpu = time.process_time()
        n = sum(1 for _ in paragraph_documents(read_jsonl_file(jsonl, "text"), clean=True, name="bench"))
        cpu = time.process_time() - cpu
    return {"megabytes": round(size / 1e6, 1), "documents": n, "cpu_s": round(cpu, 1),
            "mb_per_s_per_core": round(size / 1e6 / cpu, 2)}


def vocab_learner(distinct_words: int) -> dict:
    """learn_wordpiece_vocab (30,000 pieces) on Zipf counts of that many distinct words."""
    import resource
    from collections import Counter

    from bert_ablation.data.tokenizer import learn_wordpiece_vocab

    words = lexicon(distinct_words, 0)
    counts = Counter({w: max(2, int(1e8 / (r + 1) ** 1.07)) for r, w in enumerate(words.tolist())})
    began = time.perf_counter()
    vocab = learn_wordpiece_vocab(counts, 30_000, 2)
    return {"distinct_words": distinct_words, "vocab": len(vocab), "seconds": round(time.perf_counter() - began, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def markdown(result: dict) -> str:
    mb = result["corpus_mb"]
    lines = [f"### {mb} MB corpus, {result['shards']} shards, {result['cores']} cores "
             f"({result['wall_s']} s end to end)", "",
             "| stage | jobs | wall s (sum) | CPU s | MB/s per core | peak RSS per job (MB) |", "|---|---|---|---|---|---|"]
    for stage, row in result["stages"].items():
        rate = round(mb / row["cpu_s"], 2) if stage != "pretrain" and row["cpu_s"] else "-"
        lines.append(f"| {stage} | {row['jobs']} | {row['wall_s']} | {row['cpu_s']} | {rate} | {row['peak_rss_mb']} |")
    inst = result["instances"]
    lines += ["", f"instances: {inst['instances']:,} ({inst['tokens']:,} tokens) in {inst['shards']} shard folders, "
                  f"{inst['disk_mb']} MB on disk"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, default=60)
    parser.add_argument("--shard-mb", type=float, default=30, help="text per file, and so per shard")
    parser.add_argument("--lexicon", type=int, default=200_000, help="distinct words the generator draws from")
    parser.add_argument("--vocab", type=int, default=30_000)
    parser.add_argument("--max-words", type=int, default=None, help="tokenizer.max_words")
    parser.add_argument("--dupe-factor", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50, help="pretraining steps after the data stages")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--preset", help="a preset whose tokenizer/instances settings to use (e.g. presets/small.yaml)")
    parser.add_argument("--stages-only", action="store_true", help="stop after the instances")
    parser.add_argument("--packings", default="nsp_pairs,contiguous")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--sentence-splitter", type=float, metavar="MB", help="only time pysbd on this much jsonl")
    parser.add_argument("--vocab-learner", type=int, metavar="WORDS", help="only time the WordPiece learner")
    parser.add_argument("--workdir", type=Path, help="keep the run here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--smoke", action="store_true", help="1 MB, 2 shards, small vocabulary: seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.megabytes, args.shard_mb, args.lexicon, args.vocab, args.dupe_factor = 1.0, 0.5, 5_000, 1_000, 1
    args.out.mkdir(parents=True, exist_ok=True)
    machine = {"machine": platform.processor() or platform.machine(), "cores": args.cores, "date": time.strftime("%Y-%m-%d")}
    if args.sentence_splitter:
        result = {**machine, "sentence_splitter": sentence_splitter(args.sentence_splitter)}
        print(json.dumps(result, indent=2))
        (args.out / "sentence_splitter.json").write_text(json.dumps(result, indent=2) + "\n")
        return
    if args.vocab_learner:
        result = {**machine, "vocab_learner": vocab_learner(args.vocab_learner)}
        print(json.dumps(result, indent=2))
        (args.out / f"vocab_learner-{args.vocab_learner}.json").write_text(json.dumps(result, indent=2) + "\n")
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp) / "run"
        workdir.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        files = generate_corpus(workdir / "corpus-text", args.megabytes, args.shard_mb, args.lexicon)
        generated = round(time.perf_counter() - began, 1)
        corpus_mb = round(sum(f.stat().st_size for f in files) / 1e6, 1)
        run = run_pipeline(args, workdir / "corpus-text", workdir, len(files))
        result = {**machine, "corpus_mb": corpus_mb, "shards": len(files), "generated_s": generated,
                  "preset": args.preset, **run, "instances": instance_summary(workdir)}
        if not args.stages_only:
            result["pretrain_metrics"] = {k: v for k, v in json.loads(
                (workdir / "results/pretrain/bert_base/metrics.json").read_text()).items()
                if k in ("steps", "tokens_seen", "heldout_perplexity", "parameters")}
    name = "smoke" if args.smoke else f"data_stages-{int(args.megabytes)}mb" + ("-" + Path(args.preset).stem if args.preset else "")
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
