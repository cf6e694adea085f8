"""Sentence and sentence-pair classification (and regression) on the [CLS] vector."""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.finetuning.heads import ClassificationHead, RegressionHead
from electra_tf.models.task import ElectraTask


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraClassifier(ElectraTask):
    """GLUE fine-tuning's head: [CLS] vector -> dropout 0.1 -> dense.

    Args:
      backbone: an :class:`ElectraBackbone`.
      num_classes: C (classification).
      regression: one real output and a squared-error loss instead (GLUE's STS), with
        ``num_classes`` 1.
      task_name: the head's scope ``task_specific/<task_name>/``: the GLUE task name
        (e.g. ``"sst"``) reads or writes ``run_finetuning.py``'s checkpoints of that task.
      preprocessor: an :class:`ElectraPreprocessor` for text inputs, or None.

    Call: features (``input_ids``, ``input_mask``, ``segment_ids`` int [B, L]) -> logits
    [B, C] float32, or predictions [B, 1] (regression), whatever the dtype policy. Labels
    (``y``): class ids [B] (a list, array or tensor; targets [B] or [B, 1] for regression).
    """

    def __init__(self, backbone, num_classes: int = 2, regression: bool = False,
                 task_name: str = "classifier", preprocessor=None, **kwargs):
        kwargs.setdefault("name", "electra_classifier")
        super().__init__(backbone, task_name, preprocessor, **kwargs)
        if regression and num_classes not in (1, None):
            raise ValueError(f"a regression ElectraClassifier has one output: num_classes "
                             f"must be 1, got {num_classes}")
        if not regression and (num_classes is None or num_classes < 2):
            raise ValueError(f"ElectraClassifier needs num_classes >= 2, got {num_classes} "
                             "(pass regression=True for one real output)")
        self.regression = regression
        self.num_classes = 1 if regression else int(num_classes)
        self.head = (RegressionHead(task_name) if regression
                     else ClassificationHead(task_name, self.num_classes))

    def _task_config(self) -> dict:
        return {**super()._task_config(), "num_classes": self.num_classes,
                "regression": self.regression}

    def call(self, features, training=False):
        encoded = self.backbone(features, training=training)
        batch = tf.shape(features["input_ids"])[:1]
        if self.regression:
            # [B, 1], as Keras' regression losses expect (they average the last axis).
            return self._run_head(encoded, features, {"targets": tf.zeros(batch)},
                                  training)["predictions"][:, tf.newaxis]
        return self._run_head(encoded, features, {"label_ids": tf.zeros(batch, tf.int32)},
                              training)["logits"]

    def default_loss(self):
        if self.regression:
            return keras.losses.MeanSquaredError(reduction="sum")
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")

    def default_metrics(self) -> list:
        """Per-example means: ``accuracy`` and ``cross_entropy`` (fine-tuning's dev
        ``accuracy`` / 100 and ``loss``), or ``mse`` (regression)."""
        if self.regression:
            return [keras.metrics.MeanSquaredError(name="mse")]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseCategoricalCrossentropy(name="cross_entropy",
                                                            from_logits=True)]
