"""The pre-training driver: train and evaluate ELECTRA / Electric / MLM under tf.distribute.

Reads top to bottom: set-up (the runtime of ``training/runtime.py``, vocab, models,
optimizer, checkpoint, input), then the train loop (step function, logging,
checkpoints), then the final exports; ``evaluate`` runs the metrics of spec 3.12.
The run directory's lock, state file and stop signal live in ``training/run_directory.py``.

Every logged step (``log_every_steps``) prints a progress line, writes TensorBoard
scalars in ``<model_dir>/train/`` and appends a JSON record to
``<model_dir>/train_log.jsonl`` (with one record where each invocation starts and one
where it stops): step, losses and every training statistic, learning rate, speed, wall
and CPU time. Programs read that file, not the progress lines:
``electra_tf.training.train_log`` describes its records and reads them
(``read_train_log(model_dir)``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import sys
import time
from typing import Optional

import keras
import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.config import PretrainingConfig
from electra_tf.data.progress import format_duration
from electra_tf.formats import files, run_checkpoint, tf1
from electra_tf.io_utils import first_line, write_text_atomic
from electra_tf.pretraining import PretrainingMetrics, PretrainingObjective
from electra_tf.pretraining import random
from electra_tf.pretraining.random import step_seed
from electra_tf.tokenization import default_vocab_file
from electra_tf.training.accumulation import make_update_step
from electra_tf.training.input_pipeline import (find_unreadable_file, pretraining_dataset,
                                                validate_records)
from electra_tf.training.run_directory import (CONFIG_FILE, PretrainingError, StopSignal,
                                               Terminated, check_model_dir, check_same_run,
                                               dropout_rng_states, exclusive_lock,
                                               remove_partial_saves, run_checkpoints,
                                               run_record, write_run_record)
from electra_tf.training.runtime import Runtime, scale_loss
from electra_tf.training.strategy import CLUSTER_FAILURES, cluster_failure
from electra_tf.training.train_log import TrainLogWriter

log = logging.getLogger("electra_tf")

@dataclasses.dataclass
class RunOptions:
    """Where and how a run executes (the hyperparameters live in PretrainingConfig).

    The command-line flags of ``run_pretraining.py`` take their defaults from here.
    """

    model_dir: str
    pretrain_tfrecords: str
    vocab_file: Optional[str] = None          # None: the bundled BERT uncased vocab
    strategy: str = "default"
    tpu: Optional[str] = None
    jit_compile: Optional[bool] = None        # None: strategy.xla_is_default
    mixed_precision: Optional[str] = None     # None (float32), "bfloat16", "float16", "auto"
    seed: int = 0
    deterministic: bool = False               # fix the tf.data interleave order too
    log_every_steps: int = 10
    init_checkpoint: Optional[str] = None     # a TF1-name checkpoint (e.g. Google's release)
    stop_at_step: Optional[int] = None        # end this invocation early (resumable)
    quiet: bool = False


# ---------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------

def special_token_ids(config: PretrainingConfig, path: str) -> dict:
    """``{"cls", "sep", "mask"}``: the ids of ``[CLS]``, ``[SEP]`` and ``[MASK]`` in the vocab
    at ``path``, which pre-training with ``config`` masks and packs with.

    Raises PretrainingError when the file is missing, lacks one of the three tokens, or
    holds more tokens than ``config.vocab_size`` (the embedding rows).
    """
    from electra_tf.tokenization import load_vocab
    if not os.path.exists(path):
        raise PretrainingError(f"vocab file not found: {path}")
    vocab = load_vocab(path)
    missing = [t for t in ("[CLS]", "[SEP]", "[MASK]") if t not in vocab]
    if missing:
        raise PretrainingError(f"vocab {path} lacks {', '.join(missing)}")
    if len(vocab) > config.vocab_size:
        raise PretrainingError(
            f"vocab {path} has {len(vocab)} tokens but vocab_size is {config.vocab_size}; "
            f'pass --hparams=\'{{"vocab_size": {len(vocab)}}}\'')
    return {"cls": vocab["[CLS]"], "sep": vocab["[SEP]"], "mask": vocab["[MASK]"]}


class PretrainingRun:
    """Models, optimizer, checkpoint and input of one run, built under the strategy."""

    def __init__(self, config: PretrainingConfig, options: RunOptions, training: bool):
        self.config, self.options = config, options
        # Only the chief's checkpoints are kept; other workers write to scratch (strategy.py).
        self.runtime = Runtime.from_options(options, model_dir=options.model_dir)
        self.strategy, self.replicas = self.runtime.strategy, self.runtime.replicas
        self.chief, self.write_dir = self.runtime.chief, self.runtime.write_dir
        self.vocab_file = options.vocab_file or default_vocab_file()
        special_ids = special_token_ids(config, self.vocab_file)
        keras.utils.set_random_seed(options.seed)  # weight init and dropout streams
        with self.strategy.scope():
            self.objective = PretrainingObjective(config, special_ids)
            self.models = self.objective.models
        # base_optimizer (AdamWeightDecay or LAMB) holds the step and slots; optimizer
        # applies the updates (a LossScaleOptimizer around it with float16).
        self.base_optimizer, self.optimizer = self.runtime.create_optimizer(
            self.models, **run_checkpoint.optimizer_settings(config))
        self.variables = self.base_optimizer.built_variables
        self.checkpoint = run_checkpoint.run_checkpoint(self.models, self.base_optimizer)
        # Dropout RNG states are not reachable through Keras' object graph; track them so
        # that a resumed run draws the same dropout masks as an uninterrupted one.
        self.checkpoint.dropout_rng = dropout_rng_states(self.models.models)
        # With accumulation the input yields micro-batches; an update sums k of them.
        batch = (config.train_batch_size // config.gradient_accumulation_steps if training
                 else config.eval_batch_size)
        if batch % self.replicas:
            raise PretrainingError(f"batch size {batch} is not divisible by the "
                                   f"{self.replicas} replicas")
        self.iterator = self._input(batch, training) if training else None
        self._eval_step = None  # traced once, reused for every evaluated checkpoint
        if self.replicas == 1 and training:  # tf.data can checkpoint a local iterator's position
            self.checkpoint.input = self.iterator
        self.training = training
        self._manager = None

    @property
    def manager(self) -> tf.train.CheckpointManager:
        """Created after ``restore`` has made the state file list only restorable checkpoints,
        so that rotation never deletes intact checkpoints in favour of missing ones."""
        if self._manager is None:
            self._manager = tf.train.CheckpointManager(
                self.checkpoint, self.write_dir,
                max_to_keep=(self.config.keep_checkpoint_max or None) if self.chief else 1,
                checkpoint_name="ckpt")
        return self._manager

    def _input(self, batch: int, training: bool):
        o, c = self.options, self.config

        def make(context: Optional[tf.distribute.InputContext] = None):
            per_replica = context.get_per_replica_batch_size(batch) if context else batch
            # Evaluation reads the same batches at every checkpoint (comparable curves).
            return pretraining_dataset(o.pretrain_tfrecords, c.max_seq_length, per_replica,
                                       seed=o.seed if training else o.seed + 1,
                                       deterministic=o.deterministic or not training,
                                       input_context=context)
        if self.replicas == 1:
            with tf.device("/cpu:0"):
                return iter(make())
        return iter(self.strategy.distribute_datasets_from_function(make))

    @property
    def step(self) -> int:
        return int(self.base_optimizer.iterations.numpy())

    def restore(self) -> Optional[str]:
        """Resumes from the newest checkpoint in model_dir that restores, else starts from
        init_checkpoint.

        A newest checkpoint that is missing, truncated or corrupt is skipped (with a
        warning) for the previous one; a directory holding checkpoints of which none
        restores is an error, never a fresh start. Every worker of a cluster restores
        the chief's latest checkpoint, so a restarted cluster resumes where the chief
        last saved.
        """
        model_dir = self.options.model_dir
        found = run_checkpoints(model_dir, complete_only=False)
        failures = []
        for step, prefix in reversed(found):
            try:
                status = self.checkpoint.restore(prefix)
                status.assert_existing_objects_matched()
                if not self.training:
                    status.expect_partial()  # the train input's position is not needed
            except (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError) as e:
                # A truncated file surfaces as IndexError ("Read less bytes than requested").
                failures.append(f"{os.path.basename(prefix)} ({first_line(e)})")
                continue
            if failures and not self.options.quiet:
                print(f"warning: skipped checkpoint(s) that do not restore: "
                      f"{'; '.join(failures)}; using {os.path.basename(prefix)}",
                      file=sys.stderr, flush=True)
            if self.training and self.chief:
                files.write_state_file(model_dir, prefix, [p for s, p in found if s <= step],
                                             timestamps=True)
            return prefix
        if failures:
            raise PretrainingError(
                f"no checkpoint in {model_dir} restores ({'; '.join(failures)}). If the flags "
                f"changed, use those of {CONFIG_FILE} there or another --model_name; if the "
                "files are damaged, move the ckpt-N.* files away (all of them to start afresh)")
        if self.options.init_checkpoint:
            self._load_init_checkpoint(self.options.init_checkpoint)
        return None

    def _load_init_checkpoint(self, path: str) -> None:
        from electra_tf import loading
        weights = loading.read_weights(path)
        report = checkpoints.assign_original_weights(weights.values, *self.models.models,
                                                     source=weights.source)
        if weights.format == "tf1":
            slots = tf1.load_slots(self.base_optimizer, weights.source,
                                   restore_iterations=True)
        else:  # a run directory / ckpt-N, HF or keras: weights only, training restarts at 0
            slots = "no optimizer slots (only a TF1-name checkpoint carries them)"
        log.info("initialised from %s: %s; %s", path, report, slots)


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

def make_train_step(run: PretrainingRun, jit_compile: bool):
    """One update: k = gradient_accumulation_steps micro-batches, then one optimizer step.

    The original normalises its losses over the whole batch (token-level means:
    sum of losses / sum of weights). Every replica and micro-batch divides its
    summed losses by the counts of the whole update batch, so the shards' losses
    and gradients add up to those of one device at the global batch, whatever the
    records' lengths. Masking and sampling noise of a shard are its rows of the
    update batch's draw (``random.microbatch``).
    """
    objective, variables, optimizer = run.objective, run.variables, run.optimizer
    k = run.config.gradient_accumulation_steps

    def loss_and_gradients(features, micro_index, totals, seed):
        with tf.GradientTape() as tape, random.microbatch(micro_index, k):
            out = objective(features, seed, training=True, denominators=totals)
            # This shard's share: the optimizer sums the replicas' gradients.
            loss = scale_loss(optimizer, out["total_loss"])
        return tape.gradient(loss, variables), objective.recipe.train_statistics(
            out, features["input_mask"], totals)

    update = make_update_step(run.strategy, optimizer, variables,
                              tf.function(loss_and_gradients, jit_compile=jit_compile), k,
                              reduce_op=tf.distribute.ReduceOp.SUM, combine="sum",
                              denominators=objective.loss_denominators)

    @tf.function
    def train_step(iterator):
        return update(iterator, step_seed(run.options.seed, run.base_optimizer.iterations))

    return train_step


def _progress_line(step, total, started, window_steps, window_time, stats, batch_size) -> str:
    elapsed = time.time() - started
    rate = window_steps / window_time if window_time > 0 else float("nan")
    eta = (total - step) / rate if rate > 0 else None  # False for NaN too
    parts = [f"step {step}/{total} ({100.0 * step / total:.1f}%)",
             f"{rate:.2f} steps/s, {rate * batch_size:.1f} examples/s",
             f"elapsed {format_duration(elapsed)}, ETA {format_duration(eta)}",
             "loss " + " ".join(f"{k.replace('_loss', '')}={v:.4f}" for k, v in stats.items()
                                if k.endswith("loss"))]
    if "masked_lm_accuracy" in stats:
        parts.append(f"mlm_acc={stats['masked_lm_accuracy']:.3f}")
    return " | ".join(parts)


def _scalar_summary(name: str, value: float) -> None:
    """A TensorBoard scalar without importing tensorboard (not a TensorFlow dependency)."""
    from tensorflow.core.framework import summary_pb2
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    tf.summary.write(name, tf.constant(value, tf.float32), metadata=metadata.SerializeToString())


def _export(run: PretrainingRun, step: int) -> dict:
    """TF1-name exports: everything (with Adam slots) and the discriminator alone.

    A failed write (a full disk) is one PretrainingError naming the export: the run's
    checkpoint of ``step`` is saved, and re-running the command writes the exports again.
    """
    model_dir = run.options.model_dir
    finetune_model = run.models.discriminator or run.models.generator.encoder
    contents = {"tf1": (run.models.models, tf1.slot_variables(run.base_optimizer)),
                "discriminator": ([finetune_model], None)}
    written = {}
    for name, (models, variables) in contents.items():
        directory = os.path.join(model_dir, name)
        try:
            # The config and vocab are written before the index: one atomic export.
            written[name] = tf1.save_original_checkpoint(
                os.path.join(directory, f"model.ckpt-{step}"), *models, variables=variables,
                global_step=step, config=run.config, vocab_file=run.vocab_file)
        except (tf.errors.OpError, OSError) as e:
            raise PretrainingError(
                f"could not write the final export {directory}: {first_line(e)}; the run's "
                f"checkpoint ckpt-{step} is saved: free space (or fix the directory) and re-run "
                "the same command: it writes the exports again") from e
    return written


def train(config: PretrainingConfig, options: RunOptions) -> dict:
    """Pre-trains until ``config.num_train_steps`` (or ``options.stop_at_step``).

    Re-running with the same model_dir resumes from its latest checkpoint that
    restores: weights, optimizer slots, step, the masking/sampling random stream (a
    function of the step) and, on one replica, the input position. Before any work
    the data are checked, the directory is locked against a second run, and
    leftovers of a crashed save are removed. Ctrl-C and SIGTERM save a checkpoint
    first (SIGTERM then raises :class:`Terminated`); a corrupt record or a failed
    save stops with one :class:`PretrainingError` after saving what can be saved.
    The chief appends every logged step, and the start and stop of this invocation, to
    ``<model_dir>/train_log.jsonl`` (``training/train_log.py``: its records and reader).

    Returns:
      dict with ``step``, the last ``stats``, ``history`` ([(step, stats)] at every
      logged step) and, when training finished, the ``exports`` paths.
    """
    if options.log_every_steps <= 0:
        raise PretrainingError(f"--log_every_steps must be positive, got "
                               f"{options.log_every_steps}")
    check_model_dir(options.model_dir)
    check_same_run(config, options.model_dir,
                   vocab_file=options.vocab_file or default_vocab_file())
    empty = validate_records(options.pretrain_tfrecords, config.max_seq_length,
                             vocab_file=options.vocab_file or default_vocab_file())
    try:
        tf.io.gfile.makedirs(options.model_dir)
    except tf.errors.OpError as e:  # e.g. a read-only parent directory
        raise PretrainingError(f"cannot create --model_dir {options.model_dir} "
                               f"({first_line(e)}): pass a writable --model_dir") from e
    with contextlib.ExitStack() as stack:
        run = PretrainingRun(config, options, training=True)
        if run.chief:
            stack.enter_context(exclusive_lock(options.model_dir))
            remove_partial_saves(options.model_dir, options.quiet)
        stop_signal = stack.enter_context(StopSignal())
        return _train(run, stop_signal, empty)


def _train(run: PretrainingRun, stop_signal: StopSignal, empty_files: list) -> dict:
    config, options = run.config, run.options
    resumed = run.restore()
    say = run.runtime.printer(options.quiet)
    if empty_files:
        say(f"warning: {len(empty_files)} empty file(s) among the records, e.g. "
            f"{empty_files[0]}")
    total = config.num_train_steps
    stop = min(total, options.stop_at_step or total)
    start_step = run.step
    say(f"pre-training ELECTRA-{config.model_size} in {options.model_dir}: "
        f"{'resuming from ' + os.path.basename(resumed) if resumed else 'starting'} at step "
        f"{start_step}/{total}, batch {config.train_batch_size}"
        + (f" ({config.gradient_accumulation_steps} accumulated micro-batches)"
           if config.gradient_accumulation_steps > 1 else "")
        + f", {run.replicas} replica(s), strategy {options.strategy}, optimizer "
        f"{config.optimizer}, {run.runtime.mixed_precision or 'float32'} "
        f"({run.runtime.precision_reason}), XLA {'on' if run.runtime.jit_compile else 'off'}")
    warmup = max(config.num_warmup_steps, 0)
    if warmup >= total > start_step:
        peak = config.learning_rate * max(min(t / warmup, 1.0) * (1 - t / total)
                                          for t in range(0, total + 1, max(1, total // 100)))
        say(f"warning: the warm-up ({warmup} steps) is not shorter than the run ({total} "
            f"steps): the learning rate peaks at {peak:.3g}, not {config.learning_rate:g}; "
            "pass --num_warmup_steps (e.g. a tenth of the steps)")
    if not run.chief and not options.quiet:
        print(f"worker: training from step {start_step}; the chief writes checkpoints, "
              f"summaries and exports (scratch: {run.write_dir})", file=sys.stderr, flush=True)
    if run.chief:
        config.to_json(os.path.join(options.model_dir, CONFIG_FILE))
        # What the run is built with: a later resume under other inputs is refused.
        record = run_record(config, run.vocab_file)
        write_run_record(options.model_dir, record)
        # The run directory is a model too (electra_tf.loading reads its ckpt-N).
        tf.io.gfile.copy(run.vocab_file, os.path.join(options.model_dir, "vocab.txt"),
                         overwrite=True)
    # The machine-readable log (train_log.py), written by the chief only.
    log = TrainLogWriter(options.model_dir, enabled=run.chief, warn=say)
    if run.chief:
        log.start(step=start_step, total_steps=total, stop_step=stop,
                  resumed_from=os.path.basename(resumed) if resumed else None,
                  init_checkpoint=options.init_checkpoint, recipe=run.objective.recipe.kind,
                  config=config.to_dict(), run_record=record,
                  runtime=_runtime_description(run))
    try:
        return _train_loop(run, stop_signal, log, start_step, stop, resumed)
    finally:
        log.close()


def _runtime_description(run: PretrainingRun) -> dict:
    """How this invocation runs (the start record of ``train_log.jsonl``)."""
    config, options, runtime = run.config, run.options, run.runtime
    return {"train_batch_size": config.train_batch_size,
            "gradient_accumulation_steps": config.gradient_accumulation_steps,
            "replicas": run.replicas, "strategy": options.strategy,
            "optimizer": config.optimizer, "precision": runtime.mixed_precision or "float32",
            "precision_reason": runtime.precision_reason, "jit_compile": runtime.jit_compile,
            "seed": options.seed, "deterministic": options.deterministic,
            "log_every_steps": options.log_every_steps,
            "pretrain_tfrecords": options.pretrain_tfrecords, "vocab_file": run.vocab_file}


def _train_loop(run: PretrainingRun, stop_signal: StopSignal, log: TrainLogWriter,
                start_step: int, stop: int, resumed: Optional[str]) -> dict:
    config, options = run.config, run.options
    say = run.runtime.printer(options.quiet)
    total = config.num_train_steps
    train_step = make_train_step(run, run.runtime.jit_compile)
    writer = (tf.summary.create_file_writer(os.path.join(options.model_dir, "train"))
              if run.chief else tf.summary.create_noop_writer())

    def save(at_step):  # every worker saves at the same steps (see worker_directory)
        nonlocal saved_step
        try:
            run.manager.save(checkpoint_number=at_step)
        except (tf.errors.OpError, OSError) as e:
            remove_partial_saves(run.write_dir, quiet=True)
            last = f"ckpt-{saved_step}" if saved_step is not None else "its start"
            raise PretrainingError(
                f"could not write checkpoint ckpt-{at_step} in {run.write_dir}: {first_line(e)}"
                f"; free space (or fix the directory) and re-run the same command: it "
                f"resumes from {last}") from e
        saved_step = at_step

    started = window_start = time.time()
    cpu_started = time.process_time()  # the process's CPU time, every thread
    window_steps, stats, step, history, skipped = 0, {}, start_step, [], 0
    saved_step = start_step if resumed else None
    reason, error = "error", None
    try:
        try:
            while step < stop:
                if stop_signal.received:
                    save(step)
                    say(f"stopped by signal {stop_signal.received} at step {step}; checkpoint "
                        "saved. Re-run the same command to resume.")
                    raise Terminated(stop_signal.received, step)
                try:
                    stats = {k: float(v) for k, v in train_step(run.iterator).items()}
                except tf.errors.DataLossError as e:
                    if saved_step != step:
                        save(step)  # the failed step changed nothing: its input never arrived
                    bad = find_unreadable_file(options.pretrain_tfrecords)
                    raise PretrainingError(
                        f"corrupt pre-training data in {bad or options.pretrain_tfrecords} "
                        f"({first_line(e)}); checkpoint saved at step {step}. Rebuild or "
                        "remove that file and re-run the same command to resume") from e
                if run.step == step:  # float16 loss scaling skipped an overflowing update
                    skipped += 1
                    if skipped > 100:
                        raise PretrainingError("100 consecutive float16 updates overflowed; "
                                               "use --mixed_precision=bfloat16 or float32")
                    continue
                step, skipped = run.step, 0
                window_steps += 1
                if not all(math.isfinite(v) for v in stats.values()):
                    raise PretrainingError(f"non-finite loss at step {step}: {stats}; lower "
                                           "the learning rate or check the data")
                if step % options.log_every_steps == 0 or step == stop:
                    history.append((step, stats))
                    now = time.time()
                    learning_rate = float(run.base_optimizer.learning_rate)
                    say(_progress_line(step, total, started, window_steps, now - window_start,
                                       stats, config.train_batch_size))
                    log.step(step=step, total_steps=total, stats=stats,
                             learning_rate=learning_rate, window_steps=window_steps,
                             window_s=now - window_start, batch_size=config.train_batch_size,
                             elapsed_s=now - started, cpu_s=time.process_time() - cpu_started)
                    with writer.as_default(step=step):
                        for name, value in {
                                **stats, "learning_rate": learning_rate,
                                "steps_per_second": window_steps / (now - window_start)}.items():
                            _scalar_summary(name, value)
                    window_start, window_steps = now, 0
                if step % config.save_checkpoints_steps == 0:
                    save(step)
        except KeyboardInterrupt:
            save(step)
            say(f"interrupted at step {step}; checkpoint saved. Re-run the same command to "
                "resume.")
            raise
        except CLUSTER_FAILURES as e:
            if run.replicas == 1:
                raise
            raise cluster_failure(e, step, options.model_dir) from e
        if saved_step != step:
            save(step)
        result = {"step": step, "stats": stats, "history": history}
        if step >= total and run.chief:
            result["exports"] = _export(run, step)
            exports = {k: os.path.dirname(v) for k, v in result["exports"].items()}
            say(f"done: step {step}. Fine-tune from {exports['discriminator']} (TF1 names); "
                f"full checkpoint with optimizer slots in {exports['tf1']}")
        if not run.chief and tf.io.gfile.exists(run.write_dir):
            tf.io.gfile.rmtree(run.write_dir)
        reason = "finished" if step >= total else "stop_at_step"
        return result
    except Terminated as e:
        reason = f"signal {e.signum}"
        raise
    except KeyboardInterrupt:
        reason = "interrupted"
        raise
    except Exception as e:
        error = first_line(e)
        raise
    finally:
        log.end(step=step, total_steps=total, reason=reason, elapsed_s=time.time() - started,
                cpu_s=time.process_time() - cpu_started, error=error)


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------

def evaluate(config: PretrainingConfig, options: RunOptions, checkpoint: Optional[str] = None,
             all_checkpoints: bool = False) -> dict:
    """Runs the metrics of spec 3.12 over ``num_eval_steps`` batches.

    Every checkpoint is evaluated on the same batches with the same masking and
    sampling noise, with dropout off, at ``eval_batch_size`` (any size).

    Args:
      checkpoint: a ``ckpt-N`` of the run (name or path) instead of the latest.
      all_checkpoints: evaluate every complete ``ckpt-N`` of the run that is not yet
        in ``results/learning_curve.json`` and add it there (and to TensorBoard
        events in ``<model_dir>/eval``): a learning curve that later calls extend.
    Returns:
      the metrics (with ``global_step``); for ``all_checkpoints``, the whole curve
      ``{"checkpoints": [metrics, ...]}``. Single results also go to
      ``<model_dir>/results/unsup_results.{txt,json}``.
    """
    validate_records(options.pretrain_tfrecords, config.max_seq_length,
                     vocab_file=options.vocab_file or default_vocab_file())
    run = PretrainingRun(config, options, training=False)
    results_dir = os.path.join(options.model_dir, "results")
    if all_checkpoints:
        return _evaluate_all(run, results_dir)
    if checkpoint:
        path = checkpoint if tf.io.gfile.exists(checkpoint + ".index") else \
            os.path.join(options.model_dir, checkpoint)
        if not tf.io.gfile.exists(path + ".index"):
            raise PretrainingError(f"checkpoint {checkpoint} not found (looked for {path}.index)")
        # the optimizer slots and the train input's position are not needed to evaluate
        run.checkpoint.restore(path).assert_existing_objects_matched().expect_partial()
    elif run.restore() is None and not options.init_checkpoint:
        raise PretrainingError(f"no checkpoint to evaluate in {options.model_dir}; train first "
                               "or pass --init_checkpoint")
    results = {"global_step": run.step, **_eval_metrics(run)}
    tf.io.gfile.makedirs(results_dir)
    write_text_atomic(os.path.join(results_dir, "unsup_results.json"),
                      json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_text_atomic(os.path.join(results_dir, "unsup_results.txt"),
                      "".join(f"{k} = {v}\n" for k, v in sorted(results.items())))
    return results


def _evaluate_all(run: PretrainingRun, results_dir: str) -> dict:
    model_dir = run.options.model_dir
    checkpoints_found = run_checkpoints(model_dir)
    if not checkpoints_found:
        raise PretrainingError(f"no checkpoint to evaluate in {model_dir} (looked for "
                               "ckpt-N.index with its data files); train first")
    path = os.path.join(results_dir, "learning_curve.json")
    curve = {"checkpoints": []}
    if tf.io.gfile.exists(path):
        curve = json.loads(tf.io.gfile.GFile(path).read())
    done = {point["global_step"] for point in curve["checkpoints"]}
    todo = [(step, prefix) for step, prefix in checkpoints_found if step not in done]
    tf.io.gfile.makedirs(results_dir)
    writer = tf.summary.create_file_writer(os.path.join(model_dir, "eval"))
    for n, (step, prefix) in enumerate(todo, 1):
        run.checkpoint.restore(prefix).assert_existing_objects_matched().expect_partial()
        results = {"global_step": run.step, **_eval_metrics(run)}
        curve["checkpoints"] = sorted(curve["checkpoints"] + [results],
                                      key=lambda point: point["global_step"])
        write_text_atomic(path, json.dumps(curve, indent=2, sort_keys=True) + "\n")
        with writer.as_default(step=results["global_step"]):
            for name, value in results.items():
                if name != "global_step":
                    _scalar_summary(name, float(value))
        writer.flush()
        if not run.options.quiet:
            print(f"evaluated {os.path.basename(prefix)} ({n}/{len(todo)}): " + ", ".join(
                f"{k}={v:.4f}" for k, v in sorted(results.items()) if k != "global_step"),
                file=sys.stderr, flush=True)
    return curve


def _eval_metrics(run: PretrainingRun) -> dict:
    """The metrics of the restored weights on the run's first ``num_eval_steps`` eval batches."""
    config, options = run.config, run.options
    metrics = PretrainingMetrics(run.objective.recipe.has_discriminator, config.disc_weight)
    objective = run.objective
    iterator = run._input(config.eval_batch_size, False)  # the same batches every time

    @tf.function
    def eval_step(iterator, seed):
        def replica_fn(features):
            out = objective(features, seed, training=False)
            keep = ("masked_lm_weights", "masked_lm_ids", "mlm_logits", "sampled_ids",
                    "disc_labels", "disc_logits", "disc_per_example_loss")
            return {k: v for k, v in out.items() if k in keep}, features["input_mask"], \
                out["total_loss"]
        return run.strategy.run(replica_fn, args=(next(iterator),))

    if run._eval_step is None:
        run._eval_step = eval_step
    for i in range(config.num_eval_steps):
        outs, masks, losses = run._eval_step(iterator, step_seed(options.seed + 1, i))
        for out, mask, loss in zip(*(run.strategy.experimental_local_results(x)
                                     for x in (outs, masks, losses))):
            metrics.update({**out, "total_loss": loss}, mask)
    return metrics.result()
