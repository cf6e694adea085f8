"""One optimizer update from k micro-batches (gradient accumulation) under any strategy.

Shared by the pre-training and fine-tuning drivers. With k = 1 the update is the
plain step; with k > 1 gradients are summed into replica-local accumulator
variables (one extra copy of the trained weights) and applied once, so the
optimizer's ``iterations`` and the LR schedule count updates, not micro-batches.
The caller scales its loss so that the summed gradient is the one it wants:
pre-training normalises each shard's token losses by the counts of the whole update
batch (``denominators``), fine-tuning sums over the batch.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

import tensorflow as tf


def gradient_accumulators(variables) -> list:
    """One zero tensor per variable, local to each replica (summed only when applied)."""
    return [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                        synchronization=tf.VariableSynchronization.ON_READ,
                        aggregation=tf.VariableAggregation.SUM,
                        name=f"accumulated_gradient_{i}") for i, v in enumerate(variables)]


def make_update_step(strategy: tf.distribute.Strategy, optimizer, variables: list,
                     compute: Callable, accumulation_steps: int,
                     reduce_op=tf.distribute.ReduceOp.MEAN, combine: str = "mean",
                     denominators: Optional[Callable] = None):
    """Builds ``update(iterator, *args) -> {name: scalar}``; call it inside a tf.function.

    Args:
      compute: ``compute(features, micro_index, *args) -> (gradients, {name: scalar})``
        run in replica context (``micro_index``: int32 scalar, 0..k-1); with
        ``denominators``, ``compute(features, micro_index, totals, *args)``.
      accumulation_steps: k micro-batches per update (k > 1 creates accumulators;
        build this under ``strategy.scope()``'s reach, i.e. not inside a tf.function).
      reduce_op: how statistics combine across replicas.
      combine: ``"mean"`` or ``"sum"`` of the statistics over micro-batches.
      denominators: ``denominators(features) -> {name: scalar}``, counts of one shard.
        All k micro-batches are read first and their counts summed over micro-batches
        and replicas (``totals``) before any gradient is computed, so each shard can
        normalise by the whole update batch's counts.
    """
    k = int(accumulation_steps)
    accumulators = None
    if k > 1:
        with strategy.scope():
            accumulators = gradient_accumulators(variables)

    def reduce(stats: Mapping) -> dict:
        return {key: strategy.reduce(reduce_op, value, axis=None) for key, value in stats.items()}

    def replica_totals(*shards):
        counts = [denominators(shard) for shard in shards]
        local = {key: tf.add_n([c[key] for c in counts]) for key in counts[0]}
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local)

    def replica_step(features, micro_index, *args):
        gradients, stats = compute(features, micro_index, *args)
        with tf.name_scope("optimizer_update"):  # op names only, for profiles
            optimizer.apply_gradients(zip(gradients, variables))
        return stats

    def replica_accumulate(batches, micro_index, *args):
        features = tf.nest.map_structure(lambda t: tf.gather(t, micro_index), batches)
        gradients, stats = compute(features, micro_index, *args)
        for accumulator, gradient in zip(accumulators, gradients):
            accumulator.assign_add(tf.convert_to_tensor(gradient))
        return stats

    def replica_apply():
        with tf.name_scope("optimizer_update"):
            optimizer.apply_gradients(zip([a.read_value() for a in accumulators], variables))
        for accumulator in accumulators:
            accumulator.assign(tf.zeros_like(accumulator))

    def stack(*shards):
        return tf.nest.map_structure(lambda *t: tf.stack(t), *shards)

    def update(iterator, *args):
        # k micro-batches of input are small next to their activations: read them all
        # first so the update batch's counts are known before the first gradient.
        shards = tuple(next(iterator) for _ in range(k))
        if denominators is not None:
            args = (strategy.run(replica_totals, args=shards), *args)
        if k == 1:
            return reduce(strategy.run(replica_step, args=(shards[0], tf.constant(0), *args)))
        batches = strategy.run(stack, args=shards)
        totals = reduce(strategy.run(replica_accumulate, args=(batches, tf.constant(0), *args)))
        for micro_index in tf.range(1, k):
            stats = reduce(strategy.run(replica_accumulate, args=(batches, micro_index, *args)))
            totals = {key: totals[key] + stats[key] for key in totals}
        strategy.run(replica_apply)
        return {key: value / k for key, value in totals.items()} if combine == "mean" else totals

    return update
