"""Dynamic masking of every batch (spec 3.2) and the gather/scatter semantics of spec 3.3."""

from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from electra_tf.pretraining import random


def scatter_update(sequence: tf.Tensor, updates: tf.Tensor, positions: tf.Tensor):
    """Writes per-example updates into a sequence, as the original ``scatter_update``.

    Writes to position 0 are ignored (unused slots point there). When a position
    is written several times the updates are summed and divided by their count:
    floor division for integers, so two different sampled ids t1, t2 at one
    position give floor((t1 + t2) / 2) (the original's [QUIRK], spec 3.3); equal
    updates (the [MASK] fill) are unaffected.

    Args:
      sequence: [B, L] or [B, L, D].
      updates: [B, N] or [B, N, D], same dtype as ``sequence``.
      positions: int [B, N].
    Returns:
      (updated sequence like ``sequence``, updated_mask int32 [B, L]: 1 where written).
    """
    shape = tf.shape(sequence)
    batch, length = shape[0], shape[1]
    positions = tf.cast(positions, tf.int32)
    flat = tf.reshape(positions + length * tf.range(batch)[:, tf.newaxis], [-1, 1])
    extra = shape[2:]
    flat_updates = tf.reshape(updates, tf.concat([[-1], extra], 0))
    summed = tf.scatter_nd(flat, flat_updates, tf.concat([[batch * length], extra], 0))
    counts = tf.scatter_nd(flat, tf.ones_like(flat[:, 0]), [batch * length])
    counts = tf.reshape(counts, [batch, length])
    counts *= tf.concat([tf.zeros([batch, 1], tf.int32),
                         tf.ones([batch, length - 1], tf.int32)], axis=1)
    summed = tf.reshape(summed, shape)
    written = counts > 0
    updated_mask = tf.cast(written, tf.int32)
    divisor = tf.cast(tf.maximum(counts, 1), sequence.dtype)
    if len(sequence.shape) == 3:
        written, divisor = written[..., tf.newaxis], divisor[..., tf.newaxis]
    averaged = summed // divisor if sequence.dtype.is_integer else summed / divisor
    return tf.where(written, averaged, sequence), updated_mask


def candidate_mask(input_ids: tf.Tensor, input_mask: tf.Tensor,
                   special_ids: Mapping[str, int]) -> tf.Tensor:
    """bool [B, L]: real tokens other than [CLS], [SEP] and [MASK] (spec 3.2 step 1)."""
    candidates = tf.cast(input_mask, tf.bool)
    for name in ("cls", "sep", "mask"):
        candidates &= tf.not_equal(input_ids, special_ids[name])
    return candidates


def masked_lm_weights(candidates: tf.Tensor, input_mask: tf.Tensor, mask_prob: float,
                      max_predictions: int) -> tf.Tensor:
    """float32 [B, N]: 1 in the first k slots of each row (spec 3.2 step 2), 0 without candidates.

    A function of the input alone (no randomness), so a loss's batch-level
    denominator can be known before any masking is drawn.
    """
    num_tokens = tf.reduce_sum(tf.cast(input_mask, tf.float32), axis=1)
    count = tf.round(num_tokens * tf.constant(mask_prob, tf.float32))  # half-to-even, float32
    count = tf.cast(tf.clip_by_value(count, 1.0, float(max_predictions)), tf.int32)
    has_candidate = tf.reduce_any(candidates, axis=1)
    weights = tf.cast(tf.range(max_predictions)[tf.newaxis] < count[:, tf.newaxis], tf.float32)
    return weights * tf.cast(has_candidate, tf.float32)[:, tf.newaxis]


def mask_inputs(input_ids: tf.Tensor, input_mask: tf.Tensor, *, mask_prob: float,
                max_predictions: int, special_ids: Mapping[str, int], seed: tf.Tensor) -> dict:
    """Chooses positions to predict and masks 85% of them (spec 3.2).

    k = max(1, min(N, round_half_even(float32(sum(input_mask)) * float32(mask_prob))))
    positions are drawn independently with replacement, uniformly over the
    candidates; slots >= k point to position 0; each slot independently replaces
    its position with [MASK] with probability 0.85 and otherwise leaves the
    original token (no random tokens).

    Args:
      input_ids, input_mask: int [B, L].
      max_predictions: N.
      special_ids: ids of "cls", "sep", "mask".
      seed: [2] int seed (see ``pretraining.random``).
    Returns:
      dict with ``input_ids`` (masked, int32 [B, L]), ``masked_lm_positions``
      int32 [B, N], ``masked_lm_ids`` int32 [B, N] (0 in unused slots) and
      ``masked_lm_weights`` float32 [B, N] (1 in the first k slots).
    """
    input_ids = tf.cast(input_ids, tf.int32)
    batch, length = tf.shape(input_ids)[0], tf.shape(input_ids)[1]
    candidates = candidate_mask(input_ids, input_mask, special_ids)
    weights = masked_lm_weights(candidates, input_mask, mask_prob, max_predictions)

    # Uniform categorical over candidates, N draws with replacement (Gumbel-max).
    u = random.uniform(seed, tf.stack([batch, max_predictions, length]), random.POSITIONS)
    gumbel = -tf.math.log(-tf.math.log(tf.maximum(u, 1e-20)))
    scores = tf.where(candidates[:, tf.newaxis, :], gumbel, tf.fill(tf.shape(gumbel), -1e30))
    positions = tf.argmax(scores, axis=-1, output_type=tf.int32)
    positions *= tf.cast(weights, tf.int32)
    masked_lm_ids = tf.gather(input_ids, positions, batch_dims=1) * tf.cast(weights, tf.int32)

    to_mask = random.uniform(seed, tf.stack([batch, max_predictions]),
                             random.KEEP_OR_MASK) < 0.85
    mask_positions = positions * tf.cast(to_mask, tf.int32)
    masked_ids, _ = scatter_update(
        input_ids, tf.fill([batch, max_predictions], tf.constant(special_ids["mask"], tf.int32)),
        mask_positions)
    return {"input_ids": tf.stop_gradient(masked_ids), "masked_lm_positions": positions,
            "masked_lm_ids": masked_lm_ids, "masked_lm_weights": weights}
