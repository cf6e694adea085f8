"""The networks of one pre-training run; its recipe builds them (spec 2.7, 3.4)."""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

from electra_tf.config import PretrainingConfig
from electra_tf.networks.discriminator import Discriminator
from electra_tf.networks.electric import TwoTowerClozeGenerator
from electra_tf.networks.generator import Generator


@dataclasses.dataclass
class PretrainingModels:
    """The networks of a pre-training run; either may be absent.

    ``generator`` is None with a uniform generator; ``discriminator`` is None for
    the MLM-only objective (then ``generator`` is the full-size model under ``electra``).
    """

    generator: Optional[Union[Generator, TwoTowerClozeGenerator]]
    discriminator: Optional[Discriminator]

    @property
    def models(self) -> list:
        return [m for m in (self.generator, self.discriminator) if m is not None]

    def original_variables(self) -> dict:
        from electra_tf.checkpoints import original_variables
        return original_variables(*self.models)


def build_pretraining_models(config: PretrainingConfig) -> PretrainingModels:
    """Creates (and builds) the generator and discriminator that ``config`` asks for.

    Which networks exist and how they share weights is the run's recipe
    (``Recipe.build_networks`` in :mod:`electra_tf.pretraining.recipes`, spec 3.4).
    """
    from electra_tf.pretraining.recipes import Recipe
    return PretrainingModels(*Recipe.for_config(config).build_networks())
