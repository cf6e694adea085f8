"""The feature cache of fine-tuning (spec 6.2): every task's examples of a split,
featurised by the tasks, in one TFRecord file per split with a fingerprint of its inputs.

A run's :class:`FeatureStore` (built once by the driver with its tasks and what their
features share) gives ``store.features(split)``: ``<preprocessed_dir>/<tasks>_<split>.tfrecord``
holds the features of the tasks read (every task's feature names, so the multi-task model
reads them all); ``.metadata`` beside it holds the counts and the fingerprint that decides
whether the file is reused. Each task says what its features depend on
(``task.source_file``, ``task.cache_options``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
from typing import Callable, List, NamedTuple, Optional, Sequence

import numpy as np
import tensorflow as tf

from electra_tf.finetuning.task import FeatureSpecs, TaskDataError, shared_feature_specs
from electra_tf.io_utils import short_value, write_text_atomic


def all_feature_specs(tasks, max_seq_length: int) -> FeatureSpecs:
    """The shared features plus every task's own: what each cached record holds."""
    specs = dict(shared_feature_specs(max_seq_length))
    for task in tasks:
        specs.update(task.feature_specs())
    return specs


def _serialize(feature: dict, specs: FeatureSpecs) -> bytes:
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


def _vocab_fingerprint(tokenizer) -> Optional[dict]:
    vocab_file = getattr(tokenizer, "vocab_file", None)
    if vocab_file:
        return _file_fingerprint(vocab_file)
    vocab = getattr(tokenizer, "vocab", None)
    if vocab is None:
        return None
    text = json.dumps(sorted(vocab.items(), key=lambda kv: kv[1]))
    return {"size": len(vocab), "sha256": hashlib.sha256(text.encode()).hexdigest()}


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
                changes.extend(f"{name} {k} {short_value(before.get(k))} -> {short_value(v)}"
                               for k, v in opts.items() if before.get(k) != v)
        elif a != b:
            changes.append(f"{key} {short_value(a)} -> {short_value(b)}")
    return changes


def describe_fingerprint_changes(old: Optional[dict], new: dict) -> List[str]:
    """What differs between two fingerprints of :meth:`FeatureStore.fingerprint` (the file
    contents, not their paths or times); empty when they describe the same features."""
    return _describe_changes(old, new)


def cached_fingerprint(path: str) -> Optional[dict]:
    """The fingerprint recorded beside the cached features ``<name>.tfrecord`` (as
    :meth:`FeatureStore.features` returns them), or None."""
    meta = path[:-len(".tfrecord")] + ".metadata" if path.endswith(".tfrecord") else None
    metadata = _read_metadata(meta) if meta else None
    return (metadata or {}).get("fingerprint")


def _read_metadata(meta: str) -> Optional[dict]:
    try:
        with open(meta) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _empty_split_error(task, split: str, is_training: bool, skipped: int) -> TaskDataError:
    path = task.source_file(split) or f"its {split!r} split ({task.data_source})"
    why = f" (all {skipped} rows malformed and skipped)" if skipped else ""
    if is_training:
        what = "nothing to train on (add examples, or pass --nodo_train)"
    else:
        what = "nothing to evaluate (add examples, or pass --nodo_eval)"
    return TaskDataError(f"{task.name}: the {split!r} split {path} has no examples{why}: "
                         f"{what}")


class CachedFeatures(NamedTuple):
    """The cached features of a split: the TFRecord file and its number of features
    (padding included)."""

    path: str
    count: int


class FeatureStore:
    """The cached features of a run's tasks (spec 6.2), built once by the driver.

    ``features(split)`` featurises ``split`` of every task into
    ``<directory>/<name>.tfrecord`` (``features(split, task)``: of that task only), or finds
    it fresh in the cache, and keeps the answer for the run.

    Args:
      tasks: the run's tasks, in ``task_id`` order (they share one tokenizer).
      directory: the cache directory (``<preprocessed_dir>``).
      max_seq_length, do_lower_case, debug: the run's (part of the fingerprint; debug names
        the files ``...-debug``).
      train_batch_size, eval_batch_size: the "train" split is padded to a multiple of the
        first, the others of the second.
      seed: shuffles the training examples.
      reuse: reuse a fresh cache (``use_tfrecords_if_existing``).
      say: prints a progress line.
    """

    def __init__(self, tasks: Sequence, directory: str, *, max_seq_length: int,
                 do_lower_case: bool, debug: bool, train_batch_size: int,
                 eval_batch_size: int, seed: int, reuse: bool = True,
                 say: Optional[Callable[[str], None]] = None):
        self.tasks = list(tasks)
        self.directory = directory
        self.max_seq_length = max_seq_length
        self.do_lower_case = do_lower_case
        self.debug = debug
        self.train_batch_size = train_batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.reuse = reuse
        self.say = say or (lambda message: None)
        # What every cached record holds: the shared features plus every task's own.
        self.specs = all_feature_specs(self.tasks, max_seq_length)
        self._made = {}

    @classmethod
    def for_run(cls, tasks: Sequence, config, options,
                say: Optional[Callable[[str], None]] = None) -> "FeatureStore":
        """The store of a run: ``config`` a FinetuningConfig, ``options`` the driver's
        FinetuneOptions (``preprocessed_dir``, ``seed``); ``say`` by default prints to
        stderr unless ``options.quiet``."""
        if say is None:
            def say(msg):
                if not options.quiet:
                    print(msg, file=sys.stderr, flush=True)
        return cls(tasks, options.preprocessed_dir, max_seq_length=config.max_seq_length,
                   do_lower_case=config.do_lower_case, debug=config.debug,
                   train_batch_size=config.train_batch_size,
                   eval_batch_size=config.eval_batch_size, seed=options.seed,
                   reuse=config.use_tfrecords_if_existing, say=say)

    def batch_size(self, split: str) -> int:
        """The padding (and reading) batch size of ``split``."""
        return self.train_batch_size if split == "train" else self.eval_batch_size

    def features(self, split: str, task=None) -> CachedFeatures:
        """The features of ``split`` of every task (``task``: of that one only; the records
        still carry every task's features, so the multi-task model can read them).

        Training (``split == "train"``) examples are shuffled (seeded); features are padded
        with dummy ones (``task_id = len(tasks)``) to a multiple of the split's batch size.
        Reused when the ``.metadata`` exists, ``reuse`` and its fingerprint (see
        :meth:`fingerprint`) matches; otherwise rebuilt, saying what changed. A task whose
        train or dev split has no example is a TaskDataError naming its file.
        """
        sources = [task] if task is not None else self.tasks
        key = (split, tuple(t.name for t in sources))
        if key not in self._made:
            self._made[key] = self._cache(split, sources)
        return self._made[key]

    def fingerprint(self, split: str, sources: Sequence) -> dict:
        """Everything the cached features of ``split`` of ``sources`` depend on (stored in
        the ``.metadata``): the task data files (size, mtime, content hash), the vocab,
        lower-casing, L, the tasks and their order, training or not, the padding batch
        size, the shuffling seed and the family options that change features."""
        is_training = split == "train"
        tokenizer = self.tasks[0].tokenizer if self.tasks else None
        return {
            "format": _CACHE_FORMAT,
            "split": split,
            "is_training": bool(is_training),
            "batch_size": int(self.batch_size(split)),
            "shuffle_seed": int(self.seed) if is_training else None,
            "max_seq_length": int(self.max_seq_length),
            "do_lower_case": bool(self.do_lower_case),
            "debug": bool(self.debug),
            "vocab": _vocab_fingerprint(tokenizer),
            "tasks": [task.name for task in self.tasks],
            "sources": [task.name for task in sources],
            "task_options": {task.name: task.cache_options() for task in self.tasks},
            "files": {task.name: _file_fingerprint(path) if path else None
                      for task in sources for path in [task.source_file(split)]},
        }

    def _cache(self, split: str, sources: Sequence) -> CachedFeatures:
        tasks, say = self.tasks, self.say
        is_training = split == "train"
        batch_size = self.batch_size(split)
        name = "_".join(sorted(t.name for t in sources)) + "_" + split
        if self.debug:
            name += "-debug"  # the original meant to, and never did (spec 1.5 [QUIRK])
        path = os.path.join(self.directory, name + ".tfrecord")
        meta = os.path.join(self.directory, name + ".metadata")
        fingerprint = self.fingerprint(split, sources)
        if self.reuse and os.path.exists(meta) and os.path.exists(path):
            metadata = _read_metadata(meta)
            changes = _describe_changes((metadata or {}).get("fingerprint"), fingerprint)
            if metadata is not None and not changes:
                counts = metadata.get("examples") or {}
                say(f"features of {name}: reusing {path} ("
                    + ", ".join(f"{t} {n} examples" for t, n in counts.items())
                    + f", {metadata['n_examples']} features)")
                return CachedFeatures(path, metadata["n_examples"])
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
            random.Random(self.seed).shuffle(examples)
        by_name = {task.name: task for task in tasks}
        features = [f for ex in examples
                    for f in by_name[ex.task_name].featurize(ex, is_training)]
        n_real = len(features)
        while len(features) % batch_size:
            features.append({"task_id": len(tasks)})
        os.makedirs(self.directory, exist_ok=True)
        try:
            os.remove(meta)  # never a new tfrecord with an old fingerprint
        except FileNotFoundError:
            pass  # (also: another worker of a multi-worker run removed it first)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            with tf.io.TFRecordWriter(tmp) as writer:
                for feature in features:
                    writer.write(_serialize(feature, self.specs))
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
        return CachedFeatures(path, len(features))


def feature_dataset(path: str, specs: FeatureSpecs, batch_size: int, is_training: bool,
                    seed: int, skip_batches: int = 0) -> tf.data.Dataset:
    """Batches [B, ...] of the cached features at ``path`` (int features as int32); training:
    repeated and shuffled (``seed``); batches of exactly ``batch_size``.

    ``skip_batches``: training input starting after that many batches, exactly the batches
    an uninterrupted run reads from there (a resumed trial; records are skipped before
    they are parsed).
    """
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
        if skip_batches:  # the stream is endless, so batch i is records [iB, (i + 1)B)
            dataset = dataset.skip(skip_batches * batch_size)
    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(
        batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
