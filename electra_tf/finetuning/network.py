"""The fine-tuning model: one ``electra`` encoder and a head per task (spec 6.3)."""

from __future__ import annotations

from typing import Mapping, Sequence

import keras
import tensorflow as tf

from electra_tf.config import TransformerConfig
from electra_tf.networks import ElectraEncoder


class FinetuningNetwork(keras.Model):
    """Encoder (original scope ``electra``) shared by the heads of several tasks.

    Args:
      config: the discriminator's transformer config.
      tasks: the tasks of the run, in ``task_id`` order.

    Each task builds its own head (``task.build_head``, with the settings it was built with).
    """

    def __init__(self, config: TransformerConfig, tasks: Sequence, **kwargs):
        kwargs.setdefault("name", "finetuning_model")
        kwargs.setdefault("autocast", False)  # float targets in the features stay float32
        super().__init__(**kwargs)
        self.config = config
        self.task_names = [t.name for t in tasks]
        self.encoder = ElectraEncoder(config, scope="electra")
        self.heads = [t.build_head() for t in tasks]

    def build(self, input_shape=None):
        self.encoder.build()
        for head in self.heads:
            head.build((None, None, self.config.hidden_size))
        super().build(input_shape)

    def call(self, features: Mapping[str, tf.Tensor], training=False):
        """Runs every head on the batch; each example's loss counts for its own task only.

        Args:
          features: ``input_ids``, ``input_mask``, ``segment_ids`` int [B, L], ``task_id``
            int [B] (``len(tasks)`` marks padding features) and each task's features.
        Returns:
          dict with ``loss`` (scalar: the SUM over the batch, as the original), every
          head's ``<task>_<output>`` and ``task_id``.
        """
        encoded = self.encoder(features["input_ids"], features["input_mask"],
                               features["segment_ids"], training=training)
        task_id = tf.cast(features["task_id"], tf.int32)
        outputs, total = {"task_id": task_id}, tf.constant(0.0, tf.float32)
        for index, head in enumerate(self.heads):
            out = head(encoded[head.encoder_output], features, training=training)
            in_task = tf.cast(tf.equal(task_id, index), tf.float32)
            total += tf.reduce_sum(tf.cast(out[f"{head.task_name}_loss"], tf.float32) * in_task)
            outputs.update(out)
        outputs["loss"] = total
        return outputs

    def original_variables(self) -> dict:
        names = dict(self.encoder.original_variables())
        for head in self.heads:
            names.update(head.original_variables())
        return names
