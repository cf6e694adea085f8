"""Task heads on the discriminator encoder (spec 6.3, 6.4, 6.6, 7.4).

Each head lives under the original scope ``task_specific/<task>/`` with Glorot-uniform
kernels (the original creates them without an initializer) and returns, per example,
the loss the driver sums over the batch (spec 6.3: a sum, not a mean) plus the
outputs its task's scorer reads, keyed ``<task>_<output>``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.networks import layers

# The original hard-codes dropout 0.1 on the [CLS] vector of classification/regression heads.
HEAD_DROPOUT = 0.1


def _with_eid(out: dict, features, eid_key: str) -> dict:
    """``out`` plus the example ids ``features[eid_key]`` when the features carry them."""
    if eid_key in features:
        out[eid_key] = features[eid_key]
    return out


class _TaskHead(keras.layers.Layer):
    # The encoder output the head reads: "pooled_output" [B, H] or "sequence_output" [B, L, H].
    encoder_output = "pooled_output"

    def __init__(self, task_name: str, units: int, **kwargs):
        kwargs.setdefault("name", f"{task_name}_head")
        # The features carry float targets (regression): under a mixed policy they must not
        # be rounded to bfloat16/float16; the dense layers inside still compute in it.
        kwargs.setdefault("autocast", False)
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
        return _with_eid(out, features, self._key("eid"))


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
        return _with_eid(out, features, self._key("eid"))


class TaggingHead(_TaskHead):
    """Hidden states at each word's first word-piece -> dense H->#tags (no dropout).

    Loss per example = softmax cross-entropy summed over the words that fit
    (``<task>_labels_mask``), as the original (spec 6.6).
    """

    encoder_output = "sequence_output"

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
        return _with_eid(out, features, self._key("eid"))


class QAHead(keras.layers.Layer):
    """Answer-span head with joint start/end beam search and the answerable classifier (spec 6.5).

    Original names under ``task_specific/<task>/``: ``dense`` (start, H->1); joint:
    ``qa_hidden`` (2H->512, GELU) and ``dense_1`` (512->1); non-joint: ``dense_1`` (end,
    H->1); answerable classifier: ``dense_2`` (2H->512, GELU) + ``dense_3`` (512->1) when it
    also reads the start distribution, else ``dense_2`` (H->1). No dropout.

    Args:
      task_name: e.g. "squad".
      joint_prediction, beam_size, answerable_classifier, answerable_uses_start_logits,
        answerable_weight: the QA settings of the same names (``qa.QASettings``).
    """

    encoder_output = "sequence_output"

    def __init__(self, task_name: str, joint_prediction: bool = True, beam_size: int = 20,
                 answerable_classifier: bool = True, answerable_uses_start_logits: bool = True,
                 answerable_weight: float = 0.5, **kwargs):
        kwargs.setdefault("name", f"{task_name}_head")
        kwargs.setdefault("autocast", False)  # as _TaskHead; logits are float32 below
        super().__init__(**kwargs)
        self.task_name = task_name
        self.joint, self.beam_size = joint_prediction, beam_size
        self.answerable = answerable_classifier
        self.uses_start = answerable_uses_start_logits
        self.answerable_weight = answerable_weight
        gelu = layers.activation("gelu")
        self.start = layers.dense(1, "dense")
        if self.joint:
            self.qa_hidden = layers.dense(512, "qa_hidden", act=gelu)
        self.end = layers.dense(1, "dense_1")
        if self.answerable:
            if self.uses_start:
                self.answerable_hidden = layers.dense(512, "dense_2", act=gelu)
                self.answerable_logit = layers.dense(1, "dense_3")
            else:
                self.answerable_logit = layers.dense(1, "dense_2")

    def build(self, input_shape):
        h = input_shape[-1]
        self.start.build((None, h))
        if self.joint:
            self.qa_hidden.build((None, 2 * h))
            self.end.build((None, 512))
        else:
            self.end.build((None, h))
        if self.answerable:
            if self.uses_start:
                self.answerable_hidden.build((None, 2 * h))
                self.answerable_logit.build((None, 512))
            else:
                self.answerable_logit.build((None, h))
        super().build(input_shape)

    def _key(self, output: str) -> str:
        return f"{self.task_name}_{output}"

    def _end_logits(self, start_vectors, sequence):
        """start_vectors [B, ..., H] tiled against every position -> end logits [B, ..., L]."""
        tiled = tf.broadcast_to(start_vectors[..., tf.newaxis, :],
                                tf.concat([tf.shape(start_vectors)[:-1],
                                           tf.shape(sequence)[1:]], 0))
        seq = sequence
        while len(seq.shape) < len(tiled.shape):
            seq = seq[:, tf.newaxis]
        seq = tf.broadcast_to(seq, tf.shape(tiled))
        return tf.cast(tf.squeeze(self.end(self.qa_hidden(tf.concat([tiled, seq], -1))), -1),
                       tf.float32)

    def call(self, sequence_output, features, training=False):
        """Args: sequence_output [B, L, H]; features with ``input_mask``, ``segment_ids``
        and ``<task>_start_positions``/``_end_positions``/``_is_impossible``/``_eid`` [B].

        Returns ``<task>_loss`` [B], ``_start_logits``/``_end_logits`` [B, L],
        ``_answerable_logit`` [B], joint: ``_start_top_log_probs``/``_start_top_index``
        [B, k] and ``_end_top_log_probs``/``_end_top_index`` [B, k, k]; and ``_eid``.
        """
        seq = tf.cast(sequence_output, tf.float32)
        allowed = tf.cast(features["input_mask"] * features["segment_ids"], tf.float32)
        allowed = tf.concat([tf.ones_like(allowed[:, :1]), allowed[:, 1:]], axis=1)
        penalty = 1000.0 * (allowed - 1.0)
        start_logits = tf.cast(tf.squeeze(self.start(seq), -1), tf.float32) + penalty
        start_positions = tf.cast(features[self._key("start_positions")], tf.int32)
        end_positions = tf.cast(features[self._key("end_positions")], tf.int32)
        out = {}
        if self.joint:
            start_log_probs = tf.nn.log_softmax(start_logits, -1)
            top_start_lp, top_start = tf.math.top_k(start_log_probs, self.beam_size)
            if training:
                gold_start = layers.gather_positions(seq, start_positions)      # [B, H]
                end_logits = self._end_logits(gold_start, seq) + penalty       # [B, L]
            else:
                candidates = layers.gather_positions(seq, top_start)            # [B, k, H]
                end_beam = self._end_logits(candidates, seq) + penalty[:, tf.newaxis]
                top_end_lp, top_end = tf.math.top_k(tf.nn.log_softmax(end_beam, -1),
                                                    self.beam_size)
                out.update({self._key("end_top_log_probs"): top_end_lp,
                            self._key("end_top_index"): top_end})
                end_logits = tf.zeros_like(start_logits)
            out.update({self._key("start_top_log_probs"): top_start_lp,
                        self._key("start_top_index"): top_start})
        else:
            end_logits = tf.cast(tf.squeeze(self.end(seq), -1), tf.float32) + penalty

        def ce(logits, positions):
            return -tf.gather(tf.nn.log_softmax(logits, -1), positions, batch_dims=1)

        loss = (ce(start_logits, start_positions) + ce(end_logits, end_positions)) / 2.0
        if self.answerable:
            features_vec = seq[:, 0]
            if self.uses_start:
                weights = tf.nn.softmax(start_logits, -1)[..., tf.newaxis]
                features_vec = self.answerable_hidden(
                    tf.concat([features_vec, tf.reduce_sum(weights * seq, axis=1)], -1))
            answerable_logit = tf.cast(tf.squeeze(self.answerable_logit(features_vec), -1),
                                       tf.float32)
            impossible = tf.cast(features[self._key("is_impossible")], tf.float32)
            loss += self.answerable_weight * tf.nn.sigmoid_cross_entropy_with_logits(
                labels=impossible, logits=answerable_logit)
            out[self._key("answerable_logit")] = answerable_logit
        out.update({self._key("loss"): loss, self._key("start_logits"): start_logits,
                    self._key("end_logits"): end_logits})
        return _with_eid(out, features, self._key("eid"))

    def original_variables(self) -> dict:
        scope = f"task_specific/{self.task_name}"
        names = layers.dense_variables(self.start, f"{scope}/dense")
        if self.joint:
            names.update(layers.dense_variables(self.qa_hidden, f"{scope}/qa_hidden"))
        names.update(layers.dense_variables(self.end, f"{scope}/dense_1"))
        if self.answerable:
            if self.uses_start:
                names.update(layers.dense_variables(self.answerable_hidden, f"{scope}/dense_2"))
                names.update(layers.dense_variables(self.answerable_logit, f"{scope}/dense_3"))
            else:
                names.update(layers.dense_variables(self.answerable_logit, f"{scope}/dense_2"))
        return names
