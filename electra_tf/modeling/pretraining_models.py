"""Builds the networks of one pre-training run with the right weight sharing (spec 2.7, 3.4)."""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

from electra_tf.config import PretrainingConfig
from electra_tf.modeling.discriminator import Discriminator
from electra_tf.modeling.electric import TwoTowerClozeGenerator
from electra_tf.modeling.generator import Generator


@dataclasses.dataclass
class PretrainingModels:
    """The networks of a pre-training run; either may be absent.

    ``generator`` is None with ``uniform_generator``; ``discriminator`` is None for
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

    Order of the original (spec 3.4): a uniform generator has no weights; the
    default ELECTRA path uses a small generator that shares the discriminator's
    embedding block unless ``untied_generator_embeddings`` (Electric's two-tower
    cloze generator with ``two_tower_generator``); the MLM-only
    objective trains one full-size MLM network under ``electra``;
    ``untied_generator=False`` reuses the discriminator's encoder for the
    generator (the original's intent; its graph code fails there, spec 3.4).
    """
    disc_config = config.discriminator_config()
    rtd = config.electra_objective or config.electric_objective
    if not rtd:  # MLM-only: the full-size model is what gets fine-tuned (spec 3.11)
        generator = Generator(disc_config, scope="electra")
        generator.build()
        return PretrainingModels(generator=generator, discriminator=None)
    discriminator = Discriminator(disc_config)
    discriminator.build()
    if config.uniform_generator:
        return PretrainingModels(generator=None, discriminator=discriminator)
    shared = None if config.untied_generator_embeddings else discriminator.encoder.embeddings
    if not config.untied_generator:
        generator = Generator(disc_config, encoder=discriminator.encoder)
    elif config.two_tower_generator:
        generator = TwoTowerClozeGenerator(config.generator_config(), embeddings=shared)
    else:
        generator = Generator(config.generator_config(), embeddings=shared)
    generator.build()
    return PretrainingModels(generator=generator, discriminator=discriminator)
