"""Masking/sampling noise per device, and the pre-training step time, before and after
per-shard noise (issue 11).

    python benchmarks/noise_memory.py                       # bytes from shapes (instant)
    python benchmarks/noise_memory.py --time_step --before=/tmp/electra-before \
        --accumulation_steps=1,2 --runs=5                   # step time, before vs after

Bytes: the Gumbel noise of the sampling step is the largest draw, [rows, N, V]
float32 (N = int((mask_prob + 0.005) * L) masked slots). Before, every replica
and micro-batch drew the whole update batch's noise and sliced its rows; now each
draws only its own rows (Philox counter offset), so the bytes are divided by
replicas x micro-batches.

Step time: ``--before`` is a checkout of the code before the change (e.g.
``git worktree add /tmp/electra-before <commit>``); each run is a fresh process
timing ``--steps`` ELECTRA-Small steps after ``--warmup`` (median per run); the runs
alternate before/after and the ratio of medians is printed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECIPES = {  # the paper's pre-training recipes (spec 1.2): batch, L
    "base": (256, 512),
    "large": (2048, 512),
}


def noise_bytes_per_device(global_batch: int, max_seq_length: int, vocab_size: int, *,
                           replicas: int = 1, accumulation_steps: int = 1,
                           mask_prob: float = 0.15, per_shard_draw: bool = True) -> int:
    """Bytes of the [rows, N, V] float32 Gumbel draw materialised on one device per draw."""
    slots = int((mask_prob + 0.005) * max_seq_length)
    rows = global_batch // (replicas * accumulation_steps) if per_shard_draw else global_batch
    return rows * slots * vocab_size * 4


def _bytes_table() -> list:
    rows = []
    for recipe, (batch, length) in RECIPES.items():
        for replicas, k in ((1, 1), (8, 1), (8, 4)):
            before = noise_bytes_per_device(batch, length, 30522, replicas=replicas,
                                            accumulation_steps=k, per_shard_draw=False)
            after = noise_bytes_per_device(batch, length, 30522, replicas=replicas,
                                           accumulation_steps=k, per_shard_draw=True)
            rows.append({"recipe": recipe, "global_batch": batch, "max_seq_length": length,
                         "replicas": replicas, "accumulation_steps": k,
                         "bytes_before": before, "bytes_after": after})
    return rows


TIMER = r"""
import os, sys, time, statistics, tempfile
sys.path.insert(0, sys.argv[1])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np, tensorflow as tf
from electra_tf.config import PretrainingConfig
from electra_tf.training.pretrain import PretrainingRun, RunOptions, make_train_step
batch, k, steps, warmup = (int(a) for a in sys.argv[2:6])
tmp = tempfile.mkdtemp()
rng = np.random.default_rng(0)
with tf.io.TFRecordWriter(os.path.join(tmp, "pretrain_data.tfrecord-0-of-1")) as w:
    for _ in range(256):
        ids = rng.integers(1000, 30000, 128); ids[0], ids[-1] = 101, 102
        f = {n: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for n, v in
             (("input_ids", ids), ("input_mask", np.ones(128, int)), ("segment_ids", np.zeros(128, int)))}
        w.write(tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString())
config = PretrainingConfig.from_preset("small", {"train_batch_size": batch,
                                                 "gradient_accumulation_steps": k})
run = PretrainingRun(config, RunOptions(model_dir=os.path.join(tmp, "m"),
                     pretrain_tfrecords=os.path.join(tmp, "pretrain_data*"), quiet=True),
                     training=True)
step = make_train_step(run, jit_compile=False)
times = []
for i in range(warmup + steps):
    start = time.perf_counter(); step(run.iterator)["total_loss"].numpy()
    if i >= warmup:
        times.append(time.perf_counter() - start)
print("MEDIAN", statistics.median(times))
"""


def _time_step(root: str, batch: int, k: int, steps: int, warmup: int) -> float:
    proc = subprocess.run([sys.executable, "-c", TIMER, root, str(batch), str(k), str(steps),
                           str(warmup)], capture_output=True, text=True, cwd=root)
    if proc.returncode:
        raise SystemExit(f"error: timing {root} failed:\n{proc.stderr[-2000:]}")
    return float(proc.stdout.split("MEDIAN")[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time_step", action="store_true", help="Also time the step.")
    parser.add_argument("--before", help="Checkout of the code before the change.")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--accumulation_steps", default="1,2")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="Append the results as one JSON line here.")
    args = parser.parse_args(argv)
    result = {"noise_bytes": _bytes_table()}
    for row in result["noise_bytes"]:
        print(f"{row['recipe']:5s} B={row['global_batch']:5d} L={row['max_seq_length']} "
              f"replicas={row['replicas']} k={row['accumulation_steps']}: "
              f"{row['bytes_before'] / 2**30:7.2f} GiB -> {row['bytes_after'] / 2**30:6.2f} GiB "
              "of Gumbel noise per device per draw")
    if args.time_step:
        if not args.before:
            parser.error("--time_step needs --before=<checkout of the previous code>")
        result["step_time"] = []
        for k in (int(x) for x in args.accumulation_steps.split(",")):
            times = {"before": [], "after": []}
            for _ in range(args.runs):  # alternate, so drift hits both alike
                for name, root in (("before", args.before), ("after", ROOT)):
                    times[name].append(_time_step(root, args.batch_size, k, args.steps,
                                                  args.warmup))
            medians = {name: statistics.median(v) for name, v in times.items()}
            ratio = medians["before"] / medians["after"]
            result["step_time"].append({"accumulation_steps": k, **{f"{n}_runs": v for n, v in
                                                                    times.items()},
                                        "median_before": medians["before"],
                                        "median_after": medians["after"], "speedup": ratio})
            print(f"ELECTRA-Small B={args.batch_size} k={k}: before {medians['before']:.3f} "
                  f"s/step, after {medians['after']:.3f} s/step (median of {args.runs} runs): "
                  f"{ratio:.3f}x")
    if args.json:
        with open(args.json, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
