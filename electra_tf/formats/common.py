"""What every checkpoint format shares: the weights a reader returns and the sidecar files.

A reader returns a :class:`PretrainedWeights`: ``{original (TF1) name: numpy array}``
plus what is known of the config and vocabulary. Our own writers put two sidecar
files beside the weights: ``pretraining_config.json`` (the PretrainingConfig the
models are built from, or, when a writer only knows the models, their hparams: every
size, the head count, activation, dropout...) and ``vocab.txt``. Both are written
atomically; the config goes in before the checkpoint's ``.index`` (see
:func:`electra_tf.formats.tf1.save_original_checkpoint`).

This module sits below the format modules (``tf1``, ``hf``, ``keras``) so that each can
use it without importing the package that detects them; it imports TensorFlow only when
a file is read or written, so that command lines check their arguments first.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

from electra_tf.checkpoints import CONFIG_FILE, VOCAB_FILE, CheckpointError

# What formats.hf.write_hf_directory writes (the converter's --hf_kind): see its docstring.
HF_KINDS = ("auto", "both", "discriminator", "generator", "model")


@dataclasses.dataclass
class PretrainedWeights:
    """Weights by original (TF1) name, before any model is built.

    Attributes:
      values: ``{original name: numpy array}`` (no optimizer slots, no global_step).
      hparams: PretrainingConfig hparams known from the source (e.g. a HF
        ``config.json``); shapes fill in the rest.
      vocab_file: the ``vocab.txt`` beside the weights; None when there is none (a
        caller must then be given one, not fall back silently).
      source: the path read; format: ``"tf1"``, ``"hf"``, ``"keras"`` or ``"training"``.
      global_step: the training step stored with the weights, if any.
      architecture: for a transformers directory, its architecture
        (``ElectraForPreTraining``, ``ElectraForMaskedLM``: a generator, ``ElectraModel``;
        a discriminator/generator pair gives its discriminator's); None otherwise.
      built: for a training checkpoint read with ``keep_models=True``, the
        (PretrainingConfig, PretrainingModels) restored to read it, which
        :func:`electra_tf.loading.build_from_weights` takes over instead of building
        them again.
    """

    values: dict
    hparams: dict
    vocab_file: Optional[str]
    source: str
    format: str
    global_step: Optional[int] = None
    architecture: Optional[str] = None
    built: Optional[tuple] = dataclasses.field(default=None, repr=False, compare=False)


def read_sidecar_files(prefix: str, require_config: bool = False) -> tuple:
    """(hparams of ``pretraining_config.json``, vocab path or None) beside a checkpoint prefix.

    Raises:
      ConfigError: the config is not valid JSON.
      CheckpointError: ``require_config`` and there is no config.
    """
    import tensorflow as tf

    from electra_tf.config import ConfigError
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
        raise CheckpointError(
            f"no {CONFIG_FILE} beside {prefix}: a keras-format directory needs it to build "
            "the models")
    vocab = os.path.join(directory, VOCAB_FILE)
    return hparams, (vocab if tf.io.gfile.exists(vocab) else None)


def write_sidecar_files(directory: str, config, vocab_file: Optional[str]) -> None:
    """Writes the config and a copy of ``vocab_file`` beside a checkpoint, each atomically.

    Args:
      config: a PretrainingConfig (written whole, as the pre-training driver writes it), a
        mapping of PretrainingConfig hparams (e.g. what
        :func:`electra_tf.checkpoints.model_hparams` knows of built models), or None (no
        config written).
      vocab_file: copied as ``vocab.txt`` when given.
    """
    from electra_tf.io_utils import write_text_atomic
    if config is not None:
        if hasattr(config, "to_json"):
            config.to_json(os.path.join(directory, CONFIG_FILE))
        else:
            write_text_atomic(os.path.join(directory, CONFIG_FILE),
                              json.dumps(dict(config), indent=2, sort_keys=True) + "\n")
    if vocab_file:
        copy_file_atomic(vocab_file, os.path.join(directory, VOCAB_FILE))


def copy_file_atomic(source: str, target: str) -> None:
    """Copies ``source`` to ``target`` through a temporary sibling renamed into place
    (nothing to do when both are the same file)."""
    import uuid

    import tensorflow as tf
    source, target = os.fspath(source), os.fspath(target)
    if "://" not in source + target and os.path.exists(source) and \
            os.path.exists(target) and os.path.samefile(source, target):
        return
    tmp = os.path.join(os.path.dirname(target),
                       f".{os.path.basename(target)}.tmp-{uuid.uuid4().hex}")
    try:
        tf.io.gfile.copy(source, tmp, overwrite=True)
        tf.io.gfile.rename(tmp, target, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
