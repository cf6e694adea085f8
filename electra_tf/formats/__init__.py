"""Checkpoint formats, read and written as ``{original (TF1) name: numpy array}``.

* ``tf1`` (:mod:`.tf1`): a checkpoint with the original variable names (spec 7):
  Google's release directories, our ``tf1/`` and ``discriminator/`` exports, a prefix
  or ``.index`` path. A pre-training run directory (object-based ``ckpt-N``) is also
  detected as ``tf1``; :mod:`electra_tf.loading` reads it by building its models.
* ``hf`` (:mod:`.hf`): a Hugging Face ``transformers`` ELECTRA directory
  (``config.json`` + ``model.safetensors``), read and written without torch.
* ``keras`` (:mod:`.keras`): our ``tf.train.Checkpoint`` keyed by original name.
* ``keras_hub`` (:mod:`.keras_hub`): a keras-hub ``ElectraBackbone`` preset directory
  (``config.json`` naming ``keras_hub>ElectraBackbone`` + ``model.weights.h5``), one
  encoder; read with h5py, written with keras-hub.

Readers return a :class:`PretrainedWeights` (values, the hparams known from the source,
the vocabulary beside it, the global step); our writers put the sidecar files
``pretraining_config.json`` and ``vocab.txt`` (:mod:`.common`) beside the weights.
Building models from weights is :mod:`electra_tf.loading`. Importing this package is
light (no TensorFlow) until a format module is used: ``from electra_tf.formats import tf1``.
"""

from __future__ import annotations

import os

from electra_tf.formats.common import (CONFIG_FILE, HF_KINDS, VOCAB_FILE, PretrainedWeights,
                                       read_sidecar_files, write_sidecar_files)

FORMATS = ("tf1", "hf", "keras", "keras_hub")

__all__ = ["CONFIG_FILE", "FORMATS", "HF_KINDS", "VOCAB_FILE", "PretrainedWeights",
           "detect_format", "read_sidecar_files", "write_sidecar_files"]


def detect_format(path: str) -> str:
    """``"keras_hub"`` (a keras-hub preset directory), ``"hf"`` (transformers directory),
    ``"keras"`` (our TF2 format) or ``"tf1"``."""
    # The format modules import TensorFlow: only when a path is looked at.
    from electra_tf.formats import hf, keras, keras_hub
    path = os.fspath(path)
    # Before hf: both directories hold a config.json.
    if keras_hub.is_keras_hub_directory(path):
        return "keras_hub"
    if hf.is_hf_directory(path):
        return "hf"
    return "keras" if keras.is_keras_directory(path) else "tf1"
