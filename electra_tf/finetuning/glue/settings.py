"""The GLUE family's settings."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from electra_tf.finetuning.settings import FamilySettings


@dataclasses.dataclass(frozen=True)
class GlueSettings(FamilySettings):
    """The ``glue`` section of the fine-tuning config (spec 1.6).

    Attributes:
      double_unordered: for the training split of MRPC and STS only, append a copy of every
        example with the two texts swapped (spec 6.4).
    """

    SECTION: ClassVar[str] = "glue"

    double_unordered: bool
