"""Sampling fake tokens from the generator and building the discriminator's input (spec 3.7)."""

from __future__ import annotations

import tensorflow as tf

from electra_tf.pretraining import random
from electra_tf.pretraining.masking import scatter_update


def sample_tokens(logits: tf.Tensor, seed: tf.Tensor, temperature: float = 1.0,
                  disallowed_ids: tf.Tensor | None = None) -> tf.Tensor:
    """Gumbel-max samples from generator logits; no gradient flows through them.

    logits / temperature, minus 1000 at ``disallowed_ids`` (``disallow_correct``),
    plus Gumbel noise g = -log(-log(u + 1e-9) + 1e-9), argmax. Computed in float32
    whatever the model's compute dtype.

    Args:
      logits: [B, N, V].
      seed: [2] int seed.
      disallowed_ids: optional int [B, N], the original tokens to forbid.
    Returns:
      int32 [B, N] sampled ids.
    """
    logits = tf.stop_gradient(tf.cast(logits, tf.float32)) / temperature
    if disallowed_ids is not None:
        logits -= 1000.0 * tf.one_hot(disallowed_ids, tf.shape(logits)[-1], dtype=tf.float32)
    u = random.uniform(seed, tf.shape(logits), random.SAMPLING)
    gumbel = -tf.math.log(-tf.math.log(u + 1e-9) + 1e-9)
    return tf.stop_gradient(tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32))


def replace_tokens(input_ids: tf.Tensor, sampled_ids: tf.Tensor, positions: tf.Tensor,
                   label_every_replacement: bool = False):
    """Writes samples into the original sequence at every selected position.

    Args:
      input_ids: original int [B, L].
      sampled_ids: int [B, N].
      positions: int [B, N] (unused slots point to 0 and are ignored).
      label_every_replacement: Electric's labels (every replaced position is
        "fake"); ELECTRA's default labels a sample equal to the original as real.
    Returns:
      (fake_ids int32 [B, L], labels int32 [B, L], replaced int32 [B, L]).
    """
    input_ids = tf.cast(input_ids, tf.int32)
    fake_ids, replaced = scatter_update(input_ids, tf.cast(sampled_ids, tf.int32), positions)
    if label_every_replacement:
        labels = replaced
    else:
        labels = replaced * tf.cast(tf.not_equal(fake_ids, input_ids), tf.int32)
    return tf.stop_gradient(fake_ids), labels, replaced
