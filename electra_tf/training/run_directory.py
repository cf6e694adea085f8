"""The pre-training run directory: its checkpoints, state file, lock and stop signals.

A run directory (``<data_dir>/models/<model_name>``) holds ``ckpt-N.*`` checkpoints,
the ``checkpoint`` state file naming them, ``pretraining_config.json`` (the settings
that made them) and, while a run trains in it, ``.lock``. The functions here keep it
consistent across crashes, full disks, a second run started on it by mistake and
SIGTERM from schedulers; ``training/pretrain.py`` calls them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import sys

import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.checkpoints import run_checkpoints
from electra_tf.formats import CONFIG_FILE
from electra_tf.io_utils import write_text_atomic

# Settings that fix a run's variables: a model directory cannot be resumed under others.
_RUN_DEFINING = ("model_size", "debug", "model_hparam_overrides", "embedding_size", "vocab_size",
                 "electra_objective", "electric_objective", "two_tower_generator",
                 "uniform_generator", "untied_generator", "untied_generator_embeddings",
                 "generator_hidden_size", "generator_layers", "optimizer")


class PretrainingError(RuntimeError):
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


def check_same_run(config, model_dir: str) -> None:
    """A directory with checkpoints resumes only under the settings that made them
    (``config``: the PretrainingConfig of this invocation)."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not tf.io.gfile.exists(path) or not run_checkpoints(model_dir, complete_only=False):
        return
    try:
        saved = json.loads(tf.io.gfile.GFile(path).read())
    except json.JSONDecodeError:
        return
    current = dataclasses.asdict(config)
    changed = [f"{key}: {saved[key]!r} there, {current[key]!r} now" for key in _RUN_DEFINING
               if key in saved and key in current and saved[key] != current[key]]
    if changed:
        raise PretrainingError(
            f"{model_dir} holds checkpoints of a run with other settings ({'; '.join(changed)})"
            ": re-run with that run's flags, or pass another --model_name / --model_dir")


@contextlib.contextmanager
def exclusive_lock(model_dir: str):
    """Holds ``<model_dir>/.lock`` while training: a second run on the same directory
    stops at once with one line naming the holder. Released when the process ends,
    however it ends (an OS file lock), so a stale lock file never blocks."""
    if "://" in model_dir:  # object stores have no file locks
        yield
        return
    import fcntl
    path = os.path.join(model_dir, ".lock")
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise PretrainingError(
                f"{model_dir} is in use by another training run ({holder}): wait for it to "
                "end or stop it, or pass another --model_name") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


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
