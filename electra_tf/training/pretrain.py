"""The pre-training driver: train and evaluate ELECTRA / Electric / MLM under tf.distribute.

Reads top to bottom: set-up (precision, strategy, vocab, models, optimizer,
checkpoint, input), then the train loop (step function, logging, checkpoints),
then the final exports; ``evaluate`` runs the metrics of spec 3.12.
"""

from __future__ import annotations

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
from electra_tf.io_utils import write_text_atomic
from electra_tf.optimization import create_optimizer, with_loss_scaling
from electra_tf.pretraining import PretrainingMetrics, PretrainingObjective
from electra_tf.pretraining import random
from electra_tf.pretraining.random import step_seed
from electra_tf.training.accumulation import make_update_step
from electra_tf.training.input_pipeline import pretraining_dataset
from electra_tf.training.strategy import (CLUSTER_FAILURES, cluster_failure, create_strategy,
                                         is_chief, set_precision, worker_directory,
                                         xla_is_default)

log = logging.getLogger("electra_tf")


class PretrainingError(RuntimeError):
    """A user-facing problem with a pre-training run (bad paths, incompatible state)."""


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
    jit_compile: Optional[bool] = None        # None: XLA on one GPU/TPU, not on CPUs
    mixed_precision: Optional[str] = None     # None, "bfloat16" or "float16"
    seed: int = 0
    deterministic: bool = False               # fix the tf.data interleave order too
    log_every_steps: int = 10
    init_checkpoint: Optional[str] = None     # a TF1-name checkpoint (e.g. Google's release)
    stop_at_step: Optional[int] = None        # end this invocation early (resumable)
    quiet: bool = False


# ---------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------

def _special_ids(config: PretrainingConfig, path: str) -> dict:
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
        set_precision(options.mixed_precision)
        self.strategy = create_strategy(options.strategy, options.tpu)
        self.replicas = self.strategy.num_replicas_in_sync
        self.chief = is_chief(self.strategy)
        # Only the chief's checkpoints are kept; other workers write to scratch (strategy.py).
        self.write_dir = worker_directory(options.model_dir, self.strategy)
        from electra_tf.tokenization import default_vocab_file
        self.vocab_file = options.vocab_file or default_vocab_file()
        special_ids = _special_ids(config, self.vocab_file)
        keras.utils.set_random_seed(options.seed)  # weight init and dropout streams
        with self.strategy.scope():
            self.objective = PretrainingObjective(config, special_ids)
            self.models = self.objective.models
            self.optimizer = create_optimizer(
                self.models, learning_rate=config.learning_rate,
                num_train_steps=config.num_train_steps, num_warmup_steps=config.num_warmup_steps,
                lr_decay_power=config.lr_decay_power, weight_decay_rate=config.weight_decay_rate,
                clip_norm=1.0, optimizer=config.optimizer)
            self.adam = self.optimizer
            self.optimizer = with_loss_scaling(self.adam, options.mixed_precision)
        self.variables = self.adam.built_variables
        tracked = {name: model for name, model in
                   (("generator", self.models.generator),
                    ("discriminator", self.models.discriminator)) if model is not None}
        self.checkpoint = tf.train.Checkpoint(optimizer=self.adam, **tracked)
        # Dropout RNG states are not reachable through Keras' object graph; track them so
        # that a resumed run draws the same dropout masks as an uninterrupted one.
        self.checkpoint.dropout_rng = _dropout_rng_states(self.models.models)
        # With accumulation the input yields micro-batches; an update sums k of them.
        batch = (config.train_batch_size // config.gradient_accumulation_steps if training
                 else config.eval_batch_size)
        if batch % self.replicas:
            raise PretrainingError(f"batch size {batch} is not divisible by the "
                                   f"{self.replicas} replicas")
        self.iterator = self._input(batch, training)
        if self.replicas == 1:  # tf.data can checkpoint a local iterator's position
            self.checkpoint.input = self.iterator
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.write_dir,
            max_to_keep=(config.keep_checkpoint_max or None) if self.chief else 1,
            checkpoint_name="ckpt")

    def _input(self, batch: int, training: bool):
        o, c = self.options, self.config

        def make(context: Optional[tf.distribute.InputContext] = None):
            per_replica = context.get_per_replica_batch_size(batch) if context else batch
            return pretraining_dataset(o.pretrain_tfrecords, c.max_seq_length, per_replica,
                                       seed=o.seed if training else o.seed + 1,
                                       deterministic=o.deterministic, input_context=context)
        if self.replicas == 1:
            with tf.device("/cpu:0"):
                return iter(make())
        return iter(self.strategy.distribute_datasets_from_function(make))

    @property
    def step(self) -> int:
        return int(self.adam.iterations.numpy())

    def restore(self) -> Optional[str]:
        """Resumes from the latest checkpoint in model_dir, else starts from init_checkpoint.

        Every worker of a cluster restores the chief's latest checkpoint, so a
        restarted cluster resumes where the chief last saved.
        """
        latest = tf.train.latest_checkpoint(self.options.model_dir)
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            return latest
        if self.options.init_checkpoint:
            self._load_init_checkpoint(self.options.init_checkpoint)
        return None

    def _load_init_checkpoint(self, path: str) -> None:
        report = checkpoints.load_original_checkpoint(path, *self.models.models)
        slots = self.adam.load_original_slots(path, restore_iterations=True)
        log.info("initialised from %s: %s; %s", path, report, slots)


def _dropout_rng_states(models) -> list:
    states, seen = [], set()
    for model in models:
        for layer in model._flatten_layers(include_self=False):
            generator = getattr(layer, "seed_generator", None)
            if generator is not None and id(layer) not in seen:
                seen.add(id(layer))
                states.append(generator.state.value)
    return states


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

_TRAIN_STATS = ("total_loss", "mlm_loss", "disc_loss", "masked_lm_accuracy",
                "sampled_masked_lm_accuracy", "disc_accuracy")


def _batch_stats(out: dict, input_mask) -> dict:
    """Cheap per-batch training statistics (scalars) from the objective's outputs."""
    weights = out["masked_lm_weights"]
    total = tf.reduce_sum(weights) + 1e-6
    preds = tf.argmax(out["mlm_logits"], -1, output_type=tf.int32)
    stats = {"total_loss": out["total_loss"], "mlm_loss": out["mlm_loss"],
             "masked_lm_accuracy": tf.reduce_sum(
                 weights * tf.cast(tf.equal(preds, out["masked_lm_ids"]), tf.float32)) / total}
    if "disc_loss" in out:
        stats["disc_loss"] = out["disc_loss"]
        stats["sampled_masked_lm_accuracy"] = tf.reduce_sum(weights * tf.cast(
            tf.equal(out["sampled_ids"], out["masked_lm_ids"]), tf.float32)) / total
        real = tf.cast(input_mask, tf.float32)
        correct = tf.cast(tf.equal(tf.cast(out["disc_logits"] > 0, tf.int32), out["disc_labels"]),
                          tf.float32)
        stats["disc_accuracy"] = tf.reduce_sum(correct * real) / (tf.reduce_sum(real) + 1e-6)
    return {k: tf.cast(v, tf.float32) for k, v in stats.items()}


def make_train_step(run: PretrainingRun, jit_compile: bool):
    """One update: k = gradient_accumulation_steps micro-batches, then one optimizer step.

    Each micro-batch's loss is divided by replicas * k, so the summed gradient is
    the mean over the update batch. Masking and sampling draw the noise of the
    whole update batch (``random.microbatch``), so k micro-batches of b examples
    are corrupted exactly like one batch of k * b.
    """
    objective, variables, optimizer = run.objective, run.variables, run.optimizer
    loss_scaling = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    k = run.config.gradient_accumulation_steps

    def loss_and_gradients(features, micro_index, seed):
        with tf.GradientTape() as tape, random.microbatch(micro_index, k):
            out = objective(features, seed, training=True)
            # Summed over replicas by the optimizer: the mean of per-replica losses.
            loss = out["total_loss"] / (run.replicas * k)
            if loss_scaling:
                loss = optimizer.scale_loss(loss)
        return tape.gradient(loss, variables), _batch_stats(out, features["input_mask"])

    update = make_update_step(run.strategy, optimizer, variables,
                              tf.function(loss_and_gradients, jit_compile=jit_compile), k)

    @tf.function
    def train_step(iterator):
        return update(iterator, step_seed(run.options.seed, run.adam.iterations))

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
    """TF1-name exports: everything (with Adam slots) and the discriminator alone."""
    model_dir = run.options.model_dir
    full = checkpoints.save_original_checkpoint(
        os.path.join(model_dir, "tf1", f"model.ckpt-{step}"), *run.models.models,
        variables=run.adam.original_slot_variables(), global_step=step)
    finetune_model = run.models.discriminator or run.models.generator.encoder
    disc = checkpoints.save_original_checkpoint(
        os.path.join(model_dir, "discriminator", f"model.ckpt-{step}"), finetune_model,
        global_step=step)
    for directory in ("tf1", "discriminator"):
        run.config.to_json(os.path.join(model_dir, directory, "pretraining_config.json"))
        tf.io.gfile.copy(run.vocab_file, os.path.join(model_dir, directory, "vocab.txt"),
                         overwrite=True)
    return {"tf1": full, "discriminator": disc}


def train(config: PretrainingConfig, options: RunOptions) -> dict:
    """Pre-trains until ``config.num_train_steps`` (or ``options.stop_at_step``).

    Re-running with the same model_dir resumes from its latest checkpoint:
    weights, optimizer slots, step, the masking/sampling random stream (a
    function of the step) and, on one replica, the input position.

    Returns:
      dict with ``step``, the last ``stats``, ``history`` ([(step, stats)] at every
      logged step) and, when training finished, the ``exports`` paths.
    """
    tf.io.gfile.makedirs(options.model_dir)
    run = PretrainingRun(config, options, training=True)
    resumed = run.restore()
    quiet = options.quiet or not run.chief
    say = (lambda *a: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    total = config.num_train_steps
    stop = min(total, options.stop_at_step or total)
    start_step = run.step
    say(f"pre-training ELECTRA-{config.model_size} in {options.model_dir}: "
        f"{'resuming from ' + os.path.basename(resumed) if resumed else 'starting'} at step "
        f"{start_step}/{total}, batch {config.train_batch_size}"
        + (f" ({config.gradient_accumulation_steps} accumulated micro-batches)"
           if config.gradient_accumulation_steps > 1 else "")
        + f", {run.replicas} replica(s), strategy {options.strategy}, optimizer "
        f"{config.optimizer}")
    if not run.chief and not options.quiet:
        print(f"worker: training from step {start_step}; the chief writes checkpoints, "
              f"summaries and exports (scratch: {run.write_dir})", file=sys.stderr, flush=True)
    if run.chief:
        config.to_json(os.path.join(options.model_dir, "pretraining_config.json"))
    jit = options.jit_compile if options.jit_compile is not None else xla_is_default(run.strategy)
    train_step = make_train_step(run, jit)
    writer = (tf.summary.create_file_writer(os.path.join(options.model_dir, "train"))
              if run.chief else tf.summary.create_noop_writer())

    def save(at_step):  # every worker saves at the same steps (see worker_directory)
        nonlocal saved_step
        run.manager.save(checkpoint_number=at_step)
        saved_step = at_step

    started = window_start = time.time()
    window_steps, stats, step, history, skipped = 0, {}, start_step, [], 0
    saved_step = start_step if resumed else None
    try:
        while step < stop:
            stats = {k: float(v) for k, v in train_step(run.iterator).items()}
            if run.step == step:  # float16 loss scaling skipped an overflowing update
                skipped += 1
                if skipped > 100:
                    raise PretrainingError("100 consecutive float16 updates overflowed; "
                                           "use --mixed_precision=bfloat16 or float32")
                continue
            step, skipped = run.step, 0
            window_steps += 1
            if not all(math.isfinite(v) for v in stats.values()):
                raise PretrainingError(f"non-finite loss at step {step}: {stats}; lower the "
                                       "learning rate or check the data")
            if step % options.log_every_steps == 0 or step == stop:
                history.append((step, stats))
                now = time.time()
                say(_progress_line(step, total, started, window_steps, now - window_start, stats,
                                   config.train_batch_size))
                with writer.as_default(step=step):
                    for name, value in {**stats, "learning_rate": float(run.adam.learning_rate),
                                        "steps_per_second": window_steps / (now - window_start)
                                        }.items():
                        _scalar_summary(name, value)
                window_start, window_steps = now, 0
            if step % config.save_checkpoints_steps == 0:
                save(step)
    except KeyboardInterrupt:
        save(step)
        say(f"interrupted at step {step}; checkpoint saved. Re-run the same command to resume.")
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
        say(f"done: step {step}. Fine-tune from {exports['discriminator']} (TF1 names); full "
            f"checkpoint with optimizer slots in {exports['tf1']}")
    if not run.chief and tf.io.gfile.exists(run.write_dir):
        tf.io.gfile.rmtree(run.write_dir)
    return result


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------

def evaluate(config: PretrainingConfig, options: RunOptions) -> dict:
    """Runs the metrics of spec 3.12 over ``num_eval_steps`` batches of the latest checkpoint.

    Results go to ``<model_dir>/results/unsup_results.{txt,json}``.
    """
    run = PretrainingRun(config, options, training=False)
    if run.restore() is None and not options.init_checkpoint:
        raise PretrainingError(f"no checkpoint to evaluate in {options.model_dir}; train first "
                               "or pass --init_checkpoint")
    metrics = PretrainingMetrics(run.objective.rtd, config.disc_weight)
    objective = run.objective

    @tf.function
    def eval_step(iterator, seed):
        def replica_fn(features):
            out = objective(features, seed, training=False)
            keep = ("masked_lm_weights", "masked_lm_ids", "mlm_logits", "sampled_ids",
                    "disc_labels", "disc_logits", "disc_per_example_loss")
            return {k: v for k, v in out.items() if k in keep}, features["input_mask"], \
                out["total_loss"]
        return run.strategy.run(replica_fn, args=(next(iterator),))

    for i in range(config.num_eval_steps):
        outs, masks, losses = eval_step(run.iterator, step_seed(options.seed + 1, i))
        for out, mask, loss in zip(*(run.strategy.experimental_local_results(x)
                                     for x in (outs, masks, losses))):
            metrics.update({**out, "total_loss": loss}, mask)
    results = {"global_step": run.step, **metrics.result()}
    results_dir = os.path.join(options.model_dir, "results")
    tf.io.gfile.makedirs(results_dir)
    write_text_atomic(os.path.join(results_dir, "unsup_results.json"),
                      json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_text_atomic(os.path.join(results_dir, "unsup_results.txt"),
                      "".join(f"{k} = {v}\n" for k, v in sorted(results.items())))
    return results
