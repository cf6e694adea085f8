"""Builds pre-trained ELECTRA models from what a format reader returns.

The formats themselves (detection, reading and writing ``{original name: array}``)
are :mod:`electra_tf.formats`. This module turns weights into built Keras models:

* :func:`read_weights`: the weights of a path in any format, plus the pre-training
  driver's object-based ``<model_dir>/ckpt-N`` (a run directory reads as its newest
  complete ``ckpt-N``, also while the run is still training): those models are built
  from ``pretraining_config.json`` beside it and restored with ``tf.train.Checkpoint``
  as the driver tracks them (format ``"training"``).
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
import re
from typing import Optional, Union

import tensorflow as tf

from electra_tf import checkpoints, formats, presets
from electra_tf.config import PretrainingConfig, parse_hparams
from electra_tf.formats import (CONFIG_FILE, VOCAB_FILE, PretrainedWeights, hf, keras,
                                keras_hub, tf1)
from electra_tf.io_utils import first_line
from electra_tf.modeling.discriminator import Discriminator
from electra_tf.modeling.electric import TwoTowerClozeGenerator
from electra_tf.modeling.generator import Generator
from electra_tf.modeling.pretraining_models import build_pretraining_models
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
    kind = formats.detect_format(path)
    if kind == "hf":
        return hf.read_hf_directory(path)
    if kind == "keras":
        return keras.read(path)
    if kind == "keras_hub":
        return keras_hub.read(path)
    for attempt in range(2):
        prefix, _, shapes = checkpoints.open_checkpoint(path)
        if checkpoints.OBJECT_GRAPH_KEY not in shapes:
            return tf1.read(prefix)
        try:
            return read_training_checkpoint(prefix, keep_models=keep_models)
        except checkpoints.CheckpointError:
            # A running job that keeps only its last checkpoints may have deleted this
            # one meanwhile: take the newest complete one again.
            if attempt or not tf.io.gfile.isdir(path) or \
                    checkpoints.is_complete_checkpoint(prefix):
                raise


_ITERATIONS_KEY = re.compile(r"^optimizer/_?iterations/\.ATTRIBUTES/VARIABLE_VALUE$")


def read_training_checkpoint(path: str, *, keep_models: bool = False) -> PretrainedWeights:
    """The weights of a pre-training driver's object-based checkpoint (``ckpt-N``).

    The models (and the optimizer, through whose variable list the checkpoint
    reaches most weights) are built as the driver builds them from
    ``pretraining_config.json`` beside the checkpoint, restored, and every model
    variable is checked to have been restored.
    """
    from electra_tf.optimization import create_optimizer
    prefix, reader, shapes = checkpoints.open_checkpoint(path)
    if not tf.io.gfile.exists(os.path.join(os.path.dirname(prefix), CONFIG_FILE)):
        raise checkpoints.CheckpointError(
            f"{prefix} is an object-based training checkpoint but there is no {CONFIG_FILE} "
            "beside it to build its models from: copy the run's config there, or use the "
            "run's export <model_dir>/tf1 (or <model_dir>/discriminator)")
    hparams, vocab = formats.read_sidecar_files(prefix)
    config = PretrainingConfig.from_preset(hparams.get("model_size", "small"), hparams)
    models = build_pretraining_models(config)
    # The driver's optimizer tracks the model variables (Keras 3 layers are mostly not
    # part of TensorFlow's object graph): build it the same way to restore through it.
    optimizer = create_optimizer(
        models, learning_rate=config.learning_rate, num_train_steps=config.num_train_steps,
        num_warmup_steps=config.num_warmup_steps, lr_decay_power=config.lr_decay_power,
        weight_decay_rate=config.weight_decay_rate, clip_norm=1.0, optimizer=config.optimizer)
    tracked = {name: model for name, model in (("generator", models.generator),
                                                ("discriminator", models.discriminator))
               if model is not None}
    built = {id(v) for v in optimizer.built_variables}
    unreachable = [n for n, v in models.original_variables().items() if id(v) not in built]
    if unreachable:
        raise checkpoints.CheckpointError(
            f"cannot read {prefix}: the variables {unreachable[:5]} are not tracked by the "
            "optimizer, through which a training checkpoint restores the models")
    try:
        status = tf.train.Checkpoint(optimizer=optimizer, **tracked).restore(prefix)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise checkpoints.CheckpointError(
            f"cannot restore {prefix} into the models of {CONFIG_FILE} beside it: "
            f"{first_line(e)}") from e
    keys = [k for k in shapes if _ITERATIONS_KEY.match(k)]
    step = int(reader.get_tensor(keys[0])) if keys else int(optimizer.iterations.numpy())
    weights = PretrainedWeights(values=checkpoints.original_values(*models.models), hparams=hparams,
                                vocab_file=vocab, source=prefix, format="training",
                                global_step=step)
    if keep_models:
        weights.built = (config, models)
    return weights


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
