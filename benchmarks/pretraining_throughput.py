"""Throughput of the ELECTRA pre-training step (default ELECTRA-Small), optionally beside the peers.

    python benchmarks/pretraining_throughput.py                       # B=32,128, XLA off and on
    python benchmarks/pretraining_throughput.py --peers --json=benchmarks/results.jsonl
    python benchmarks/pretraining_throughput.py --batch_sizes=8 --steps=3 --warmup=1   # smoke test
    python benchmarks/pretraining_throughput.py --mixed_precision=all --peers \
        --json=benchmarks/results.jsonl                     # every precision, every peer

What is timed is exactly the step `run_pretraining.py` runs: the run is built by
``electra_tf.training.pretrain.PretrainingRun`` (models, AdamWeightDecay with global-norm
clipping 1.0,
tf.data input over TFRecords) and stepped by ``make_train_step`` (in-graph masking, generator,
Gumbel-max sampling, discriminator, MLM + 50 x RTD loss, gradients, optimizer update; with
``--xla=on`` the loss-and-gradient part is ``jit_compile``d, as the driver does). The input is
synthetic: random full-length records written as TFRecords to a temporary directory
(``--input=memory`` repeats one batch from memory instead, like the peer scripts do).

Per configuration (batch size x XLA on/off) the first ``--warmup`` steps (tracing and
compilation) are excluded and the median of ``--steps`` timed steps is reported as s/step,
steps/s, tokens/s (B*L per step), model FLOPs per step and MFU. FLOPs are counted from the
model shapes: 2*m*n*k per matmul (dense layers, attention scores and context), discriminator
at all positions plus its head, generator at all positions plus its MLM head at the
N = int((mask_prob + 0.005) * L) masked positions only; training = 3 x forward.
MFU = FLOPs/step / step time / peak of the step's precision, the peak measured here: the best
of a few 2048x2048 matmuls, for float32 the better of numpy and TensorFlow, for bfloat16 and
float16 the better of TensorFlow with and without XLA (numpy has no bfloat16; on a CPU with
AVX-512-bf16 but no AMX, oneDNN's bfloat16 matmul runs at half the float32 rate and XLA's is
faster, so the peak is the best the framework reaches, not one kernel's); --peak_gflops
overrides the float32 one. MFU against the nominal FP32 peak of the reference machine
(--nominal_peak_gflops, 156.5) is printed too.

--mixed_precision picks the precisions timed (comma list of float32, bfloat16, float16, or
``all``): ours with ``run_pretraining.py --mixed_precision`` (Keras mixed policy: bfloat16/
float16 compute, float32 variables, losses and softmax statistics), HF transformers with
``--bf16`` (torch.autocast), Model Garden under tf-keras' ``mixed_bfloat16`` /
``mixed_float16`` policy (benchmarks/peers/keras_policy.py). HF has no float16 mode on CPU.

The "defaults" row (``--defaults``; on by default when float32 and bfloat16 are timed with
XLA off and on) times the step as ``run_pretraining.py`` runs it without --mixed_precision
and --jit_compile: both chosen by the runtime (on a CPU by the cached CPU probe of
``electra_tf.training.precision_probe``); the row records what was chosen and why. The
summary then sets the default beside the best of our four configurations and the peers'
best: default/best and ours/peer ratios per round, and their medians over ``--rounds``
(each round times every row once, in a rotated order).

--peers also runs the peer implementations of /work/shared/bench (TF Model Garden, with and
without XLA, and Hugging Face transformers on PyTorch) one after another in their own venvs,
with the same batch, sequence length, warm-up and step counts, and prints throughput ratios
ours/peer (tokens/s; > 1 means electra-tf is faster).

The machine must be otherwise idle: every number is wall-clock time on a shared CPU.
"""

import argparse
import datetime
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

NOMINAL_PEAK_GFLOPS = 156.5  # FP32 peak of the 2-core reference machine (shared/docs/environment-notes.md)
DEFAULT_BENCH_DIR = os.path.join(os.path.dirname(ROOT), "shared", "bench")
PEERS = {
    # name: (python of its venv, script, extra flags, label)
    "mg": ("/tmp/peers-mg/bin/python", "peers_mg.py", [], "Model Garden"),
    "mg_jit": ("/tmp/peers-mg/bin/python", "peers_mg.py", ["--jit"], "Model Garden XLA"),
    "hf": ("/tmp/peers-pt/bin/python", "peers_hf.py", [], "HF transformers PyTorch"),
}
PRECISIONS = ("float32", "bfloat16", "float16")
KERAS_POLICY_RUNNER = os.path.join(ROOT, "benchmarks", "peers", "keras_policy.py")


def peer_command(name, precision, bench_dir):
    """The command of a peer at a precision, or None when the peer has no such mode."""
    python, script, extra, _ = PEERS[name]
    script = os.path.join(bench_dir, script)
    if precision == "float32":
        return [python, script] + extra
    if name == "hf":
        return [python, script, "--bf16"] + extra if precision == "bfloat16" else None
    return [python, KERAS_POLICY_RUNNER, f"mixed_{precision}", script] + extra


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch_sizes", default="32,128", help="comma-separated global batch sizes")
    ap.add_argument("--seq_length", type=int, default=128, help="max_seq_length L")
    ap.add_argument("--xla", choices=["both", "on", "off"], default="both",
                    help="time the step with jit_compile off, on, or both")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per configuration (median)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="untimed steps first (the first one traces/compiles)")
    ap.add_argument("--model_size", default="small", help="preset in configs/")
    ap.add_argument("--hparams", default=None, help="extra hparams (JSON dict or .json path)")
    ap.add_argument("--input", choices=["tfrecord", "memory"], default="tfrecord",
                    help="tfrecord: the driver's tf.data pipeline over synthetic TFRecords; "
                         "memory: one in-memory batch repeated")
    ap.add_argument("--mixed_precision", default="float32,bfloat16",
                    help="precisions to time: comma list of float32, bfloat16, float16, or all")
    ap.add_argument("--peak_gflops", type=float, default=None,
                    help="float32 peak for MFU; default: measured with 2048^2 matmuls")
    ap.add_argument("--nominal_peak_gflops", type=float, default=NOMINAL_PEAK_GFLOPS,
                    help="nominal FP32 peak, for a second MFU column")
    ap.add_argument("--peers", nargs="?", const="auto", default="",
                    help="also run peers: comma list of mg, mg_jit, hf; bare --peers = mg (if "
                         "XLA off is timed), mg_jit (if XLA on is timed) and hf")
    ap.add_argument("--peer_precisions", default=None,
                    help="precisions the peers run in (default: those of --mixed_precision)")
    ap.add_argument("--bench_dir", default=DEFAULT_BENCH_DIR, help="where peers_*.py live")
    ap.add_argument("--peer_timeout", type=int, default=3600, help="seconds per peer run")
    ap.add_argument("--json", default="", help="append JSON lines (one per result + a summary)")
    ap.add_argument("--defaults", choices=["auto", "on", "off"], default="auto",
                    help="also time the default configuration (precision and XLA chosen by "
                         "the runtime); auto: when float32 and bfloat16 x XLA off/on are timed")
    ap.add_argument("--rounds", type=int, default=1,
                    help="time every row this many times (rotated order); the summary gives "
                         "per-round ratios and their medians")
    ap.add_argument("--interleave", action="store_true",
                    help="run every configuration (ours, the defaults row, the peers) in its "
                         "own live process and alternate their steps: round k times step k of "
                         "each, so the ratios of a round share the machine's load; needs the "
                         "memory of all of them at once")
    ap.add_argument("--peak_repeats", type=int, default=10,
                    help="timed 2048^2 matmuls per peak measurement (0: skip the peaks)")
    ap.add_argument("--keep_dir", action="store_true", help="keep the temporary directory")
    ap.add_argument("--_child", default="", help=argparse.SUPPRESS)  # batch,xla,prec,glob,dir
    ap.add_argument("--_serve", default="", help=argparse.SUPPRESS)  # the same, --interleave
    args = ap.parse_args(argv)
    args.precisions = (list(PRECISIONS) if args.mixed_precision == "all" else
                       [p.strip() for p in args.mixed_precision.split(",") if p.strip()])
    bad = [p for p in args.precisions if p not in PRECISIONS]
    if bad or not args.precisions:
        ap.error(f"--mixed_precision: unknown {bad}; choose from {', '.join(PRECISIONS)} or all")
    args.peer_precisions = (args.precisions if args.peer_precisions is None else
                            [p.strip() for p in args.peer_precisions.split(",") if p.strip()])
    if any(p not in args.precisions for p in args.peer_precisions):
        ap.error("--peer_precisions must be among --mixed_precision's")
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    args.xla_modes = {"both": [False, True], "on": [True], "off": [False]}[args.xla]
    if args.steps < 1 or args.warmup < 1:
        ap.error("--steps and --warmup must be >= 1 (the first step traces/compiles)")
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    args.time_defaults = args.defaults == "on" or (
        args.defaults == "auto" and {"float32", "bfloat16"} <= set(args.precisions)
        and args.xla_modes == [False, True])
    if args.peers == "auto":
        args.peers = (["mg"] if False in args.xla_modes else []) + \
                     (["mg_jit"] if True in args.xla_modes else []) + ["hf"]
    else:
        args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in args.peers if p not in PEERS]
    if unknown:
        ap.error(f"unknown peer(s) {unknown}; choose from {', '.join(PEERS)}")
    return args


# ---------------------------------------------------------------------------
# Peak and FLOPs
# ---------------------------------------------------------------------------

def measure_peak_gflops(n=2048, repeats=10):
    """Best float32 GFLOP/s of a few n x n numpy matmuls (one untimed first)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best / 1e9


def measure_tf_peak_gflops(precision, n=2048, repeats=10, jit_compile=False):
    """Best GFLOP/s of a few n x n TensorFlow matmuls in ``precision`` (one untimed first).

    Chained inside one tf.function (8 matmuls a call) so the call overhead is not timed;
    on the default device (a GPU when there is one).
    """
    import tensorflow as tf
    dtype = tf.as_dtype(precision)
    a = tf.cast(tf.random.stateless_normal((n, n), seed=(0, 1)), dtype)
    b = tf.cast(tf.random.stateless_normal((n, n), seed=(0, 2)) / n ** 0.5, dtype)
    chain = 8

    @tf.function(jit_compile=jit_compile)
    def run(x):
        for _ in range(chain):
            x = tf.matmul(x, b)
        return tf.reduce_sum(tf.cast(x[:1, :1], tf.float32))

    run(a).numpy()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        run(a).numpy()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 * chain / best / 1e9


def measure_peaks(precisions, float32_override=None, repeats=10):
    """{precision: (GFLOP/s, how measured)} for MFU (NaN for every precision when
    ``repeats`` is 0, but an explicit float32 override)."""
    peaks = {}
    if repeats < 1:
        for precision in precisions:
            peaks[precision] = ((float32_override, "--peak_gflops")
                                if precision == "float32" and float32_override
                                else (float("nan"), "not measured (--peak_repeats=0)"))
        return peaks
    for precision in precisions:
        tf_peak = measure_tf_peak_gflops(precision, repeats=repeats)
        if precision == "float32":
            np_peak = measure_peak_gflops(repeats=repeats)
            best = max(tf_peak, np_peak)
            how = f"2048^2 matmul best: numpy {np_peak:.0f}, TensorFlow {tf_peak:.0f}"
            peaks[precision] = ((float32_override, how + "; --peak_gflops used")
                                if float32_override else (best, how))
        else:
            xla_peak = measure_tf_peak_gflops(precision, repeats=repeats, jit_compile=True)
            peaks[precision] = (max(tf_peak, xla_peak),
                                f"2048^2 TensorFlow {precision} matmul best: {tf_peak:.0f} "
                                f"without XLA, {xla_peak:.0f} with XLA")
    return peaks


def _encoder_forward_flops(c, batch, length):
    """Matmul FLOPs of one transformer encoder forward at all B*L positions."""
    rows = batch * length
    h, inner = c.hidden_size, c.intermediate_size
    flops = 0
    if c.embedding_size != h:  # embeddings_project E -> H
        flops += 2 * rows * c.embedding_size * h
    per_layer = (2 * rows * h * 3 * h          # query, key, value
                 + 2 * rows * length * h       # scores Q K^T (all heads together)
                 + 2 * rows * length * h       # probs x V
                 + 2 * rows * h * h            # attention output dense
                 + 2 * rows * h * inner        # intermediate
                 + 2 * rows * inner * h)       # output
    return flops + c.num_hidden_layers * per_layer


def step_flops(config, batch):
    """Model FLOPs of one ELECTRA training step (3 x forward), with the forward breakdown."""
    from electra_tf.pretraining.recipes import Electra, Recipe
    recipe = Recipe.for_config(config)
    if not isinstance(recipe, Electra):
        raise SystemExit(f"the FLOP count covers the default ELECTRA recipe (separate small "
                         f"generator) only, not {recipe.kind!r} ({recipe.describe()})")
    length, n_pred = config.max_seq_length, config.max_predictions_per_seq
    d, g = config.discriminator_config(), config.generator_config()
    disc = (_encoder_forward_flops(d, batch, length)
            + 2 * batch * length * d.hidden_size * d.hidden_size   # head dense H -> H
            + 2 * batch * length * d.hidden_size)                  # head dense_1 H -> 1
    gen_encoder = _encoder_forward_flops(g, batch, length)
    e = g.embedding_size  # tied: the generator head projects to the embedding width
    gen_head = (2 * batch * n_pred * g.hidden_size * e            # head dense G -> E
                + 2 * batch * n_pred * e * g.vocab_size)           # logits against [V, E]
    forward = disc + gen_encoder + gen_head
    return {"train": 3 * forward, "forward": forward, "discriminator_forward": disc,
            "generator_encoder_forward": gen_encoder, "generator_head_forward": gen_head,
            "masked_positions": n_pred}


# ---------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------

def write_synthetic_tfrecords(directory, length, vocab_size, special, num_files=2,
                              records_per_file=256, seed=0):
    """Random full-length two-segment examples, [CLS] a [SEP] b [SEP]; returns a glob."""
    import tensorflow as tf
    from electra_tf.data.pretraining_data import PackedExample, serialize_example, shard_name
    rng = np.random.default_rng(seed)
    first_len = (length - 3) // 2
    for i in range(num_files):
        with tf.io.TFRecordWriter(os.path.join(directory, shard_name(i, num_files))) as writer:
            for _ in range(records_per_file):
                body = rng.integers(1000, vocab_size, length - 3).tolist()
                ids = ([special["cls"]] + body[:first_len] + [special["sep"]]
                       + body[first_len:] + [special["sep"]])
                segments = [0] * (first_len + 2) + [1] * (length - first_len - 2)
                writer.write(serialize_example(PackedExample(ids, [1] * length, segments)))
    return os.path.join(directory, "pretrain_data.tfrecord-*")


# ---------------------------------------------------------------------------
# Our step
# ---------------------------------------------------------------------------

def build_ours(config, xla, precision, data_glob, model_dir, args):
    """Builds the run exactly as the driver does: (one-step function returning the losses,
    the row's fields so far). The run stays alive as long as the step function.

    ``precision="auto"`` and ``xla=None``: the defaults of ``run_pretraining.py`` (what the
    runtime chooses without --mixed_precision and --jit_compile).
    """
    import keras
    import tensorflow as tf
    from electra_tf.training.pretrain import RunOptions, make_train_step, PretrainingRun

    keras.backend.clear_session()
    default = precision == "auto"
    options = RunOptions(model_dir=model_dir, pretrain_tfrecords=data_glob, jit_compile=xla,
                         mixed_precision=(precision if default else
                                          None if precision == "float32" else precision),
                         seed=0, quiet=True)
    os.makedirs(model_dir, exist_ok=True)
    t = time.perf_counter()
    run = PretrainingRun(config, options, training=True)
    build_s = time.perf_counter() - t
    chosen = {}
    if default:
        runtime = run.runtime
        precision, xla = runtime.mixed_precision or "float32", runtime.jit_compile
        chosen = {"default": True, "precision_reason": runtime.precision_reason,
                  "xla_reason": getattr(runtime, "xla_reason", None),
                  "runtime_s": build_s}
    n_params = sum(int(np.prod(v.shape)) for v in run.objective.trainable_variables)
    train_step = make_train_step(run, xla)
    iterator = run.iterator
    if args.input == "memory":
        with tf.device("/cpu:0"):
            batch = next(run.iterator)
            iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())

    def step():
        return {k: float(v) for k, v in train_step(iterator).items()}  # float() waits

    return step, {"impl": "electra_tf", "xla": xla, "precision": precision,
                  "input": args.input, **chosen, "params_m": n_params / 1e6,
                  "build_s": build_s}


def time_ours(config, xla, precision, data_glob, model_dir, args):
    """Builds the run exactly as the driver does and times its train step (see
    :func:`build_ours`)."""
    step, row = build_ours(config, xla, precision, data_glob, model_dir, args)
    t = time.perf_counter()
    stats = step()
    first_s = time.perf_counter() - t
    for _ in range(args.warmup - 1):
        step()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        stats = step()
        times.append(time.perf_counter() - t)
    del step  # holds the run, its step and iterator until collected
    gc.collect()
    return {**row, "first_step_s": first_s, "step_times": times,
            "median_step_s": statistics.median(times), "min_step_s": min(times),
            "last_loss": stats["total_loss"]}


def serve_ours(config, xla, precision, data_glob, model_dir, args):
    """``--interleave``'s child: builds, warms up, prints ``READY {row}``, then runs one step
    per ``step`` line on stdin, answering ``TIME <seconds> <loss>``, until ``quit``."""
    step, row = build_ours(config, xla, precision, data_glob, model_dir, args)
    t = time.perf_counter()
    step()
    row["first_step_s"] = time.perf_counter() - t
    for _ in range(args.warmup - 1):
        step()
    print("READY " + json.dumps(row), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command == "step":
            t = time.perf_counter()
            stats = step()
            print(f"TIME {time.perf_counter() - t:.6f} {stats['total_loss']:.6f}", flush=True)
    return 0


# ---------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------

def time_peer(name, batch, precision, args):
    python, _, _, label = PEERS[name]
    if not os.path.exists(python):
        return {"impl": name, "precision": precision,
                "error": f"{python} missing (see {args.bench_dir}/README.md)"}
    cmd = peer_command(name, precision, args.bench_dir)
    if cmd is None:
        return {"impl": name, "precision": precision, "skipped": True,
                "error": f"{label} has no {precision} mode"}
    cmd += ["--batch", str(batch), "--seq", str(args.seq_length),
            "--steps", str(args.steps), "--warmup", str(args.warmup)]
    print(f"  running {label}: {' '.join(cmd)}", flush=True)
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.peer_timeout,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    except subprocess.TimeoutExpired:
        return {"impl": name, "precision": precision,
                "error": f"timed out after {args.peer_timeout} s"}
    results = [line[len("RESULT "):] for line in proc.stdout.splitlines()
               if line.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        return {"impl": name, "precision": precision,
                "error": f"exit {proc.returncode}: " + " | ".join(tail)}
    res = json.loads(results[-1])
    res.update(impl=name, label=label, precision=precision, wall_s=time.perf_counter() - t,
               first_step_s=res.get("first_step_s"), xla=name == "mg_jit")
    return res


# ---------------------------------------------------------------------------
# Interleaved: every configuration in its own live process, steps alternating
# ---------------------------------------------------------------------------

STEPPER = os.path.join(ROOT, "benchmarks", "peers", "stepper.py")


class Stepper:
    """A live process that runs one training step per request (ours: ``--_serve``; a peer:
    ``benchmarks/peers/stepper.py`` around its script)."""

    def __init__(self, cmd, row, log_path):
        self.row = dict(row)
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1,
                                     env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        self.error = None

    def _read(self, prefix):
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        self.error = f"exit {self.proc.wait()} (log: {self.log.name})"
        return None

    def ready(self):
        """Waits until built and warmed up; False if the process failed."""
        info = self._read("READY ")
        if info is not None:
            self.row.update({k: v for k, v in json.loads(info).items()
                             if k not in ("loss", "warmup")})
            self.row["step_times"] = []
        return info is not None

    def step(self):
        """Runs one step; its seconds (None if the process failed)."""
        self.proc.stdin.write("step\n")
        self.proc.stdin.flush()
        answer = self._read("TIME ")
        if answer is None:
            return None
        seconds = float(answer.split()[0])
        self.row["step_times"].append(seconds)
        return seconds

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.log.close()


def stepper_command(batch, what, precision, xla, data_glob, model_dir, args):
    """(command, row) of one configuration in --interleave mode, or (None, error row)."""
    if what == "ours":
        xla_field = "auto" if xla is None else int(xla)
        cmd = [sys.executable, os.path.abspath(__file__), f"--_serve={batch},{xla_field},"
               f"{precision},{data_glob},{model_dir}", f"--seq_length={args.seq_length}",
               f"--warmup={args.warmup}", f"--model_size={args.model_size}",
               f"--input={args.input}"] + ([f"--hparams={args.hparams}"] if args.hparams else [])
        return cmd, {"impl": "electra_tf", "xla": xla, "precision": precision}
    python, _, _, label = PEERS[what]
    row = {"impl": what, "label": label, "precision": precision, "xla": what == "mg_jit"}
    peer = peer_command(what, precision, args.bench_dir)
    if not os.path.exists(python):
        return None, {**row, "error": f"{python} missing (see {args.bench_dir}/README.md)"}
    if peer is None or peer[1] == KERAS_POLICY_RUNNER:
        return None, {**row, "skipped": True,
                      "error": f"{label} has no {precision} mode with --interleave"}
    return ([python, STEPPER, *peer[1:], "--batch", str(batch), "--seq", str(args.seq_length),
             "--steps", "1", "--warmup", str(args.warmup)], row)


def time_interleaved(batch, todo, data_glob, workdir, args):
    """Every configuration of ``todo`` in its own process at once; after all are built and
    warmed up (one after another), ``--steps`` rounds each run one step of every
    configuration, in an order rotated per round. Returns the rows, each with its
    ``step_times`` (index = round).

    The defaults row is built first; the explicit configuration it resolves to is then not
    built again: the default's process stands for it (``stands_for``), which saves the
    memory of one process (all of them are alive at once).
    """
    steppers, rows = [], []
    todo = sorted(todo, key=lambda item: item[0] != "auto")  # the default first
    try:
        for index, (precision, what, xla) in enumerate(todo):
            twin = next((s for s in steppers if s.row.get("default") and what == "ours" and
                         (s.row["precision"], s.row["xla"]) == (precision, xla)), None)
            if twin is not None:
                twin.row["stands_for"] = label_of({"impl": "electra_tf", "xla": xla,
                                                   "precision": precision})
                print(f"  ({precision}, XLA {xla}) is the default: timed by its process",
                      flush=True)
                continue
            cmd, row = stepper_command(batch, what, precision, xla, data_glob,
                                       os.path.join(workdir, f"serve-{batch}-{index}"), args)
            if cmd is None:
                rows.append(row)
                continue
            print(f"  starting {' '.join(os.path.basename(c) for c in cmd[:3])} "
                  f"({precision}, {what}, XLA {xla}) ...", flush=True)
            launch_stepper(cmd, row, os.path.join(workdir, f"serve-{batch}-{index}.log"),
                           steppers, rows)
        for round_ in range(args.steps):
            time_round(steppers, round_)
    finally:
        for stepper in steppers:
            stepper.close()
    for row, times in timed_steppers(steppers, rows):
        row.update(median_step_s=statistics.median(times), min_step_s=min(times),
                   interleaved=True)
        rows.append(row)
    return rows


def launch_stepper(cmd, row, log, steppers: list, rows: list) -> None:
    """Starts a :class:`Stepper`: a ready one joins ``steppers``, one that failed to start
    becomes an error row in ``rows``."""
    stepper = Stepper(cmd, row, log)
    if stepper.ready():
        steppers.append(stepper)
    else:
        rows.append({**row, "error": stepper.error})
        stepper.close()


def timed_steppers(steppers, rows: list) -> list:
    """``[(row, step times)]`` of the (closed) steppers that timed steps; the others become
    error rows in ``rows``."""
    timed = []
    for stepper in steppers:
        row, times = stepper.row, stepper.row.get("step_times", [])
        if stepper.error or not times:
            rows.append({**row, "error": stepper.error or "no step timed"})
        else:
            timed.append((row, times))
    return timed


def time_round(steppers, round_):
    """One step of every live configuration, starting at a rotating position."""
    times = []
    for stepper in rotated(list(steppers), round_):
        if stepper.error is None:
            times.append(stepper.step())
    print(f"    round {round_ + 1}: " + ", ".join(
        f"{label_of(s.row)} {s.row['step_times'][-1]:.2f}" for s in steppers
        if s.error is None and s.row.get("step_times")), flush=True)
    return times


def rounds_of(rows):
    """Interleaved rows split into one row per round (step), for :func:`defaults_summary`."""
    out = []
    for row in rows:
        if row.get("interleaved"):
            for step, seconds in enumerate(row["step_times"]):
                out.append({**row, "round": row.get("round", 0) * 1000 + step,
                            "median_step_s": seconds})
        else:
            out.append(row)
    return out


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def complete(res, batch, length, flops, peak, nominal):
    """Adds batch, tokens/s, FLOPs and MFU to a result with median_step_s."""
    med = res["median_step_s"]
    res.update(batch=batch, seq=length, steps_per_s=1.0 / med, tokens_per_s=batch * length / med,
               gflop_per_step=flops / 1e9, achieved_gflops=flops / med / 1e9,
               mfu=flops / med / 1e9 / peak, mfu_nominal=flops / med / 1e9 / nominal)
    return res


def label_of(res):
    precision = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "auto": "auto"}[
        res.get("precision", "float32")]
    if res["impl"] == "electra_tf":
        return (f"electra-tf {'DEFAULT ' if res.get('default') else ''}"
                f"{'XLA' if res['xla'] else 'no XLA'} {precision}")
    return f"{res.get('label', PEERS.get(res['impl'], ('', '', '', res['impl']))[3])} {precision}"


def print_table(results):
    head = (f"{'implementation':<34}{'B':>5}{'first s':>9}{'s/step':>9}{'steps/s':>9}"
            f"{'tokens/s':>10}{'GFLOP/st':>10}{'GFLOP/s':>9}{'MFU':>7}{'MFU nom':>9}")
    print(head)
    print("-" * len(head))
    for r in results:
        if "error" in r:
            print(f"{label_of(r):<34}{r['batch']:>5}  "
                  f"{'n/a' if r.get('skipped') else 'ERROR'} {r['error']}")
            continue
        first = r.get("first_step_s")
        print(f"{label_of(r):<34}{r['batch']:>5}{first if first is not None else float('nan'):>9.1f}"
              f"{r['median_step_s']:>9.3f}{r['steps_per_s']:>9.3f}{r['tokens_per_s']:>10.1f}"
              f"{r['gflop_per_step']:>10.1f}{r['achieved_gflops']:>9.1f}{100 * r['mfu']:>6.1f}%"
              f"{100 * r['mfu_nominal']:>8.1f}%")


def ratios(results):
    """ours/peer tokens/s at each batch and precision: ours without XLA vs Model Garden, with
    XLA vs Model Garden XLA, and our faster mode vs every peer."""
    out = []
    # The default rows are in defaults_summary; one that stands for its configuration
    # (--interleave) is that configuration's row here.
    results = [r for r in results if not r.get("default") or r.get("stands_for")]
    for batch, precision, round_ in sorted({(r["batch"], r.get("precision", "float32"),
                                             r.get("round", 0)) for r in results}):
        rows = [r for r in results if r["batch"] == batch and "error" not in r
                and r.get("precision", "float32") == precision
                and r.get("round", 0) == round_]
        ours = {r["xla"]: r for r in rows if r["impl"] == "electra_tf"}
        peers = [r for r in rows if r["impl"] != "electra_tf"]
        if not ours:
            continue
        best = max(ours.values(), key=lambda r: r["tokens_per_s"])
        for peer in peers:
            pairs = [best]
            if peer["impl"] in ("mg", "mg_jit") and peer["xla"] in ours \
                    and ours[peer["xla"]] is not best:
                pairs.insert(0, ours[peer["xla"]])
            for mine in pairs:
                out.append({"batch": batch, "precision": precision, "round": round_,
                            "ours": label_of(mine),
                            "peer": label_of(peer),
                            "ratio_tokens_per_s": mine["tokens_per_s"] / peer["tokens_per_s"]})
    return out


def defaults_summary(results):
    """The default beside the best of our configurations and the peers' best, per batch.

    Per round (rows timed in the same round): the default row's s/step, our fastest
    configuration among the four (float32/bfloat16 x XLA off/on, the default row counted as
    the configuration it chose), the fastest peer; ``default_vs_best`` = best s / default s (1.0: the default is the
    fastest; 0.95: 5% slower), ``default_vs_peer_best`` and ``best_vs_peer_best`` = peer s /
    ours s (> 1: electra-tf faster). Then, per batch, the median of each ratio over rounds.
    """
    ok = [r for r in results if "error" not in r and "median_step_s" in r]
    per_round = []
    for batch, round_ in sorted({(r["batch"], r.get("round", 0)) for r in ok}):
        rows = [r for r in ok if r["batch"] == batch and r.get("round", 0) == round_]
        default = next((r for r in rows if r["impl"] == "electra_tf" and r.get("default")),
                       None)
        ours = [r for r in rows if r["impl"] == "electra_tf"]
        peers = [r for r in rows if r["impl"] != "electra_tf"]
        if default is None:
            continue
        best = min(ours, key=lambda r: r["median_step_s"])
        entry = {"batch": batch, "round": round_, "default": label_of(default),
                 "default_s": default["median_step_s"], "best": label_of(best),
                 "best_s": best["median_step_s"],
                 "default_vs_best": best["median_step_s"] / default["median_step_s"],
                 "default_is_best_config": (default["precision"], default["xla"]) ==
                 (best["precision"], best["xla"])}
        if peers:
            peer = min(peers, key=lambda r: r["median_step_s"])
            entry.update(peer_best=label_of(peer), peer_best_s=peer["median_step_s"],
                         default_vs_peer_best=peer["median_step_s"] / default["median_step_s"],
                         best_vs_peer_best=peer["median_step_s"] / best["median_step_s"])
        per_round.append(entry)
    medians = []
    for batch in sorted({e["batch"] for e in per_round}):
        entries = [e for e in per_round if e["batch"] == batch]
        summary = {"batch": batch, "rounds": len(entries)}
        for key in ("default_s", "best_s", "peer_best_s", "default_vs_best",
                    "default_vs_peer_best", "best_vs_peer_best"):
            values = [e[key] for e in entries if key in e]
            if values:
                summary[key] = statistics.median(values)
        for key in ("default", "best", "peer_best"):
            labels = [e[key] for e in entries if key in e]
            if labels:
                summary[key] = max(set(labels), key=labels.count)  # the most frequent
        medians.append(summary)
    return {"per_round": per_round, "medians": medians}


def print_defaults_summary(summary):
    if not summary["per_round"]:
        return
    print("\ndefaults: the default configuration beside our best of the four and the peers' "
          "best (s/step; ratios > 1: the first is faster)")
    for e in summary["per_round"]:
        line = (f"  B={e['batch']:<4} round {e['round']}: {e['default']} {e['default_s']:.3f}"
                f" | best {e['best']} {e['best_s']:.3f} | default/best "
                f"{e['default_vs_best']:.3f}x")
        if "peer_best" in e:
            line += (f" | peer best {e['peer_best']} {e['peer_best_s']:.3f} | default/peer "
                     f"{e['default_vs_peer_best']:.2f}x, best/peer {e['best_vs_peer_best']:.2f}x")
        print(line)
    for m in summary["medians"]:
        line = (f"  B={m['batch']:<4} median of {m['rounds']} round(s): default/best "
                f"{m['default_vs_best']:.3f}x")
        if "default_vs_peer_best" in m:
            line += (f", default/peer best {m['default_vs_peer_best']:.2f}x, best/peer best "
                     f"{m['best_vs_peer_best']:.2f}x")
        print(line)


def rotated(items, round_):
    """``items`` starting at position ``round_`` (mod len): rounds vary the order."""
    if not items:
        return items
    k = round_ % len(items)
    return items[k:] + items[:k]


def append_json(path, obj):
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(obj, sort_keys=True) + "\n")


def machine_info():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), "")
    except OSError:
        pass
    return {"host": platform.node(), "cpu": model, "cpus": os.cpu_count(),
            "python": platform.python_version()}


def time_ours_isolated(batch, xla, precision, data_glob, model_dir, args):
    """Times one configuration of ours in a fresh process, so runs do not share memory
    (``precision="auto"``, ``xla=None``: the defaults row).

    (Keeping every configuration in one process let TensorFlow's caches grow to
    ~17 GB over four configurations and the OOM killer stopped the benchmark.)
    """
    xla_field = "auto" if xla is None else int(xla)
    cmd = [sys.executable, os.path.abspath(__file__), f"--_child={batch},{xla_field},"
           f"{precision},{data_glob},{model_dir}", f"--seq_length={args.seq_length}",
           f"--steps={args.steps}", f"--warmup={args.warmup}",
           f"--model_size={args.model_size}", f"--input={args.input}"]
    if args.hparams:
        cmd.append(f"--hparams={args.hparams}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("OURS "):
            return json.loads(line[5:])
    return {"impl": "electra_tf", "xla": xla, "precision": precision,
            "error": proc.stderr.strip()[-2000:]}


def child_main(args):
    batch, xla, precision, data_glob, model_dir = (args._child or args._serve).split(",", 4)
    from electra_tf.config import PretrainingConfig
    config = PretrainingConfig.from_preset(args.model_size, args.hparams,
                                           max_seq_length=args.seq_length,
                                           train_batch_size=int(batch))
    xla = None if xla == "auto" else bool(int(xla))
    if args._serve:
        return serve_ours(config, xla, precision, data_glob, model_dir, args)
    print("OURS " + json.dumps(time_ours(config, xla, precision, data_glob, model_dir, args)))
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args._child or args._serve:
        return child_main(args)
    started = datetime.datetime.now().isoformat(timespec="seconds")
    load = os.getloadavg()[0]
    machine = machine_info()
    print(f"{machine['cpu']} ({machine['cpus']} CPUs); load average {load:.2f}"
          + ("  WARNING: the machine is busy, timings will be noisy" if load > 0.5 else ""))
    peaks = measure_peaks(args.precisions, args.peak_gflops, args.peak_repeats)
    for precision, (gflops, how) in peaks.items():
        print(f"peak {precision}: {gflops:.1f} GFLOP/s ({how})", flush=True)
    print(f"nominal float32 peak of the reference machine: {args.nominal_peak_gflops:.1f}")

    import tensorflow as tf
    from electra_tf.config import PretrainingConfig
    from electra_tf.tokenization import default_vocab_file
    from electra_tf.training.pretrain import special_token_ids
    meta = {"benchmark": "pretraining_throughput", "started": started, **machine,
            "tensorflow": tf.__version__, "load_avg_1m": load,
            "peak_gflops": {p: g for p, (g, _) in peaks.items()},
            "nominal_peak_gflops": args.nominal_peak_gflops, "model_size": args.model_size,
            "warmup": args.warmup, "steps": args.steps, "rounds": args.rounds}

    workdir = tempfile.mkdtemp(prefix="electra-throughput-")
    results = []
    try:
        base = PretrainingConfig.from_preset(args.model_size, args.hparams,
                                             max_seq_length=args.seq_length)
        special = special_token_ids(base, default_vocab_file())
        data_glob = write_synthetic_tfrecords(
            workdir, args.seq_length, base.vocab_size, special,
            records_per_file=max(256, max(args.batch_sizes)))
        for round_, batch in ((r, b) for r in range(args.rounds) for b in args.batch_sizes):
            config = PretrainingConfig.from_preset(args.model_size, args.hparams,
                                                   max_seq_length=args.seq_length,
                                                   train_batch_size=batch)
            flops = step_flops(config, batch)
            print(f"\nB={batch} L={args.seq_length}"
                  + (f", round {round_ + 1}/{args.rounds}" if args.rounds > 1 else "")
                  + f": {flops['train'] / 1e9:.1f} GFLOP/step "
                  f"(forward: discriminator {flops['discriminator_forward'] / 1e9:.2f}, "
                  f"generator encoder {flops['generator_encoder_forward'] / 1e9:.2f}, generator "
                  f"head at {flops['masked_positions']} positions "
                  f"{flops['generator_head_forward'] / 1e9:.2f}; x3 for training)", flush=True)
            todo = [(precision, "ours", xla) for precision in args.precisions
                    for xla in args.xla_modes] + \
                   ([("auto", "ours", None)] if args.time_defaults else []) + \
                   [(precision, p, None) for precision in args.peer_precisions
                    for p in args.peers]
            if args.interleave:
                print(f"  interleaved: {len(todo)} configurations in live processes, "
                      f"{args.warmup} warm-up steps each, then {args.steps} rounds of one step "
                      "each", flush=True)
                for res in time_interleaved(batch, rotated(todo, round_), data_glob, workdir,
                                            args):
                    res.update(batch=batch, seq=args.seq_length, round=round_)
                    if "error" in res:
                        print(f"    {'n/a' if res.get('skipped') else 'ERROR'} "
                              f"{label_of(res)}: {res['error']}", flush=True)
                    else:
                        peak = peaks.get(res["precision"], (float("nan"), ""))[0]
                        complete(res, batch, args.seq_length, flops["train"], peak,
                                 args.nominal_peak_gflops)
                    results.append(res)
                    append_json(args.json, {**meta, "record": "result", **res})
                todo = []  # timed above
            for precision, what, xla in rotated(todo, round_):
                if what == "ours":
                    print("  electra-tf " + ("defaults (--mixed_precision and --jit_compile "
                                              "not given)" if precision == "auto" else
                                              f"{precision}, XLA {'on' if xla else 'off'}")
                          + f": {args.warmup} warm-up + {args.steps} timed steps ...",
                          flush=True)
                    res = time_ours_isolated(
                        batch, xla, precision, data_glob,
                        os.path.join(workdir, f"model-{batch}-{xla}-{precision}-{round_}"),
                        args)
                else:
                    res = time_peer(what, batch, precision, args)
                res["round"] = round_
                if "error" in res:
                    res.update(batch=batch, seq=args.seq_length)
                    print(f"    {'n/a' if res.get('skipped') else 'ERROR'}: {res['error']}",
                          flush=True)
                else:
                    peak = peaks.get(res["precision"], (float("nan"), ""))[0]
                    complete(res, batch, args.seq_length, flops["train"], peak,
                             args.nominal_peak_gflops)
                    if res.get("default"):
                        print(f"    chose {res['precision']}, XLA "
                              f"{'on' if res['xla'] else 'off'}: {res['precision_reason']}",
                              flush=True)
                    print(f"    first step {res['first_step_s']:.1f} s, median "
                          f"{res['median_step_s']:.3f} s/step, {res['tokens_per_s']:.0f} tokens/s, "
                          f"MFU {100 * res['mfu']:.1f}%  (steps: "
                          f"{', '.join(f'{x:.2f}' for x in res['step_times'])})", flush=True)
                results.append(res)
                append_json(args.json, {**meta, "record": "result", **res})
    finally:
        if args.keep_dir:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nELECTRA-{args.model_size} pre-training step, L={args.seq_length}, median of "
          f"{args.steps} steps after {args.warmup} warm-up; MFU vs the measured peak of each "
          f"precision (" + ", ".join(f"{p} {g:.0f}" for p, (g, _) in peaks.items())
          + f" GFLOP/s), 'MFU nom' vs {args.nominal_peak_gflops:.1f}")
    print_table(results)
    ratio_rows = ratios(results)
    if ratio_rows:
        print("\nthroughput ratio ours/peer (tokens/s; > 1 = electra-tf faster)")
        for r in ratio_rows:
            print(f"  B={r['batch']:<4} {r['ours']:<28} / {r['peer']:<32} "
                  f"{r['ratio_tokens_per_s']:.2f}x"
                  + (f"  (round {r['round']})" if args.rounds > 1 else ""))
    defaults = defaults_summary(rounds_of(results) if args.interleave else results)
    print_defaults_summary(defaults)
    append_json(args.json, {**meta, "record": "summary", "ratios": ratio_rows,
                            "defaults": defaults,
                            "results": [{k: r.get(k) for k in ("impl", "xla", "precision",
                                                               "batch", "round", "default",
                                                               "median_step_s", "tokens_per_s",
                                                               "mfu", "error")}
                                        for r in results]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
