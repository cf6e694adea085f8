"""Stateless randomness of the pre-training objective.

Every draw (masked positions, [MASK]-or-keep, Gumbel noise for sampling) is a
pure function of a [2] int seed derived from the run seed and the global step,
so a resumed run repeats exactly the draws of an uninterrupted one. Under a
multi-replica strategy, or with gradient accumulation, each replica draws the
noise of the whole update batch and keeps its own rows (micro-batch i of
replica r owns slot i * replicas + r), so an example is corrupted the same way
whatever the number of replicas or micro-batches.
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
    """U[0, 1) float32 of ``shape`` (leading dim = the local batch), replica-consistent."""
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    micro_index, micro_count = getattr(_micro, "value", None) or (0, 1)
    seed = fold(seed, salt)
    if replicas * micro_count == 1:
        return tf.random.stateless_uniform(shape, seed, alg="philox")
    shape = tf.unstack(tf.convert_to_tensor(shape, tf.int32))
    local = shape[0]
    noise = tf.random.stateless_uniform(tf.stack([local * replicas * micro_count] + shape[1:]),
                                        seed, alg="philox")
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32) if replicas > 1 else 0
    start = (tf.cast(micro_index, tf.int32) * replicas + replica) * local
    return noise[start:start + local]
