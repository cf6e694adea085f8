"""TF1-name checkpoints (spec 7) as ``{original name: numpy array}``.

The format of Google's releases and of our ``<model_dir>/tf1`` and
``<model_dir>/discriminator`` exports: a ``tf.train`` checkpoint whose keys are the
original variable names, optionally with ``global_step`` and the optimizer slots
``<name>/adam_m`` / ``<name>/adam_v``, and a ``checkpoint`` state file. Written as
``DIR/model.ckpt[-<step>].*`` with ``pretraining_config.json`` and ``vocab.txt`` beside
it (files the TF1 tools ignore; the checkpoint itself holds exactly the original names).

Finding, resolving and writing the checkpoint files themselves is
:mod:`electra_tf.checkpoints`; this module turns them into and out of plain arrays,
and moves an optimizer's slots by original name.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional

import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.formats.common import PretrainedWeights, read_sidecar_files
from electra_tf.io_utils import staged_directory


def read(path: str) -> PretrainedWeights:
    """Every non-slot tensor of a TF1-name checkpoint, plus the sidecar files beside it.

    Args:
      path: a checkpoint directory, prefix or ``.index`` path.
    """
    prefix, reader, shapes = checkpoints.open_checkpoint(path)
    values = {name: reader.get_tensor(name) for name in shapes
              if not checkpoints.ignored_name(name)}
    step = int(reader.get_tensor("global_step")) if "global_step" in shapes else None
    hparams, vocab = read_sidecar_files(prefix)
    return PretrainedWeights(values=values, hparams=hparams, vocab_file=vocab, source=prefix,
                             format="tf1", global_step=step)


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
        raise checkpoints.CheckpointError(f"vocab file not found: {vocab_file}")
    with staged_directory(output_dir, overwrite) as tmp:
        checkpoints.save_original_checkpoint(
            os.path.join(tmp, name), variables=values, global_step=global_step,
            config=False if config is None else config, vocab_file=vocab_file)
    return os.path.join(os.path.abspath(output_dir), name)


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
    built. Pass the result as ``variables=`` to ``checkpoints.save_original_checkpoint``
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
    prefix, reader, shapes = checkpoints.open_checkpoint(path)
    present = {n: s for n, s in slots.items() if n in shapes}
    bad = [f"{n}: checkpoint {shapes[n]}, optimizer {list(s.shape)}"
           for n, s in present.items() if list(shapes[n]) != list(s.shape)]
    if bad:
        raise checkpoints.CheckpointError("optimizer slot shape mismatch: " + "; ".join(bad[:5]))
    for name, slot in present.items():
        slot.assign(tf.cast(reader.get_tensor(name), slot.dtype))
    step = int(reader.get_tensor("global_step")) if "global_step" in shapes else None
    if restore_iterations and step is not None:
        optimizer.iterations.assign(step)
    return SlotLoadReport(path=prefix, loaded=sorted(present),
                          missing=sorted(n for n in slots if n not in present),
                          global_step=step)
