"""Streaming evaluation metrics of pre-training (spec 3.12)."""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.pretraining.losses import softmax_loss


class PretrainingMetrics:
    """The original's eval metrics, accumulated over batches.

    ``masked_lm_accuracy``/``masked_lm_loss`` weighted by ``masked_lm_weights``;
    with an RTD/Electric objective also ``sampled_masked_lm_accuracy`` and, if
    ``disc_weight > 0``, ``disc_loss`` (mean of per-example losses), ``disc_auc``
    (ROC, 200 thresholds, over all positions with padding as score-0 negatives,
    the original's [QUIRK]), ``disc_accuracy``, ``disc_precision``, ``disc_recall``;
    and ``loss`` (the total loss).
    """

    def __init__(self, rtd: bool, disc_weight: float):
        names = ["masked_lm_accuracy", "masked_lm_loss"]
        if rtd:
            names.append("sampled_masked_lm_accuracy")
            if disc_weight > 0:
                names += ["disc_loss", "disc_accuracy", "disc_precision", "disc_recall"]
        names.append("loss")
        self.means = {n: keras.metrics.Mean(name=n) for n in names}
        self.auc = (keras.metrics.AUC(num_thresholds=200, curve="ROC", name="disc_auc")
                    if "disc_loss" in names else None)

    def update(self, out: dict, input_mask) -> None:
        """Adds one batch of ``PretrainingObjective`` outputs (eager or in a tf.function)."""
        m = self.means
        weights = out["masked_lm_weights"]
        ids = out["masked_lm_ids"]
        preds = tf.argmax(out["mlm_logits"], axis=-1, output_type=tf.int32)
        m["masked_lm_accuracy"].update_state(tf.cast(tf.equal(preds, ids), tf.float32), weights)
        _, nll = softmax_loss(out["mlm_logits"], ids, weights)
        m["masked_lm_loss"].update_state(nll, weights)
        if "sampled_masked_lm_accuracy" in m:
            m["sampled_masked_lm_accuracy"].update_state(
                tf.cast(tf.equal(out["sampled_ids"], ids), tf.float32), weights)
        if self.auc is not None:
            mask = tf.cast(input_mask, tf.float32)
            labels = tf.cast(out["disc_labels"], tf.float32)
            disc_preds = tf.cast(out["disc_logits"] > 0, tf.float32)
            correct = tf.cast(tf.equal(disc_preds, labels), tf.float32)
            m["disc_loss"].update_state(out["disc_per_example_loss"])
            self.auc.update_state(labels * mask, tf.sigmoid(out["disc_logits"]) * mask)
            m["disc_accuracy"].update_state(correct, mask)
            m["disc_precision"].update_state(correct, disc_preds * mask)
            m["disc_recall"].update_state(correct, labels * mask)
        m["loss"].update_state(out["total_loss"])

    def result(self) -> dict:
        results = {n: float(metric.result()) for n, metric in self.means.items()}
        if self.auc is not None:
            results["disc_auc"] = float(self.auc.result())
        return results

    def reset(self) -> None:
        for metric in list(self.means.values()) + ([self.auc] if self.auc else []):
            metric.reset_state()
