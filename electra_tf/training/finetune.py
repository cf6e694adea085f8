"""The fine-tuning driver (spec 6.1-6.3): featurise and cache, train, evaluate, per trial.

GLUE, QA and tagging tasks; training under any tf.distribute strategy (evaluation runs
the model outside the strategy's replicas).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import time
from typing import Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.data.progress import format_duration
from electra_tf.finetuning.model import FinetuningModel
from electra_tf.finetuning.registry import get_task, task_family
from electra_tf.finetuning.task import shared_feature_specs
from electra_tf.io_utils import write_text_atomic
from electra_tf.optimization import create_optimizer, with_loss_scaling
from electra_tf.training.accumulation import make_update_step
from electra_tf.training.strategy import (CLUSTER_FAILURES, cluster_failure, create_strategy,
                                         is_chief, set_precision, xla_is_default)


@dataclasses.dataclass
class FinetuneOptions:
    """Paths and runtime of a fine-tuning run (hyperparameters live in FinetuningConfig)."""

    data_dir: str                       # holds finetuning_data/<task>/
    model_dir: str                      # trial t trains in <model_dir>_<t>
    results_dir: str                    # <tasks>_results.{txt,json}
    preprocessed_dir: str               # cached feature TFRecords
    init_checkpoint: Optional[str] = None
    vocab_file: Optional[str] = None    # None: the bundled BERT uncased vocab
    test_predictions_dir: Optional[str] = None  # GLUE leaderboard TSVs, trial_<t>/
    strategy: str = "default"
    tpu: Optional[str] = None
    jit_compile: Optional[bool] = None  # None: XLA on one GPU/TPU, not on CPUs
    mixed_precision: Optional[str] = None
    data_source: str = "tsv"            # "tfds": GLUE from tensorflow-datasets' glue/*
    tfds_data_dir: Optional[str] = None
    seed: int = 0
    log_every_steps: int = 50
    quiet: bool = False


def _tasks(config, options, tokenizer) -> list:
    return [get_task(name, os.path.join(options.data_dir, "finetuning_data"), tokenizer,
                     config.max_seq_length, task_id=index, debug=config.debug,
                     **_family_options(name, config, options))
            for index, name in enumerate(config.task_names)]


def _family_options(name: str, config, options) -> dict:
    from electra_tf.finetuning import qa
    family = task_family(name)  # an unknown name is one clear error here
    if family == "qa":
        return {"qa_config": qa.QAConfig.from_config(config, results_dir=options.results_dir)}
    if family == "glue":
        return {"double_unordered": config.double_unordered,
                "data_source": options.data_source, "tfds_data_dir": options.tfds_data_dir}
    if options.data_source != "tsv":
        raise ValueError(f"--data_source={options.data_source} is available for GLUE tasks "
                         f"only, not {name!r}")
    return {"label_mapping_dir": options.preprocessed_dir}  # tagging


def _all_specs(tasks, max_seq_length) -> dict:
    specs = dict(shared_feature_specs(max_seq_length))
    for task in tasks:
        specs.update(task.feature_specs())
    return specs


def _serialize(feature: dict, specs: dict) -> bytes:
    values = {}
    for name, (shape, dtype) in specs.items():
        value = np.asarray(feature.get(name, np.zeros(shape)), dtype=np.float32
                           if dtype == "float32" else np.int64).reshape(-1)
        values[name] = (tf.train.Feature(float_list=tf.train.FloatList(value=value))
                        if dtype == "float32"
                        else tf.train.Feature(int64_list=tf.train.Int64List(value=value)))
    return tf.train.Example(features=tf.train.Features(feature=values)).SerializeToString()


def cached_features(tasks, split: str, is_training: bool, batch_size: int, config,
                    options, only=None) -> tuple:
    """Featurises ``split`` of every task into ``<preprocessed_dir>/<name>.tfrecord`` (spec 6.2).

    Training examples are shuffled (seeded); features are padded with dummy ones
    (``task_id = len(tasks)``) to a multiple of ``batch_size``. Reused when the
    ``.metadata`` exists and ``use_tfrecords_if_existing``.

    Args:
      only: read ``split`` of these tasks only (default all); records still carry every
        task's features, so the multi-task model can read them.
    Returns:
      (tfrecord path, number of features incl. padding).
    """
    sources = only or tasks
    name = "_".join(sorted(t.name for t in sources)) + "_" + split
    if config.debug:
        name += "-debug"  # the original meant to, and never did (spec 1.5 [QUIRK])
    path = os.path.join(options.preprocessed_dir, name + ".tfrecord")
    meta = os.path.join(options.preprocessed_dir, name + ".metadata")
    if config.use_tfrecords_if_existing and os.path.exists(meta) and os.path.exists(path):
        with open(meta) as f:
            return path, json.load(f)["n_examples"]
    examples = [example for task in sources for example in task.get_examples(split)]
    if is_training:
        random.Random(options.seed).shuffle(examples)
    by_name = {task.name: task for task in tasks}
    features = [f for ex in examples for f in by_name[ex.task_name].featurize(ex, is_training)]
    while len(features) % batch_size:
        features.append({"task_id": len(tasks)})
    specs = _all_specs(tasks, config.max_seq_length)
    os.makedirs(options.preprocessed_dir, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with tf.io.TFRecordWriter(tmp) as writer:
        for feature in features:
            writer.write(_serialize(feature, specs))
    os.replace(tmp, path)
    write_text_atomic(meta, json.dumps({"n_examples": len(features)}) + "\n")
    return path, len(features)


def _dataset(path: str, specs: dict, batch_size: int, is_training: bool, seed: int):
    parse_spec = {name: tf.io.FixedLenFeature(shape, tf.float32 if dtype == "float32"
                                              else tf.int64)
                  for name, (shape, dtype) in specs.items()}

    def parse(record):
        parsed = tf.io.parse_single_example(record, parse_spec)
        return {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v
                for k, v in parsed.items()}

    dataset = tf.data.TFRecordDataset(path)
    if is_training:
        dataset = dataset.repeat().shuffle(100, seed=seed)
    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(
        batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _update_scorers(predict, path: str, specs: dict, config, options, scorers: dict) -> None:
    """Feeds every task's rows of the cached features' predictions to its scorer.

    ``scorers`` maps task index -> scorer; dummy padding features match no task.
    """
    for features in _dataset(path, specs, config.eval_batch_size, False, options.seed):
        outputs = {k: v.numpy() for k, v in predict(features).items() if k != "loss"}
        for index, (prefix, scorer) in scorers.items():
            rows = outputs["task_id"] == index
            if rows.any():
                scorer.update({k: v[rows] for k, v in outputs.items() if k.startswith(prefix)})


def evaluate(model: FinetuningModel, tasks, split: str, config, options) -> Dict[str, dict]:
    """Scores every task on ``split``; dummy padding features are skipped."""
    path, _ = cached_features(tasks, split, False, config.eval_batch_size, config, options)
    scorers = [task.get_scorer(split) for task in tasks]
    predict = tf.function(lambda features: model(features, training=False))
    _update_scorers(predict, path, _all_specs(tasks, config.max_seq_length), config, options,
                    {i: (task.name + "_", scorer)
                     for i, (task, scorer) in enumerate(zip(tasks, scorers))})
    return {task.name: scorer.get_results() for task, scorer in zip(tasks, scorers)}


def run_finetuning(config, options: FinetuneOptions) -> List[Dict[str, dict]]:
    """Trains and evaluates ``config.num_trials`` times; returns each trial's results."""
    from electra_tf.tokenization import FullTokenizer, default_vocab_file
    tokenizer = FullTokenizer(options.vocab_file or default_vocab_file(),
                              do_lower_case=config.do_lower_case)
    tasks = _tasks(config, options, tokenizer)
    specs = _all_specs(tasks, config.max_seq_length)
    disc_config = config.discriminator_config()
    set_precision(options.mixed_precision)
    strategy = create_strategy(options.strategy, options.tpu)
    chief = is_chief(strategy)  # other workers train in lockstep; the chief reports and writes

    def say(msg):
        if chief and not options.quiet:
            print(msg, file=sys.stderr, flush=True)

    all_results = []
    for trial in range(1, config.num_trials + 1):
        keras.utils.set_random_seed(options.seed + trial)
        with strategy.scope():
            model = FinetuningModel(disc_config, tasks, config)
            model.build()
        if options.init_checkpoint:
            report = checkpoints.load_original_checkpoint(
                options.init_checkpoint, model, allow_missing=[r"^task_specific/"])
            say(f"trial {trial}: initialised from {report}")
        if config.do_train:
            _train(model, tasks, specs, config, options, trial, say, strategy, chief)
        if config.do_eval:
            results = evaluate(model, tasks, "dev", config, options)
            all_results.append(results)
            say(f"trial {trial}: " + "; ".join(
                f"{name}: " + " - ".join(f"{k}: {v:.2f}" for k, v in res.items())
                for name, res in results.items()))
            if chief:
                _write_results(all_results, config, options)
        if chief and config.write_test_outputs and trial <= config.n_writes_test:
            written = write_test_outputs(model, tasks, trial, config, options)
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


def write_test_outputs(model, tasks, trial: int, config, options) -> List[str]:
    """GLUE-leaderboard TSVs of every GLUE task's test splits and the SQuAD 2.0 test
    predictions (spec 6.8), ready to submit."""
    from electra_tf.finetuning import glue, qa
    directory = os.path.join(options.test_predictions_dir
                             or os.path.join(options.results_dir, "test_predictions"),
                             f"trial_{trial}")
    written = []
    predict = tf.function(lambda features: model(features, training=False))
    specs = _all_specs(tasks, config.max_seq_length)
    for index, task in enumerate(tasks):
        if isinstance(task, qa.QATask) and task.name == "squad":
            written.append(_write_squad_test_predictions(model, tasks, index, trial, directory,
                                                         predict, specs, config, options))
            continue
        if not isinstance(task, glue.GlueTask):
            continue  # the original writes test outputs for GLUE and SQuAD 2.0 only
        for split in task.get_test_splits():
            path, _ = cached_features(tasks, split, False, config.eval_batch_size, config,
                                      options, only=[task])
            by_eid = {}
            for features in _dataset(path, specs, config.eval_batch_size, False, options.seed):
                outputs = predict(features)
                values = outputs.get(f"{task.name}_logits", outputs[f"{task.name}_predictions"])
                rows = features["task_id"].numpy() == index  # not the padding features
                for eid, value in zip(features[f"{task.name}_eid"].numpy()[rows],
                                      values.numpy()[rows]):
                    by_eid[int(eid)] = value
            name = glue.LEADERBOARD_FILE_NAMES.get((task.name, split), f"{task.name}_{split}.tsv")
            written.append(glue.write_test_predictions(task, by_eid, os.path.join(directory, name)))
    return written


def _train(model, tasks, specs, config, options, trial, say, strategy, chief=True) -> None:
    path, n = cached_features(tasks, "train", True, config.train_batch_size, config, options)
    steps = int(n // config.train_batch_size * config.num_train_epochs)  # updates
    k = config.gradient_accumulation_steps
    if steps <= 0:
        raise ValueError(f"{n} training features give no step at batch "
                         f"{config.train_batch_size}")
    with strategy.scope():
        optimizer = create_optimizer(
            model, learning_rate=config.learning_rate, num_train_steps=steps,
            warmup_proportion=config.warmup_proportion,
            weight_decay_rate=config.weight_decay_rate,
            layerwise_lr_decay=config.layerwise_lr_decay,
            corrected_layerwise=config.layerwise_lr_decay_corrected,
            num_layers=model.config.num_hidden_layers, optimizer=config.optimizer)
        adam = optimizer
        optimizer = with_loss_scaling(adam, options.mixed_precision)
    variables = adam.built_variables
    jit = options.jit_compile if options.jit_compile is not None else xla_is_default(strategy)

    def loss_and_gradients(features, micro_index):
        # The loss is a sum over the batch (spec 6.3): per-replica sums, summed by the
        # optimizer across replicas (and over micro-batches), equal the one-device sum.
        with tf.GradientTape() as tape:
            loss = model(features, training=True)["loss"]
            scaled = optimizer.scale_loss(loss) if adam is not optimizer else loss
        return tape.gradient(scaled, variables), {"loss": loss}

    update = make_update_step(strategy, optimizer, variables,
                              tf.function(loss_and_gradients, jit_compile=jit), k,
                              reduce_op=tf.distribute.ReduceOp.SUM, combine="sum")

    @tf.function
    def train_step(iterator):
        return update(iterator)["loss"]

    started = time.time()
    # Micro-batches of train_batch_size / k; every worker shuffles with the same seed
    # and keeps its share of each batch, so no example is read by two workers.
    dataset = _dataset(path, specs, config.train_batch_size // k, True, options.seed + trial)
    if strategy.num_replicas_in_sync > 1:
        shard = tf.data.Options()
        shard.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(shard)
    iterator = iter(dataset if strategy.num_replicas_in_sync == 1
                    else strategy.experimental_distribute_dataset(dataset))
    for step in range(1, steps + 1):
        try:
            loss = float(train_step(iterator))
        except CLUSTER_FAILURES as e:
            if strategy.num_replicas_in_sync == 1:
                raise
            # Fine-tuning keeps no mid-run checkpoint: a restart runs the trial again.
            raise cluster_failure(e, step - 1, f"{options.model_dir}_{trial}") from e
        if step % options.log_every_steps == 0 or step == steps:
            elapsed = time.time() - started
            say(f"trial {trial} step {step}/{steps} ({100 * step / steps:.0f}%) | loss {loss:.4f}"
                f" | elapsed {format_duration(elapsed)}, ETA "
                f"{format_duration(elapsed / step * (steps - step))}")
    if chief:
        checkpoints.save_original_checkpoint(
            os.path.join(f"{options.model_dir}_{trial}", f"model.ckpt-{steps}"), model,
            variables=adam.original_slot_variables(), global_step=steps)


def _write_results(all_results, config, options) -> None:
    name = ",".join(config.task_names)
    lines = [f"{task}: " + " - ".join(f"{k}: {v:.2f}" for k, v in metrics.items())
             for trial in all_results for task, metrics in trial.items()]
    write_text_atomic(os.path.join(options.results_dir, f"{name}_results.txt"),
                      "\n".join(lines) + "\n")
    write_text_atomic(os.path.join(options.results_dir, f"{name}_results.json"),
                      json.dumps(all_results, indent=2) + "\n")


def _write_squad_test_predictions(model, tasks, index, trial, directory, predict, specs, config,
                                  options) -> str:
    """SQuAD 2.0 "test" split: the answer text, or "" where the null odds exceed the
    threshold (spec 6.8). The original scored test features against the dev examples
    (its [QUIRK/BUG]); this pairs them with the test examples."""
    from electra_tf.finetuning import qa
    task = tasks[index]
    path, _ = cached_features(tasks, "test", False, config.eval_batch_size, config, options,
                              only=[task])
    scorer = task.get_scorer("test")
    _update_scorers(predict, path, specs, config, options, {index: (task.name + "_", scorer)})
    predictions, null_odds = scorer.get_predictions()
    answers = qa.blank_null_predictions(predictions, null_odds, config.qa_na_threshold)
    out = os.path.join(directory, "squad_test_predictions.json")
    qa.write_json_atomic(out, answers)
    return out
