"""Task heads on the discriminator encoder (spec 6.3, 6.4, 6.6, 7.4).

Each head lives under the original scope ``task_specific/<task>/`` with Glorot-uniform
kernels (the original creates them without an initializer) and returns, per example,
the loss the driver sums over the batch (spec 6.3: a sum, not a mean) plus the
outputs its task's scorer reads, keyed ``<task>_<output>``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.modeling import layers

# The original hard-codes dropout 0.1 on the [CLS] vector of classification/regression heads.
HEAD_DROPOUT = 0.1


class _TaskHead(keras.layers.Layer):
    def __init__(self, task_name: str, units: int, **kwargs):
        kwargs.setdefault("name", f"{task_name}_head")
        super().__init__(**kwargs)
        self.task_name = task_name
        self.units = units
        self.dense = layers.dense(units, "dense")  # Glorot-uniform kernel, zero bias

    def build(self, input_shape):
        self.dense.build((None, input_shape[-1]))
        super().build(input_shape)

    def original_variables(self) -> dict:
        return layers.dense_variables(self.dense, f"task_specific/{self.task_name}/dense")

    def _key(self, output: str) -> str:
        return f"{self.task_name}_{output}"


class ClassificationHead(_TaskHead):
    """[CLS] vector -> dropout 0.1 -> dense H->#labels -> log-softmax; loss = cross-entropy."""

    def __init__(self, task_name: str, num_labels: int, **kwargs):
        super().__init__(task_name, num_labels, **kwargs)
        self.dropout = layers.Dropout(HEAD_DROPOUT, name="dropout")

    def call(self, pooled_output, features, training=False):
        """Args: pooled_output [B, H] ([CLS]); features with ``<task>_label_ids`` [B].

        Returns ``<task>_loss`` [B], ``_logits`` [B, C], ``_predictions`` [B],
        ``_label_ids`` [B] and ``_eid`` [B] (when present in ``features``).
        """
        logits = self.dense(self.dropout(pooled_output, training=training))
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        labels = tf.cast(features[self._key("label_ids")], tf.int32)
        loss = -tf.gather(log_probs, labels, batch_dims=1)
        out = {self._key("loss"): loss, self._key("logits"): logits,
               self._key("predictions"): tf.argmax(logits, -1, output_type=tf.int32),
               self._key("label_ids"): labels}
        if self._key("eid") in features:
            out[self._key("eid")] = features[self._key("eid")]
        return out


class RegressionHead(_TaskHead):
    """[CLS] vector -> dropout 0.1 -> dense H->1; loss = squared error vs the 0-1 target."""

    def __init__(self, task_name: str, **kwargs):
        super().__init__(task_name, 1, **kwargs)
        self.dropout = layers.Dropout(HEAD_DROPOUT, name="dropout")

    def call(self, pooled_output, features, training=False):
        """Args: pooled_output [B, H]; features with ``<task>_targets`` [B] (float).

        Returns ``<task>_loss`` [B], ``_predictions`` [B], ``_targets`` [B], ``_eid``.
        """
        predictions = tf.squeeze(self.dense(self.dropout(pooled_output, training=training)), -1)
        predictions = tf.cast(predictions, tf.float32)
        targets = tf.cast(features[self._key("targets")], tf.float32)
        out = {self._key("loss"): tf.square(predictions - targets),
               self._key("predictions"): predictions, self._key("targets"): targets}
        if self._key("eid") in features:
            out[self._key("eid")] = features[self._key("eid")]
        return out


class TaggingHead(_TaskHead):
    """Hidden states at each word's first word-piece -> dense H->#tags (no dropout).

    Loss per example = softmax cross-entropy summed over the words that fit
    (``<task>_labels_mask``), as the original (spec 6.6).
    """

    def __init__(self, task_name: str, num_tags: int, **kwargs):
        super().__init__(task_name, num_tags, **kwargs)

    def call(self, sequence_output, features, training=False):
        """Args: sequence_output [B, L, H]; features with ``<task>_labeled_positions``,
        ``_labels`` [B, L] int and ``_labels_mask`` [B, L] float.

        Returns ``<task>_loss`` [B], ``_logits`` [B, L, T], ``_predictions`` [B, L],
        ``_labels``, ``_labels_mask`` and ``_eid``.
        """
        del training
        hidden = layers.gather_positions(sequence_output,
                                         features[self._key("labeled_positions")])
        logits = self.dense(hidden)
        labels = tf.cast(features[self._key("labels")], tf.int32)
        mask = tf.cast(features[self._key("labels_mask")], tf.float32)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        nll = -tf.gather(log_probs, labels, batch_dims=2)
        out = {self._key("loss"): tf.reduce_sum(nll * mask, axis=-1),
               self._key("logits"): logits,
               self._key("predictions"): tf.argmax(logits, -1, output_type=tf.int32),
               self._key("labels"): labels, self._key("labels_mask"): mask}
        if self._key("eid") in features:
            out[self._key("eid")] = features[self._key("eid")]
        return out
