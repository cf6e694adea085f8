"""Throughput of building pre-training data: faithful vs fast tokenizer.

    python benchmarks/build_dataset_throughput.py                # 4 files
    python benchmarks/build_dataset_throughput.py --num_files=10 --full

Builds TFRecords (one process) from the first --num_files files of a
WikiExtractor corpus (default: shared/data/corpus/enwiki-2015-wikiextractor
beside the repository, ~100 MB in 100 files) once with the faithful
pure-Python tokenizer and once with the fast tensorflow-text one, and reports
tokens/s per core (the whole build: reading, tokenizing, packing, writing;
tokenizer loading excluded) and their ratio. It projects the time of the
whole corpus with 2 processes from the fast per-core rate, and with --full
also runs it (2 processes, tokenizer loading and start-up included).

Goals (issue): fast >= 5x faithful per core; whole corpus < 3 min on 2 cores.
"""

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=g-import-not-at-top
from electra_tf.data import build, corpus  # noqa: E402
from electra_tf.data.errors import PretrainingDataError  # noqa: E402
# pylint: enable=g-import-not-at-top

DEFAULT_CORPUS = os.path.join(
    os.path.dirname(ROOT), "shared", "data", "corpus", "enwiki-2015-wikiextractor"
)


class _Preloaded(object):
    """A tokenizer factory returning an already loaded tokenizer."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self):
        return self.tokenizer


def time_build(units, spec, max_seq_length, workdir, name):
    start = time.monotonic()
    tokenizer = spec()
    load_s = time.monotonic() - start
    cpu_start = time.process_time()  # all threads of this process
    stats = build.build_pretraining_dataset(
        units,
        os.path.join(workdir, name),
        _Preloaded(tokenizer),
        max_seq_length=max_seq_length,
        num_out_files=len(units),
        num_processes=1,
        show_progress=False,
    )
    cpu_s = time.process_time() - cpu_start
    # Per core = per CPU-second: robust to other load on a shared machine and
    # fair if a library runs threads of its own.
    return {
        "tokenizer": name,
        "files": len(units),
        "text_mb": stats.text_bytes / 1e6,
        "tokens": stats.tokens,
        "examples": stats.examples,
        "load_s": load_s,
        "build_s": stats.seconds,
        "cpu_s": cpu_s,
        "tokens_per_s_wall": stats.tokens / stats.seconds,
        "tokens_per_s_per_core": stats.tokens / cpu_s,
        "mb_per_s_per_core": stats.text_bytes / 1e6 / cpu_s,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus_dir", default=DEFAULT_CORPUS)
    parser.add_argument(
        "--num_files", type=int, default=4, help="files timed per tokenizer (one process)"
    )
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument(
        "--processes", type=int, default=2, help="processes for the projection / --full run"
    )
    parser.add_argument(
        "--full", action="store_true", help="also build the whole corpus with --processes"
    )
    parser.add_argument("--skip_faithful", action="store_true")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()

    try:
        units = corpus.find_corpus_files(args.corpus_dir)
    except PretrainingDataError as e:
        sys.exit("error: %s" % e)
    subset = [corpus.CorpusFile(u.path, i, u.size) for i, u in enumerate(units[: args.num_files])]
    total_bytes = sum(u.size for u in units)
    print(
        "corpus: %d files, %.1f MB; timing %d file(s), %.1f MB, L=%d"
        % (
            len(units),
            total_bytes / 1e6,
            len(subset),
            sum(u.size for u in subset) / 1e6,
            args.max_seq_length,
        )
    )

    results = {"corpus_files": len(units), "corpus_mb": total_bytes / 1e6}
    with tempfile.TemporaryDirectory() as workdir:
        rows = []
        if not args.skip_faithful:
            rows.append(
                time_build(
                    subset,
                    build.TokenizerSpec(fast=False),
                    args.max_seq_length,
                    workdir,
                    "faithful",
                )
            )
        rows.append(
            time_build(subset, build.TokenizerSpec(fast=True), args.max_seq_length, workdir, "fast")
        )
        print(
            "%-9s %7s %10s %8s %7s %11s %14s %9s"
            % (
                "tokenizer",
                "load s",
                "tokens",
                "wall s",
                "CPU s",
                "MB/s/core",
                "tokens/s/core",
                "examples",
            )
        )
        for r in rows:
            print(
                "%-9s %7.1f %10d %8.2f %7.2f %11.2f %14.0f %9d"
                % (
                    r["tokenizer"],
                    r["load_s"],
                    r["tokens"],
                    r["build_s"],
                    r["cpu_s"],
                    r["mb_per_s_per_core"],
                    r["tokens_per_s_per_core"],
                    r["examples"],
                )
            )
        results["runs"] = rows
        fast = rows[-1]
        if len(rows) == 2:
            ratio = fast["tokens_per_s_per_core"] / rows[0]["tokens_per_s_per_core"]
            results["fast_over_faithful"] = ratio
            print("fast / faithful per core: %.2fx (goal >= 5x)" % ratio)
        # Start-up of a spawned worker: importing TensorFlow and loading the
        # tokenizer, about 3 s here (measured by --full).
        startup_s = 3.0
        projected = total_bytes / 1e6 / (fast["mb_per_s_per_core"] * args.processes) + startup_s
        results["projected_full_s"] = projected
        print(
            "projected whole corpus, %d processes, fast: %.0f s (%.0f s work + "
            "~%.0f s start-up; goal < 180 s; assumes %d free cores)"
            % (args.processes, projected, projected - startup_s, startup_s, args.processes)
        )
        if args.full:
            start = time.monotonic()
            cpu_start = os.times()
            stats = build.build_pretraining_dataset(
                units,
                os.path.join(workdir, "full"),
                build.TokenizerSpec(fast=True),
                max_seq_length=args.max_seq_length,
                num_out_files=1000,
                num_processes=args.processes,
                show_progress=True,
            )
            wall = time.monotonic() - start
            cpu_end = os.times()
            # Children's CPU time counts once they are joined.
            cpu = sum(cpu_end[:4]) - sum(cpu_start[:4])
            results["full_s"] = wall
            results["full_cpu_s"] = cpu
            results["full_tokens"] = stats.tokens
            results["full_examples"] = stats.examples
            for line in build.format_summary(stats):
                print(line)
            print(
                "actual whole corpus, %d processes, fast: %.1f s wall, %.1f "
                "CPU-s in all processes (goal < 180 s wall)" % (args.processes, wall, cpu)
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
