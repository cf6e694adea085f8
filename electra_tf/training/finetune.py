"""The fine-tuning driver (spec 6.1-6.3): featurise and cache, train, evaluate, per trial.

GLUE, QA and tagging tasks; training under any tf.distribute strategy (evaluation runs
the model outside the strategy's replicas).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import sys
import time
from typing import Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from electra_tf import checkpoints, loading
from electra_tf.data.progress import format_duration
from electra_tf.finetuning.model import FinetuningModel
from electra_tf.finetuning.registry import get_task, task_family
from electra_tf.finetuning.task import TaskDataError, shared_feature_specs
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
    init_checkpoint: Optional[str] = None  # anything loading.read_weights reads; None: random
    vocab_file: Optional[str] = None    # None: the init checkpoint's, else the bundled BERT
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


# Version of the feature cache's fingerprint; a cache without (or with another) one
# is rebuilt.
_CACHE_FORMAT = 1
# Files up to this size are hashed whole; larger ones by their first and last MiB
# (then their mtime counts too).
_FULL_HASH_BYTES = 64 << 20
_PARTIAL_HASH_BYTES = 1 << 20


def _file_fingerprint(path: str) -> Optional[dict]:
    """{path, size, mtime_ns, sha256 (or sha256_first_last_mib)}, None for a missing file."""
    if "://" in path:
        if not tf.io.gfile.exists(path):
            return None
        stat = tf.io.gfile.stat(path)
        return {"path": path, "size": int(stat.length), "mtime_ns": int(stat.mtime_nsec)}
    try:
        stat = os.stat(path)
    except OSError:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        if stat.st_size <= _FULL_HASH_BYTES:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
            kind = "sha256"
        else:
            digest.update(f.read(_PARTIAL_HASH_BYTES))
            f.seek(-_PARTIAL_HASH_BYTES, os.SEEK_END)
            digest.update(f.read(_PARTIAL_HASH_BYTES))
            kind = "sha256_first_last_mib"
    return {"path": path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            kind: digest.hexdigest()}


def _same_file(old: Optional[dict], new: Optional[dict]) -> bool:
    """Same content: size and whole-file hash; with a partial hash (or none, remote
    files) also the same mtime. The path does not count (a moved data dir is fine)."""
    if old is None or new is None:
        return old is None and new is None
    keys = ("size", "sha256") if "sha256" in old and "sha256" in new else (
        "size", "mtime_ns", "sha256_first_last_mib")
    return all(old.get(k) == new.get(k) for k in keys)


def _split_file(task, split: str) -> Optional[str]:
    """The data file ``split`` of ``task`` is read from (None: not a local file, e.g. tfds)."""
    if getattr(task, "data_source", "tsv") != "tsv":
        return None
    for method in ("split_path", "data_file"):  # GLUE and tagging; QA
        if hasattr(task, method):
            return getattr(task, method)(split)
    return None


def _task_options(task) -> dict:
    """The settings of ``task`` that change its features (besides the run-wide ones)."""
    from electra_tf.finetuning import glue, qa, tagging
    options = {"class": type(task).__name__, "debug": bool(task.debug),
               "task_id": getattr(task, "task_id", None)}
    if isinstance(task, glue.GlueTask):
        options.update(double_unordered=bool(task.double_unordered),
                       data_source=task.data_source, tfds_data_dir=task.tfds_data_dir)
    elif isinstance(task, qa.QATask):
        options.update(max_query_length=task.config.max_query_length,
                       doc_stride=task.config.doc_stride)
    elif isinstance(task, tagging.TaggingTask):
        mapping = json.dumps(task.label_mapping, sort_keys=True)
        options.update(column=task.column, lower_case=task.lower_case,
                       span_rule=task.span_rule,
                       keep_last_unterminated=task.keep_last_unterminated,
                       label_mapping_sha256=hashlib.sha256(mapping.encode()).hexdigest())
    return options


def _vocab_fingerprint(tokenizer) -> Optional[dict]:
    vocab_file = getattr(tokenizer, "vocab_file", None)
    if vocab_file:
        return _file_fingerprint(vocab_file)
    vocab = getattr(tokenizer, "vocab", None)
    if vocab is None:
        return None
    text = json.dumps(sorted(vocab.items(), key=lambda kv: kv[1]))
    return {"size": len(vocab), "sha256": hashlib.sha256(text.encode()).hexdigest()}


def features_fingerprint(tasks, sources, split: str, is_training: bool, batch_size: int,
                         config, options) -> dict:
    """Everything the cached features of ``split`` depend on (stored in the ``.metadata``):
    the task data files (size, mtime, content hash), the vocab, lower-casing, L, the tasks
    and their order, training or not, the padding batch size, the shuffling seed and the
    family options that change features."""
    tokenizer = tasks[0].tokenizer if tasks else None
    return {
        "format": _CACHE_FORMAT,
        "split": split,
        "is_training": bool(is_training),
        "batch_size": int(batch_size),
        "shuffle_seed": int(options.seed) if is_training else None,
        "max_seq_length": int(config.max_seq_length),
        "do_lower_case": bool(config.do_lower_case),
        "debug": bool(config.debug),
        "vocab": _vocab_fingerprint(tokenizer),
        "tasks": [task.name for task in tasks],
        "sources": [task.name for task in sources],
        "task_options": {task.name: _task_options(task) for task in tasks},
        "files": {task.name: _file_fingerprint(path) if path else None
                  for task in sources for path in [_split_file(task, split)]},
    }


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe_changes(old: Optional[dict], new: dict) -> List[str]:
    """What differs between two fingerprints, e.g. ``["sst train.tsv changed (1.2 kB ->
    480 B)", "max_seq_length 16 -> 32"]``; empty when the cache is fresh."""
    from electra_tf.data.progress import format_bytes
    if not isinstance(old, dict) or old.get("format") != _CACHE_FORMAT:
        return ["no fingerprint of its inputs: written by an older version"]
    changes = []
    for key in new:
        a, b = old.get(key), new[key]
        if key == "files":
            a = a or {}
            for name, fp in b.items():
                was = a.get(name)
                if _same_file(was, fp):
                    continue
                what = os.path.basename(fp["path"]) if fp else "its data file"
                if fp is None:
                    changes.append(f"{name} {what} is missing")
                elif was is None:
                    changes.append(f"{name} {what} is new")
                else:
                    changes.append(f"{name} {what} changed ({format_bytes(was['size'])} -> "
                                   f"{format_bytes(fp['size'])})")
        elif key == "vocab":
            if not _same_file(a, b):
                changes.append("the vocab changed" + (f" ({b['path']})" if b and "path" in b
                                                       else ""))
        elif key == "task_options" and isinstance(a, dict):
            for name, opts in b.items():
                before = a.get(name) or {}
                changes.extend(f"{name} {k} {_short(before.get(k))} -> {_short(v)}"
                               for k, v in opts.items() if before.get(k) != v)
        elif a != b:
            changes.append(f"{key} {_short(a)} -> {_short(b)}")
    return changes


def _read_metadata(meta: str) -> Optional[dict]:
    try:
        with open(meta) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _empty_split_error(task, split: str, is_training: bool, skipped: int) -> TaskDataError:
    path = _split_file(task, split) or f"its {split!r} split ({getattr(task, 'data_source', '')})"
    why = f" (all {skipped} rows malformed and skipped)" if skipped else ""
    if is_training:
        what = "nothing to train on (add examples, or pass --nodo_train)"
    else:
        what = "nothing to evaluate (add examples, or pass --nodo_eval)"
    return TaskDataError(f"{task.name}: the {split!r} split {path} has no examples{why}: "
                         f"{what}")


def cached_features(tasks, split: str, is_training: bool, batch_size: int, config,
                    options, only=None, say=None) -> tuple:
    """Featurises ``split`` of every task into ``<preprocessed_dir>/<name>.tfrecord`` (spec 6.2).

    Training examples are shuffled (seeded); features are padded with dummy ones
    (``task_id = len(tasks)``) to a multiple of ``batch_size``. Reused when the
    ``.metadata`` exists, ``use_tfrecords_if_existing`` and its fingerprint (see
    :func:`features_fingerprint`) matches; otherwise rebuilt, saying what changed.
    A task whose train or dev split has no example is a TaskDataError naming its file.

    Args:
      only: read ``split`` of these tasks only (default all); records still carry every
        task's features, so the multi-task model can read them.
      say: prints a progress line (default: stderr unless ``options.quiet``).
    Returns:
      (tfrecord path, number of features incl. padding).
    """
    if say is None:
        def say(msg):
            if not options.quiet:
                print(msg, file=sys.stderr, flush=True)
    sources = only or tasks
    name = "_".join(sorted(t.name for t in sources)) + "_" + split
    if config.debug:
        name += "-debug"  # the original meant to, and never did (spec 1.5 [QUIRK])
    path = os.path.join(options.preprocessed_dir, name + ".tfrecord")
    meta = os.path.join(options.preprocessed_dir, name + ".metadata")
    fingerprint = features_fingerprint(tasks, sources, split, is_training, batch_size, config,
                                       options)
    if config.use_tfrecords_if_existing and os.path.exists(meta) and os.path.exists(path):
        metadata = _read_metadata(meta)
        changes = _describe_changes((metadata or {}).get("fingerprint"), fingerprint)
        if metadata is not None and not changes:
            counts = metadata.get("examples") or {}
            say(f"features of {name}: reusing {path} ("
                + ", ".join(f"{t} {n} examples" for t, n in counts.items())
                + f", {metadata['n_examples']} features)")
            return path, metadata["n_examples"]
        say(f"features of {name} are stale ({'; '.join(changes)}): rebuilding")
    by_task = {}
    for task in sources:
        skipped_before = task.skipped_rows
        by_task[task.name] = task.get_examples(split)
        if not by_task[task.name] and (is_training or split == "dev"):
            raise _empty_split_error(task, split, is_training,
                                     task.skipped_rows - skipped_before)
    examples = [example for task in sources for example in by_task[task.name]]
    if is_training:
        random.Random(options.seed).shuffle(examples)
    by_name = {task.name: task for task in tasks}
    features = [f for ex in examples for f in by_name[ex.task_name].featurize(ex, is_training)]
    n_real = len(features)
    while len(features) % batch_size:
        features.append({"task_id": len(tasks)})
    specs = _all_specs(tasks, config.max_seq_length)
    os.makedirs(options.preprocessed_dir, exist_ok=True)
    try:
        os.remove(meta)  # never a new tfrecord with an old fingerprint
    except FileNotFoundError:
        pass  # (also: another worker of a multi-worker run removed it first)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for feature in features:
                writer.write(_serialize(feature, specs))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    counts = {task: len(exs) for task, exs in by_task.items()}
    write_text_atomic(meta, json.dumps({"n_examples": len(features), "examples": counts,
                                        "fingerprint": fingerprint}, indent=1) + "\n")
    say(f"features of {name}: " + ", ".join(f"{t} {n} examples" for t, n in counts.items())
        + f" -> {n_real} features (+{len(features) - n_real} padding) in {path}")
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


def evaluate(model: FinetuningModel, tasks, split: str, config, options,
             features: Optional[tuple] = None) -> Dict[str, dict]:
    """Scores every task on ``split``; dummy padding features are skipped.

    ``features``: the (path, count) of :func:`cached_features` when already prepared.
    """
    path, _ = features or cached_features(tasks, split, False, config.eval_batch_size, config,
                                          options)
    scorers = [task.get_scorer(split) for task in tasks]
    predict = tf.function(lambda features: model(features, training=False))
    _update_scorers(predict, path, _all_specs(tasks, config.max_seq_length), config, options,
                    {i: (task.name + "_", scorer)
                     for i, (task, scorer) in enumerate(zip(tasks, scorers))})
    return {task.name: scorer.get_results() for task, scorer in zip(tasks, scorers)}


def run_finetuning(config, options: FinetuneOptions) -> List[Dict[str, dict]]:
    """Trains and evaluates ``config.num_trials`` times; returns each trial's results."""
    from electra_tf.tokenization import FullTokenizer, default_vocab_file
    set_precision(options.mixed_precision)
    strategy = create_strategy(options.strategy, options.tpu)  # first: before other TF ops
    chief = is_chief(strategy)  # other workers train in lockstep; the chief reports and writes

    def say(msg):
        if chief and not options.quiet:
            print(msg, file=sys.stderr, flush=True)

    # Read once for every trial: any format loading.read_weights reads, e.g. a
    # pre-training run directory at its newest complete checkpoint.
    weights = loading.read_weights(options.init_checkpoint) if options.init_checkpoint else None
    vocab_file = (options.vocab_file or (weights.vocab_file if weights else None)
                  or default_vocab_file())
    tokenizer = FullTokenizer(vocab_file, do_lower_case=config.do_lower_case)
    tasks = _tasks(config, options, tokenizer)
    specs = _all_specs(tasks, config.max_seq_length)
    disc_config = config.discriminator_config()
    init = _init_description(weights)
    # Every split the trials read, featurised (or found fresh in the cache) before any
    # training: an empty or missing split fails here, not after the first trial.
    prepared = {}
    if config.do_train:
        prepared["train"] = cached_features(tasks, "train", True, config.train_batch_size,
                                            config, options, say=say)
    if config.do_eval:
        prepared["dev"] = cached_features(tasks, "dev", False, config.eval_batch_size, config,
                                          options, say=say)

    all_results = []
    for trial in range(1, config.num_trials + 1):
        keras.utils.set_random_seed(options.seed + trial)
        with strategy.scope():
            model = FinetuningModel(disc_config, tasks, config)
            model.build()
        if weights is not None:
            report = checkpoints.assign_original_weights(
                weights.values, model, allow_missing=[r"^task_specific/"], source=weights.source)
            say(f"trial {trial}: initialised from {init['init_checkpoint']}"
                + (f" (step {weights.global_step})" if weights.global_step is not None else "")
                + f": {report}")
        else:
            say(f"trial {trial}: no pre-trained weights (init_checkpoint none): random "
                "initialisation")
        if config.do_train:
            _train(model, tasks, specs, config, options, trial, say, strategy, chief,
                   features=prepared["train"])
        if config.do_eval:
            results = evaluate(model, tasks, "dev", config, options, features=prepared["dev"])
            all_results.append(results)
            say(f"trial {trial}: " + "; ".join(
                f"{name}: " + " - ".join(f"{k}: {v:.2f}" for k, v in res.items())
                for name, res in results.items()))
            if chief:
                _write_results(all_results, config, options, init)
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


def _train(model, tasks, specs, config, options, trial, say, strategy, chief=True,
           features: Optional[tuple] = None) -> None:
    path, n = features or cached_features(tasks, "train", True, config.train_batch_size,
                                          config, options, say=say)
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
