"""The run directory: its checkpoints, state file, record, lock and stop signals.

A pre-training run directory (``<data_dir>/models/<model_name>``) holds ``ckpt-N.*``
checkpoints, the ``checkpoint`` state file naming them, ``pretraining_config.json`` (the
settings that made them), ``run_record.json`` (what the run was built with: vocabulary
hash, ``max_seq_length``, model shape, objective) and, while a run trains in it,
``.lock``. The functions here keep it consistent across crashes, full disks, a second run
started on it by mistake, a resume under other inputs and SIGTERM from schedulers;
``training/pretrain.py`` calls them, and fine-tuning (``training/finetuning_state.py``)
uses the same lock and signals for its trials.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import signal
import socket
import sys
from typing import Optional

import tensorflow as tf

from electra_tf.formats.files import run_checkpoints
from electra_tf.formats import CONFIG_FILE
from electra_tf.io_utils import describe_contents, write_text_atomic
from electra_tf.pretraining.recipes import OBJECTIVE_HPARAMS, Recipe

# Settings that fix a run's variables: a model directory cannot be resumed under others.
_RUN_DEFINING = ("model_size", "debug", "model_hparam_overrides", "embedding_size", "vocab_size",
                 *OBJECTIVE_HPARAMS, "generator_hidden_size", "generator_layers", "optimizer")

# What a run was built with; a resume under other values stops before any step.
RUN_RECORD = "run_record.json"
_SHAPE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                 "intermediate_size", "hidden_act", "max_position_embeddings",
                 "type_vocab_size", "embedding_size")

# Entries a pre-training run writes at the top of its directory; and those that show a
# directory holds something else (a TF1 checkpoint or export, a SavedModel, a transformers
# model, pre-training data), where a run must never write its checkpoints.
_RUN_SIGNS = re.compile(r"^(ckpt-\d+.*|pretraining_config\.json|run_record\.json|\.lock)$")
_FOREIGN = re.compile(r"^(?!ckpt-\d+\.index$).*\.index$|^(saved_model\.pb|model\.safetensors|"
                      r"pytorch_model\.bin|config\.json|pretrain_data\.tfrecord.*)$")


class RunDirectoryError(RuntimeError):
    """A user-facing problem with a run directory (its path, lock or recorded inputs)."""


class PretrainingError(RunDirectoryError):
    """A user-facing problem with a pre-training run (bad paths, incompatible state)."""


class Terminated(Exception):
    """The run stopped on SIGTERM after saving a checkpoint (exit status 128 + signum)."""

    def __init__(self, signum: int, step: int):
        super().__init__(f"stopped by signal {signum} at step {step}")
        self.signum, self.step = signum, step


def remove_partial_saves(model_dir: str, quiet: bool) -> None:
    """Deletes the temporary files of a save that never completed (a crash, a full disk)."""
    leftovers = tf.io.gfile.glob(os.path.join(model_dir, "ckpt-*_temp*"))
    for path in leftovers:
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)
    if leftovers and not quiet:
        print(f"removed {len(leftovers)} partial checkpoint file(s) of an interrupted save in "
              f"{model_dir}", file=sys.stderr, flush=True)


def check_model_dir(model_dir: str) -> None:
    """A run trains only in a new or empty directory or in a run directory: never in a
    file, a checkpoint or export, a SavedModel or a data directory (one line naming
    what is there), where its checkpoints and ``vocab.txt`` would mix with those files."""
    if "://" in model_dir:
        return
    if os.path.lexists(model_dir) and not os.path.isdir(model_dir):
        raise PretrainingError(f"--model_dir {model_dir} exists and is not a directory: pass "
                               "another --model_dir (or --model_name)")
    if not os.path.isdir(model_dir):
        return
    names = os.listdir(model_dir)
    if names and (any(_FOREIGN.match(n) for n in names)
                  or not any(_RUN_SIGNS.match(n) for n in names)):
        raise PretrainingError(
            f"--model_dir {model_dir} holds {describe_contents(model_dir)}, not a pre-training "
            "run: its checkpoints would mix with those files; pass another --model_dir (or "
            "--model_name), with --init_checkpoint=<that directory> to start from a "
            "checkpoint there")


def _vocab_description(path: str) -> dict:
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    return {"file": path, "sha256": hashlib.sha256(data).hexdigest(),
            "tokens": sum(1 for line in data.decode("utf-8", "replace").splitlines()
                          if line.strip())}


def run_record(config, vocab_file: str) -> dict:
    """What a run is built with (written as ``run_record.json``): the vocabulary (its
    file, sha256 and token count), ``max_seq_length``, the networks' shapes and the
    objective (both the run's recipe's)."""
    recipe = Recipe.for_config(config)
    shapes = recipe.network_shapes()
    return {
        "written_by": "run_pretraining.py",
        "vocab": _vocab_description(vocab_file),
        "max_seq_length": config.max_seq_length,
        "model": {"model_size": config.model_size,
                  **{name: {field: getattr(shape, field) for field in _SHAPE_FIELDS}
                     for name, shape in shapes.items()}},
        "objective": recipe.identity(),
    }


def write_run_record(model_dir: str, record: dict) -> None:
    """Writes ``record`` as the directory's ``run_record.json`` unless it says that already."""
    path = os.path.join(model_dir, RUN_RECORD)
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    if tf.io.gfile.exists(path) and tf.io.gfile.GFile(path).read() == text:
        return
    write_text_atomic(path, text)


def _read_json(path: str) -> Optional[dict]:
    if not tf.io.gfile.exists(path):
        return None
    try:
        data = json.loads(tf.io.gfile.GFile(path).read())
    except (json.JSONDecodeError, UnicodeDecodeError, tf.errors.OpError):
        return None
    return data if isinstance(data, dict) else None


def _record_changes(model_dir: str, recorded: Optional[dict], saved_config: Optional[dict],
                    current: dict) -> list:
    """``[(what changed, how to keep the run's value)]`` between the run's record (or, for
    a run of a version that wrote none, its config and vocab.txt) and this invocation."""
    changes = []
    run_vocab = os.path.join(model_dir, "vocab.txt")
    old_vocab = (recorded or {}).get("vocab")
    if old_vocab is None and tf.io.gfile.exists(run_vocab):
        old_vocab = _vocab_description(run_vocab)
    new_vocab = current["vocab"]
    if old_vocab and old_vocab.get("sha256") != new_vocab["sha256"]:
        changes.append((f"vocabulary {run_vocab} ({old_vocab.get('tokens')} tokens, sha256 "
                        f"{str(old_vocab.get('sha256'))[:12]}) there, {new_vocab['file']} "
                        f"({new_vocab['tokens']} tokens, sha256 {new_vocab['sha256'][:12]}) now",
                        f"--vocab_file={run_vocab} and records built with it"))
    old_length = (recorded or saved_config or {}).get("max_seq_length")
    if old_length is not None and old_length != current["max_seq_length"]:
        changes.append((f"max_seq_length {old_length} there, {current['max_seq_length']} now",
                        f"--max_seq_length={old_length} and records of that length"))
    if recorded:
        for network, shape in current["model"].items():
            old = recorded.get("model", {}).get(network)
            if isinstance(shape, dict) and isinstance(old, dict):
                changes.extend((f"{network} {field} {old[field]!r} there, {value!r} now",
                                "that run's model flags")
                               for field, value in shape.items()
                               if field in old and old[field] != value)
        changes.extend((f"{field} {recorded['objective'][field]!r} there, {value!r} now",
                        "that run's objective flags")
                       for field, value in current["objective"].items()
                       if field in recorded.get("objective", {})
                       and recorded["objective"][field] != value)
    return changes


def check_same_run(config, model_dir: str, vocab_file: Optional[str] = None) -> None:
    """A directory with checkpoints resumes only under the settings and inputs that made
    them (``config``: the PretrainingConfig of this invocation; ``vocab_file``: its
    vocabulary): one line naming each difference, before anything is built or written."""
    if not run_checkpoints(model_dir, complete_only=False):
        return
    saved = _read_json(os.path.join(model_dir, CONFIG_FILE))
    if saved is not None:
        current = dataclasses.asdict(config)
        changed = [f"{key}: {saved[key]!r} there, {current[key]!r} now" for key in _RUN_DEFINING
                   if key in saved and key in current and saved[key] != current[key]]
        if changed:
            raise PretrainingError(
                f"{model_dir} holds checkpoints of a run with other settings "
                f"({'; '.join(changed)}): re-run with that run's flags, or pass another "
                "--model_name / --model_dir")
    if vocab_file is None or not tf.io.gfile.exists(vocab_file):
        return  # a missing vocab file is reported where it is loaded
    changes = _record_changes(model_dir, _read_json(os.path.join(model_dir, RUN_RECORD)), saved,
                              run_record(config, vocab_file))
    if changes:
        keep = list(dict.fromkeys(how for _, how in changes))
        raise PretrainingError(
            f"{model_dir} holds checkpoints of a run built with other inputs "
            f"({'; '.join(what for what, _ in changes)}): to resume it pass {', '.join(keep)}; "
            f"to train on these inputs start a new run (another --model_name or --model_dir), "
            f"with --init_checkpoint={model_dir} to continue from its weights")


@contextlib.contextmanager
def exclusive_lock(directory: str, lock_name: str = ".lock", user: str = "training run",
                   hint: str = "pass another --model_name"):
    """Holds ``<directory>/<lock_name>`` while training: a second run on the same directory
    stops at once with one line naming the holder (``user``: what holds such locks,
    ``hint``: what else to do than wait). Released when the process ends, however it
    ends (an OS file lock), so a stale lock file never blocks. A directory where the lock
    cannot be written (read-only, no permission) is one line too."""
    if "://" in directory:  # object stores have no file locks
        yield
        return
    import fcntl
    path = os.path.join(directory, lock_name)
    try:
        f = open(path, "a+", encoding="utf-8")
    except OSError as e:
        raise RunDirectoryError(
            f"cannot write in {directory} ({e.strerror or e}): a {user} writes checkpoints "
            "there, so it must be writable; make it writable, or copy it to a writable place "
            "and point the command there") from None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise RunDirectoryError(
                f"{directory} is in use by another {user} ({holder}): wait for it to "
                f"end or stop it, or {hint}") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def dropout_rng_states(models) -> list:
    """The state variables of the dropout layers' seed generators of ``models``.

    Keras keeps them out of TensorFlow's object graph; a checkpoint that tracks this
    list lets a resumed run draw the same dropout masks as an uninterrupted one.
    """
    states, seen = [], set()
    for model in models:
        for layer in model._flatten_layers(include_self=False):
            generator = getattr(layer, "seed_generator", None)
            if generator is not None and id(layer) not in seen:
                seen.add(id(layer))
                states.append(generator.state.value)
    return states


class StopSignal:
    """Notes SIGTERM (sent by timeout, Slurm, Kubernetes, docker stop, preemptible VMs);
    the loop saves and stops before its next step, so the wait is at most one step.
    A second SIGTERM stops at once."""

    def __init__(self):
        self.received = 0
        self._previous = None

    def _handle(self, signum, frame):
        if self.received:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self.received = signum

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: leave signals to the caller
            self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False
