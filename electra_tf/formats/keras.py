"""electra_tf's TF2 ("keras") checkpoint directories.

``DIR/ckpt-<step>.*`` (+ a ``checkpoint`` state file): a ``tf.train.Checkpoint``
whose ``weights`` attribute is ``{original name: variable}`` (plus ``global_step``
when known), with ``pretraining_config.json`` (required to build the models) and
``vocab.txt``. Restore it into models built from that config with
``tf.train.Checkpoint(weights=electra_tf.original_variables(*models)).read(prefix)``.
The weights are keyed by original name rather than by the Keras object graph because
Keras 3 layer lists (the transformer layers) are not part of TensorFlow's object graph.
"""

from __future__ import annotations

import os
import re
from typing import Mapping, Optional

import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.checkpoints import CheckpointError
from electra_tf.formats import files
from electra_tf.formats.common import PretrainedWeights, read_sidecar_files, write_sidecar_files
from electra_tf.io_utils import staged_directory

NAME = "keras"
WEIGHTS_ATTRIBUTE = "weights"  # the tf.train.Checkpoint attribute holding {original name: variable}
STEP_ATTRIBUTE = "global_step"
_WEIGHT_KEY = re.compile(rf"^{WEIGHTS_ATTRIBUTE}/([^/]+)/\.ATTRIBUTES/VARIABLE_VALUE$")
_STEP_KEY = f"{STEP_ATTRIBUTE}/.ATTRIBUTES/VARIABLE_VALUE"


def _unescape(local_name: str) -> str:
    """Undoes tf.train.Checkpoint's escaping of a dict key ('.' -> '..', '/' -> '.S')."""
    return re.sub(r"\.(\.|S)", lambda m: "." if m.group(1) == "." else "/", local_name)


def _keras_prefix(path: str) -> Optional[str]:
    """The checkpoint prefix of a keras-format directory, or None."""
    try:
        prefix, _, shapes = files.open_checkpoint(path)
    except (CheckpointError, tf.errors.OpError, ValueError):
        return None
    if files.OBJECT_GRAPH_KEY in shapes and any(_WEIGHT_KEY.match(n) for n in shapes):
        return prefix
    return None


def matches(path: str) -> bool:
    """True for a keras-format directory or prefix."""
    return _keras_prefix(os.fspath(path)) is not None


def read(path: str) -> PretrainedWeights:
    """Every weight of a keras-format directory (or prefix) by original name."""
    prefix = _keras_prefix(os.fspath(path))
    if prefix is None:
        raise CheckpointError(f"{path} is not an electra_tf keras-format checkpoint")
    _, reader, shapes = files.open_checkpoint(prefix)
    values, step = {}, None
    for key in shapes:
        m = _WEIGHT_KEY.match(key)
        if m:
            values[_unescape(m.group(1))] = reader.get_tensor(key)
        elif key == _STEP_KEY:
            step = int(reader.get_tensor(key))
    hparams, vocab = read_sidecar_files(prefix, require_config=True)
    return PretrainedWeights(values=values, hparams=hparams, vocab_file=vocab,
                             source=prefix, format=NAME, global_step=step)


def write(output_dir: str, values: Mapping, *, config, vocab_file: Optional[str] = None,
          global_step: Optional[int] = None, overwrite: bool = False) -> str:
    """Writes ``values`` (``{original name: array}``) as a keras-format directory.

    Arguments as :func:`electra_tf.formats.tf1.write`, except that ``config`` is
    required (the reader builds the models from it); returns the checkpoint prefix
    ``<output_dir>/ckpt-<step or 0>``.

    Raises:
      CheckpointError: ``config`` does not describe ``values`` (nothing is written).
    """
    if config is None:
        raise CheckpointError(
            f"a keras-format directory needs its config ({output_dir}): pass config= (e.g. "
            "electra_tf.checkpoints.config_of_models(*models))")
    sidecar = checkpoints.config_to_write(
        config, {name: list(getattr(value, "shape", ())) for name, value in values.items()},
        output_dir)
    if vocab_file and not tf.io.gfile.exists(vocab_file):
        raise CheckpointError(f"vocab file not found: {vocab_file}")
    tracked = {WEIGHTS_ATTRIBUTE: {name: tf.Variable(value, trainable=False)
                                   for name, value in values.items()}}
    if global_step is not None:
        tracked[STEP_ATTRIBUTE] = tf.Variable(global_step, dtype=tf.int64, trainable=False)
    name = f"ckpt-{global_step or 0}"
    with staged_directory(output_dir, overwrite) as tmp:
        tf.train.Checkpoint(**tracked).write(os.path.join(tmp, name))
        files.write_state_file(tmp, name)
        write_sidecar_files(tmp, sidecar, vocab_file)
    return os.path.join(os.path.abspath(output_dir), name)
