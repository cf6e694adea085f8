"""The fine-tuning driver (spec 6.1-6.3): featurise and cache, train, evaluate, per trial.

Generic over tasks: the registry builds each task (``electra_tf.finetuning.task.Task``)
once with its family's settings; it brings its features (cached by the run's
``finetuning.feature_cache.FeatureStore``), head, scorer and test-output writer.
Training runs under any tf.distribute strategy (evaluation runs the model outside the
strategy's replicas).

A run holds a lock per model and tasks, checkpoints each trial while it trains, on
SIGTERM and on Ctrl-C, and a re-run of the same command resumes an interrupted trial at
its step and reuses finished ones (``training/finetuning_state.py``): a deliberate
difference from the original, which starts every trial afresh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from typing import Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from electra_tf import checkpoints, loading
from electra_tf.data.progress import format_duration
from electra_tf.finetuning.feature_cache import (FeatureStore, cached_fingerprint,
                                                 feature_dataset)
from electra_tf.finetuning.network import FinetuningNetwork
from electra_tf.finetuning.registry import build_tasks
from electra_tf.formats import tf1
from electra_tf.io_utils import first_line, write_text_atomic
from electra_tf.optimization import finetuning_optimizer_arguments
from electra_tf.training.accumulation import make_update_step
from electra_tf.training.finetuning_state import (FinetuningError, Trial, run_lock,
                                                  saves_on_time, trial_settings)
from electra_tf.training.run_directory import StopSignal, Terminated
from electra_tf.training.runtime import Runtime, scale_loss
from electra_tf.training.strategy import CLUSTER_FAILURES, cluster_failure


@dataclasses.dataclass
class FinetuneOptions:
    """Paths and runtime of a fine-tuning run (hyperparameters live in FinetuningConfig)."""

    data_dir: str                       # holds finetuning_data/<task>/
    model_dir: str                      # trial t trains in <model_dir>_<t>
    results_dir: str                    # <tasks>_results.{txt,json}
    preprocessed_dir: str               # cached feature TFRecords
    init_checkpoint: Optional[str] = None  # anything loading.read_weights reads; None: random
    vocab_file: Optional[str] = None    # None: the init checkpoint's, else the bundled BERT
    test_predictions_dir: Optional[str] = None  # GLUE leaderboard TSVs, trial_<t>/
    strategy: str = "default"
    tpu: Optional[str] = None
    jit_compile: Optional[bool] = None  # None: strategy.xla_is_default
    mixed_precision: Optional[str] = None
    data_source: str = "tsv"            # "tfds": GLUE from tensorflow-datasets' glue/*
    tfds_data_dir: Optional[str] = None
    seed: int = 0
    log_every_steps: int = 50
    quiet: bool = False
    check_glue_columns: bool = True     # False: GLUE columns by position, as the original
    checkpoint_minutes: float = 10.0    # also save a trial this often (0: steps/signals only)


def _task_outputs(predict, store: FeatureStore, path: str, prefixes: dict):
    """Yields ``(task index, that task's outputs of one batch)`` of the predictions on the
    cached features at ``path``: each task's ``<prefix><output>`` arrays [rows of that
    task, ...].

    ``prefixes`` maps task index -> output prefix; dummy padding features match no task.
    """
    for features in feature_dataset(path, store.specs, store.eval_batch_size, False,
                                    store.seed):
        outputs = {k: v.numpy() for k, v in predict(features).items() if k != "loss"}
        for index, prefix in prefixes.items():
            rows = outputs["task_id"] == index
            if rows.any():
                yield index, {k: v[rows] for k, v in outputs.items() if k.startswith(prefix)}


def evaluate(model: FinetuningNetwork, store: FeatureStore, split: str) -> Dict[str, dict]:
    """Scores every task of ``store`` on ``split``; dummy padding features are skipped."""
    tasks = store.tasks
    scorers = [task.get_scorer(split) for task in tasks]
    predict = tf.function(lambda features: model(features, training=False))
    for index, outputs in _task_outputs(predict, store, store.features(split).path,
                                        {i: t.name + "_" for i, t in enumerate(tasks)}):
        scorers[index].update(outputs)
    return {task.name: scorer.get_results() for task, scorer in zip(tasks, scorers)}


def run_finetuning(config, options: FinetuneOptions) -> List[Dict[str, dict]]:
    """Trains and evaluates ``config.num_trials`` times; returns each trial's results.

    Holds the lock of ``options.model_dir`` (a second run on the same model and tasks
    stops with a FinetuningError naming the holder). SIGTERM saves the trial being
    trained and raises :class:`Terminated`; Ctrl-C saves it and re-raises. A re-run
    resumes an interrupted trial and reuses finished ones of the same settings.
    """
    runtime = Runtime.from_options(options)  # first: before other TF ops
    with contextlib.ExitStack() as stack:
        if runtime.chief and options.model_dir:
            stack.enter_context(run_lock(options.model_dir))
        stop_signal = stack.enter_context(StopSignal())
        return _run_trials(config, options, runtime, stop_signal)


def _run_trials(config, options: FinetuneOptions, runtime: Runtime,
                stop_signal: StopSignal) -> List[Dict[str, dict]]:
    from electra_tf.tokenization import FullTokenizer, default_vocab_file
    strategy, chief = runtime.strategy, runtime.chief  # other workers train in lockstep
    say = runtime.printer(options.quiet)

    # Read once for every trial: any format loading.read_weights reads, e.g. a
    # pre-training run directory at its newest complete checkpoint.
    weights = loading.read_weights(options.init_checkpoint) if options.init_checkpoint else None
    vocab_file = (options.vocab_file or (weights.vocab_file if weights else None)
                  or default_vocab_file())
    tokenizer = FullTokenizer(vocab_file, do_lower_case=config.do_lower_case)
    tasks = build_tasks(config, options, tokenizer)
    store = FeatureStore.for_run(tasks, config, options, say=say)
    disc_config = config.discriminator_config()
    init = _init_description(weights)
    # Every split the trials read, featurised (or found fresh in the cache) before any
    # training: an empty or missing split fails here, not after the first trial.
    if config.do_train:
        store.features("train")
    if config.do_eval:
        store.features("dev")

    say(f"fine-tuning {', '.join(task.name for task in tasks)} in "
        f"{runtime.mixed_precision or 'float32'} ({runtime.precision_reason}), XLA "
        f"{'on' if runtime.jit_compile else 'off'}, {runtime.replicas} replica(s)")
    settings = None
    if config.do_train:  # what each trial's training depends on (resumed or reused by it)
        settings = trial_settings(config, options, weights, vocab_file,
                                  cached_fingerprint(store.features("train").path),
                                  runtime.mixed_precision)
    all_results = []
    for trial in range(1, config.num_trials + 1):
        if stop_signal.received:  # between trials: the finished ones are all saved
            say(f"stopped by signal {stop_signal.received} before trial {trial}. Re-run the "
                "same command to continue.")
            raise Terminated(stop_signal.received, 0)
        keras.utils.set_random_seed(options.seed + trial)
        with strategy.scope():
            model = FinetuningNetwork(disc_config, tasks)
            model.build()
        state = Trial(options.model_dir, trial, settings, strategy, chief) \
            if config.do_train else None
        action, note = state.plan() if state is not None else (None, None)
        if action == "reuse":
            tf1.load_original_checkpoint(state.final_checkpoint(state.steps), model)
            state.remove_resume_state()  # left by a stop just after the trial's end
            say(f"trial {trial}: trained before with these settings; evaluating its model "
                f"{state.final_checkpoint(state.steps)} (move {state.directory} away to train "
                "it again)")
        elif weights is not None:
            report = checkpoints.assign_original_weights(
                weights.values, model, allow_missing=[r"^task_specific/"], source=weights.source)
            say(f"trial {trial}: initialised from {init['init_checkpoint']}"
                + (f" (step {weights.global_step})" if weights.global_step is not None else "")
                + f": {report}")
        else:
            say(f"trial {trial}: no pre-trained weights (init_checkpoint none): random "
                "initialisation")
        if note:
            say(f"trial {trial}: {note}")
        if action in ("train", "resume"):
            train_trial(model, store, config, options, trial, say, runtime, state=state,
                        resume=action == "resume", stop_signal=stop_signal,
                        vocab_file=vocab_file)
        if config.do_eval:
            results = evaluate(model, store, "dev")
            all_results.append(results)
            say(f"trial {trial}: " + "; ".join(
                f"{name}: " + " - ".join(f"{k}: {v:.2f}" for k, v in res.items())
                for name, res in results.items()))
            if chief:
                _write_results(all_results, config, options, init)
        if chief and config.write_test_outputs and trial <= config.n_writes_test:
            written = write_test_outputs(model, store, trial, options)
            say(f"trial {trial}: test predictions in {', '.join(written)}")
    skipped = {t.name: t.skipped_rows for t in tasks if t.skipped_rows}
    if skipped:
        say("skipped malformed rows (logged with file and line): "
            + ", ".join(f"{name}: {n}" for name, n in skipped.items()))
    if len(all_results) > 1 and chief:
        summary = summarize_trials(all_results)
        write_text_atomic(os.path.join(options.results_dir,
                                       f"{','.join(config.task_names)}_summary.json"),
                          json.dumps(summary, indent=2) + "\n")
        say("over trials: " + "; ".join(
            f"{task} {metric}: median {s['median']:.2f} mean {s['mean']:.2f} std {s['std']:.2f}"
            for task, metrics in summary.items() for metric, s in metrics.items()))
    return all_results


def summarize_trials(all_results: List[Dict[str, dict]]) -> Dict[str, dict]:
    """{task: {metric: {median, mean, std, n}}} over trials (std: population, ddof=0)."""
    summary: Dict[str, dict] = {}
    for task in all_results[0]:
        for metric in all_results[0][task]:
            values = np.array([trial[task][metric] for trial in all_results], np.float64)
            summary.setdefault(task, {})[metric] = {
                "median": float(np.median(values)), "mean": float(values.mean()),
                "std": float(values.std()), "n": len(values)}
    return summary


def write_test_outputs(model, store: FeatureStore, trial: int, options) -> List[str]:
    """Every task's test-set predictions (``task.write_test_outputs``: the GLUE-leaderboard
    TSVs and the SQuAD 2.0 predictions, spec 6.8) under ``trial_<trial>/``, ready to
    submit."""
    directory = os.path.join(options.test_predictions_dir
                             or os.path.join(options.results_dir, "test_predictions"),
                             f"trial_{trial}")
    predict = tf.function(lambda features: model(features, training=False))

    def predictions_of(index: int):
        task = store.tasks[index]

        def predict_split(split: str):
            for _, outputs in _task_outputs(predict, store, store.features(split, task).path,
                                            {index: task.name + "_"}):
                yield outputs
        return predict_split

    written = []
    for index, task in enumerate(store.tasks):
        written.extend(task.write_test_outputs(predictions_of(index), directory))
    return written


def train_trial(model: FinetuningNetwork, store: FeatureStore, config, options: FinetuneOptions,
                trial: int, say, runtime: Runtime, *, state: Optional[Trial] = None,
                resume: bool = False, stop_signal: Optional[StopSignal] = None,
                vocab_file: Optional[str] = None) -> None:
    """Trains trial ``trial`` on ``store``'s training features to its last step: the
    training loop of ``run_finetuning`` (and of ``run_finetuning.py``), for one trial.

    Args:
      model: the ``FinetuningNetwork`` of ``store``'s tasks, built under
        ``runtime.strategy``'s scope (trained in place).
      store: the run's ``FeatureStore`` (its ``features("train")`` are read).
      config, options: the run's ``FinetuningConfig`` and :class:`FinetuneOptions`; the
        steps are ``train examples // train_batch_size * num_train_epochs``.
      trial: the trial's number (1, 2, ...): it seeds the shuffling, and the chief writes
        the fine-tuned model to ``<options.model_dir>_<trial>/model.ckpt-<steps>``.
      say: called with each progress message, ``trial T step S/N (P%) | loss L |
        elapsed ..., ETA ...`` every ``options.log_every_steps`` steps and at the last.
      runtime: ``Runtime.from_options(options)`` (strategy, precision, XLA, optimizer).
      state: a :class:`Trial` that checkpoints the trial while it trains (None: no
        checkpoints; a stop then loses the trial); with ``resume``, from its newest one.
      stop_signal: a ``StopSignal``: on SIGTERM the trial saves and raises
        :class:`Terminated`.
      vocab_file: written beside the fine-tuned model, with its config.
    """
    strategy, chief = runtime.strategy, runtime.chief
    path, n = store.features("train")
    steps = int(n // config.train_batch_size * config.num_train_epochs)  # updates
    k = config.gradient_accumulation_steps
    if steps <= 0:
        raise ValueError(f"{n} training features give no step at batch "
                         f"{config.train_batch_size}")
    base_optimizer, optimizer = runtime.create_optimizer(
        model, **finetuning_optimizer_arguments(config, steps, model.config.num_hidden_layers))
    variables = base_optimizer.built_variables
    checkpoint = state.checkpoint(model, base_optimizer) if state is not None else None
    start = 0
    if resume:
        start, warning = state.restore(checkpoint)
        if warning:
            say(f"warning: trial {trial}: {warning}")
        say(f"trial {trial}: resuming at step {start}/{steps} from "
            f"{os.path.join(state.resume_dir, f'ckpt-{start}')}")
    if state is not None:
        state.start(steps, afresh=not resume)

    def loss_and_gradients(features, micro_index):
        # The loss is a sum over the batch (spec 6.3): per-replica sums, summed by the
        # optimizer across replicas (and over micro-batches), equal the one-device sum.
        with tf.GradientTape() as tape:
            loss = model(features, training=True)["loss"]
            scaled = scale_loss(optimizer, loss)
        return tape.gradient(scaled, variables), {"loss": loss}

    update = make_update_step(strategy, optimizer, variables,
                              tf.function(loss_and_gradients, jit_compile=runtime.jit_compile), k,
                              reduce_op=tf.distribute.ReduceOp.SUM, combine="sum")

    @tf.function
    def train_step(iterator):
        return update(iterator)["loss"]

    started = time.time()
    # Micro-batches of train_batch_size / k; every worker shuffles with the same seed
    # and keeps its share of each batch, so no example is read by two workers. A resumed
    # trial skips the micro-batches its first `start` updates read.
    dataset = feature_dataset(path, store.specs, config.train_batch_size // k, True,
                              options.seed + trial, skip_batches=start * k)
    if strategy.num_replicas_in_sync > 1:
        shard = tf.data.Options()
        shard.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(shard)
    iterator = iter(dataset if strategy.num_replicas_in_sync == 1
                    else strategy.experimental_distribute_dataset(dataset))
    timed = state is not None and options.checkpoint_minutes > 0 and saves_on_time(strategy)
    saved_step, saved_at = start, time.time()

    def completed() -> int:
        # The optimizer's step, not the loop's: an interrupt may land just before or just
        # after an update, and the input read is `completed() * k` micro-batches either way.
        return int(base_optimizer.iterations.numpy())

    def save() -> int:
        nonlocal saved_step, saved_at
        at_step = completed()
        if state is not None and at_step != saved_step:
            state.save(checkpoint, at_step)
            saved_step, saved_at = at_step, time.time()
        return at_step

    def stopped_note(at_step: int) -> str:
        if not at_step:
            return f"step 0/{steps}; nothing trained yet."
        if state is None:
            return f"step {at_step}/{steps}; no checkpoint: the trial starts again."
        return f"step {at_step}/{steps}; checkpoint saved. Re-run the same command to resume."

    try:
        for step in range(start + 1, steps + 1):
            if stop_signal is not None and stop_signal.received:
                at_step = save()
                say(f"trial {trial}: stopped by signal {stop_signal.received} at "
                    + stopped_note(at_step))
                raise Terminated(stop_signal.received, at_step)
            try:
                loss = float(train_step(iterator))
            except CLUSTER_FAILURES as e:
                if strategy.num_replicas_in_sync == 1:
                    raise
                raise cluster_failure(e, step - 1, state.resume_dir if state is not None
                                      else f"{options.model_dir}_{trial}") from e
            if step % options.log_every_steps == 0 or step == steps:
                elapsed = time.time() - started
                say(f"trial {trial} step {step}/{steps} ({100 * step / steps:.0f}%) | loss "
                    f"{loss:.4f} | elapsed {format_duration(elapsed)}, ETA "
                    f"{format_duration(elapsed / (step - start) * (steps - step))}")
            if step < steps and (step % config.save_checkpoints_steps == 0 or (
                    timed and time.time() - saved_at >= 60 * options.checkpoint_minutes)):
                save()
    except KeyboardInterrupt:
        say(f"trial {trial}: interrupted at " + stopped_note(save()))
        raise
    if chief:
        prefix = os.path.join(f"{options.model_dir}_{trial}", f"model.ckpt-{steps}")
        try:
            tf1.save_original_checkpoint(
                prefix, model, variables=tf1.slot_variables(base_optimizer), global_step=steps,
                config=config, vocab_file=vocab_file)
        except (tf.errors.OpError, OSError) as e:
            save()
            raise FinetuningError(
                f"could not write the fine-tuned model {prefix}: {first_line(e)}; free space "
                "(or fix the directory) and re-run the same command: it resumes the trial "
                "from its last checkpoint") from e
    if state is not None:
        state.finish(steps)


def _init_description(weights) -> dict:
    """``init_checkpoint`` (the checkpoint read, None: random initialisation) and
    ``init_step`` (its training step, if known) of the results."""
    if weights is None:
        return {"init_checkpoint": None, "init_step": None}
    return {"init_checkpoint": weights.source, "init_step": weights.global_step}


def _write_results(all_results, config, options, init: Optional[dict] = None) -> None:
    """``<tasks>_results.txt`` and ``.json``: per trial ``{task: {metric: value}}``, the
    JSON's trials also with ``init_checkpoint`` and ``init_step`` (see _init_description)."""
    name = ",".join(config.task_names)
    lines = [f"{task}: " + " - ".join(f"{k}: {v:.2f}" for k, v in metrics.items())
             for trial in all_results for task, metrics in trial.items()]
    write_text_atomic(os.path.join(options.results_dir, f"{name}_results.txt"),
                      "\n".join(lines) + "\n")
    write_text_atomic(os.path.join(options.results_dir, f"{name}_results.json"),
                      json.dumps([{**trial, **(init or {})} for trial in all_results],
                                 indent=2) + "\n")

