"""A task family's settings: typed, read from the family's section of the run's
FinetuningConfig (``configs/finetuning.json``: ``"finetuning": {"qa": {...}}``, where every
default is) and given to each of its tasks once, when the task is built."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping, Type, TypeVar

from electra_tf.config import finetuning_family_defaults, typed_settings

S = TypeVar("S", bound="FamilySettings")


@dataclasses.dataclass(frozen=True)
class FamilySettings:
    """Base of each family's settings (``GlueSettings``, ``QASettings``,
    ``TaggingSettings``): its fields are the keys of the section ``SECTION``; no field has a
    default here (they are in ``configs/finetuning.json``)."""

    SECTION: ClassVar[str] = ""

    @classmethod
    def from_section(cls: Type[S], values: Mapping[str, Any]) -> S:
        """The settings of ``values`` (every field; each checked against its type)."""
        return typed_settings(cls, f"finetuning {cls.SECTION} setting", values)

    @classmethod
    def from_config(cls: Type[S], config) -> S:
        """The settings of a run: the section ``SECTION`` of ``config`` (a FinetuningConfig)."""
        return cls.from_section(getattr(config, cls.SECTION))

    @classmethod
    def defaults(cls: Type[S], **overrides) -> S:
        """The defaults of ``configs/finetuning.json``, ``overrides`` replacing some."""
        return cls.from_section({**finetuning_family_defaults(cls.SECTION), **overrides})

    def replace(self: S, **changes) -> S:
        """These settings with ``changes`` (checked as :meth:`from_section`)."""
        return self.from_section({**dataclasses.asdict(self), **changes})
