"""tf.data input of pre-training (spec 3.1)."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import tensorflow as tf

from electra_tf.data.pretraining_data import PretrainingDataError, parse_pretraining_example


def match_files(file_patterns: Union[str, Sequence[str]]) -> list:
    """Sorted files matching comma-separated glob patterns (local or GCS)."""
    if isinstance(file_patterns, str):
        file_patterns = file_patterns.split(",")
    files = set()
    for pattern in (p.strip() for p in file_patterns):
        if pattern:
            files.update(tf.io.gfile.glob(pattern))
    return sorted(files)


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
    files = match_files(file_patterns)
    if not files:
        raise PretrainingDataError(
            f"no pre-training TFRecords match {file_patterns!r}; build them with "
            "`python build_pretraining_dataset.py --output_dir=<dir>`")
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
