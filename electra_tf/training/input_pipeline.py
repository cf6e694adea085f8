"""tf.data input of pre-training (spec 3.1)."""

from __future__ import annotations

import os
import struct
from typing import Optional, Sequence, Union

import tensorflow as tf

from electra_tf.data.errors import PretrainingDataError
from electra_tf.data.shard_metadata import check_metadata, is_metadata_file
from electra_tf.data.shards import parse_pretraining_example
from electra_tf.io_utils import first_line


def match_files(file_patterns: Union[str, Sequence[str]]) -> list:
    """Sorted files matching comma-separated glob patterns (local or GCS), without the
    shards' ``pretrain_data.json`` (a ``dir/*`` pattern matches it too)."""
    if isinstance(file_patterns, str):
        file_patterns = file_patterns.split(",")
    files = set()
    for pattern in (p.strip() for p in file_patterns):
        if pattern:
            files.update(tf.io.gfile.glob(pattern))
    return sorted(f for f in files if not is_metadata_file(f))


def _required_files(file_patterns) -> list:
    files = match_files(file_patterns)
    if not files:
        raise PretrainingDataError(
            f"no pre-training TFRecords match {file_patterns!r}; build them with "
            "`python build_pretraining_dataset.py --output_dir=<dir>`")
    return files


def pretraining_dataset(file_patterns: Union[str, Sequence[str]], max_seq_length: int,
                        batch_size: int, *, seed: Optional[int] = None,
                        deterministic: bool = False,
                        input_context: Optional[tf.distribute.InputContext] = None
                        ) -> tf.data.Dataset:
    """Endless batches of ``{input_ids, input_mask, segment_ids}`` int32 [B, L].

    As the original: file names repeated forever and shuffled (buffer = number
    of files), a parallel interleave of up to 4 readers, a 100-record shuffle,
    batches with the remainder dropped. Evaluation reads the same files the
    same way (the original has no held-out split). Shuffles are seeded with
    ``seed``; ``deterministic=True`` also fixes the interleave order, so a run
    can be repeated exactly.

    Args:
      batch_size: the per-pipeline batch (the global batch without an input context).
      input_context: given by ``distribute_datasets_from_function``; workers read
        disjoint subsets of the files (file i goes to pipeline i mod P) or, with
        fewer files than pipelines, every file in one fixed order keeping every
        P-th record: either way no example is read by two workers.
    """
    files = _required_files(file_patterns)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    pipelines = input_context.num_input_pipelines if input_context is not None else 1
    shard_records = 1 < pipelines and len(files) < pipelines
    if pipelines > 1 and not shard_records:
        dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
    if shard_records:  # same record order on every worker, so the shards are disjoint
        seed, deterministic = (0 if seed is None else seed), True
    dataset = dataset.repeat().shuffle(len(files), seed=seed)
    dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
                                 num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=deterministic)
    if shard_records:
        dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
    dataset = dataset.shuffle(100, seed=seed)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(lambda records: parse_pretraining_example(records, max_seq_length),
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def validate_records(file_patterns: Union[str, Sequence[str]], max_seq_length: int,
                     records_per_file: int = 2, vocab_file: Optional[str] = None) -> list:
    """Checks the shards before any training: one clear error instead of a hang or a crash
    hours in.

    Where a folder of the files holds the build's ``pretrain_data.json``, its
    max_seq_length and (given the run's ``vocab_file``) its vocab must be the run's.
    Every file must be readable and its first ``records_per_file`` records must hold
    the three features at ``max_seq_length``; at least one file must hold a record
    (an all-empty input would make the endless input spin without yielding).

    Returns:
      the list of empty files (warned about by the caller).
    Raises:
      PretrainingDataError naming the file and what to do.
    """
    files = _required_files(file_patterns)
    for directory in sorted({os.path.dirname(path) for path in files}):
        check_metadata(directory, max_seq_length, vocab_file)
    empty = []
    for path in files:
        try:
            records = _first_records(path, records_per_file)
        except (OSError, ValueError, tf.errors.OpError) as e:
            raise PretrainingDataError(
                f"{path}: not a readable TFRecord file ({first_line(e)}); rebuild it with "
                "build_pretraining_dataset.py or remove it") from e
        if not records:
            empty.append(path)
            continue
        for record in records:
            try:
                features = tf.train.Example.FromString(record).features.feature
                lengths = {name: len(features[name].int64_list.value)
                           for name in ("input_ids", "input_mask", "segment_ids")}
            except Exception as e:  # protobuf's DecodeError has no stable public home
                raise PretrainingDataError(
                    f"{path}: records are not ELECTRA pre-training examples "
                    f"({first_line(e) or type(e).__name__})") from e
            if set(lengths.values()) != {max_seq_length}:
                found = sorted(set(lengths.values()))
                raise PretrainingDataError(
                    f"{path}: records hold {'/'.join(map(str, found))} tokens per feature but "
                    f"max_seq_length is {max_seq_length}: pass --max_seq_length="
                    f"{found[0]} or rebuild the data at {max_seq_length}")
    if len(empty) == len(files):
        raise PretrainingDataError(
            f"every pre-training file matching {file_patterns!r} is empty ({len(files)} "
            "file(s), no records): rebuild them from a corpus that has text")
    return empty


def _first_records(path: str, count: int) -> list:
    """Up to ``count`` serialized records, read from the TFRecord framing alone.

    Plain file reads, no TensorFlow op: a multi-worker strategy can only be created
    while the runtime has not started, and the records are checked before it.
    """
    records = []
    with tf.io.gfile.GFile(path, "rb") as f:
        size = f.size()
        while len(records) < count:
            header = f.read(12)  # uint64 length + its masked CRC
            if not header:
                break
            if len(header) < 12:
                raise ValueError("truncated record header")
            (length,) = struct.unpack("<Q", header[:8])
            if length + 4 > size - f.tell():
                raise ValueError(f"a record of {length} bytes runs past the end of the file")
            records.append(f.read(length))
            f.read(4)  # the data CRC; a corrupt body is caught by the reader in training
    return records


def find_unreadable_file(file_patterns: Union[str, Sequence[str]]) -> Optional[str]:
    """The first file that cannot be read to its end (after a DataLossError), or None."""
    for path in match_files(file_patterns):
        try:
            for _ in tf.data.TFRecordDataset(path):
                pass
        except tf.errors.OpError:
            return path
    return None

