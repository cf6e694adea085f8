"""Five-minute check of a GPU machine: ELECTRA-Small and -Base pre-training steps, MFU.

    pip install -e . && python benchmarks/gpu_check.py            # one GPU, XLA, bfloat16
    python benchmarks/gpu_check.py --sizes=base --precision=float16   # e.g. a V100 or T4
    python benchmarks/gpu_check.py --tiny                         # any machine: the plumbing

For each model size it builds the run exactly as ``run_pretraining.py`` does
(``PretrainingRun``: models, AdamWeightDecay, clipping, loss scaling for float16) with XLA
and mixed precision, feeds one synthetic full-length batch from memory at the paper's batch
size and sequence length (Small: B=128, L=128; Base: B=256, L=512), and times the step
``make_train_step`` builds: masking, generator, sampling, discriminator, losses, gradients,
update. It prints s/step, steps/s, tokens/s and MFU = model FLOPs per step (counted from the
shapes, benchmarks/pretraining_throughput.py) / step time / peak, where the peak is

  measured: the best of a few 8192^2 matmuls in the same precision on the device, and
  nominal:  the vendor's dense peak for the precision when the GPU is in NOMINAL_TFLOPS.

The goal is >= 50% MFU (of the measured peak) for the Base step; the script says whether it
is met and exits 0 either way (a measurement, not a test). Each size gets --budget_s seconds
of timed steps after --warmup untimed ones (the first compiles), so both sizes take 3-5
minutes on a current GPU. If Base does not fit in memory, lower --base_batch (and say so
when you report the figure). Without a GPU it runs on the CPU and says so; --tiny shrinks
the models and shapes so that the whole script runs in seconds there (the test suite does).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Dense (no sparsity) vendor peaks in TFLOP/s, by a substring of the device name.
NOMINAL_TFLOPS = {
    "H100": {"bfloat16": 989.0, "float16": 989.0, "float32": 67.0},
    "A100": {"bfloat16": 312.0, "float16": 312.0, "float32": 19.5},
    "L40S": {"bfloat16": 362.0, "float16": 362.0, "float32": 91.6},
    "L4": {"bfloat16": 121.0, "float16": 121.0, "float32": 30.3},
    "A10": {"bfloat16": 125.0, "float16": 125.0, "float32": 31.2},
    "V100": {"float16": 125.0, "float32": 15.7},
    "T4": {"float16": 65.0, "float32": 8.1},
}
SIZES = {  # the paper's pre-training shapes (Table 6 / configs/*.json)
    "small": {"batch": 128, "seq": 128},
    "base": {"batch": 256, "seq": 512},
}
TINY_HPARAMS = {"model_hparam_overrides": {"num_hidden_layers": 2, "hidden_size": 64,
                                           "intermediate_size": 128, "num_attention_heads": 2},
                "vocab_size": 30522}
MFU_GOAL = 0.5


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="small,base", help="comma list of small, base")
    ap.add_argument("--precision", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--xla", default=True, action=argparse.BooleanOptionalAction)
    ap.add_argument("--small_batch", type=int, default=SIZES["small"]["batch"])
    ap.add_argument("--base_batch", type=int, default=SIZES["base"]["batch"])
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps (the first compiles)")
    ap.add_argument("--budget_s", type=float, default=60.0, help="timed seconds per size")
    ap.add_argument("--max_steps", type=int, default=200, help="timed steps at most per size")
    ap.add_argument("--tiny", action="store_true",
                    help="2-layer H64 models, B=4, L=32, 2 timed steps: checks the plumbing")
    args = ap.parse_args(argv)
    args.sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in args.sizes if s not in SIZES]
    if unknown:
        ap.error(f"--sizes: unknown {unknown}; choose from {', '.join(SIZES)}")
    return args


def device_info():
    """(kind, name) of the device TensorFlow will run the step on."""
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU", "CPU (no GPU visible to TensorFlow)"
    details = tf.config.experimental.get_device_details(gpus[0])
    return "GPU", details.get("device_name", gpus[0].name)


def nominal_peak(device_name, precision):
    for key, peaks in NOMINAL_TFLOPS.items():
        if key in device_name:
            return peaks.get(precision)
    return None


def measured_peak_tflops(precision, n, repeats=5):
    """Best TFLOP/s of chained n x n matmuls in ``precision`` on the default device (XLA)."""
    from pretraining_throughput import measure_tf_peak_gflops
    return measure_tf_peak_gflops(precision, n, repeats, jit_compile=True) / 1e3


def time_size(size, batch, seq, args, workdir):
    """Median step time of one model size; returns a result dict."""
    import keras
    import tensorflow as tf
    from electra_tf.config import PretrainingConfig
    from electra_tf.tokenization import default_vocab_file
    from electra_tf.training.pretrain import (PretrainingRun, RunOptions, make_train_step,
                                              special_token_ids)
    from pretraining_throughput import step_flops, write_synthetic_tfrecords

    hparams = TINY_HPARAMS if args.tiny else None
    config = PretrainingConfig.from_preset(size, hparams, max_seq_length=seq,
                                           train_batch_size=batch)
    flops = step_flops(config, batch)["train"]
    data_dir = os.path.join(workdir, f"data-{size}")
    os.makedirs(data_dir, exist_ok=True)
    data_glob = write_synthetic_tfrecords(data_dir, seq, config.vocab_size,
                                          special_token_ids(config, default_vocab_file()),
                                          num_files=1, records_per_file=batch)
    keras.backend.clear_session()
    options = RunOptions(model_dir=os.path.join(workdir, f"model-{size}"),
                         pretrain_tfrecords=data_glob, jit_compile=args.xla, seed=0,
                         mixed_precision=None if args.precision == "float32" else args.precision,
                         quiet=True)
    run = PretrainingRun(config, options, training=True)
    train_step = make_train_step(run, args.xla)
    with tf.device("/cpu:0"):
        batch_in_memory = next(run.iterator)
    iterator = iter(tf.data.Dataset.from_tensors(batch_in_memory).repeat())

    def step():
        return float(train_step(iterator)["total_loss"])  # float() waits for the device

    t = time.perf_counter()
    for _ in range(args.warmup):
        loss = step()
    warmup_s = time.perf_counter() - t
    times, started = [], time.perf_counter()
    max_steps = 2 if args.tiny else args.max_steps
    while len(times) < max_steps and (len(times) < 2 or
                                      time.perf_counter() - started < args.budget_s):
        t = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    return {"size": size, "batch": batch, "seq": seq, "warmup_s": warmup_s, "steps": len(times),
            "median_step_s": median, "steps_per_s": 1.0 / median,
            "tokens_per_s": batch * seq / median, "tflop_per_step": flops / 1e12,
            "achieved_tflops": flops / median / 1e12, "loss": loss}


def main(argv=None):
    args = parse_args(argv)
    import tensorflow as tf
    kind, name = device_info()
    print(f"device: {name}; TensorFlow {tf.__version__}; {args.precision}, "
          f"XLA {'on' if args.xla else 'off'}" + ("; --tiny shapes" if args.tiny else ""))
    if kind == "CPU" and not args.tiny:
        print("warning: no GPU: this measures the CPU (use --tiny to check the plumbing only)")
    peak = measured_peak_tflops(args.precision, 256 if args.tiny else 8192)
    nominal = nominal_peak(name, args.precision)
    # Four significant digits below 10 TFLOP/s (a CPU's 0.0342, not 0.03: MFU divides by it).
    shown = f"{peak:.2f}" if peak >= 10 else f"{peak:.4g}"
    print(f"peak {args.precision}: measured {shown} TFLOP/s"
          + (f", nominal {nominal:.0f} TFLOP/s" if nominal else ", nominal unknown"), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="electra-gpu-check-") as workdir:
        for size in args.sizes:
            batch = 4 if args.tiny else getattr(args, f"{size}_batch")
            seq = 32 if args.tiny else SIZES[size]["seq"]
            print(f"ELECTRA-{size} B={batch} L={seq}: {args.warmup} warm-up steps, then up to "
                  f"{args.budget_s:.0f} s of timed steps ...", flush=True)
            res = time_size(size, batch, seq, args, workdir)
            res["mfu"] = res["achieved_tflops"] / peak
            res["mfu_nominal"] = res["achieved_tflops"] / nominal if nominal else None
            results.append(res)
            print(f"  {res['median_step_s']:.4f} s/step ({res['steps']} steps), "
                  f"{res['steps_per_s']:.2f} steps/s, {res['tokens_per_s']:.0f} tokens/s, "
                  f"{res['achieved_tflops']:.2f} TFLOP/s, MFU {100 * res['mfu']:.1f}% of measured"
                  + (f", {100 * res['mfu_nominal']:.1f}% of nominal" if nominal else "")
                  + f"; warm-up {res['warmup_s']:.0f} s; loss {res['loss']:.3f}", flush=True)
    base = next((r for r in results if r["size"] == "base"), None)
    if base is not None:
        met = base["mfu"] >= MFU_GOAL
        print(f"goal: ELECTRA-Base step at >= {100 * MFU_GOAL:.0f}% MFU: "
              f"{'met' if met else 'NOT met'} ({100 * base['mfu']:.1f}%)")
    print("RESULT " + ", ".join(f"{r['size']}={r['steps_per_s']:.3f} steps/s "
                                f"MFU={100 * r['mfu']:.1f}%" for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
