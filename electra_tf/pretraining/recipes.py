"""What a pre-training run is made of: one recipe per kind of run (spec 3.4, 3.10, 3.11).

The original chooses its networks and losses from six booleans of the hparams
(:data:`OBJECTIVE_HPARAMS`). They stay in ``configs/*.json`` and in
:class:`~electra_tf.config.PretrainingConfig`, and this module alone reads them:
:meth:`Recipe.for_config` resolves them once into a recipe, which then owns

* which networks exist and how they share weights (:meth:`Recipe.build_networks`),
* their original scopes, and recognising a kind back from a checkpoint's variable names
  (:meth:`Recipe.from_checkpoint_names`, :meth:`Recipe.checkpoint_hparams`),
* the generator's logits and loss, Electric's discriminator logits
  (:meth:`Recipe.generator_logits`, :meth:`Recipe.discriminator_logits`),
* the training statistics (:meth:`Recipe.train_statistics`),
* the run's identity in ``run_record.json`` (:meth:`Recipe.identity`,
  :meth:`Recipe.network_shapes`),
* the networks whose FLOPs a run costs (:meth:`Recipe.flops_networks`),
* a one-line description (:meth:`Recipe.describe`).

A new kind of run is a subclass given to :meth:`Recipe.register`: it claims the configs it
is made from and recognises the names its networks write.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple, Optional, Sequence

from electra_tf.config import ConfigError, PretrainingConfig, TransformerConfig

# What a run is (its kind, networks, names, FLOPs, description) is read without TensorFlow
# (``python -m electra_tf.flops`` answers at once): the methods that build networks or run
# a step import TensorFlow and the networks themselves.

# The original's hparams that choose the recipe (spec 1.1, 3.4); nothing else reads them.
OBJECTIVE_HPARAMS = ("electra_objective", "electric_objective", "two_tower_generator",
                     "uniform_generator", "untied_generator", "untied_generator_embeddings")


class FlopsNetwork(NamedTuple):
    """One network a run trains, as the FLOPs counter (``flops.py``) needs it."""

    name: str
    transformer: TransformerConfig
    head: str                      # "binary" (replaced-token detection) or "mlm"
    towers: int = 1
    every_position: bool = False   # the head scores every position, not the masked slots


def _has(names: Sequence[str], prefix: str) -> bool:
    return any(n.startswith(prefix) for n in names)


def _replaced_token_detection(config: PretrainingConfig) -> bool:
    return config.electra_objective or config.electric_objective


class Recipe:
    """One kind of pre-training run, resolved from a config (:meth:`for_config`).

    Subclasses set the class attributes and the methods that differ; the defaults are
    those of a masked-LM generator read at the masked slots, and a discriminator.
    """

    kind: ClassVar[str] = ""
    # A discriminator learns replaced-token detection (ELECTRA, Electric); else MLM only.
    has_discriminator: ClassVar[bool] = True
    # The generator is Electric's two-tower cloze model (spec 3.10).
    cloze_generator: ClassVar[bool] = False
    # The encoder scope whose sizes are the generator's (generator_hidden_size, _layers).
    generator_scope: ClassVar[Optional[str]] = None
    # The encoder scope under the masked-LM head (generator_predictions/): the network
    # that stands alone as a masked LM (a transformers ElectraForMaskedLM), if any.
    masked_lm_scope: ClassVar[Optional[str]] = None
    # Every replaced position is labelled fake, also a correct sample (Electric, spec 3.7).
    label_every_replacement: ClassVar[bool] = False
    # What run_record.json records the shapes of.
    recorded_networks: ClassVar[tuple] = ("discriminator", "generator")
    # What the networks are called in one-line descriptions (convert's report).
    described_networks: ClassVar[tuple] = ("discriminator", "generator")

    # Tried in this order, the latest registered first (see register).
    _registry: ClassVar[list] = []

    def __init__(self, config: PretrainingConfig):
        self.config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    # -- resolving ----------------------------------------------------------

    @classmethod
    def register(cls, recipe: type) -> type:
        """Adds a kind of run (usable as a class decorator). The latest registered is tried
        first, both for configs and for checkpoint names."""
        cls._registry.insert(0, recipe)
        return recipe

    @classmethod
    def claims(cls, config: PretrainingConfig) -> bool:
        """Whether ``config`` asks for this kind of run."""
        raise NotImplementedError

    @classmethod
    def for_config(cls, config: PretrainingConfig) -> "Recipe":
        """The recipe of the run ``config`` describes (spec 3.4's order)."""
        for recipe in cls._registry:
            if recipe.claims(config):
                return recipe(config)
        raise ConfigError("no pre-training recipe claims this config's objective hparams ("
                          + ", ".join(f"{n}={getattr(config, n, None)}"
                                      for n in OBJECTIVE_HPARAMS) + ")")

    @classmethod
    def recognises(cls, names: Sequence[str]) -> bool:
        """Whether weights by these original names were made by this kind of run."""
        raise NotImplementedError

    @classmethod
    def from_checkpoint_names(cls, names) -> type:
        """The kind of run (a recipe class) that weights by these original names come from."""
        names = list(names)
        return next(recipe for recipe in cls._registry if recipe.recognises(names))

    @classmethod
    def checkpoint_hparams(cls, names) -> dict:
        """The objective hparams that weights by these names were trained with."""
        raise NotImplementedError

    @classmethod
    def generator_scopes(cls) -> tuple:
        """The generator encoder scopes of every registered kind."""
        return tuple(dict.fromkeys(r.generator_scope for r in cls._registry
                                   if r.generator_scope))

    # -- the networks ---------------------------------------------------------

    def build_networks(self) -> tuple:
        """Creates and builds ``(generator, discriminator)``; either may be None."""
        raise NotImplementedError

    def _discriminator(self):
        from electra_tf.networks.discriminator import Discriminator
        discriminator = Discriminator(self.config.discriminator_config())
        discriminator.build()
        return discriminator

    # -- one forward pass (PretrainingObjective) -------------------------------

    def generator_denominator(self, candidates, slots):
        """The token count that normalises the generator loss: the masked slots."""
        return slots

    def generator_logits(self, generator, features, masked, special_ids, training,
                         denominator=None):
        """(MLM logits at the masked slots [B, N, V], generator loss, cloze logits or None).

        The default: a masked LM reads the masked input (spec 3.5, 3.6).
        """
        import tensorflow as tf

        from electra_tf.pretraining import losses
        gen_inputs = {**features, "input_ids": masked["input_ids"],
                      "masked_lm_positions": masked["masked_lm_positions"]}
        logits = generator(gen_inputs, training=training)["logits"]
        with tf.name_scope("generator_loss"):
            loss, _ = losses.softmax_loss(logits, masked["masked_lm_ids"],
                                          masked["masked_lm_weights"], denominator)
        return logits, loss, None

    def discriminator_logits(self, logits, cloze, fake_ids):
        """The discriminator's logits as its loss reads them (spec 3.8)."""
        return logits

    def train_statistics(self, out: dict, input_mask, totals: dict) -> dict:
        """This shard's share of the update batch's statistics (they sum over shards).

        ``totals``: ``PretrainingObjective.loss_denominators`` of the whole update batch.
        """
        import tensorflow as tf
        weights = out["masked_lm_weights"]
        preds = tf.argmax(out["mlm_logits"], -1, output_type=tf.int32)
        slots = totals["masked_slots"] + 1e-6
        stats = {"total_loss": out["total_loss"], "mlm_loss": out["mlm_loss"],
                 "masked_lm_accuracy": tf.reduce_sum(
                     weights * tf.cast(tf.equal(preds, out["masked_lm_ids"]), tf.float32)) / slots}
        if self.has_discriminator:
            stats["disc_loss"] = out["disc_loss"]
            stats["sampled_masked_lm_accuracy"] = tf.reduce_sum(weights * tf.cast(
                tf.equal(out["sampled_ids"], out["masked_lm_ids"]), tf.float32)) / slots
            real = tf.cast(input_mask, tf.float32)
            correct = tf.cast(tf.equal(tf.cast(out["disc_logits"] > 0, tf.int32),
                                       out["disc_labels"]), tf.float32)
            stats["disc_accuracy"] = tf.reduce_sum(correct * real) / (totals["disc"] + 1e-6)
        return {k: tf.cast(v, tf.float32) for k, v in stats.items()}

    # -- what the run is --------------------------------------------------------

    def identity(self) -> dict:
        """The run record's ``objective``: the hparams that chose this recipe, as given."""
        return {name: getattr(self.config, name) for name in OBJECTIVE_HPARAMS}

    def network_shapes(self) -> dict:
        """``{network: TransformerConfig}`` that the run record holds."""
        derive = {"discriminator": self.config.discriminator_config,
                  "generator": self.config.generator_config}
        return {name: derive[name]() for name in self.recorded_networks}

    def flops_networks(self) -> tuple:
        """The networks a training step runs (spec 8), as :class:`FlopsNetwork`."""
        raise NotImplementedError

    def describe(self, discriminator_head: bool = True) -> str:
        """One line: the networks, e.g. ``discriminator + two-tower generator``."""
        return " + ".join(
            name + ("" if discriminator_head or name != "discriminator" else " (no head)")
            for name in self.described_networks)

    def _flops_discriminator(self) -> FlopsNetwork:
        return FlopsNetwork("discriminator", self.config.discriminator_config(), "binary")


class MaskedLM(Recipe):
    """Both objectives false: one full-size masked LM under ``electra`` (spec 3.11)."""

    kind = "mlm"
    has_discriminator = False
    described_networks = ("MLM network",)
    masked_lm_scope = "electra"

    @classmethod
    def claims(cls, config):
        return not _replaced_token_detection(config)

    @classmethod
    def recognises(cls, names):
        return (_has(names, "electra/encoder/") and not _has(names, "discriminator_predictions/")
                and _has(names, "generator_predictions/") and not _has(names, "generator/"))

    @classmethod
    def checkpoint_hparams(cls, names):
        return {"electra_objective": False, "electric_objective": False}

    def build_networks(self):
        from electra_tf.networks.generator import Generator
        # The full-size model is what gets fine-tuned (spec 3.11).
        generator = Generator(self.config.discriminator_config(), scope="electra")
        generator.build()
        return generator, None

    def flops_networks(self):
        if self.config.uniform_generator:
            return ()  # the original takes the uniform generator first (spec 3.4): nothing trains
        return (FlopsNetwork("masked LM", self.config.discriminator_config(), "mlm"),)


class UniformElectra(Recipe):
    """ELECTRA whose fakes are drawn uniformly: all-zero logits, no generator weights."""

    kind = "uniform"
    recorded_networks = ("discriminator",)
    described_networks = ("discriminator",)

    @classmethod
    def claims(cls, config):
        return _replaced_token_detection(config) and config.uniform_generator

    @classmethod
    def recognises(cls, names):
        return True  # a discriminator alone: tried last, after every other kind

    @classmethod
    def checkpoint_hparams(cls, names):
        return {"electra_objective": True, "electric_objective": False,
                "uniform_generator": True, "two_tower_generator": False}

    def build_networks(self):
        return None, self._discriminator()

    def generator_logits(self, generator, features, masked, special_ids, training,
                         denominator=None):
        import tensorflow as tf

        from electra_tf.pretraining import losses
        shape = tf.concat([tf.shape(masked["masked_lm_ids"]), [self.config.vocab_size]], 0)
        logits = tf.zeros(shape, tf.float32)
        loss, _ = losses.softmax_loss(logits, masked["masked_lm_ids"],
                                      masked["masked_lm_weights"], denominator)
        return logits, loss, None

    def flops_networks(self):
        return (self._flops_discriminator(),)


class SharedElectra(Recipe):
    """ELECTRA with ``untied_generator=False``: the generator is the discriminator's encoder
    with a masked-LM head (the original's intent; its graph code fails there, spec 3.4)."""

    kind = "shared"
    masked_lm_scope = "electra"  # the discriminator's encoder, under the MLM head

    @classmethod
    def claims(cls, config):
        return (_replaced_token_detection(config) and not config.uniform_generator
                and not config.untied_generator)

    @classmethod
    def recognises(cls, names):
        return (_has(names, "electra/encoder/") and _has(names, "discriminator_predictions/")
                and _has(names, "generator_predictions/")
                and not _has(names, "generator/") and not _has(names, "generator_ltr/"))

    @classmethod
    def checkpoint_hparams(cls, names):
        return {"electra_objective": True, "electric_objective": False,
                "uniform_generator": False, "untied_generator": False}

    def build_networks(self):
        from electra_tf.networks.generator import Generator
        discriminator = self._discriminator()
        generator = Generator(self.config.discriminator_config(), encoder=discriminator.encoder)
        generator.build()
        return generator, discriminator

    def flops_networks(self):
        return (self._flops_discriminator(),
                FlopsNetwork("generator (full size)", self.config.discriminator_config(), "mlm"))


class Electra(Recipe):
    """ELECTRA: a small masked-LM generator under ``generator`` that shares the
    discriminator's embedding block unless ``untied_generator_embeddings`` (spec 2.7, 3.4)."""

    kind = "electra"
    generator_scope = "generator"
    masked_lm_scope = "generator"

    def __init__(self, config):
        super().__init__(config)
        self.tied_embeddings = not config.untied_generator_embeddings

    @classmethod
    def claims(cls, config):
        return (config.electra_objective and not config.electric_objective
                and not config.uniform_generator and config.untied_generator
                and not config.two_tower_generator)

    @classmethod
    def recognises(cls, names):
        return _has(names, "generator/")

    @classmethod
    def checkpoint_hparams(cls, names):
        return {"electra_objective": True, "electric_objective": False,
                "uniform_generator": False,
                "untied_generator_embeddings": _has(names, "generator/embeddings/")}

    def build_networks(self):
        from electra_tf.networks.generator import Generator
        discriminator = self._discriminator()
        shared = discriminator.encoder.embeddings if self.tied_embeddings else None
        generator = Generator(self.config.generator_config(), embeddings=shared)
        generator.build()
        return generator, discriminator

    def flops_networks(self):
        return (self._flops_discriminator(),
                FlopsNetwork("generator", self.config.generator_config(), "mlm"))


class Electric(Recipe):
    """Electric's two-tower cloze generator (spec 3.10): with ``electric_objective`` its
    energy-based discriminator and labels; without, ELECTRA's labels and no log q term."""

    kind = "electric"
    cloze_generator = True
    generator_scope = "generator_ltr"
    recorded_networks = ("discriminator",)
    described_networks = ("discriminator", "two-tower generator")

    def __init__(self, config):
        super().__init__(config)
        self.energy = config.electric_objective
        self.tied_embeddings = not config.untied_generator_embeddings

    @property
    def label_every_replacement(self) -> bool:
        return self.energy

    @classmethod
    def claims(cls, config):
        return (_replaced_token_detection(config) and not config.uniform_generator
                and config.untied_generator and config.two_tower_generator)

    @classmethod
    def recognises(cls, names):
        return _has(names, "generator_ltr/")

    @classmethod
    def checkpoint_hparams(cls, names):
        return {"electra_objective": False, "electric_objective": True,
                "untied_generator_embeddings": _has(names, "generator_ltr/embeddings/")}

    def build_networks(self):
        from electra_tf.networks.electric import TwoTowerClozeGenerator
        discriminator = self._discriminator()
        shared = discriminator.encoder.embeddings if self.tied_embeddings else None
        generator = TwoTowerClozeGenerator(self.config.generator_config(), embeddings=shared)
        generator.build()
        return generator, discriminator

    def generator_denominator(self, candidates, slots):
        import tensorflow as tf
        return tf.reduce_sum(tf.cast(candidates, tf.float32))  # the cloze candidates

    def generator_logits(self, generator, features, masked, special_ids, training,
                         denominator=None):
        from electra_tf.networks.layers import gather_positions
        from electra_tf.pretraining import losses
        from electra_tf.pretraining.masking import candidate_mask
        # The cloze model reads the original input and predicts every candidate.
        cloze = generator(features, training=training)["logits"]
        candidates = candidate_mask(features["input_ids"], features["input_mask"], special_ids)
        loss, _ = losses.softmax_loss(cloze, features["input_ids"], candidates, denominator)
        return gather_positions(cloze, masked["masked_lm_positions"]), loss, cloze

    def discriminator_logits(self, logits, cloze, fake_ids):
        from electra_tf.pretraining import losses
        if not self.energy:
            return logits
        return losses.electric_logits(logits, cloze, fake_ids, self.config.mask_prob)

    def flops_networks(self):
        return (self._flops_discriminator(),
                FlopsNetwork("generator (two towers, cloze head)",
                             self.config.generator_config(), "mlm", towers=2,
                             every_position=True))


# Tried in this order: the names of a discriminator alone (UniformElectra) match last.
Recipe._registry[:] = [MaskedLM, Electric, Electra, SharedElectra, UniformElectra]
