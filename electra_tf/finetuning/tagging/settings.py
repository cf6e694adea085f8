"""The tagging family's settings: how ``conll:<name>`` tasks read their files."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from electra_tf.config import ConfigError
from electra_tf.finetuning.settings import FamilySettings
from electra_tf.finetuning.tagging.spans import SPAN_RULES


@dataclasses.dataclass(frozen=True)
class TaggingSettings(FamilySettings):
    """The ``tagging`` section of the fine-tuning config: the defaults of ``conll:<name>``
    tasks; a task name's own options (``conll:ner:column=3``) win. ``chunk`` reads
    CoNLL-2000 as the original does (last column, forced lower-casing, the original span
    rule, an unterminated last sentence dropped), whatever they say.

    Attributes:
      column: the tag column (-1 = last).
      lower_case: lower-case and strip accents of the words (False for cased vocabularies).
      span_rule: "typed" (IOB1, IOB2 and BIOES/BILOU alike) or "electra" (the original's).
      keep_last_unterminated: keep a last sentence with no blank line after it.
    """

    SECTION: ClassVar[str] = "tagging"

    column: int
    lower_case: bool
    span_rule: str
    keep_last_unterminated: bool

    def __post_init__(self):
        if self.span_rule not in SPAN_RULES:
            raise ConfigError(f"finetuning tagging setting span_rule must be one of "
                              f"{', '.join(SPAN_RULES)}, got {self.span_rule!r}")
