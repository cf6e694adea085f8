"""Stateless randomness of the pre-training objective.

Every draw (masked positions, [MASK]-or-keep, Gumbel noise for sampling) is a
pure function of a [2] int seed derived from the run seed and the global step,
so a resumed run repeats exactly the draws of an uninterrupted one. Under a
multi-replica strategy, or with gradient accumulation, the noise of an update is
that of one draw over the whole update batch, but each replica and micro-batch
generates only its own rows (micro-batch i of replica r owns slot
i * replicas + r): Philox is a counter-based generator, so starting its counter
at the slot's first element gives exactly those rows. An example is corrupted
the same way whatever the number of replicas or micro-batches, and no device
holds more noise than its own [b, N, V].
"""

from __future__ import annotations

import contextlib
import threading

import tensorflow as tf

_micro = threading.local()


@contextlib.contextmanager
def microbatch(index, count: int):
    """Draws made inside are those of micro-batch ``index`` (a scalar tensor) of ``count``."""
    previous = getattr(_micro, "value", None)
    _micro.value = (index, int(count))
    try:
        yield
    finally:
        _micro.value = previous

# Salts separating the independent draws of one step.
POSITIONS, KEEP_OR_MASK, SAMPLING = 1, 2, 3


def step_seed(run_seed: int, step) -> tf.Tensor:
    """[2] int32 seed for one training step."""
    return tf.stack([tf.constant(run_seed, tf.int32), tf.cast(step, tf.int32)])


def fold(seed: tf.Tensor, salt: int) -> tf.Tensor:
    return tf.random.experimental.stateless_fold_in(seed, salt)


def uniform(seed: tf.Tensor, shape, salt: int) -> tf.Tensor:
    """U[0, 1) float32 of ``shape`` (leading dim = the local batch), replica-consistent.

    Equals rows ``[first, first + b)`` of one draw over the whole update batch, where
    ``first`` is this replica's and micro-batch's first row, without drawing the
    other rows. Without XLA the stream is ``tf.random.stateless_uniform``'s (philox);
    XLA derives its philox key differently, so it gives other (equally
    replica-consistent) numbers, as XLA always did.
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    micro_index, micro_count = getattr(_micro, "value", None) or (0, 1)
    seed = fold(seed, salt)
    shape = tf.convert_to_tensor(shape, tf.int32)
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32) if replicas > 1 else 0
    first_row = tf.cast(micro_index, tf.int32) * replicas + replica
    first_element = (tf.cast(first_row * shape[0], tf.uint64)
                     * tf.cast(tf.reduce_prod(shape[1:]), tf.uint64))
    return tf.reshape(_philox_uniform_from(seed, first_element, tf.reduce_prod(shape)), shape)


def _philox_uniform_from(seed: tf.Tensor, first_element: tf.Tensor, size: tf.Tensor):
    """Elements ``[first, first + size)`` of the flat philox stream of ``seed``.

    Philox yields 4 uint32 (4 float32 uniforms) per counter value: start the counter
    at first // 4, draw 3 extra values and drop the first first % 4. The size drawn
    does not depend on the offset, so the shape stays static under XLA.
    """
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    counter = tf.stack([counter[0] + first_element // 4, counter[1]])
    values = tf.raw_ops.StatelessRandomUniformV2(
        shape=tf.reshape(size + 3, [1]), key=key, counter=counter, alg=1, dtype=tf.float32)
    skip = tf.cast(first_element % 4, tf.int32)
    return values[skip:skip + size]
