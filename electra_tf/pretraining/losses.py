"""Pre-training losses (spec 3.6, 3.8, 3.10): token-level means over the whole batch."""

from __future__ import annotations

import math

import tensorflow as tf


def softmax_loss(logits: tf.Tensor, targets: tf.Tensor, weights: tf.Tensor,
                 denominator=None):
    """Weighted token-level cross-entropy, sum(w * nll) / (sum(w) + 1e-6).

    Args:
      logits: [..., V]; targets: int [...]; weights: float [...].
      denominator: sum(w) over the whole update batch when these rows are one shard
        of it (replicas, micro-batches); default: sum(w) of these rows.
    Returns:
      (loss scalar float32, per-token nll float32 [...]).
    """
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    nll = -tf.gather(log_probs, tf.cast(targets, tf.int32), batch_dims=len(targets.shape))
    weights = tf.cast(weights, tf.float32)
    if denominator is None:
        denominator = tf.reduce_sum(weights)
    return tf.reduce_sum(weights * nll) / (denominator + 1e-6), nll


def discriminator_loss(logits: tf.Tensor, labels: tf.Tensor, input_mask: tf.Tensor,
                       denominator=None):
    """Sigmoid cross-entropy at every real position (spec 3.8).

    Args:
      logits: [B, L]; labels: int [B, L] (1 = replaced); input_mask: int [B, L].
      denominator: sum(input_mask) over the whole update batch (see softmax_loss).
    Returns:
      (loss scalar, per-example loss [B]) in float32.
    """
    logits = tf.cast(logits, tf.float32)
    weights = tf.cast(input_mask, tf.float32)
    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32),
                                                     logits=logits) * weights
    per_example = tf.reduce_sum(losses, axis=-1) / (tf.reduce_sum(weights, axis=-1) + 1e-6)
    if denominator is None:
        denominator = tf.reduce_sum(weights)
    return tf.reduce_sum(losses) / (denominator + 1e-6), per_example


def electric_logits(scores: tf.Tensor, cloze_logits: tf.Tensor, fake_ids: tf.Tensor,
                    mask_prob: float) -> tf.Tensor:
    """Electric's corrected discriminator logits (spec 3.10).

    s + stop_gradient(log q(x~_i | context)) + log(p / (1 - p)), where log q is
    the cloze log-softmax at position i evaluated at the token actually present.

    Args:
      scores: discriminator head output s [B, L].
      cloze_logits: [B, L, V].
      fake_ids: the discriminator's input ids [B, L].
    Returns:
      float32 [B, L].
    """
    log_q = tf.nn.log_softmax(tf.cast(cloze_logits, tf.float32), axis=-1)
    log_q = tf.gather(log_q, tf.cast(fake_ids, tf.int32), batch_dims=2)
    return (tf.cast(scores, tf.float32) + tf.stop_gradient(log_q)
            + math.log(mask_prob / (1.0 - mask_prob)))
