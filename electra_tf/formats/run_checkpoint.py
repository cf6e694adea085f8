"""A pre-training run's own checkpoints: ``<model_dir>/ckpt-N``, object-based.

The pre-training driver saves ``tf.train.Checkpoint(optimizer=..., generator=...,
discriminator=...)`` (:func:`run_checkpoint`): Keras 3 layers are mostly not part of
TensorFlow's object graph, so the model variables are reached through the optimizer's
variable list. Reading one therefore builds the models and the optimizer as the driver
does, from ``pretraining_config.json`` beside the checkpoint, and restores them; this
module is the one place that knows how, for the driver (which writes and resumes) and for
every reader (:mod:`electra_tf.loading`, ``convert``, ``detect``...).

The format interface (:mod:`electra_tf.formats`): :func:`matches` and :func:`read`. A run
directory reads as its newest complete ``ckpt-N``, also while the run is still training
(format ``"training"``); it is written only by training (``write`` refuses, naming the
formats to convert to).
"""

from __future__ import annotations

import os
import re
from typing import Mapping

import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.checkpoints import CONFIG_FILE, CheckpointError
from electra_tf.config import PretrainingConfig
from electra_tf.formats import files
from electra_tf.formats.common import PretrainedWeights, read_sidecar_files
from electra_tf.io_utils import first_line

NAME = "training"
_ITERATIONS_KEY = re.compile(r"^optimizer/_?iterations/\.ATTRIBUTES/VARIABLE_VALUE$")


def optimizer_settings(config: PretrainingConfig) -> dict:
    """The keyword arguments of :func:`electra_tf.optimization.create_optimizer` for a run."""
    return dict(learning_rate=config.learning_rate, num_train_steps=config.num_train_steps,
                num_warmup_steps=config.num_warmup_steps, lr_decay_power=config.lr_decay_power,
                weight_decay_rate=config.weight_decay_rate, clip_norm=1.0,
                optimizer=config.optimizer)


def run_checkpoint(models, optimizer) -> tf.train.Checkpoint:
    """The object graph of a run's ``ckpt-N``: the optimizer (holding the step, the slots and,
    through its variable list, the weights) and the networks that exist.

    Args:
      models: a :class:`~electra_tf.networks.pretraining.PretrainingModels`.
      optimizer: its AdamWeightDecay or LAMB optimizer (not a loss-scale wrapper).
    """
    tracked = {name: model for name, model in (("generator", models.generator),
                                                ("discriminator", models.discriminator))
               if model is not None}
    return tf.train.Checkpoint(optimizer=optimizer, **tracked)


def matches(path: str) -> bool:
    """True for a run directory with a complete ``ckpt-N``, or one ``ckpt-N`` prefix: an
    object-based checkpoint that is not the keras format."""
    from electra_tf.formats import keras
    try:
        _, _, shapes = files.open_checkpoint(path)
    except (CheckpointError, tf.errors.OpError, ValueError):
        return False
    return files.OBJECT_GRAPH_KEY in shapes and not keras.matches(path)


def read(path: str, *, keep_models: bool = False) -> PretrainedWeights:
    """The weights of a run directory's newest complete ``ckpt-N`` (or of one ``ckpt-N``).

    Args:
      keep_models: keep the models restored to read it on the result (``built``), for
        :func:`electra_tf.loading.build_from_weights` to take over.
    """
    path = os.fspath(path)
    for attempt in range(2):
        prefix = files.resolve_checkpoint(path)
        try:
            return _read_prefix(prefix, keep_models)
        except CheckpointError:
            # A running job that keeps only its last checkpoints may have deleted this one
            # meanwhile: take the newest complete one again.
            if attempt or not tf.io.gfile.isdir(path) or files.is_complete_checkpoint(prefix):
                raise
    raise AssertionError("unreachable")


def write(output_dir: str, values: Mapping, **_) -> str:
    raise CheckpointError(f"{output_dir}: a run's ckpt-N is written by pre-training only; "
                          "convert to tf1, keras, hf or keras_hub")


def _read_prefix(prefix: str, keep_models: bool) -> PretrainedWeights:
    """Builds the models and optimizer as the driver does, restores them from ``prefix`` and
    checks that every model variable was restored."""
    from electra_tf.networks.pretraining import build_pretraining_models
    from electra_tf.optimization import create_optimizer
    prefix, reader, shapes = files.open_checkpoint(prefix)
    if not tf.io.gfile.exists(os.path.join(os.path.dirname(prefix), CONFIG_FILE)):
        raise CheckpointError(
            f"{prefix} is an object-based training checkpoint but there is no {CONFIG_FILE} "
            "beside it to build its models from: copy the run's config there, or use the "
            "run's export <model_dir>/tf1 (or <model_dir>/discriminator)")
    hparams, vocab = read_sidecar_files(prefix)
    config = PretrainingConfig.from_preset(hparams.get("model_size", "small"), hparams)
    models = build_pretraining_models(config)
    optimizer = create_optimizer(models, **optimizer_settings(config))
    built = {id(v) for v in optimizer.built_variables}
    unreachable = [n for n, v in models.original_variables().items() if id(v) not in built]
    if unreachable:
        raise CheckpointError(
            f"cannot read {prefix}: the variables {unreachable[:5]} are not tracked by the "
            "optimizer, through which a training checkpoint restores the models")
    try:
        status = run_checkpoint(models, optimizer).restore(prefix)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise CheckpointError(
            f"cannot restore {prefix} into the models of {CONFIG_FILE} beside it: "
            f"{first_line(e)}") from e
    keys = [k for k in shapes if _ITERATIONS_KEY.match(k)]
    step = int(reader.get_tensor(keys[0])) if keys else int(optimizer.iterations.numpy())
    weights = PretrainedWeights(values=checkpoints.original_values(*models.models),
                                hparams=hparams, vocab_file=vocab, source=prefix, format=NAME,
                                global_step=step)
    if keep_models:
        weights.built = (config, models)
    return weights

