"""The fine-tuning config fields the QA tasks read."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional


@dataclasses.dataclass
class QAConfig:
    """The fine-tuning config fields the QA tasks read (spec 1.6 defaults).

    ``results_dir``: where the scorer writes ``<task>_preds.json``, ``<task>_null_odds.json``
    (SQuAD 2.0) and ``<task>_eval.json``; the original uses
    ``<pretrained dir>/results/<tasks>_qa``. None: nothing is written.
    """

    max_query_length: int = 64
    doc_stride: int = 128
    n_best_size: int = 20
    max_answer_length: int = 30
    answerable_classifier: bool = True
    joint_prediction: bool = True
    beam_size: int = 20
    qa_na_threshold: float = -2.75
    do_lower_case: bool = True
    results_dir: Optional[str] = None

    @classmethod
    def from_config(cls, config: Any, **overrides) -> "QAConfig":
        """Takes every field of this class that ``config`` (any object) has as an attribute."""
        values = {}
        for field in dataclasses.fields(cls):
            if hasattr(config, field.name):
                values[field.name] = getattr(config, field.name)
        values.update(overrides)
        return cls(**values)
