"""Where the pre-training step's time goes: a TensorFlow profile of the driver's step, summed.

Builds the run exactly as ``benchmarks/pretraining_throughput.py`` does (the driver's
``PretrainingRun`` and ``make_train_step``), warms up, traces ``--steps`` steps with
``tf.profiler`` and sums the executed TensorFlow ops of the trace two ways: by op type
(MatMul, Cast, Softmax, ...) and by part of the model (the generator's vocabulary
projection and softmax, attention, the optimizer update, Gumbel sampling, ...), as a
share of all op time. Op time is summed over threads, so the shares are what matters,
not the absolute seconds:

    python benchmarks/profile_step.py --batch_size=32 --mixed_precision=bfloat16 --steps=3
    python benchmarks/profile_step.py --batch_size=32 --mixed_precision=float32 --steps=3

``--json FILE`` appends the summary as one JSON line.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Parts of the step: the first pattern found in an op's scope (its name without the
# op type, "gradient_tape/" kept so backward ops count with their forward part) names it.
PARTS = (
    ("optimizer update (incl. gradient clipping)", ("optimizer_update", "global_norm",
                                                    "clip_by_global_norm")),
    ("masking", ("masking/",)),
    ("Gumbel sampling + replacement", ("sampling/",)),
    ("generator MLM loss (softmax over the vocabulary)", ("generator_loss/",)),
    ("discriminator loss", ("discriminator_loss/",)),
    ("generator vocabulary projection", ("generator_predictions", "output_bias", "logits")),
    ("attention dropout", ("attention_probs_dropout",)),
    ("other dropout", ("dropout",)),
    ("LayerNorm", ("layer_norm", "LayerNorm")),
    ("feed-forward (intermediate + GELU, output)", ("intermediate", "output_dense")),
    ("attention projections (Q, K, V, output)", ("/query", "/key", "/value",
                                                 "attention_output")),
    ("attention scores, softmax, context", ("layer_",)),  # the rest of a layer's ops
    ("embeddings", ("embedding",)),
    # Tied/shared weights (the word embeddings) get gradients from several uses, which
    # TensorFlow densifies (UnsortedSegmentSum) and adds (AddN).
    ("gradient sums of shared weights (embeddings)", ("AddN",)),
    ("discriminator head", ("discriminator_predictions", "dense_prediction")),
)


def part_of(scope: str) -> str:
    for part, patterns in PARTS:
        if any(p in scope for p in patterns):
            return part
    return "other"


def op_times(logdir: str) -> tuple[dict, dict, dict, float]:
    """Sums the durations (s) of executed TF ops in the newest trace under ``logdir``.

    Returns ({op type: s}, {part: s}, {op name in no part: s}, total s). An op event's
    name is ``scope/.../name:Type`` (layer numbers are folded into ``layer_N``).
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    paths = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))
    if not paths:
        raise SystemExit(f"no trace written under {logdir}")
    space = xplane_pb2.XSpace()
    with open(paths[-1], "rb") as f:
        space.ParseFromString(f.read())
    by_type, by_part, unassigned = (collections.Counter(), collections.Counter(),
                                    collections.Counter())
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue  # the executor's threads; others hold wrappers (Process, Run)
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or "::" in name or name.startswith("__inference"):
                    continue  # executor and function-call events contain the ops themselves
                scope, op_type = name.rsplit(":", 1)
                # oneDNN rewrites MatMul to _MklMatMul, _MklNativeFusedMatMul, ...
                op_type = op_type.replace("_MklNative", "").replace("_Mkl", "").lstrip("_")
                seconds = event.duration_ps / 1e12
                by_type[op_type] += seconds
                part = part_of(scope)
                by_part[part] += seconds
                if part == "other":
                    unassigned[re.sub(r"layer_\d+(_\d+)?", "layer_N", name)] += seconds
    return dict(by_type), dict(by_part), dict(unassigned), sum(by_type.values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--seq_length", type=int, default=128)
    ap.add_argument("--mixed_precision", default="bfloat16", choices=["float32", "bfloat16"])
    ap.add_argument("--xla", action="store_true", help="compile the step with XLA (the trace "
                    "then shows XLA clusters, not ops)")
    ap.add_argument("--model_size", default="small")
    ap.add_argument("--hparams", default=None, help="extra hparams (JSON dict)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--top", type=int, default=15, help="op types to print")
    ap.add_argument("--show_other", type=int, default=0, help="list the N largest ops "
                    "that no part matched")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)

    import tensorflow as tf
    from pretraining_throughput import write_synthetic_tfrecords
    from electra_tf.config import PretrainingConfig
    from electra_tf.tokenization import default_vocab_file
    from electra_tf.training.pretrain import (RunOptions, make_train_step, PretrainingRun,
                                              special_token_ids)

    config = PretrainingConfig.from_preset(args.model_size, args.hparams,
                                           max_seq_length=args.seq_length,
                                           train_batch_size=args.batch_size)
    with tempfile.TemporaryDirectory(prefix="electra_profile_") as tmp:
        special = special_token_ids(config, default_vocab_file())
        data_glob = write_synthetic_tfrecords(tmp, args.seq_length, config.vocab_size, special)
        options = RunOptions(model_dir=os.path.join(tmp, "model"), pretrain_tfrecords=data_glob,
                             jit_compile=args.xla, seed=0, quiet=True,
                             mixed_precision=None if args.mixed_precision == "float32"
                             else args.mixed_precision)
        run = PretrainingRun(config, options, training=True)
        train_step = make_train_step(run, args.xla)
        for _ in range(args.warmup):
            float(train_step(run.iterator)["total_loss"])
        logdir = os.path.join(tmp, "trace")
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(args.steps):
            float(train_step(run.iterator)["total_loss"])
        wall = (time.perf_counter() - start) / args.steps
        tf.profiler.experimental.stop()
        by_type, by_part, unassigned, total = op_times(logdir)

    print(f"{args.mixed_precision}, B={args.batch_size}, L={args.seq_length}, "
          f"XLA {'on' if args.xla else 'off'}: {wall:.2f} s/step wall while tracing; "
          f"op time summed over threads {total / args.steps:.2f} s/step")
    print("\nby part of the step:")
    for part, seconds in sorted(by_part.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * seconds / total:5.1f}%  {part}")
    print(f"\ntop {args.top} op types:")
    for op_type, seconds in sorted(by_type.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"  {100 * seconds / total:5.1f}%  {op_type}")
    if args.show_other:
        print("\nlargest ops of no part:")
        for name, seconds in sorted(unassigned.items(), key=lambda kv: -kv[1])[:args.show_other]:
            print(f"  {100 * seconds / total:5.1f}%  {name}")
    if args.json:
        row = {"benchmark": "profile_step", "precision": args.mixed_precision,
               "batch": args.batch_size, "seq": args.seq_length, "xla": args.xla,
               "wall_s_per_step": wall, "op_s_per_step": total / args.steps,
               "share_by_part": {k: v / total for k, v in by_part.items()},
               "share_by_type": {k: v / total for k, v in by_type.items()}}
        with open(args.json, "a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
