"""Google's TF1-name checkpoints (spec 7): the format of the original's releases.

A ``tf.train`` checkpoint whose keys are the original variable names, optionally with
``global_step`` and the optimizer slots ``<name>/adam_m`` / ``<name>/adam_v``, and a
``checkpoint`` state file: Google's release directories and our ``<model_dir>/tf1`` and
``<model_dir>/discriminator`` exports. Written as ``DIR/model.ckpt[-<step>].*`` with
``pretraining_config.json`` and ``vocab.txt`` beside it (files the TF1 tools ignore; the
checkpoint itself holds exactly the original names).

The format interface (:mod:`electra_tf.formats`): :func:`matches`, :func:`read` and
:func:`write` move ``{original name: array}``; :func:`load_original_checkpoint` and
:func:`save_original_checkpoint` do the same straight into and out of built models, and
:func:`load_slots` / :func:`slot_variables` move an optimizer's slots by original name.
The names are :mod:`electra_tf.checkpoints`; the files are :mod:`.files`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional, Sequence

import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.checkpoints import VOCAB_FILE, CheckpointError
from electra_tf.config import PretrainingConfig
from electra_tf.formats import files
from electra_tf.formats.common import PretrainedWeights, read_sidecar_files, write_sidecar_files
from electra_tf.io_utils import staged_directory, write_text_atomic

NAME = "tf1"


def matches(path: str) -> bool:
    """True for a ``tf.train`` checkpoint keyed by name (no object graph)."""
    try:
        _, _, shapes = files.open_checkpoint(path)
    except (CheckpointError, tf.errors.OpError, ValueError):
        return False
    return files.OBJECT_GRAPH_KEY not in shapes


def read(path: str) -> PretrainedWeights:
    """Every non-slot tensor of a TF1-name checkpoint, plus the sidecar files beside it.

    Args:
      path: a checkpoint directory, prefix or ``.index`` path.
    """
    prefix, reader, shapes = files.open_checkpoint(path)
    values = {name: _widened(reader.get_tensor(name)) for name in shapes
              if not checkpoints.ignored_name(name)}
    step = int(reader.get_tensor("global_step")) if "global_step" in shapes else None
    hparams, vocab = read_sidecar_files(prefix)
    return PretrainedWeights(values=values, hparams=hparams, vocab_file=vocab, source=prefix,
                             format=NAME, global_step=step)


def _widened(value):
    """Half-precision weights (``convert --dtype=float16``, the packaged presets) as
    float32, the precision every model and writer works in (exact: float32 holds every
    float16 and bfloat16 value)."""
    if getattr(value, "dtype", None) is not None and value.dtype.name in ("float16", "bfloat16"):
        return value.astype("float32")
    return value


def write(output_dir: str, values: Mapping, *, config, vocab_file: Optional[str] = None,
          global_step: Optional[int] = None, overwrite: bool = False) -> str:
    """Writes ``values`` as a TF1-name checkpoint directory; returns the checkpoint prefix.

    Args:
      output_dir: a local directory, written in a temporary sibling and renamed into place.
      values: ``{original name: array}``.
      config: written as ``pretraining_config.json``: the PretrainingConfig the values
        were made with (e.g. :func:`electra_tf.checkpoints.config_of_models` of Keras
        models), a FinetuningConfig or a dict of hparams; checked against the shapes of
        ``values``. None writes no config (readers then guess, and refuse what the
        shapes do not tell).
      vocab_file: copied as ``vocab.txt`` when given.
      global_step: stored as ``global_step`` and in the name ``model.ckpt-<step>``.
      overwrite: replace a non-empty ``output_dir``.
    Raises:
      CheckpointError: ``config`` does not describe ``values`` (nothing is written).
    """
    name = f"model.ckpt-{global_step}" if global_step is not None else "model.ckpt"
    if config is not None:  # checked here to name output_dir, not the staging directory
        config = checkpoints.config_to_write(
            config, {n: list(getattr(v, "shape", ())) for n, v in values.items()}, output_dir)
    if vocab_file and not tf.io.gfile.exists(vocab_file):
        raise CheckpointError(f"vocab file not found: {vocab_file}")
    with staged_directory(output_dir, overwrite) as tmp:
        save_original_checkpoint(
            os.path.join(tmp, name), variables=values, global_step=global_step,
            config=False if config is None else config, vocab_file=vocab_file)
    return os.path.join(os.path.abspath(output_dir), name)


# ---------------------------------------------------------------------------
# Built models, by original name
# ---------------------------------------------------------------------------

def load_original_checkpoint(path: str, *models, variables: Optional[Mapping] = None,
                             allow_missing: Sequence[str] = ()) -> checkpoints.LoadReport:
    """:func:`checkpoints.assign_original_weights` (the same arguments, report and errors)
    with the values of the checkpoint at ``path``: a prefix, ``.index`` file or directory
    (see ``resolve_checkpoint``)."""
    prefix, reader, shapes = files.open_checkpoint(path)
    return checkpoints.assign_by_name(prefix, shapes, reader.get_tensor, models, variables,
                                      allow_missing)


def save_original_checkpoint(prefix: str, *models, variables: Optional[Mapping] = None,
                             global_step: Optional[int] = None, config=None,
                             vocab_file: Optional[str] = None) -> str:
    """Writes a TF1-readable checkpoint whose keys are the original names, and its config.

    The checkpoint's variables are exactly the original names (tools that read Google's
    checkpoints read ours); beside it go ``pretraining_config.json`` (so that a reader
    builds the same model: the head count, for one, is not in the shapes) and, when
    given, ``vocab.txt``. The files are written under a temporary prefix, the config
    and vocab written atomically, then the data and last the ``.index`` renamed into
    place and the directory's ``checkpoint`` state file updated: an interrupted write
    never leaves a checkpoint that looks valid, nor one without its config.

    Args:
      prefix: e.g. ``/path/model.ckpt-1000`` (the directory is created).
      *models: objects with ``original_variables()``.
      variables: extra ``{original name: variable or array}`` (e.g. optimizer slots).
      global_step: stored as an int64 ``global_step`` if given.
      config: None: the config the models carry (their encoders' ``TransformerConfig``,
        the backbone's ``model_size``; see :func:`model_hparams`), when they hold a
        discriminator encoder (``electra/``); a PretrainingConfig (written whole),
        FinetuningConfig or hparams mapping: written after checking that it describes
        the models and weights; False: no config.
      vocab_file: copied beside the checkpoint as ``vocab.txt``.
    Returns:
      the prefix written.
    Raises:
      CheckpointError: the config does not describe the models (or a derived one
        cannot), or ``vocab_file`` does not exist; nothing is written then.
    """
    tensors = {n: tf.convert_to_tensor(v)
               for n, v in checkpoints.original_variables(*models).items()}
    tensors.update({n: tf.convert_to_tensor(v) for n, v in (variables or {}).items()})
    if global_step is not None:
        tensors["global_step"] = tf.constant(global_step, tf.int64)
    if not tensors:
        raise ValueError("nothing to save")
    prefix = os.fspath(prefix)
    encoders = checkpoints.model_encoders(*models)
    shapes = {n: list(t.shape) for n, t in tensors.items()}
    if config is None:
        sidecar = checkpoints.derived_hparams(models, encoders, tensors, prefix)
    elif config is False:
        sidecar = None
    else:
        sidecar = checkpoints.config_to_write(config, shapes, prefix, encoders)
    if vocab_file and not tf.io.gfile.exists(vocab_file):
        raise CheckpointError(f"vocab file not found: {vocab_file} (to be copied beside "
                              f"{prefix} as {VOCAB_FILE})")
    directory = os.path.dirname(prefix) or "."
    vocab_tokens = None if vocab_file else _preprocessor_vocabulary(models)

    def write_sidecars():  # before the index: a checkpoint is never seen without them
        write_sidecar_files(directory, sidecar, vocab_file)
        if vocab_tokens is not None:  # a Keras task model's preprocessor knows its vocab
            write_text_atomic(os.path.join(directory, VOCAB_FILE),
                              "".join(token + "\n" for token in vocab_tokens))

    return files.write_checkpoint_files(prefix, tensors, before_index=write_sidecars)


def infer_pretraining_config(path: str, hparams=None, **overrides) -> PretrainingConfig:
    """A :class:`PretrainingConfig` whose model matches a TF1-name checkpoint.

    The ``pretraining_config.json`` beside the checkpoint when there is one (our
    writers put it there). Else what the variable shapes tell
    (:func:`infer_pretraining_config_from_shapes`): the embedding width, hidden size,
    depth, feed-forward size, vocab and the generator's width/depth (e.g. the released
    small model's generator fraction 1.0, spec 7.3); the head count only for the
    released sizes. ``hparams`` and ``overrides`` are applied on top
    (``model_hparam_overrides`` key by key).
    """
    prefix, _, shapes = files.open_checkpoint(path)
    stored, _ = read_sidecar_files(prefix)
    if stored:
        merged = checkpoints.merge_hparams(stored, hparams, overrides)
        return PretrainingConfig.from_preset(merged.get("model_size", "small"), merged)
    return checkpoints.infer_pretraining_config_from_shapes(shapes, prefix, hparams, **overrides)


def _preprocessor_vocabulary(models):
    """The vocabulary tokens of the first model with a Keras preprocessor, or None."""
    for model in models:
        tokens = getattr(getattr(model, "preprocessor", None), "vocabulary", None)
        if tokens:
            return list(tokens)
    return None


# ---------------------------------------------------------------------------
# Optimizer slots by original name
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class SlotLoadReport:
    """What :func:`load_slots` did."""

    path: str
    loaded: list    # slot names assigned (``<name>/adam_m`` / ``<name>/adam_v``)
    missing: list   # slot names absent from the checkpoint (left unchanged)
    global_step: Optional[int]  # the checkpoint's global_step, if it has one

    def __str__(self):
        return (f"loaded {len(self.loaded)} optimizer slots from {self.path} "
                f"({len(self.missing)} missing)")


def slot_variables(optimizer) -> dict:
    """``{"<original name>/adam_m": slot, "<original name>/adam_v": slot}`` of an optimizer.

    ``optimizer`` is an :class:`electra_tf.optimization.AdamWeightDecay` (or Lamb),
    built. Pass the result as ``variables=`` to :func:`save_original_checkpoint`
    to write checkpoints holding what the original's do.
    """
    slots = {}
    for name, moments in optimizer.slots_by_original_name().items():
        for suffix, slot in zip(checkpoints.SLOT_SUFFIXES, moments):
            slots[f"{name}/{suffix}"] = slot
    return slots


def load_slots(optimizer, path: str, restore_iterations: bool = False) -> SlotLoadReport:
    """Assigns ``<name>/adam_m`` / ``<name>/adam_v`` from a TF1 checkpoint where present.

    Released checkpoints may lack some or all slots (spec 7.2); missing slots
    keep their values (zeros when freshly built) and are listed in the report.
    The optimizer must be built first (``optimizer.build(variables)``).

    Args:
      path: checkpoint prefix, ``.index`` file or directory.
      restore_iterations: also set ``optimizer.iterations`` from the checkpoint's
        ``global_step`` (to resume training where it stopped).
    Raises:
      CheckpointError: unreadable checkpoint or a slot of the wrong shape
        (nothing is assigned then).
    """
    slots = slot_variables(optimizer)
    prefix, reader, shapes = files.open_checkpoint(path)
    present = {n: s for n, s in slots.items() if n in shapes}
    bad = [f"{n}: checkpoint {shapes[n]}, optimizer {list(s.shape)}"
           for n, s in present.items() if list(shapes[n]) != list(s.shape)]
    if bad:
        raise CheckpointError("optimizer slot shape mismatch: " + "; ".join(bad[:5]))
    for name, slot in present.items():
        slot.assign(tf.cast(reader.get_tensor(name), slot.dtype))
    step = int(reader.get_tensor("global_step")) if "global_step" in shapes else None
    if restore_iterations and step is not None:
        optimizer.iterations.assign(step)
    return SlotLoadReport(path=prefix, loaded=sorted(present),
                          missing=sorted(n for n in slots if n not in present),
                          global_step=step)
