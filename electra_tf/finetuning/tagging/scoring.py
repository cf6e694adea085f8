"""The span F1 scorer of the tagging tasks (spec 6.6)."""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence

import numpy as np

from electra_tf.finetuning.tagging.spans import get_span_function
from electra_tf.finetuning.task import Scorer


class SpanF1Scorer(Scorer):
    """Span-level precision, recall and F1 (x100), as the original's entity-level scorer.

    Per sentence, the first n = round(sum(labels_mask)) gold and predicted tag ids (the
    words that fit) are turned into span sets with the task's rule; a predicted span counts
    only if (start, end, type) equals a gold span. Precision, recall and F1 are all 0 when
    nothing is correct.

    ``loss`` (when every batch carries ``<task>_loss``) is the summed per-example loss over
    the number of scored words; with ``double_count_loss`` (default, **[QUIRK]** of the
    original) each loss is added twice.

    Args:
      task_name: the prefix of the output keys.
      label_list: [T] tags by id.
      span_rule: ``"electra"`` or ``"typed"``.
      double_count_loss: reproduce the original's doubled loss.
    """

    def __init__(self, task_name: str, label_list: Sequence[str], span_rule: str = "electra",
                 double_count_loss: bool = True):
        self.task_name = task_name
        self.label_list = list(label_list)
        self._spans = get_span_function(span_rule)
        self.double_count_loss = double_count_loss
        self.n_correct = 0
        self.n_predicted = 0
        self.n_gold = 0
        self.n_words = 0
        self.n_sentences = 0
        self._total_loss = 0.0
        self._loss_batches = 0
        self._batches = 0

    def _key(self, name: str) -> str:
        return f"{self.task_name}_{name}"

    def _tags(self, ids: np.ndarray) -> List[str]:
        try:
            return [self.label_list[int(i)] for i in ids]
        except IndexError:
            raise ValueError(f"{self.task_name} scorer: tag id out of range [0, "
                             f"{len(self.label_list)}) in {ids.tolist()}") from None

    def add_sentence(self, gold: Sequence[str], predicted: Sequence[str]) -> None:
        """Scores one sentence given as tag strings [n]."""
        gold_spans = set(self._spans(gold))
        pred_spans = set(self._spans(predicted))
        self.n_correct += len(gold_spans & pred_spans)
        self.n_gold += len(gold_spans)
        self.n_predicted += len(pred_spans)
        self.n_sentences += 1

    def update(self, outputs: Mapping[str, np.ndarray]) -> None:
        """Adds a batch: ``<task>_predictions`` [B, L] int, ``<task>_labels`` [B, L],
        ``<task>_labels_mask`` [B, L] and optionally ``<task>_loss`` [B]."""
        keys = [self._key(k) for k in ("predictions", "labels", "labels_mask")]
        missing = [k for k in keys if k not in outputs]
        if missing:
            raise KeyError(f"{self.task_name} scorer: outputs lack {missing}; "
                           f"got {sorted(outputs)}")
        preds, labels, mask = (np.asarray(outputs[k]) for k in keys)
        if preds.ndim != 2 or preds.shape != labels.shape or mask.shape != labels.shape:
            raise ValueError(f"{self.task_name} scorer: expected predictions, labels and "
                             f"labels_mask of one shape [B, L], got {preds.shape}, "
                             f"{labels.shape}, {mask.shape}")
        for row_pred, row_gold, row_mask in zip(preds, labels, mask):
            n = round(float(np.sum(row_mask)))
            self.add_sentence(self._tags(row_gold[:n]), self._tags(row_pred[:n]))
            self.n_words += n
        self._batches += 1
        if self._key("loss") in outputs:
            losses = np.asarray(outputs[self._key("loss")], dtype=np.float64).reshape(-1)
            if losses.shape[0] != preds.shape[0]:
                raise ValueError(f"{self.task_name} scorer: {losses.shape[0]} losses for "
                                 f"{preds.shape[0]} sentences")
            self._total_loss += (2.0 if self.double_count_loss else 1.0) * float(losses.sum())
            self._loss_batches += 1

    def get_results(self) -> Dict[str, float]:
        """``precision``, ``recall``, ``f1`` (x100) and, with losses, ``loss``."""
        if self.n_correct == 0:
            p = r = f1 = 0.0
        else:
            p = 100.0 * self.n_correct / self.n_predicted
            r = 100.0 * self.n_correct / self.n_gold
            f1 = 2.0 * p * r / (p + r)
        results = {"precision": p, "recall": r, "f1": f1}
        if self._batches and self._loss_batches == self._batches:
            results["loss"] = self._total_loss / max(1, self.n_words)
        return results
