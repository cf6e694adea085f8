"""Load a pre-trained ELECTRA from any format we read, as built Keras models.

Formats (``detect_format``):

* ``tf1``: a checkpoint with the original variable names (spec 7): Google's
  release directories, our ``tf1/`` and ``discriminator/`` exports, a prefix or
  ``.index`` path.
* ``hf``: a Hugging Face ``transformers`` ELECTRA directory (``config.json`` +
  ``model.safetensors``), read by :mod:`electra_tf.hf` without torch.
* ``keras``: :mod:`electra_tf.convert`'s ``tf.train.Checkpoint`` keyed by original name.

The model shapes come from ``pretraining_config.json`` beside the weights when
present (our exports), else from the variable shapes (``infer_pretraining_config``).
What is built follows what the weights hold: the discriminator (with its head
when present), a generator (``generator/``), Electric's two-tower cloze
generator (``generator_ltr/``, ``generator_rtl/``), or, for a masked-LM-only
source such as HF ``ElectraForMaskedLM``, one full-size MLM network under
``electra/`` (the original's MLM-only layout, spec 3.11).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Mapping, Optional, Union

import numpy as np
import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.config import ConfigError, PretrainingConfig, parse_hparams
from electra_tf.modeling.discriminator import Discriminator
from electra_tf.modeling.electric import TwoTowerClozeGenerator
from electra_tf.modeling.generator import Generator
from electra_tf.modeling.pretraining_models import build_pretraining_models

CONFIG_FILE = "pretraining_config.json"
VOCAB_FILE = "vocab.txt"


@dataclasses.dataclass
class PretrainedWeights:
    """Weights by original (TF1) name, before any model is built.

    Attributes:
      values: ``{original name: numpy array}`` (no optimizer slots, no global_step).
      hparams: PretrainingConfig hparams known from the source (e.g. a HF
        ``config.json``); shapes fill in the rest.
      vocab_file: the vocabulary shipped beside the weights, if any.
      source: the path read; format: ``"tf1"`` or ``"hf"``.
      global_step: the training step stored with the weights, if any.
    """

    values: dict
    hparams: dict
    vocab_file: Optional[str]
    source: str
    format: str
    global_step: Optional[int] = None


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


def _directory(path: str) -> str:
    return path if tf.io.gfile.isdir(path) else os.path.dirname(path)


def detect_format(path: str) -> str:
    """``"hf"`` (transformers directory), ``"keras"`` (electra_tf.convert's) or ``"tf1"``."""
    from electra_tf import convert, hf
    path = os.fspath(path)
    if hf.is_hf_directory(path):
        return "hf"
    return "keras" if convert.is_keras_directory(path) else "tf1"


def read_tf1_weights(path: str) -> PretrainedWeights:
    """Every non-slot tensor of a TF1-name checkpoint as numpy, plus vocab/config beside it."""
    prefix, reader, shapes = checkpoints.open_checkpoint(path)
    values = {name: reader.get_tensor(name) for name in shapes
              if not checkpoints.ignored_name(name)}
    step = int(reader.get_tensor("global_step")) if "global_step" in shapes else None
    hparams, vocab = read_sidecar_files(prefix)
    return PretrainedWeights(values=values, hparams=hparams, vocab_file=vocab, source=prefix,
                             format="tf1", global_step=step)


def read_sidecar_files(prefix: str, require_config: bool = False) -> tuple:
    """(hparams of ``pretraining_config.json``, vocab path or None) beside a checkpoint."""
    directory = os.path.dirname(prefix)
    hparams = {}
    config_path = os.path.join(directory, CONFIG_FILE)
    if tf.io.gfile.exists(config_path):
        try:
            hparams = json.loads(tf.io.gfile.GFile(config_path).read())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{config_path}: not valid JSON ({e.msg}, line {e.lineno})") from e
        hparams.pop("max_predictions_per_seq", None)  # derived, not settable
    elif require_config:
        raise checkpoints.CheckpointError(
            f"no {CONFIG_FILE} beside {prefix}: a keras-format directory needs it to build "
            "the models")
    vocab = os.path.join(directory, VOCAB_FILE)
    return hparams, (vocab if tf.io.gfile.exists(vocab) else None)


def read_weights(path: str) -> PretrainedWeights:
    """Reads weights by original name from a path in any supported format."""
    path = os.fspath(path)
    if not tf.io.gfile.exists(path) and not tf.io.gfile.exists(path + ".index"):
        raise checkpoints.CheckpointError(f"checkpoint not found: {path}")
    kind = detect_format(path)
    if kind == "hf":
        from electra_tf import hf
        return hf.read_hf_directory(path)
    if kind == "keras":
        from electra_tf import convert
        return convert.read_keras_weights(path)
    weights = read_tf1_weights(path)
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in weights.values:
        raise checkpoints.CheckpointError(
            f"{weights.source} is an object-based training checkpoint, not one with the "
            "original variable names: use the run's export <model_dir>/tf1 (or "
            "<model_dir>/discriminator) instead")
    return weights


def config_for_weights(weights: PretrainedWeights, hparams) -> PretrainingConfig:
    """The config of what ``weights`` hold (ELECTRA, Electric, MLM-only or discriminator-only).

    Sizes come from ``weights.hparams`` (a ``pretraining_config.json`` or HF config)
    when known, else from the shapes; ``hparams`` override both.
    """
    names = weights.values
    has = lambda prefix: any(n.startswith(prefix) for n in names)  # noqa: E731
    shapes = {n: v.shape for n, v in names.items()}
    if has("electra/encoder/") and not has("discriminator_predictions/") and \
            has("generator_predictions/") and not has("generator/"):
        kind = {"electra_objective": False, "electric_objective": False}  # MLM-only
    elif has("generator_ltr/"):
        kind = {"electra_objective": False, "electric_objective": True}
    elif has("generator/"):
        kind = {"electra_objective": True, "electric_objective": False,
                "uniform_generator": False}
    else:  # discriminator only: build no generator
        kind = {"electra_objective": True, "electric_objective": False,
                "uniform_generator": True, "two_tower_generator": False}
    user = parse_hparams(hparams)
    if weights.hparams:
        return PretrainingConfig.from_preset(
            weights.hparams.get("model_size", "small"), {**weights.hparams, **kind, **user})
    return checkpoints.infer_pretraining_config_from_shapes(shapes, weights.source,
                                                            {**kind, **user})


def build_from_weights(weights: PretrainedWeights, hparams=None) -> PretrainedModel:
    """Builds the models that ``weights`` describe and assigns every value by name."""
    config = config_for_weights(weights, hparams)
    models = build_pretraining_models(config)
    has_head = any(n.startswith("discriminator_predictions/") for n in weights.values)
    allow = [] if has_head or models.discriminator is None else [r"^discriminator_predictions/"]
    checkpoints.assign_original_weights(weights.values, *models.models, allow_missing=allow,
                                        source=weights.source)
    return PretrainedModel(config=config, discriminator=models.discriminator,
                           generator=models.generator, weights=weights,
                           has_discriminator_head=has_head and models.discriminator is not None)


def load_pretrained(path: str, hparams=None, *, require: tuple = ()) -> PretrainedModel:
    """Loads a pre-trained model from a TF1 checkpoint or a HF directory.

    Args:
      path: checkpoint directory/prefix or transformers directory.
      hparams: PretrainingConfig overrides (dict, JSON or .json path), e.g. heads.
      require: any of ``"discriminator_head"``, ``"generator"``, ``"electric"``,
        ``"vocab"``: raise one CheckpointError saying what the source lacks.
    """
    model = build_from_weights(read_weights(path), hparams)
    src = model.weights.source
    if "discriminator_head" in require and not model.has_discriminator_head:
        raise checkpoints.CheckpointError(
            f"{src} has no replaced-token detection head (discriminator_predictions/*): "
            "use a pre-training export or a HF ElectraForPreTraining directory")
    if "generator" in require and model.generator is None:
        raise checkpoints.CheckpointError(
            f"{src} has no generator weights: use the full export <model_dir>/tf1 or a HF "
            "ElectraForMaskedLM directory")
    if "electric" in require and not isinstance(model.generator, TwoTowerClozeGenerator):
        raise checkpoints.CheckpointError(
            f"{src} is not an Electric model (no generator_ltr/ and generator_rtl/ weights): "
            "pre-train with --hparams='{\"electric_objective\": true, "
            "\"electra_objective\": false}' and use <model_dir>/tf1")
    if "vocab" in require and not model.vocab_file:
        raise checkpoints.CheckpointError(
            f"no {VOCAB_FILE} beside {src}: pass --vocab_file")
    return model


def original_values(*models) -> Mapping[str, np.ndarray]:
    """``{original name: numpy value}`` of built models (what writers serialise)."""
    return {name: v.numpy() for name, v in checkpoints.original_variables(*models).items()}
