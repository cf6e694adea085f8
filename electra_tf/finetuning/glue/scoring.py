"""The scorers of the GLUE tasks (spec 6.4): accuracy or MCC for classification, Pearson,
Spearman and MSE for regression, each with the mean per-example loss."""

from __future__ import annotations

from typing import Dict, List, Mapping, Tuple

import numpy as np

from electra_tf.finetuning.glue import metrics
from electra_tf.finetuning.task import Scorer


class SentenceLevelScorer(Scorer):
    """Collects per-example predictions, labels (or targets) and losses of one task.

    Args:
      task_name: the prefix of the output keys.
      label_key: ``"label_ids"`` (classification) or ``"targets"`` (regression).
    """

    def __init__(self, task_name: str, label_key: str):
        self.task_name = task_name
        self._pred_key = f"{task_name}_predictions"
        self._label_key = f"{task_name}_{label_key}"
        self._loss_key = f"{task_name}_loss"
        self._eid_key = f"{task_name}_eid"
        self._preds: List[np.ndarray] = []
        self._labels: List[np.ndarray] = []
        self._losses: List[np.ndarray] = []
        self._eids: List[np.ndarray] = []
        self._count = 0

    def update(self, outputs: Mapping[str, np.ndarray]) -> None:
        """Adds a batch: ``<task>_predictions`` [B], ``<task>_label_ids``/``_targets`` [B],
        optional ``<task>_loss`` [B] and ``<task>_eid`` [B]."""
        missing = [k for k in (self._pred_key, self._label_key) if k not in outputs]
        if missing:
            raise KeyError(f"{self.task_name} scorer: outputs lack {missing}; "
                           f"got {sorted(outputs)}")
        preds = np.asarray(outputs[self._pred_key]).reshape(-1)
        labels = np.asarray(outputs[self._label_key]).reshape(-1)
        n = preds.shape[0]
        if labels.shape[0] != n:
            raise ValueError(f"{self.task_name} scorer: {n} predictions but "
                             f"{labels.shape[0]} labels")
        self._preds.append(preds)
        self._labels.append(labels)
        for key, store in ((self._loss_key, self._losses), (self._eid_key, self._eids)):
            if key in outputs:
                values = np.asarray(outputs[key]).reshape(-1)
                if values.shape[0] != n:
                    raise ValueError(f"{self.task_name} scorer: {key} has "
                                     f"{values.shape[0]} values for {n} predictions")
                store.append(values)
        self._count += n

    def _arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        if self._count == 0:
            raise ValueError(f"{self.task_name} scorer: no predictions were given")
        return np.concatenate(self._labels), np.concatenate(self._preds)

    def _with_loss(self, results: Dict[str, float]) -> Dict[str, float]:
        losses = np.concatenate(self._losses) if self._losses else np.zeros((0,))
        if losses.shape[0] == self._count:  # every batch carried a loss
            results["loss"] = float(np.mean(losses.astype(np.float64)))
        return results

    @property
    def eids(self) -> np.ndarray:
        """[N] example ids seen so far (when the outputs carried ``<task>_eid``)."""
        return np.concatenate(self._eids) if self._eids else np.zeros((0,), np.int64)


# Metric name (``ClassificationTask.METRIC``) -> metric function of (labels, predictions).
CLASSIFICATION_METRICS = {"accuracy": metrics.accuracy, "mcc": metrics.matthews_corrcoef}


class ClassificationScorer(SentenceLevelScorer):
    """``metric`` (``accuracy`` or ``mcc``, x100) and ``loss`` (MRPC and QQP report accuracy
    only: the original reports no F1)."""

    def __init__(self, task_name: str, metric: str = "accuracy"):
        super().__init__(task_name, "label_ids")
        self.metric = metric
        self._metric_fn = CLASSIFICATION_METRICS[metric]

    def get_results(self) -> Dict[str, float]:
        labels, preds = self._arrays()
        return self._with_loss({self.metric: 100.0 * self._metric_fn(labels, preds)})


class RegressionScorer(SentenceLevelScorer):
    """``pearson``, ``spearman`` (x100), ``mse`` (unscaled, 0..1 target scale) and ``loss``."""

    def __init__(self, task_name: str):
        super().__init__(task_name, "targets")

    def get_results(self) -> Dict[str, float]:
        targets, preds = self._arrays()
        return self._with_loss({
            "pearson": 100.0 * metrics.pearson(preds, targets),
            "spearman": 100.0 * metrics.spearman(preds, targets),
            "mse": metrics.mse(targets, preds)})
