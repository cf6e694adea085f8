"""Checkpoint formats, read and written as ``{original (TF1) name: numpy array}``.

Every format is one module with the same interface:

* ``NAME``; ``matches(path) -> bool``: whether a path is in this format;
* ``read(path) -> PretrainedWeights``: the values by original name, the hparams known from
  the source, the vocabulary beside it and the global step (:mod:`.common`);
* ``write(output_dir, values, *, config, vocab_file=None, global_step=None,
  overwrite=False, **options) -> str``: a new directory holding ``values``, staged and
  renamed into place; returns the path a reader takes.

``FORMATS`` is the one dispatch table, in detection order, that :func:`detect_format`,
:func:`read` (and through it :mod:`electra_tf.loading`) and ``convert`` share:

* ``keras_hub`` (:mod:`.keras_hub`): a keras-hub ``ElectraBackbone`` preset directory
  (``config.json`` naming ``keras_hub>ElectraBackbone`` + ``model.weights.h5``), one
  encoder; read with h5py, written with keras-hub. Before ``hf``: both hold a config.json.
* ``hf`` (:mod:`.hf`): a Hugging Face ``transformers`` ELECTRA directory
  (``config.json`` + ``model.safetensors``), or a discriminator/generator pair of them.
* ``keras`` (:mod:`.keras`): our ``tf.train.Checkpoint`` keyed by original name.
* ``training`` (:mod:`.run_checkpoint`): a pre-training run directory or its ``ckpt-N``
  (read only: training writes it).
* ``tf1`` (:mod:`.tf1`): a checkpoint with the original variable names (spec 7):
  Google's releases, our ``tf1/`` and ``discriminator/`` exports.

Below the formats: the original names (:mod:`electra_tf.checkpoints`) and the
``tf.train`` files (:mod:`.files`). Building models from weights is
:mod:`electra_tf.loading`. Importing this package is light (no TensorFlow) until a
format is used, so command lines check their arguments first.
"""

from __future__ import annotations

import importlib
import os

from electra_tf.formats.common import (CONFIG_FILE, HF_KINDS, VOCAB_FILE, PretrainedWeights,
                                       read_sidecar_files, write_sidecar_files)

# name -> module, in detection order (the first whose matches() holds).
FORMATS = {"keras_hub": "electra_tf.formats.keras_hub", "hf": "electra_tf.formats.hf",
           "keras": "electra_tf.formats.keras", "training": "electra_tf.formats.run_checkpoint",
           "tf1": "electra_tf.formats.tf1"}
# What ``convert --to`` writes (a run's ckpt-N is written by training only).
OUTPUT_FORMATS = ("tf1", "hf", "keras", "keras_hub")

__all__ = ["CONFIG_FILE", "FORMATS", "HF_KINDS", "OUTPUT_FORMATS", "VOCAB_FILE",
           "PretrainedWeights", "detect_format", "format_module", "read", "read_sidecar_files",
           "write", "write_sidecar_files"]


def format_module(name: str):
    """The module of a format named in :data:`FORMATS`."""
    if name not in FORMATS:
        raise ValueError(f"unknown checkpoint format {name!r}: one of {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[name])


def detect_format(path: str) -> str:
    """The name of the first format in :data:`FORMATS` that ``path`` matches; ``"tf1"``
    (whose reader then says what is wrong) when none does."""
    path = os.fspath(path)
    return next((name for name in FORMATS if format_module(name).matches(path)), "tf1")


def read(path: str, *, keep_models: bool = False) -> PretrainedWeights:
    """Reads ``path`` in the format it is in, opening a checkpoint once for detection and
    reading (``keep_models``: a run's ``ckpt-N`` keeps the models restored to read it)."""
    from electra_tf.formats import files
    path = os.fspath(path)
    with files.sharing_opened():
        name = detect_format(path)
        if name == "training":
            return format_module(name).read(path, keep_models=keep_models)
        return format_module(name).read(path)


def write(name: str, output_dir: str, values, **options) -> str:
    """Writes ``values`` in format ``name``: see each format's ``write``."""
    return format_module(name).write(os.fspath(output_dir), values, **options)
