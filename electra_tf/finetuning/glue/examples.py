"""The GLUE example and split kinds, shared by the TSV reading (``tasks.py``) and the
tensorflow-datasets reader (``tfds.py``)."""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

from electra_tf.finetuning.task import Example


@dataclasses.dataclass
class GlueExample(Example):
    """One GLUE example.

    Attributes:
      text_a: the first (or only) text.
      text_b: the second text, or None for single-sentence tasks.
      label: a label string from the task's ``label_list`` (classification) or the raw
        score as a float (regression, un-normalised, 0..5 for STS); a dummy for test splits.
    """

    text_a: str = ""
    text_b: Optional[str] = None
    label: Union[str, float, None] = None


def is_test_split(split: str) -> bool:
    """Test-like splits carry dummy labels (the original's ``"test" in split or
    "diagnostic" in split``)."""
    return "test" in split or "diagnostic" in split
