"""Fine-tuning and inference speed of ELECTRA-Small, beside Hugging Face transformers (PyTorch).

    python benchmarks/finetuning_inference_speed.py                     # B=32, L=128, all rows
    python benchmarks/finetuning_inference_speed.py --json=benchmarks/results.jsonl
    python benchmarks/finetuning_inference_speed.py --what=inference --mixed_precision=float32
    python benchmarks/finetuning_inference_speed.py --no-peers --repeats=2 --warmup=1 \
        --model_hparams='{"model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 64}, "embedding_size": 32}'  # tiny

Weights are random (speed does not depend on them); the shapes come from ``configs/<size>.json``
through ``FinetuningConfig`` / ``PretrainingConfig`` (``--model_hparams`` changes them). The
inputs are real English sentences of the bundled Wikipedia excerpt
(``electra_tf/assets/corpus``), tokenized once by ``electra_tf``'s WordPiece tokenizer; the
peer gets the same texts and the same ids.

Rows (every one: the median of ``--repeats`` timed repeats after ``--warmup`` untimed ones,
as s/batch and examples/s = batch / (s/batch)):

Fine-tuning (SST-2 shapes: ``--batch_size`` 32, ``--seq_length`` 128; a repeat is one step):

* ours: the step of ``run_finetuning.py``. The benchmark writes the sentences as an SST-2
  ``train.tsv``, featurises them with the driver's ``FeatureStore`` and calls the driver's
  own training loop ``electra_tf.training.finetune.train_trial`` (optimizer from
  ``Runtime.create_optimizer`` with ``finetuning_optimizer_arguments``: AdamWeightDecay,
  warm-up, layer-wise LR decay, clipping; ``make_update_step``; the tf.data input), with
  ``log_every_steps=1``; a step's time is the time between two of its progress messages.
  Precisions: float32 and ``--mixed_precision=bfloat16`` (Keras ``mixed_bfloat16`` policy,
  ``Runtime``); ``--xla`` picks ``jit_compile`` off (the CPU default), on or both.
* peer: ``ElectraForSequenceClassification`` + ``torch.optim.AdamW`` (same LR, weight decay,
  layer-wise multipliers, clipping), float32 and ``--bf16`` (``torch.autocast``).

Inference (``--num_sentences`` texts, rounded down to a multiple of the batch size; a repeat
is one pass over all of them; s/batch = pass time / batches):

* ours ``detect_replaced_tokens``: ``electra_tf.detection.detect_replaced_tokens`` on the
  strings (Python tokenization, batches of similar length padded to their longest, the
  discriminator, the per-word-piece results) -- what ``python -m electra_tf.detect`` does.
* ours ``discriminator_logits``: ``electra_tf.detection.discriminator_logits`` on the
  pre-tokenized examples (``detection.encode``): the model part of the above.
* ours ``SavedModel``: ``electra_tf.export.export_discriminator`` to a temporary directory,
  ``tf.saved_model.load``, ``signatures["serving_default"](text=...)`` on batches of strings
  (in-graph tokenization, padding to L).
* peer ``ElectraForPreTraining`` under ``torch.inference_mode()``: ``ids_by_length`` (the very
  batches of ``discriminator_logits``), ``text_by_length`` (transformers' tokenizer on the
  same groups of strings, padding to the longest) and ``text_max_length`` (strings, padding
  to L, like the SavedModel).
  Ours in bfloat16: the discriminator built under the ``mixed_bfloat16`` policy (what
  ``--mixed_precision=bfloat16`` of detect and export sets). The detect and logits rows
  are timed with the default XLA setting (``detection.use_xla``: on a CPU the probe's
  choice for the precision; under XLA batches are padded to a multiple of 16 positions)
  and with the other one (``"default": false``); the SavedModel keeps the default.

The "defaults" fine-tuning row (``--defaults``; on by default when float32 and bfloat16 are
timed with ``--xla=both``) runs the driver without --mixed_precision and --jit_compile:
both chosen by the runtime (on a CPU by the cached CPU probe of
``electra_tf.training.precision_probe``); the row records what was chosen and why. The
summary sets it beside our best fine-tuning configuration and the peer's best, per round
(``--rounds``: every row timed once per round, in a rotated order) and as medians.

Ratios ours/peer (examples/s; > 1: electra-tf faster) pair each of our rows with the peer row
of the same inputs and padding, at the same precision: fine-tuning step vs
ElectraForSequenceClassification, detect_replaced_tokens vs text_by_length,
discriminator_logits vs ids_by_length, SavedModel vs text_max_length.

Each of our configurations runs in a fresh process (the Keras policy is global; memory is
returned), the peer in the PyTorch venv (``--peer_python``), one process at a time. The
machine must be otherwise idle: every number is wall-clock time on a shared CPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from pretraining_throughput import (append_json, launch_stepper,  # noqa: E402
                                    machine_info, rotated, time_round, timed_steppers)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PEER_PYTHON = "/tmp/peers-pt/bin/python"
PEER_SCRIPT = os.path.join(ROOT, "benchmarks", "peers", "hf_finetune_inference.py")
PEER_SETUP = ("python3 -m venv /tmp/peers-pt && /tmp/peers-pt/bin/pip install -q "
              "torch==2.13.0 transformers  (see /work/shared/bench/README.md)")
PRECISIONS = ("float32", "bfloat16")
TASKS = ("finetune", "inference")
# Our inference path -> the peer mode on the same inputs and padding.
INFERENCE_PAIRS = {"detect_replaced_tokens": "text_by_length",
                   "discriminator_logits": "ids_by_length",
                   "saved_model": "text_max_length"}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--what", default="finetune,inference",
                    help="comma list of finetune, inference")
    ap.add_argument("--batch_size", type=int, default=32, help="B of every row")
    ap.add_argument("--seq_length", type=int, default=128,
                    help="L: fine-tuning's max_seq_length, inference's truncation length")
    ap.add_argument("--num_sentences", type=int, default=256,
                    help="inference texts per repeat (rounded down to a multiple of B)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per row (median)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="untimed repeats first (the first one traces)")
    ap.add_argument("--mixed_precision", default="float32,bfloat16",
                    help="comma list of float32, bfloat16, or all")
    ap.add_argument("--xla", choices=["off", "on", "both"], default="off",
                    help="fine-tuning step with jit_compile off (CPU default), on or both")
    ap.add_argument("--model_size", default="small", help="preset in configs/")
    ap.add_argument("--model_hparams", default=None,
                    help="JSON dict of model hparams for both configs, e.g. "
                         "model_hparam_overrides and embedding_size")
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True,
                    help="also run transformers on PyTorch (--no-peers: ours only)")
    ap.add_argument("--peer_python", default=PEER_PYTHON, help="python of the PyTorch venv")
    ap.add_argument("--peer_threads", type=int, default=0,
                    help="torch threads of the peer (0: torch's default, all cores)")
    ap.add_argument("--peer_timeout", type=int, default=3600, help="seconds per peer process")
    ap.add_argument("--defaults", choices=["auto", "on", "off"], default="auto",
                    help="also time the fine-tuning step with the default precision and XLA "
                         "(chosen by the runtime); auto: when float32 and bfloat16 are timed "
                         "with --xla=both")
    ap.add_argument("--rounds", type=int, default=1,
                    help="time every row this many times (rotated order); the summary gives "
                         "per-round ratios and their medians")
    ap.add_argument("--json", default="", help="append JSON lines (one per row + a summary)")
    ap.add_argument("--keep_dir", action="store_true", help="keep the temporary directory")
    ap.add_argument("--interleave", action="store_true",
                    help="fine-tuning rows: every configuration (ours, the defaults row, the "
                         "peer) in its own live process, their steps alternating; round k "
                         "times step k of each (--repeats rounds)")
    ap.add_argument("--_child", default="", help=argparse.SUPPRESS)  # task,precision,xla,dir
    ap.add_argument("--_serve", default="", help=argparse.SUPPRESS)  # the same, --interleave
    args = ap.parse_args(argv)
    args.tasks = [t.strip() for t in args.what.split(",") if t.strip()]
    if not args.tasks or any(t not in TASKS for t in args.tasks):
        ap.error(f"--what: choose from {', '.join(TASKS)}")
    args.precisions = (list(PRECISIONS) if args.mixed_precision == "all" else
                       [p.strip() for p in args.mixed_precision.split(",") if p.strip()])
    if not args.precisions or any(p not in PRECISIONS for p in args.precisions):
        ap.error(f"--mixed_precision: choose from {', '.join(PRECISIONS)} or all")
    args.xla_modes = {"off": [False], "on": [True], "both": [False, True]}[args.xla]
    if args.repeats < 1 or args.warmup < 1:
        ap.error("--repeats and --warmup must be >= 1 (the first repeat traces)")
    if args.batch_size < 1 or args.num_sentences < args.batch_size:
        ap.error("--num_sentences must be at least --batch_size >= 1")
    args.num_sentences -= args.num_sentences % args.batch_size
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    args.time_defaults = "finetune" in args.tasks and (args.defaults == "on" or (
        args.defaults == "auto" and set(PRECISIONS) <= set(args.precisions)
        and args.xla_modes == [False, True]))
    return args


# ---------------------------------------------------------------------------
# Configs and inputs
# ---------------------------------------------------------------------------

def finetuning_config(args):
    """The run's FinetuningConfig (SST-2, one epoch of warmup + repeats steps)."""
    from electra_tf.config import FinetuningConfig, parse_hparams
    return FinetuningConfig.from_preset(
        args.model_size, ["sst"], parse_hparams(args.model_hparams),
        max_seq_length=args.seq_length, train_batch_size=args.batch_size,
        num_train_epochs=1.0, do_eval=False)


def discriminator_config(args):
    """The pre-trained discriminator's TransformerConfig of inference."""
    from electra_tf.config import PretrainingConfig, parse_hparams
    return PretrainingConfig.from_preset(args.model_size, parse_hparams(args.model_hparams),
                                         max_seq_length=args.seq_length).discriminator_config()


def english_sentences(count: int, min_words: int = 6, max_words: int = 60) -> list:
    """``count`` sentences of the bundled Wikipedia excerpt (cycled if it has fewer)."""
    import gzip
    from electra_tf.data.pretraining_data import default_corpus_files
    found = []
    for corpus_file in default_corpus_files():
        with gzip.open(corpus_file.path, "rt", encoding="utf-8") as f:
            for line in f:
                if line.startswith("<"):
                    continue  # <doc ...> markers
                # A sentence ends at . ! ? before a space and a capital or quote.
                for sentence in re.split(r'(?<=[.!?])\s+(?=[A-Z"])', line.strip()):
                    if min_words <= len(sentence.split()) <= max_words:
                        found.append(sentence)
                        if len(found) == count:
                            return found
    if not found:
        raise SystemExit("no sentences in the bundled corpus")
    return [found[i % len(found)] for i in range(count)]


def write_inputs(args, directory: str) -> str:
    """Writes the shared inputs: the SST-2 train.tsv of fine-tuning and ``inputs.json`` (texts,
    electra-tf's ids, by-length batches, the fine-tuning batch); returns the JSON path."""
    from electra_tf import detection
    from electra_tf.tokenization import FullTokenizer, default_vocab_file
    config = finetuning_config(args)
    tokenizer = FullTokenizer(default_vocab_file(), do_lower_case=config.do_lower_case)
    B, L = args.batch_size, args.seq_length
    n_train = B * (args.warmup + args.repeats)  # one epoch = exactly the steps run
    sentences = english_sentences(max(n_train, args.num_sentences))

    task_dir = os.path.join(directory, "data", "finetuning_data", "sst")
    os.makedirs(task_dir)
    with open(os.path.join(task_dir, "train.tsv"), "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        for i, s in enumerate(sentences[:n_train]):
            f.write(f"{s.replace(chr(9), ' ')}\t{i % 2}\n")

    # Fine-tuning features of the peer, packed by the rule of fine-tuning (preprocessing).
    train = [detection.encode(tokenizer, s, L) for s in sentences[:n_train]]
    texts = sentences[:args.num_sentences]
    examples = [detection.encode(tokenizer, t, L) for t in texts]
    inputs = {
        "batch_size": B, "max_seq_length": L, "vocab_file": default_vocab_file(),
        "do_lower_case": config.do_lower_case, "texts": texts,
        "encoded_ids": [e.input_ids for e in examples],
        "batches_by_length": detection.batches_by_length(examples, B),
        "finetune": {
            "input_ids": [e.input_ids + [0] * (L - len(e.input_ids)) for e in train],
            "input_mask": [[1] * len(e.input_ids) + [0] * (L - len(e.input_ids)) for e in train],
            "segment_ids": [e.segment_ids + [0] * (L - len(e.input_ids)) for e in train],
            "labels": [i % 2 for i in range(n_train)]},
    }
    path = os.path.join(directory, "inputs.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(inputs, f)
    return path


def summarize(times, batches_per_repeat: int, batch: int) -> dict:
    """s/batch = median repeat time / batches per repeat; examples/s = batch / (s/batch)."""
    per_batch = statistics.median(times) / batches_per_repeat
    return {"repeat_times": list(times), "batches_per_repeat": batches_per_repeat,
            "median_s_per_batch": per_batch, "examples_per_s": batch / per_batch}


# ---------------------------------------------------------------------------
# Ours (each in a child process)
# ---------------------------------------------------------------------------

STEP_MESSAGE = re.compile(r"step (\d+)/(\d+) .*\| loss (\S+)")
# The "path" of our fine-tuning rows (before issue "the house, second pass":
# "training.finetune._train step", the same loop under its former private name).
FINETUNE_PATH = "training.finetune.train_trial step"


def time_finetuning(args, precision: str, xla, directory: str, serve: bool = False) -> dict:
    """Times the fine-tuning driver's training loop step by step (see the module docstring).

    ``precision="auto"`` and ``xla=None``: the driver's defaults (chosen by the runtime).
    ``serve`` (``--interleave``'s child): after the warm-up steps print ``READY {row}``,
    then before each further step wait for a ``step`` line on stdin and answer
    ``TIME <seconds> <loss>`` (the time from the request to the driver's progress message).
    """
    import keras
    import numpy as np
    from electra_tf.finetuning.feature_cache import FeatureStore
    from electra_tf.finetuning.network import FinetuningNetwork
    from electra_tf.finetuning.registry import build_tasks
    from electra_tf.tokenization import FullTokenizer, default_vocab_file
    from electra_tf.training import finetune
    from electra_tf.training.runtime import Runtime

    config = finetuning_config(args)
    default = precision == "auto"
    name = f"{precision}-xla{'auto' if xla is None else int(xla)}-{os.getpid()}"
    options = finetune.FinetuneOptions(
        data_dir=os.path.join(directory, "data"),
        model_dir=os.path.join(directory, f"model-{name}"),
        results_dir=os.path.join(directory, f"results-{name}"),
        preprocessed_dir=os.path.join(directory, f"features-{name}"),
        jit_compile=xla, mixed_precision=(precision if default else
                                          None if precision == "float32" else precision),
        seed=0, log_every_steps=1, quiet=True)
    started = time.perf_counter()
    runtime = Runtime.from_options(options)  # first: sets the Keras policy
    chosen = {}
    if default:
        precision, xla = runtime.mixed_precision or "float32", runtime.jit_compile
        chosen = {"default": True, "precision_reason": runtime.precision_reason,
                  "xla_reason": getattr(runtime, "xla_reason", None),
                  "runtime_s": time.perf_counter() - started}
    tokenizer = FullTokenizer(default_vocab_file(), do_lower_case=config.do_lower_case)
    tasks = build_tasks(config, options, tokenizer)
    store = FeatureStore.for_run(tasks, config, options, say=lambda message: None)
    store.features("train")
    trial = 1
    keras.utils.set_random_seed(options.seed + trial)
    with runtime.strategy.scope():
        model = FinetuningNetwork(config.discriminator_config(), tasks)
        model.build()
    before = [v.numpy().copy() for v in model.trainable_variables]

    messages = []  # (time, message): the driver reports every step after it finished
    resumed = [0.0]

    def say(message):
        now = time.perf_counter()
        messages.append((now, message))
        match = STEP_MESSAGE.search(message) if serve else None
        if match is None:
            return
        step = int(match.group(1))
        if step == args.warmup:
            print("READY " + json.dumps({
                "impl": "electra_tf", "task": "finetune",
                "path": FINETUNE_PATH, "input": "ids",
                "padding": "max_length", "precision": precision, "xla": xla, **chosen,
                "first_s": messages[0][0] - started if messages else None}), flush=True)
        elif step > args.warmup:
            print(f"TIME {now - resumed[0]:.6f} {float(match.group(3)):.6f}", flush=True)
        if args.warmup <= step < args.warmup + args.repeats:
            command = sys.stdin.readline().strip()
            if command != "step":  # "quit" or the parent went away
                os._exit(0)
            resumed[0] = time.perf_counter()

    started = time.perf_counter()
    finetune.train_trial(model, store, config, options, trial, say, runtime)
    if serve:
        return {}
    steps = [(t, STEP_MESSAGE.search(m)) for t, m in messages]
    steps = [(t, int(m.group(1)), float(m.group(3))) for t, m in steps if m]
    expected = args.warmup + args.repeats
    if [s for _, s, _ in steps] != list(range(1, expected + 1)):
        raise RuntimeError(f"expected progress messages of steps 1..{expected}, got "
                           f"{[m for _, m in messages]}")
    # The first interval also holds building the optimizer and the input, and tracing.
    ends = [started] + [t for t, _, _ in steps]
    durations = [b - a for a, b in zip(ends, ends[1:])]
    change = max(float(np.max(np.abs(v.numpy() - b)))
                 for v, b in zip(model.trainable_variables, before))
    disc = config.discriminator_config()
    return {"impl": "electra_tf", "task": "finetune", "path": FINETUNE_PATH,
            "input": "ids", "padding": "max_length", "precision": precision, "xla": xla,
            **chosen, "first_s": durations[0], "losses": [loss for _, _, loss in steps],
            "loss_reduction": "sum over the batch",
            "max_weight_change": change, "weights_changed": change > 0,
            "params_m": sum(int(np.prod(v.shape)) for v in model.trainable_variables) / 1e6,
            "learning_rate": config.learning_rate, "layerwise_lr_decay": config.layerwise_lr_decay,
            "layers": disc.num_hidden_layers, "hidden": disc.hidden_size,
            **summarize(durations[args.warmup:], 1, args.batch_size)}


def _timed(run, warmup: int, repeats: int):
    """(first call's seconds, timed repeat seconds) of ``run()`` after ``warmup`` calls."""
    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return first, times


def time_inference(args, precision: str, directory: str, inputs_path: str) -> list:
    """Times detect_replaced_tokens, discriminator_logits and the exported SavedModel."""
    import keras
    import numpy as np
    import tensorflow as tf
    from electra_tf import detection
    from electra_tf.export import export_discriminator
    from electra_tf.networks.discriminator import Discriminator
    from electra_tf.tokenization import FullTokenizer, default_vocab_file
    from electra_tf.training.strategy import set_precision

    with open(inputs_path, encoding="utf-8") as f:
        inputs = json.load(f)
    texts, B, L = inputs["texts"], args.batch_size, args.seq_length
    set_precision(None if precision == "float32" else precision)
    config = discriminator_config(args)
    keras.utils.set_random_seed(0)
    discriminator = Discriminator(config)
    discriminator.build()
    tokenizer = FullTokenizer(default_vocab_file(), do_lower_case=inputs["do_lower_case"])
    examples = [detection.encode(tokenizer, t, L) for t in texts]
    n_batches = len(detection.batches_by_length(examples, B))
    default_xla = detection.use_xla(discriminator)
    common = {"impl": "electra_tf", "task": "inference", "precision": precision,
              "num_sentences": len(texts)}
    rows = []

    def detect(xla):
        detection.detect_replaced_tokens(discriminator, texts, tokenizer=tokenizer,
                                         max_seq_length=L, batch_size=B, jit_compile=xla)

    def logits(xla):
        detection.discriminator_logits(discriminator, examples, B, jit_compile=xla)

    # The default (detection.use_xla: on a CPU the probe's choice for this precision), then
    # the other jit_compile setting (compiling costs ~1.5 s per shape).
    for xla in (default_xla, not default_xla):
        for path, run, kind in (("detect_replaced_tokens", detect, "strings"),
                                ("discriminator_logits", logits, "ids")):
            first, times = _timed(lambda: run(xla), args.warmup, args.repeats)
            rows.append({**common, "path": path, "input": kind, "padding": "by_length",
                         "xla": xla, "default": xla == default_xla, "first_s": first,
                         **summarize(times, n_batches, B)})

    export_dir = export_discriminator(discriminator, default_vocab_file(),
                                      os.path.join(directory, f"saved_model-{precision}"),
                                      do_lower_case=inputs["do_lower_case"], max_seq_length=L)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    groups = [texts[i:i + B] for i in range(0, len(texts), B)]
    # Same inputs: the in-graph tokenizer's ids against electra-tf's, text by text.
    graph_ids = serve(text=tf.constant(texts))["input_ids"].numpy()
    same = np.mean([list(row[:len(ids)]) == ids and not row[len(ids):].any()
                    for row, ids in zip(graph_ids, inputs["encoded_ids"])])

    def saved_model():
        for group in groups:
            serve(text=tf.constant(group))["logits"].numpy()

    first, times = _timed(saved_model, args.warmup, args.repeats)
    rows.append({**common, "path": "saved_model", "input": "strings", "padding": "max_length",
                 "xla": default_xla, "default": True, "first_s": first,
                 "ids_match_fraction": float(same),
                 **summarize(times, len(groups), B)})
    return rows


def run_ours(args, task: str, precision: str, xla: bool, directory: str,
             inputs_path: str) -> list:
    """Our rows of one configuration, measured in a fresh process."""
    xla_field = "auto" if xla is None else int(xla)
    cmd = [sys.executable, os.path.abspath(__file__),
           f"--_child={task},{precision},{xla_field},{directory},{inputs_path}",
           f"--batch_size={args.batch_size}", f"--seq_length={args.seq_length}",
           f"--num_sentences={args.num_sentences}", f"--repeats={args.repeats}",
           f"--warmup={args.warmup}", f"--model_size={args.model_size}"]
    if args.model_hparams:
        cmd.append(f"--model_hparams={args.model_hparams}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    rows = [json.loads(line[len("OURS "):]) for line in proc.stdout.splitlines()
            if line.startswith("OURS ")]
    if proc.returncode != 0 or not rows:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        return [{"impl": "electra_tf", "task": task, "precision": precision, "xla": xla,
                 "path": task, "error": f"exit {proc.returncode}: {tail}"}]
    return rows


def child_main(args) -> int:
    if args._serve:
        _, precision, xla, directory, _ = args._serve.split(",", 4)
        time_finetuning(args, precision, None if xla == "auto" else bool(int(xla)), directory,
                        serve=True)
        return 0
    task, precision, xla, directory, inputs_path = args._child.split(",", 4)
    if task == "finetune":
        rows = [time_finetuning(args, precision, None if xla == "auto" else bool(int(xla)),
                                directory)]
    else:
        rows = time_inference(args, precision, directory, inputs_path)
    for row in rows:
        print("OURS " + json.dumps(row), flush=True)
    return 0


# ---------------------------------------------------------------------------
# The peer
# ---------------------------------------------------------------------------

def peer_command(args, task: str, precision: str, inputs_path: str) -> list:
    """The peer script's command line for one task and precision."""
    config = finetuning_config(args) if task == "finetune" else None
    shape = (config.discriminator_config() if config else discriminator_config(args))
    cmd = [args.peer_python, PEER_SCRIPT, f"--task={task}", f"--inputs={inputs_path}",
           f"--warmup={args.warmup}", f"--repeats={args.repeats}",
           f"--vocab={shape.vocab_size}", f"--hidden={shape.hidden_size}",
           f"--layers={shape.num_hidden_layers}", f"--heads={shape.num_attention_heads}",
           f"--intermediate={shape.intermediate_size}", f"--embedding={shape.embedding_size}",
           f"--max_positions={shape.max_position_embeddings}",
           f"--dropout={shape.hidden_dropout_prob}"]
    if config is not None:
        cmd += [f"--learning_rate={config.learning_rate}",
                f"--weight_decay={config.weight_decay_rate}",
                f"--layerwise_lr_decay={config.layerwise_lr_decay}"]
    if precision == "bfloat16":
        cmd.append("--bf16")
    if args.peer_threads:
        cmd.append(f"--threads={args.peer_threads}")
    return cmd


def run_peer(args, task: str, precision: str, inputs_path: str) -> list:
    """The peer's rows of one task and precision (its own process, in its venv)."""
    if not os.path.exists(args.peer_python):
        return []
    cmd = peer_command(args, task, precision, inputs_path)
    print(f"  peer: {' '.join(cmd)}", flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.peer_timeout)
    except subprocess.TimeoutExpired:
        return [{"impl": "hf", "task": task, "precision": precision, "path": task,
                 "error": f"timed out after {args.peer_timeout} s"}]
    rows = [json.loads(line[len("RESULT "):]) for line in proc.stdout.splitlines()
            if line.startswith("RESULT ")]
    if proc.returncode != 0 or not rows:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        return [{"impl": "hf", "task": task, "precision": precision, "path": task,
                 "error": f"exit {proc.returncode}: {tail}"}]
    return rows


# ---------------------------------------------------------------------------
# Interleaved fine-tuning rows
# ---------------------------------------------------------------------------

def time_finetuning_interleaved(args, todo, directory: str, inputs_path: str) -> list:
    """The fine-tuning rows of ``todo`` ((who, precision, xla) items), each configuration in
    its own live process at once, built and warmed up one after another; then
    ``--repeats`` rounds each run one step of every configuration (rotated order). The
    defaults row is built first and stands for the configuration it chose."""
    steppers, rows = [], []
    todo = sorted(todo, key=lambda item: item[1] != "auto")
    try:
        for index, (who, precision, xla) in enumerate(todo):
            if who == "ours":
                twin = next((s for s in steppers if s.row.get("default") and
                             (s.row["precision"], s.row["xla"]) == (precision, xla)), None)
                if twin is not None:
                    twin.row["stands_for"] = f"{precision}, XLA {'on' if xla else 'off'}"
                    print(f"  ({precision}, XLA {xla}) is the default: timed by its process",
                          flush=True)
                    continue
                xla_field = "auto" if xla is None else int(xla)
                cmd = [sys.executable, os.path.abspath(__file__),
                       f"--_serve=finetune,{precision},{xla_field},{directory},{inputs_path}",
                       f"--batch_size={args.batch_size}", f"--seq_length={args.seq_length}",
                       f"--num_sentences={args.num_sentences}", f"--repeats={args.repeats}",
                       f"--warmup={args.warmup}", f"--model_size={args.model_size}"] + (
                    [f"--model_hparams={args.model_hparams}"] if args.model_hparams else [])
                row = {"impl": "electra_tf", "task": "finetune", "precision": precision,
                       "xla": xla, "path": FINETUNE_PATH}
            else:
                cmd = peer_command(args, "finetune", precision, inputs_path) + ["--serve"]
                row = {"impl": "hf", "task": "finetune", "precision": precision, "xla": False,
                       "path": FINETUNE_PEER_PATH}
            print(f"  starting {who} {precision} XLA {xla} ...", flush=True)
            launch_stepper(cmd, row, os.path.join(directory, f"serve-ft-{index}.log"),
                           steppers, rows)
        for round_ in range(args.repeats):
            time_round(steppers, round_)
    finally:
        for stepper in steppers:
            stepper.close()
    for row, times in timed_steppers(steppers, rows):
        rows.append({**row, "interleaved": True, **summarize(times, 1, args.batch_size)})
    return rows


def rounds_of(rows, batch: int) -> list:
    """Interleaved rows split into one row per round (step), for :func:`defaults_summary`."""
    out = []
    for row in rows:
        if row.get("interleaved"):
            for step, seconds in enumerate(row["repeat_times"]):
                out.append({**row, "round": row.get("round", 0) * 1000 + step,
                            "examples_per_s": batch / seconds})
        else:
            out.append(row)
    return out


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def label_of(row) -> str:
    precision = {"float32": "fp32", "bfloat16": "bf16", "auto": "auto"}[
        row.get("precision", "float32")]
    if row["impl"] == "electra_tf":
        xla = " XLA" if row.get("xla") else ""
        default = "DEFAULT " if row.get("default") else ""
        return f"electra-tf {default}{row['path']}{xla} {precision}"
    return f"HF {row['path']} {precision}"


def ratios(rows) -> list:
    """ours/peer examples/s of the rows on the same inputs, padding and precision."""
    ok = [r for r in rows if "error" not in r]
    out = []
    for mine in (r for r in ok if r["impl"] == "electra_tf"):
        if mine["task"] == "finetune":
            peer_path = "ElectraForSequenceClassification + torch AdamW"
        else:
            peer_path = f"ElectraForPreTraining {INFERENCE_PAIRS[mine['path']]}"
        for peer in ok:
            if peer["impl"] == "hf" and peer["path"] == peer_path and \
                    peer["precision"] == mine["precision"] and \
                    peer.get("round", 0) == mine.get("round", 0):
                ratio = mine["examples_per_s"] / peer["examples_per_s"]
                out.append({"task": mine["task"], "precision": mine["precision"],
                            "round": mine.get("round", 0),
                            "ours": label_of(mine), "peer": label_of(peer),
                            "ratio_examples_per_s": ratio})
    return out


FINETUNE_PEER_PATH = "ElectraForSequenceClassification + torch AdamW"


def defaults_summary(rows) -> dict:
    """The default fine-tuning step beside our best configuration and the peer's best.

    Per round: the default row's examples/s, our fastest fine-tuning row (precision x XLA;
    the default row counts as the configuration it chose), the peer's fastest one;
    ``default_vs_best`` = default / best examples/s (1.0: the default is the fastest),
    ``default_vs_peer_best``, ``best_vs_peer_best`` (> 1: electra-tf faster). Then the
    median of each over the rounds.
    """
    ok = [r for r in rows if "error" not in r and r.get("task") == "finetune"
          and "examples_per_s" in r]
    per_round = []
    for round_ in sorted({r.get("round", 0) for r in ok}):
        these = [r for r in ok if r.get("round", 0) == round_]
        default = next((r for r in these if r["impl"] == "electra_tf" and r.get("default")),
                       None)
        ours = [r for r in these if r["impl"] == "electra_tf"]  # the default counts too
        peers = [r for r in these if r["impl"] == "hf" and r.get("path") == FINETUNE_PEER_PATH]
        if default is None:
            continue
        best = max(ours, key=lambda r: r["examples_per_s"])
        entry = {"round": round_, "default": label_of(default),
                 "default_examples_per_s": default["examples_per_s"],
                 "best": label_of(best), "best_examples_per_s": best["examples_per_s"],
                 "default_vs_best": default["examples_per_s"] / best["examples_per_s"],
                 "default_is_best_config": (default["precision"], bool(default["xla"])) ==
                 (best["precision"], bool(best["xla"]))}
        if peers:
            peer = max(peers, key=lambda r: r["examples_per_s"])
            entry.update(peer_best=label_of(peer),
                         peer_best_examples_per_s=peer["examples_per_s"],
                         default_vs_peer_best=default["examples_per_s"] / peer["examples_per_s"],
                         best_vs_peer_best=best["examples_per_s"] / peer["examples_per_s"])
        per_round.append(entry)
    medians = {}
    if per_round:
        medians["rounds"] = len(per_round)
        for key in ("default_examples_per_s", "best_examples_per_s", "peer_best_examples_per_s",
                    "default_vs_best", "default_vs_peer_best", "best_vs_peer_best"):
            values = [e[key] for e in per_round if key in e]
            if values:
                medians[key] = statistics.median(values)
        for key in ("default", "best", "peer_best"):
            labels = [e[key] for e in per_round if key in e]
            if labels:
                medians[key] = max(set(labels), key=labels.count)
    return {"per_round": per_round, "medians": medians}


def print_defaults_summary(summary) -> None:
    if not summary["per_round"]:
        return
    print("\ndefaults: the default fine-tuning step beside our best configuration and the "
          "peer's best (examples/s; ratios > 1: the first is faster)")
    for e in summary["per_round"]:
        line = (f"  round {e['round']}: {e['default']} {e['default_examples_per_s']:.1f} | best "
                f"{e['best']} {e['best_examples_per_s']:.1f} | default/best "
                f"{e['default_vs_best']:.3f}x")
        if "peer_best" in e:
            line += (f" | peer best {e['peer_best']} {e['peer_best_examples_per_s']:.1f} | "
                     f"default/peer {e['default_vs_peer_best']:.2f}x, best/peer "
                     f"{e['best_vs_peer_best']:.2f}x")
        print(line)
    m = summary["medians"]
    line = f"  median of {m['rounds']} round(s): default/best {m['default_vs_best']:.3f}x"
    if "default_vs_peer_best" in m:
        line += (f", default/peer best {m['default_vs_peer_best']:.2f}x, best/peer best "
                 f"{m['best_vs_peer_best']:.2f}x")
    print(line)


def print_table(rows) -> None:
    head = f"{'row':<62}{'first s':>9}{'s/batch':>10}{'examples/s':>12}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{label_of(r):<62}  ERROR {r['error']}")
            continue
        print(f"{label_of(r):<62}{r['first_s']:>9.2f}{r['median_s_per_batch']:>10.4f}"
              f"{r['examples_per_s']:>12.1f}")


def package_version(name: str):
    """The installed version of a package, without importing it (None if absent)."""
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._child or args._serve:
        return child_main(args)
    started = datetime.datetime.now().isoformat(timespec="seconds")
    load = os.getloadavg()[0]
    machine = machine_info()
    print(f"{machine['cpu']} ({machine['cpus']} CPUs); load average {load:.2f}"
          + ("  WARNING: the machine is busy, timings will be noisy" if load > 0.5 else ""),
          flush=True)
    peers = args.peers
    if peers and not os.path.exists(args.peer_python):
        print(f"peers skipped: {args.peer_python} missing; install with: {PEER_SETUP}",
              flush=True)
        peers = False
    meta = {"benchmark": "finetuning_inference_speed", "started": started, **machine,
            "tensorflow": package_version("tensorflow"), "load_avg_1m": load,
            "model_size": args.model_size,
            "model_hparams": args.model_hparams, "batch": args.batch_size,
            "seq": args.seq_length, "warmup": args.warmup, "repeats": args.repeats,
            "rounds": args.rounds}

    workdir = tempfile.mkdtemp(prefix="electra-finetune-inference-")
    rows = []
    try:
        inputs_path = write_inputs(args, workdir)
        todo = []
        for precision in args.precisions:
            if "finetune" in args.tasks:
                todo += [("ours", "finetune", precision, xla) for xla in args.xla_modes]
            if "inference" in args.tasks:
                todo.append(("ours", "inference", precision, False))
        if args.time_defaults:
            todo.append(("ours", "finetune", "auto", None))
        if peers:
            todo += [("peer", task, precision, False) for precision in args.precisions
                     for task in args.tasks]
        if args.interleave and "finetune" in args.tasks:
            interleaved = [(who, precision, xla) for who, task, precision, xla in todo
                           if task == "finetune"]
            todo = [item for item in todo if item[1] != "finetune"]
            for round_ in range(args.rounds):
                print(f"fine-tuning, interleaved: {len(interleaved)} configurations in live "
                      f"processes, {args.warmup} warm-up steps each, then {args.repeats} "
                      "rounds of one step each"
                      + (f" (round {round_ + 1}/{args.rounds})" if args.rounds > 1 else ""),
                      flush=True)
                for row in time_finetuning_interleaved(args, rotated(interleaved, round_),
                                                       workdir, inputs_path):
                    row.update(batch=args.batch_size, seq=args.seq_length, round=round_)
                    if "error" in row:
                        print(f"    ERROR {label_of(row)}: {row['error']}", flush=True)
                    else:
                        print(f"    {label_of(row)}: {row['median_s_per_batch']:.4f} s/batch, "
                              f"{row['examples_per_s']:.1f} examples/s"
                              + (f" (stands for {row['stands_for']})"
                                 if row.get("stands_for") else ""), flush=True)
                    rows.append(row)
                    append_json(args.json, {**meta, "record": "result", **row})
        for round_, (who, task, precision, xla) in ((r, item) for r in range(args.rounds)
                                                   for item in rotated(todo, r)):
            print(f"{who} {task} {precision}{' XLA' if xla else ''}"
                  + (" (defaults: --mixed_precision and --jit_compile not given)"
                     if precision == "auto" else "")
                  + (f", round {round_ + 1}/{args.rounds}" if args.rounds > 1 else "")
                  + f": {args.warmup} warm-up + {args.repeats} timed repeats ...", flush=True)
            if who == "ours":
                new = run_ours(args, task, precision, xla, workdir, inputs_path)
            else:
                new = run_peer(args, task, precision, inputs_path)
            for row in new:
                row.setdefault("batch", args.batch_size)
                row.setdefault("seq", args.seq_length)
                row["round"] = round_
                if row.get("precision_reason") and "error" not in row:  # the default row
                    print(f"    chose {row['precision']}, XLA {'on' if row['xla'] else 'off'}: "
                          f"{row['precision_reason']}", flush=True)
                if "error" in row:
                    print(f"    ERROR {label_of(row)}: {row['error']}", flush=True)
                else:
                    print(f"    {label_of(row)}: {row['median_s_per_batch']:.4f} s/batch, "
                          f"{row['examples_per_s']:.1f} examples/s", flush=True)
                rows.append(row)
                append_json(args.json, {**meta, "record": "result", **row})
    finally:
        if args.keep_dir:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nELECTRA-{args.model_size} B={args.batch_size} L={args.seq_length}: median of "
          f"{args.repeats} repeats after {args.warmup} warm-up; inference over "
          f"{args.num_sentences} sentences per repeat")
    print_table(rows)
    ratio_rows = ratios(rows)
    if ratio_rows:
        print("\nratio ours/peer (examples/s; > 1 = electra-tf faster)")
        for r in ratio_rows:
            print(f"  {r['ours']:<58} / {r['peer']:<52} {r['ratio_examples_per_s']:.2f}x"
                  + (f"  (round {r['round']})" if args.rounds > 1 else ""))
    defaults = defaults_summary(rounds_of(rows, args.batch_size) if args.interleave else rows)
    print_defaults_summary(defaults)
    append_json(args.json, {**meta, "record": "summary", "ratios": ratio_rows,
                            **({"defaults": defaults} if defaults["per_round"] else {}),
                            "results": [{k: r.get(k) for k in
                                         ("impl", "task", "path", "precision", "xla", "round",
                                          "default", "median_s_per_batch", "examples_per_s",
                                          "error")}
                                        for r in rows]})
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
