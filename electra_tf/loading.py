"""Builds pre-trained ELECTRA models from what a format reader returns.

The formats themselves (detection, reading and writing ``{original name: array}``)
are :mod:`electra_tf.formats`. This module turns weights into built Keras models:

* :func:`read_weights`: the weights of a released model's name (:mod:`electra_tf.presets`)
  or of a path in any format of :data:`electra_tf.formats.FORMATS` (a pre-training run
  directory included: :mod:`electra_tf.formats.run_checkpoint`).
* :func:`build_from_weights` / :func:`load_pretrained`: models built and assigned.

The model shapes come from ``pretraining_config.json`` beside the weights when
present (every writer of ours puts it there), from a transformers ``config.json``, else
from the variable shapes (``infer_pretraining_config``), which tell every size but the
head count: that is taken as certain only for the released sizes, otherwise hparams
must give it. A generator is never taken for the discriminator (see
:func:`config_for_weights`).
What is built follows what the weights hold: the discriminator (with its head
when present), a generator (``generator/``), Electric's two-tower cloze
generator (``generator_ltr/``, ``generator_rtl/``), or, for a masked-LM-only
source such as HF ``ElectraForMaskedLM``, one full-size MLM network under
``electra/`` (the original's MLM-only layout, spec 3.11).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Union

import tensorflow as tf

from electra_tf import checkpoints, formats, presets
from electra_tf.config import PretrainingConfig, parse_hparams
from electra_tf.formats import VOCAB_FILE, PretrainedWeights, hf
from electra_tf.networks.discriminator import Discriminator
from electra_tf.networks.electric import TwoTowerClozeGenerator
from electra_tf.networks.generator import Generator
from electra_tf.networks.pretraining import build_pretraining_models
from electra_tf.pretraining.recipes import Recipe


@dataclasses.dataclass
class PretrainedModel:
    """Built models with the weights of one source.

    ``discriminator`` is None for a masked-LM-only source; ``generator`` is None
    when the source has no generator weights (e.g. a ``discriminator/`` export).
    ``has_discriminator_head`` is False for a bare encoder (HF ``ElectraModel``).
    """

    config: PretrainingConfig
    discriminator: Optional[Discriminator]
    generator: Optional[Union[Generator, TwoTowerClozeGenerator]]
    weights: PretrainedWeights
    has_discriminator_head: bool

    @property
    def models(self) -> list:
        return [m for m in (self.generator, self.discriminator) if m is not None]

    @property
    def vocab_file(self) -> Optional[str]:
        return self.weights.vocab_file

    @property
    def recipe(self) -> Recipe:
        """The kind of pre-training run the models are (:mod:`electra_tf.pretraining.recipes`)."""
        return Recipe.for_config(self.config)

    def original_values(self) -> dict:
        """``{original name: numpy array}`` of the models (no head for a head-less source)."""
        values = checkpoints.original_values(*self.models)
        if self.has_discriminator_head:
            return values
        return {name: value for name, value in values.items()
                if not name.startswith("discriminator_predictions/")}


def read_weights(path: str, *, keep_models: bool = False) -> PretrainedWeights:
    """Reads weights by original name from a path in any supported format.

    Args:
      path: a TF1-name checkpoint (directory, prefix or ``.index``), a pre-training run
        directory (its newest complete ``ckpt-N``) or one ``ckpt-N`` prefix, a
        transformers directory, a keras-format directory or a keras-hub preset directory;
        or the name of a released model (:mod:`electra_tf.presets`, e.g.
        ``electra_small_discriminator`` or ``google/electra-base-generator``: downloaded
        into the cache and verified on first use), unless a path of that name exists.
      keep_models: for a training checkpoint, keep the models restored to read it on
        the result (``built``) for :func:`build_from_weights` to reuse.
    """
    path = os.fspath(path)
    if presets.find(path) is not None:
        return presets.read(path)
    if not tf.io.gfile.exists(path) and not tf.io.gfile.exists(path + ".index"):
        raise checkpoints.CheckpointError(
            f"checkpoint not found: {path}{presets.unknown_name_hint(path)}")
    return formats.read(path, keep_models=keep_models)


def config_for_weights(weights: PretrainedWeights, hparams, *,
                       allow_generator: bool = False) -> PretrainingConfig:
    """The config of what ``weights`` hold (ELECTRA, Electric, MLM-only or discriminator-only).

    Sizes come from ``weights.hparams`` (a ``pretraining_config.json`` or HF config)
    when known, else from the shapes, which give the head count only for the released
    sizes; ``hparams`` override both (``model_hparam_overrides`` key by key, so
    ``{"model_hparam_overrides": {"num_attention_heads": 4}}`` keeps the sizes).

    The result's ``discriminator_config()`` is the encoder a backbone or fine-tuning
    starts from, so a generator is refused unless ``allow_generator`` (which
    :func:`build_from_weights` passes: it builds what the weights hold, a generator
    included): a transformers ``ElectraForMaskedLM`` (its encoder is read under
    ``electra/``, the original's MLM-only layout). Weights with a generator encoder and
    no ``electra/encoder/`` are always refused, naming what they are.

    Raises:
      CheckpointError: one line naming the source and what to pass instead.
    """
    names = weights.values
    has = lambda prefix: any(n.startswith(prefix) for n in names)  # noqa: E731
    if not has("electra/encoder/"):
        scope = next((s for s in Recipe.generator_scopes() if has(f"{s}/encoder/")), None)
        if scope is not None:
            raise checkpoints.CheckpointError(
                f"{weights.source} holds a generator only ({scope}/*, no electra/encoder/*), "
                "not an ELECTRA discriminator: pass the full pre-training export "
                "<model_dir>/tf1, the discriminator export <model_dir>/discriminator or the "
                "run directory")
    if weights.architecture == hf.MASKED_LM and not allow_generator:
        raise checkpoints.CheckpointError(
            f"{weights.source} is a transformers {hf.MASKED_LM}, ELECTRA's generator (a "
            "masked LM), not the discriminator whose encoder a backbone or fine-tuning "
            f"starts from: pass the discriminator ({hf.PRETRAINING} directory, e.g. "
            "google/electra-small-discriminator, or a directory holding discriminator/ and "
            "generator/); to use this network's encoder anyway, convert it to an "
            f"{hf.MODEL} first (python -m electra_tf.convert --to=hf --hf_kind=model)")
    kind = Recipe.from_checkpoint_names(names).checkpoint_hparams(names)
    if weights.hparams:
        merged = checkpoints.merge_hparams(weights.hparams, kind, hparams)
        return PretrainingConfig.from_preset(merged.get("model_size", "small"), merged)
    shapes = {n: v.shape for n, v in names.items()}
    return checkpoints.infer_pretraining_config_from_shapes(
        shapes, weights.source, checkpoints.merge_hparams(kind, hparams))


def build_from_weights(weights: PretrainedWeights, hparams=None) -> PretrainedModel:
    """Builds the models that ``weights`` describe and assigns every value by name.

    Models restored to read a training checkpoint (``weights.built``) are taken over
    (once) unless ``hparams`` ask for another config.
    """
    built, weights.built = weights.built, None
    if built is not None and not parse_hparams(hparams):
        config, models = built
        has_head = models.discriminator is not None and any(
            n.startswith("discriminator_predictions/") for n in weights.values)
        return PretrainedModel(config=config, discriminator=models.discriminator,
                               generator=models.generator, weights=weights,
                               has_discriminator_head=has_head)
    config = config_for_weights(weights, hparams, allow_generator=True)
    models = build_pretraining_models(config)
    has_head = any(n.startswith("discriminator_predictions/") for n in weights.values)
    allow = [] if has_head or models.discriminator is None else [r"^discriminator_predictions/"]
    checkpoints.assign_original_weights(weights.values, *models.models, allow_missing=allow,
                                        source=weights.source)
    return PretrainedModel(config=config, discriminator=models.discriminator,
                           generator=models.generator, weights=weights,
                           has_discriminator_head=has_head and models.discriminator is not None)


def load_pretrained(path: str, hparams=None, *, require: tuple = ()) -> PretrainedModel:
    """Loads a pre-trained model from any format :func:`read_weights` reads.

    Args:
      path: checkpoint directory/prefix, pre-training run directory or ``ckpt-N``,
        transformers or keras-format directory.
      hparams: PretrainingConfig overrides (dict, JSON or .json path), e.g. heads.
      require: any of ``"discriminator_head"``, ``"generator"``, ``"electric"``,
        ``"vocab"``: raise one CheckpointError saying what the source lacks.
    """
    model = build_from_weights(read_weights(path, keep_models=True), hparams)
    src = model.weights.source
    if "discriminator_head" in require and not model.has_discriminator_head:
        raise checkpoints.CheckpointError(
            f"{src} has no replaced-token detection head (discriminator_predictions/*): "
            "use a pre-training export or a HF ElectraForPreTraining directory")
    if "generator" in require and model.generator is None:
        raise checkpoints.CheckpointError(
            f"{src} has no generator weights: use the full export <model_dir>/tf1 or a HF "
            "ElectraForMaskedLM directory")
    if "electric" in require and not model.recipe.cloze_generator:
        raise checkpoints.CheckpointError(
            f"{src} is not an Electric model (no generator_ltr/ and generator_rtl/ weights): "
            "pre-train with --hparams='{\"electric_objective\": true, "
            "\"electra_objective\": false}' and use <model_dir>/tf1")
    if "vocab" in require and not model.vocab_file:
        raise checkpoints.CheckpointError(
            f"no {VOCAB_FILE} beside {src}: pass --vocab_file")
    return model
