"""Fine-tuning trials that survive interruptions: the run's lock, each trial's checkpoints
and the record of what a trial was trained with.

Trial ``t`` of a run on ``<tasks>`` trains in ``<model_dir>_<t>``
(``finetuning_models/<tasks>_model_<t>``), which holds:

* ``resume/ckpt-<step>`` while the trial trains: every ``save_checkpoints_steps`` steps,
  every ``checkpoint_minutes`` of wall time (when one process runs the trial), on SIGTERM
  and on Ctrl-C. It holds the model, the optimizer (slots and step) and the dropout RNG
  state; the input position is the step (the seeded, shuffled input is skipped to it).
* ``model.ckpt-<steps>``: the fine-tuned model in TF1 names with its Adam slots, at the end.
* ``finetuning_trial.json``: the trial's settings (hyperparameters that shape training,
  seed, init checkpoint, vocabulary, training features, precision) and whether it finished.

A re-run of the same command resumes an interrupted trial at its step (the final result
equals an uninterrupted run's) and evaluates a finished trial again from its
``model.ckpt-<steps>`` without training it. A trial directory made with other settings is
trained afresh, saying which settings differ (the original deletes the directory at every
run). The run holds ``finetuning_models/.<tasks>_model.lock`` (``run_directory``'s OS lock):
a second run on the same model and tasks stops with one line naming the holder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Optional

import tensorflow as tf

from electra_tf.formats.files import is_complete_checkpoint, run_checkpoints
from electra_tf.finetuning.feature_cache import describe_fingerprint_changes
from electra_tf.io_utils import first_line, short_value, write_text_atomic
from electra_tf.training.run_directory import (RunDirectoryError, dropout_rng_states,
                                               exclusive_lock, remove_partial_saves)
from electra_tf.training.strategy import worker_directory

TRIAL_FILE = "finetuning_trial.json"
RESUME_DIR = "resume"
# FinetuningConfig fields that do not change how a trial trains (evaluation, outputs,
# caching, QA post-processing): a trial resumes or is reused whatever their values.
_NOT_TRAINING = ("num_trials", "do_train", "do_eval", "write_test_outputs", "n_writes_test",
                 "eval_batch_size", "predict_batch_size", "log_examples", "keep_all_models",
                 "save_checkpoints_steps", "iterations_per_loop", "use_tfrecords_if_existing",
                 "n_best_size", "max_answer_length", "qa_na_threshold",
                 # The conll: tasks' reading settings change training only through the
                 # training features, whose fingerprint the settings hold (train_features).
                 "tagging")
# What fine-tuning writes into a trial directory (its TF1 checkpoint with the config and
# vocabulary beside it, the state file, resume/ and the record): removed when the trial is
# trained afresh, as the original removes the whole directory; anything else is refused.
_TRIAL_ENTRY = re.compile(r"^(model\.ckpt-\d+\..*|checkpoint|pretraining_config\.json|"
                          r"vocab\.txt|\.tmp-.*|resume|" + re.escape(TRIAL_FILE) + ")$")


class FinetuningError(RunDirectoryError):
    """A user-facing problem with a fine-tuning run's directories (lock, saves)."""


def run_lock(model_dir: str):
    """The OS lock of fine-tuning ``<tasks>`` on a model: ``<parent>/.<tasks>_model.lock``
    beside the trial directories ``<model_dir>_<t>`` (a context manager)."""
    remote = "://" in model_dir  # object stores have no locks (exclusive_lock skips them)
    parent, name = os.path.split(model_dir if remote else os.path.abspath(model_dir))
    if not remote:
        os.makedirs(parent, exist_ok=True)
    return exclusive_lock(parent, lock_name=f".{name}.lock", user="fine-tuning run",
                          hint=f"fine-tune other tasks: a run of the same tasks writes the same "
                               f"{name}_<trial>/ and results")


def trial_settings(config, options, weights, vocab_file: str, train_fingerprint,
                   mixed_precision: Optional[str]) -> dict:
    """What a trial's training depends on: recorded in ``finetuning_trial.json`` and
    compared before a trial is resumed or reused."""
    with tf.io.gfile.GFile(vocab_file, "rb") as f:
        vocab_sha256 = hashlib.sha256(f.read()).hexdigest()
    source = weights.source if weights is not None else None
    if source and "://" not in source:
        source = os.path.abspath(source)
    return {
        "hparams": {k: v for k, v in config.flat_dict().items() if k not in _NOT_TRAINING},
        "seed": options.seed,
        "init_checkpoint": source,
        "init_step": weights.global_step if weights is not None else None,
        "vocab_sha256": vocab_sha256,
        "train_features": train_fingerprint,
        "mixed_precision": mixed_precision or "float32",
    }


def setting_changes(old: dict, new: dict) -> list:
    """What differs between two :func:`trial_settings`, e.g. ``["learning_rate 0.0001 ->
    0.0003", "the training features: sst train.tsv changed (1.2 kB -> 480 B)"]``."""
    changes = []
    old_hparams, new_hparams = old.get("hparams") or {}, new["hparams"]
    changes.extend(f"{key} {short_value(old_hparams.get(key), repr)} -> {short_value(value, repr)}"
                   for key, value in new_hparams.items() if old_hparams.get(key) != value)
    for key, value in new.items():
        if key == "hparams":
            continue
        if key == "train_features":
            if old.get(key) is None or value is None:
                if old.get(key) != value:
                    changes.append("the training features")
                continue
            changes.extend(f"the training features: {change}"
                           for change in describe_fingerprint_changes(old[key], value))
        elif old.get(key) != value:
            changes.append(f"{key} {short_value(old.get(key), repr)} -> {short_value(value, repr)}")
    return changes


def saves_on_time(strategy) -> bool:
    """Whether a trial may also be saved every few minutes: only where one process trains
    (every worker of a cluster must save at the same steps, as saving is collective)."""
    return not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


class Trial:
    """The directory of one trial: its plan (train, resume or reuse), checkpoints and record.

    Args:
      model_dir: the run's ``<tasks>_model`` path; the trial is ``<model_dir>_<trial>``.
      settings: :func:`trial_settings` of this invocation.
      strategy: the run's strategy (workers other than the chief save into scratch).
      chief: whether this process writes (the chief) or only reads the chief's files.
    """

    def __init__(self, model_dir: str, trial: int, settings: dict, strategy, chief: bool):
        self.number, self.settings, self.chief = trial, settings, chief
        self.directory = f"{model_dir}_{trial}"
        self.resume_dir = os.path.join(self.directory, RESUME_DIR)
        self.write_dir = worker_directory(self.resume_dir, strategy)
        self.strategy = strategy
        self.steps = None  # of a finished trial, once plan() found one
        self._manager = None

    # -- what to do ------------------------------------------------------------

    def _record(self) -> Optional[dict]:
        path = os.path.join(self.directory, TRIAL_FILE)
        try:
            with tf.io.gfile.GFile(path) as f:
                record = json.loads(f.read())
        except (tf.errors.OpError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def final_checkpoint(self, steps: int) -> str:
        return os.path.join(self.directory, f"model.ckpt-{steps}")

    def plan(self) -> tuple:
        """``(action, note)``: "reuse" (a finished trial of these settings: evaluate its
        final checkpoint), "resume" (an interrupted one: train on from its checkpoint) or
        "train" (from the start; ``note`` says why earlier files are set aside, or None)."""
        names = [name.rstrip("/") for name in (
            tf.io.gfile.listdir(self.directory) if tf.io.gfile.isdir(self.directory) else [])]
        foreign = [name for name in names if not _TRIAL_ENTRY.match(name)]
        if foreign:  # a trial trained afresh removes its directory: never these files
            raise FinetuningError(
                f"{self.directory} holds files fine-tuning did not write "
                f"({', '.join(sorted(foreign)[:3])}): move them away, or fine-tune into "
                "another model directory")
        record = self._record()
        if record is None:
            if names:
                return "train", (f"{self.directory} holds a trial without a record of its "
                                 "settings (an earlier version's): training it afresh")
            return "train", None
        changes = setting_changes(record.get("settings") or {}, self.settings)
        if changes:
            return "train", (f"{self.directory} holds a trial trained with other settings "
                             f"({'; '.join(changes[:4])}"
                             + (f"; {len(changes) - 4} more" if len(changes) > 4 else "")
                             + "): training it afresh")
        steps = record.get("steps")
        if record.get("status") == "done" and steps is not None and \
                is_complete_checkpoint(self.final_checkpoint(steps)):
            self.steps = steps
            return "reuse", None
        if run_checkpoints(self.resume_dir, complete_only=False):
            return "resume", None
        return "train", None

    def start(self, steps: int, afresh: bool) -> None:
        """Records that the trial trains (``steps`` updates) with these settings; with
        ``afresh`` first removes the trial directory (as the original does at every run)."""
        if not self.chief:
            return
        if afresh and tf.io.gfile.exists(self.directory):
            tf.io.gfile.rmtree(self.directory)
        tf.io.gfile.makedirs(self.resume_dir)
        self._write_record("training", steps)

    def finish(self, steps: int) -> None:
        """The trial is done: its record says so, its resume checkpoints go."""
        if self.chief:
            self._write_record("done", steps)
        self.remove_resume_state()

    def _write_record(self, status: str, steps: int) -> None:
        write_text_atomic(os.path.join(self.directory, TRIAL_FILE), json.dumps(
            {"written_by": "run_finetuning.py", "trial": self.number, "status": status,
             "steps": steps, "settings": self.settings}, indent=2, sort_keys=True) + "\n")

    # -- checkpoints -----------------------------------------------------------

    def checkpoint(self, model, optimizer) -> tf.train.Checkpoint:
        """The resumable state of the trial: the model, the optimizer (slots, step) and the
        dropout RNG states (outside TensorFlow's object graph otherwise)."""
        checkpoint = tf.train.Checkpoint(optimizer=optimizer, model=model)
        checkpoint.dropout_rng = dropout_rng_states([model])
        return checkpoint

    def manager(self, checkpoint) -> tf.train.CheckpointManager:
        if self._manager is None:
            self._manager = tf.train.CheckpointManager(checkpoint, self.write_dir, max_to_keep=2,
                                                       checkpoint_name="ckpt")
        return self._manager

    def restore(self, checkpoint) -> tuple:
        """Restores the newest resume checkpoint that restores: ``(its step, warning or
        None)``; a damaged newest one is skipped (the warning names it) for the one before.
        When none restores, FinetuningError: the trial never starts afresh silently."""
        failures = []
        for step, prefix in reversed(run_checkpoints(self.resume_dir, complete_only=False)):
            try:
                checkpoint.restore(prefix).assert_existing_objects_matched()
            except (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError) as e:
                # A truncated file surfaces as IndexError ("Read less bytes than requested").
                failures.append(f"{os.path.basename(prefix)} ({first_line(e)})")
                continue
            return step, (f"skipped checkpoint(s) that do not restore: {'; '.join(failures)}"
                          if failures else None)
        raise FinetuningError(
            f"no checkpoint of trial {self.number} in {self.resume_dir} restores "
            f"({'; '.join(failures) or 'none found'}): move {self.resume_dir} away to train "
            "the trial afresh")

    def save(self, checkpoint, step: int) -> None:
        """Saves the resumable state at ``step``; a failed save (a full disk) is one line."""
        if self.chief:
            remove_partial_saves(self.write_dir, quiet=True)
        try:
            self.manager(checkpoint).save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as e:
            remove_partial_saves(self.write_dir, quiet=True)
            raise FinetuningError(
                f"could not save trial {self.number} at step {step} in {self.write_dir}: "
                f"{first_line(e)}; free space (or fix the directory) and re-run the same "
                "command: it resumes from the trial's last checkpoint") from e

    def remove_resume_state(self) -> None:
        """Removes this process's resume checkpoints (the chief's, or a worker's scratch):
        a finished trial needs none."""
        if tf.io.gfile.exists(self.write_dir):
            tf.io.gfile.rmtree(self.write_dir)
