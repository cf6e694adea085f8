"""Hugging Face transformers ELECTRA directories, read and written without torch."""

from __future__ import annotations

import os

import tensorflow as tf


def is_hf_directory(path: str) -> bool:
    """True for a directory holding a transformers ``config.json`` and safetensors weights."""
    path = os.fspath(path)
    return (tf.io.gfile.isdir(path) and tf.io.gfile.exists(os.path.join(path, "config.json"))
            and tf.io.gfile.exists(os.path.join(path, "model.safetensors")))


def read_hf_directory(path: str):
    raise NotImplementedError
