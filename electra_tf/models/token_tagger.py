"""Word tagging (chunking, NER, POS) on the hidden states of each word's first word-piece."""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.finetuning.heads import TaggingHead
from electra_tf.models.task import ElectraTask


class ElectraTokenTagger(ElectraTask):
    """Tagging fine-tuning's head: hidden state at each labeled position -> dense H->T.

    Args:
      backbone: an :class:`ElectraBackbone`.
      num_classes: T, the number of tags.
      task_name: the head's scope ``task_specific/<task_name>/`` (e.g. ``"chunk"`` to
        share checkpoints with ``run_finetuning.py``'s chunk task).
      preprocessor: an :class:`ElectraPreprocessor` (texts give every word-piece a
        position), or None.

    Call: features (``input_ids``, ``input_mask``, ``segment_ids`` int [B, L], optional
    ``labeled_positions`` int [B, N]: each word's first word-piece, as the tagging
    features' ``<task>_labeled_positions``; default every position, N = L) -> logits
    [B, N, T] float32. Labels (``y``): tag ids [B, N]; ``sample_weight`` [B, N]: 1 for the
    words that count (the features' ``<task>_labels_mask``), 0 for padding.
    """

    def __init__(self, backbone, num_classes: int, task_name: str = "tagger",
                 preprocessor=None, **kwargs):
        kwargs.setdefault("name", "electra_token_tagger")
        super().__init__(backbone, task_name, preprocessor, **kwargs)
        self.num_classes = int(num_classes)
        self.head = TaggingHead(task_name, self.num_classes)

    def call(self, features, training=False):
        encoded = self.backbone(features, training=training)
        every_position = tf.broadcast_to(
            tf.range(tf.shape(features["input_ids"])[1])[tf.newaxis],
            tf.shape(features["input_ids"]))
        positions = features.get("labeled_positions", features.get(
            f"{self.task_name}_labeled_positions", every_position))
        zeros = tf.zeros_like(positions)
        return self._run_head(encoded, features,
                              {"labeled_positions": positions, "labels": zeros,
                               "labels_mask": tf.cast(zeros, tf.float32)},
                              training)["logits"]

    def default_loss(self):
        """Cross-entropy summed over the weighted words and the batch (fine-tuning's)."""
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """As :meth:`ElectraTask.compile`; "auto" metrics: word ``accuracy`` weighted by
        ``sample_weight`` (padding words do not count)."""
        if isinstance(metrics, str) and metrics == "auto":
            metrics = None
            kwargs.setdefault("weighted_metrics",
                              [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        super().compile(optimizer, loss, metrics, **kwargs)
