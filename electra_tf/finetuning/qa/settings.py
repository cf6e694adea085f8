"""The QA family's settings."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from electra_tf.finetuning.settings import FamilySettings


@dataclasses.dataclass(frozen=True)
class QASettings(FamilySettings):
    """The ``qa`` section of the fine-tuning config (spec 1.6, 6.5).

    Attributes:
      max_query_length: question wordpieces kept.
      doc_stride: how far a document window advances (at most its length).
      n_best_size: n-best list size (and the top-k of each end without joint prediction).
      max_answer_length: longest answer, in wordpieces.
      answerable_classifier: the head's "is impossible" classifier (SQuAD 2.0 null odds).
      answerable_uses_start_logits: that classifier also reads the start-probability-
        weighted sum of the hidden states.
      answerable_weight: the weight of its loss.
      joint_prediction: the end conditioned on the start (XLNet-style beam).
      beam_size: top-k starts and top-k ends per start in joint prediction.
      qa_na_threshold: null odds above it mean "no answer".
    """

    SECTION: ClassVar[str] = "qa"

    max_query_length: int
    doc_stride: int
    n_best_size: int
    max_answer_length: int
    answerable_classifier: bool
    answerable_uses_start_logits: bool
    answerable_weight: float
    joint_prediction: bool
    beam_size: int
    qa_na_threshold: float
