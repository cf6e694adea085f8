"""TFRecord shards of pre-training examples: writing, reading back, file lifecycle (spec 5.3, 3.1).

Records are ``tf.train.Example`` protos with the int64 features ``input_ids``,
``input_mask`` and ``segment_ids``, each of length L, written round-robin into
``pretrain_data.tfrecord-<i>-of-<n>`` files (no zero padding, as the original).

Shards are written under hidden temporary names (``.pretrain_data.tfrecord-<i>-
of-<n>.tmp-<pid>-<ms>``) and renamed when every job has succeeded
(:func:`finalize_shards`), so an interrupted build never leaves files that look
like finished shards; :func:`remove_stale_temp_files` removes those of earlier
builds that were killed.
"""

import glob
import os

from electra_tf.data.errors import PretrainingDataError
from electra_tf.data.shard_metadata import is_metadata_file

FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")
SHARD_PREFIX = "pretrain_data.tfrecord"


def shard_name(index, num_out_files):
    """``pretrain_data.tfrecord-<i>-of-<n>``, no zero padding (as the original)."""
    return "%s-%d-of-%d" % (SHARD_PREFIX, index, num_out_files)


def _temp_shard_name(index, num_out_files, run_tag):
    # Hidden and not matching pretrain_data.tfrecord-*: an interrupted run
    # never leaves files that look like finished shards.
    return ".%s.tmp-%s" % (shard_name(index, num_out_files), run_tag)


def existing_shards(output_dir):
    """Sorted paths of ``pretrain_data.tfrecord-*`` files in ``output_dir``."""
    return sorted(glob.glob(os.path.join(glob.escape(output_dir), SHARD_PREFIX + "-*")))


def serialize_example(example):
    """A :class:`PackedExample` as a serialized ``tf.train.Example``."""
    # The generated protobuf class directly: about twice as fast as building
    # tf.train.Feature objects, same bytes.
    from tensorflow.core.example import example_pb2  # pylint: disable=g-import-not-at-top

    proto = example_pb2.Example()
    feature = proto.features.feature
    feature["input_ids"].int64_list.value.extend(example.input_ids)
    feature["input_mask"].int64_list.value.extend(example.input_mask)
    feature["segment_ids"].int64_list.value.extend(example.segment_ids)
    return proto.SerializeToString()


class ShardWriter(object):
    """Writes examples round-robin into the shards owned by one job.

    Job ``job_id`` of ``num_jobs`` owns shards ``i`` with ``i % num_jobs ==
    job_id``. Shards are written under hidden temporary names; :meth:`close`
    returns ``{temp_path: final_path}`` and :func:`finalize_shards` renames
    them once every job has succeeded.
    """

    def __init__(self, output_dir, num_out_files, job_id=0, num_jobs=1, run_tag="0"):
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        self.indices = [i for i in range(num_out_files) if i % num_jobs == job_id]
        if not self.indices:
            raise ValueError("job %d of %d owns no shard of %d" % (job_id, num_jobs, num_out_files))
        self.paths = {}
        self._writers = []
        for i in self.indices:
            temp = os.path.join(output_dir, _temp_shard_name(i, num_out_files, run_tag))
            self.paths[temp] = os.path.join(output_dir, shard_name(i, num_out_files))
            self._writers.append(tf.io.TFRecordWriter(temp))
        self._next = 0
        self.num_written = 0

    def write(self, example):
        self._writers[self._next].write(serialize_example(example))
        self._next = (self._next + 1) % len(self._writers)
        self.num_written += 1

    def close(self):
        for writer in self._writers:
            writer.close()
        self._writers = []
        return dict(self.paths)


def pretraining_feature_spec(max_seq_length):
    """The original's parsing spec: three int64 features of length L."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    return {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in FEATURE_NAMES}


def parse_pretraining_example(serialized, max_seq_length, cast_to_int32=True):
    """Parses one serialized record (or a batch) into a dict of tensors."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    parse = tf.io.parse_single_example if serialized.shape.rank == 0 else tf.io.parse_example
    parsed = parse(serialized, pretraining_feature_spec(max_seq_length))
    if cast_to_int32:
        parsed = {k: tf.cast(v, tf.int32) for k, v in parsed.items()}
    return parsed


def _shard_files(file_patterns):
    if isinstance(file_patterns, str):
        file_patterns = file_patterns.split(",")
    files = set()
    for pattern in file_patterns:
        pattern = pattern.strip()
        if not pattern:
            continue
        if os.path.isdir(pattern):
            files.update(existing_shards(pattern))
        else:
            files.update(glob.glob(pattern))
    return sorted(p for p in files if not is_metadata_file(p))


def read_pretraining_dataset(file_patterns, max_seq_length, cast_to_int32=True):
    """A ``tf.data.Dataset`` of dicts ``{input_ids, input_mask, segment_ids}``.

    Args:
      file_patterns: a directory of shards, a comma-separated string of globs,
        or a list of globs.
      max_seq_length: L of the records.
      cast_to_int32: cast the int64 features to int32 (as the original does).

    Records are read in file order, one file after the other, without
    shuffling or repetition: the pre-training input pipeline adds those.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    files = _shard_files(file_patterns)
    if not files:
        raise PretrainingDataError("no pre-training shards found at '%s'" % (file_patterns,))
    dataset = tf.data.TFRecordDataset(files)
    return dataset.map(
        lambda r: parse_pretraining_example(r, max_seq_length, cast_to_int32),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _temp_shard_files(output_dir):
    """Temporary shards of any build in ``output_dir`` (our temp-name pattern only)."""
    pattern = ".%s-*-of-*.tmp-*" % SHARD_PREFIX
    return sorted(glob.glob(os.path.join(glob.escape(output_dir), pattern)))


def temp_file_pid(path):
    """The builder pid in a temporary shard's name (``...tmp-<pid>-<ms>``), or None."""
    tag = os.path.basename(path).rsplit(".tmp-", 1)[-1]
    try:
        return int(tag.split("-")[0])
    except ValueError:
        return None


def _pid_alive(pid):
    """Whether process ``pid`` exists (unknown counts as alive)."""
    if os.name == "nt":  # os.kill would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    except OSError:
        return False
    return True


def remove_stale_temp_files(output_dir, overwrite):
    """Removes temporary shards left by killed builds; returns (removed, kept).

    A file whose builder process still runs (another build writing here) is kept,
    unless ``overwrite``.
    """
    removed, kept = [], []
    for path in _temp_shard_files(output_dir):
        pid = temp_file_pid(path)
        if not overwrite and pid is not None and pid != os.getpid() and _pid_alive(pid):
            kept.append(path)
            continue
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise PretrainingDataError(
                "cannot remove the stale temporary shard '%s': %s" % (path, e.strerror or e)
            )
    return removed, kept


def own_temp_files(output_dir, run_tag):
    return glob.glob(
        os.path.join(glob.escape(output_dir), ".%s-*.tmp-%s" % (SHARD_PREFIX, run_tag))
    )


def finalize_shards(output_dir, temp_to_final, old_shards):
    """Replaces old shards by the new ones (only after a successful build)."""
    new_finals = set(temp_to_final.values())
    remove_quietly([p for p in old_shards if p not in new_finals])
    for temp, final in sorted(temp_to_final.items(), key=lambda kv: kv[1]):
        os.replace(temp, final)
    return sorted(new_finals, key=_shard_sort_key)


def _shard_sort_key(path):
    name = os.path.basename(path)
    try:
        return (0, int(name[len(SHARD_PREFIX) + 1 :].split("-of-")[0]), name)
    except ValueError:
        return (1, 0, name)


def remove_quietly(paths):
    for path in paths:
        try:
            os.remove(path)
        except OSError:
            pass
