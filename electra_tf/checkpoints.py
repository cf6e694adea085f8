"""Checkpoints in the original (TF1) variable-name scheme (spec 7).

Every weight of our Keras models has one canonical original name (e.g.
``electra/encoder/layer_3/attention/self/query/kernel``), given by the
``original_variables()`` method of each model. This module reads Google's
released checkpoints into our models by those names and writes our weights
under the same names, so tools that read the original checkpoints read ours.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from electra_tf.config import PretrainingConfig, load_preset, parse_hparams, preset_for_shape
from electra_tf.io_utils import write_text_atomic

# The optimizer's two moments of a variable are saved as "<original name>/<suffix>".
SLOT_SUFFIXES = ("adam_m", "adam_v")
# Names present in original checkpoints that no model variable maps to (spec 7.2).
IGNORED_NAME_PATTERNS = tuple(rf"/{suffix}$" for suffix in SLOT_SUFFIXES) + (
    r"^global_step$", r"^generator_predictions/temperature$")
# The key of an object-based (tf.train.Checkpoint) checkpoint's object graph: present in a
# training run's ckpt-N and in keras-format directories, absent from TF1-name checkpoints.
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read into the requested models."""


@dataclasses.dataclass
class LoadReport:
    """What :func:`load_original_checkpoint` did."""

    path: str
    loaded: list
    unused: list          # unknown checkpoint entries (slots, global_step etc. not listed)
    missing_allowed: list  # requested variables absent from the checkpoint but allowed

    def __str__(self):
        return (f"loaded {len(self.loaded)} variables from {self.path} "
                f"({len(self.unused)} checkpoint entries unused, "
                f"{len(self.missing_allowed)} allowed missing)")


def original_variables(*models) -> dict:
    """Merges ``{original name: variable}`` of several models.

    Shared weights (e.g. the tied embedding block) appear once. Two different
    variables claiming one name is a programming error.
    """
    merged: dict = {}
    for model in models:
        for name, variable in model.original_variables().items():
            if name in merged and merged[name] is not variable:
                raise ValueError(f"two different variables claim the original name {name!r}")
            merged[name] = variable
    return merged


def original_values(*models) -> dict:
    """``{original name: numpy value}`` of built models (what the writers serialise)."""
    return {name: variable.numpy() for name, variable in original_variables(*models).items()}


def count_parameters(variables: Mapping) -> int:
    return int(sum(np.prod(v.shape) for v in variables.values()))


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

_STEP = re.compile(r"-(\d+)$")
_TRAINING_INDEX = re.compile(r"^(ckpt-\d+)\.index$")
_SHARD = re.compile(r"\.data-(\d+)-of-(\d+)$")
LOOKED_FOR = ("looked for a 'checkpoint' state file, ckpt-N.index (a training run) or "
              "<name>.index (a TF1 export)")


def is_complete_checkpoint(prefix: str) -> bool:
    """True if ``prefix.index`` and every ``prefix.data-XXXXX-of-YYYYY`` shard exist and the
    index can be read."""
    directory, base = os.path.split(os.fspath(prefix))
    try:
        names = set(tf.io.gfile.listdir(directory or "."))
    except tf.errors.OpError:
        return False
    if base + ".index" not in names:
        return False
    totals = {int(m.group(2)) for name in names
              if (m := _SHARD.search(name)) and name[: m.start()] == base}
    if len(totals) != 1:
        return False
    total = totals.pop()
    if any(f"{base}.data-{i:05d}-of-{total:05d}" not in names for i in range(total)):
        return False
    try:
        tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError):
        return False
    return True


def run_checkpoints(model_dir: str, complete_only: bool = True) -> list:
    """``[(step, prefix)]`` of the ``ckpt-N`` of a (pre-training) run directory, oldest first.

    Found by their ``.index`` files, not the state file (which may name deleted ones);
    ``complete_only`` keeps those whose index and data shards are all there
    (:func:`is_complete_checkpoint`).
    """
    model_dir = os.fspath(model_dir)
    try:
        names = tf.io.gfile.listdir(model_dir)
    except tf.errors.OpError:  # not a directory (or gone)
        return []
    found = []
    for name in names:
        m = _TRAINING_INDEX.match(name)
        if m:
            prefix = os.path.join(model_dir, m.group(1))
            if not complete_only or is_complete_checkpoint(prefix):
                found.append((int(m.group(1)[len("ckpt-"):]), prefix))
    return sorted(found)


def latest_complete_checkpoint(model_dir: str) -> Optional[str]:
    """The newest complete checkpoint prefix in a directory, or None.

    Candidates are the ``checkpoint`` state file's entries (which may name deleted
    files) and every ``ckpt-N`` of :func:`run_checkpoints`, newest step first; a
    candidate with a missing ``.index`` or data shard, or an index that cannot be
    read, is skipped for the previous one.
    """
    model_dir = os.fspath(model_dir)
    if not tf.io.gfile.isdir(model_dir):
        return None
    listed = []
    try:
        state = tf.train.get_checkpoint_state(model_dir)
    except (tf.errors.OpError, ValueError):
        state = None
    if state is not None:  # relative entries come joined to model_dir
        listed += list(state.all_model_checkpoint_paths) + [state.model_checkpoint_path]
    listed += [prefix for _, prefix in run_checkpoints(model_dir, complete_only=False)]
    candidates = {}
    for order, prefix in enumerate(p for p in listed if p):
        step = _STEP.search(os.path.basename(prefix))
        key = prefix if "://" in prefix else os.path.normpath(prefix)
        candidates[key] = (int(step.group(1)) if step else -1, order)
    for prefix in sorted(candidates, key=candidates.get, reverse=True):
        if is_complete_checkpoint(prefix):
            return prefix
    return None


def resolve_checkpoint(path: str) -> str:
    """Turns a directory, a prefix or a ``.index`` path into a checkpoint prefix.

    A directory resolves to its newest complete checkpoint
    (:func:`latest_complete_checkpoint`: the ``checkpoint`` state file's entries and
    a training run's ``ckpt-N``), else to its one ``<prefix>.index`` (as in Google's
    release archives).
    """
    path = os.fspath(path)
    if path.endswith(".index"):
        path = path[: -len(".index")]
    if tf.io.gfile.exists(path + ".index"):
        return path
    if tf.io.gfile.isdir(path):
        latest = latest_complete_checkpoint(path)
        if latest:
            return latest
        names = sorted(os.path.basename(i)
                       for i in tf.io.gfile.glob(os.path.join(path, "*.index")))
        broken = [n for n in names if _TRAINING_INDEX.match(n)]  # already tried
        others = [n for n in names if n not in broken]
        if len(others) == 1:
            return os.path.join(path, others[0][: -len(".index")])
        if len(others) > 1:
            raise CheckpointError(
                f"{path} holds several checkpoints ({', '.join(others)}) and no 'checkpoint' "
                "file saying which is latest; pass the prefix of one")
        raise CheckpointError(
            f"no checkpoint in directory {path}: {LOOKED_FOR}, each with its complete .data-* "
            "shards" + (f" (incomplete or unreadable: {', '.join(broken)})" if broken else ""))
    raise CheckpointError(f"checkpoint not found: {path} (neither {path}.index nor a directory)")


def read_checkpoint_shapes(path: str) -> dict:
    """``{name: shape list}`` of every entry in a checkpoint."""
    return dict(open_checkpoint(path)[2])


def _first_line(error: Exception) -> str:
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def ignored_name(name: str) -> bool:
    return any(re.search(p, name) for p in IGNORED_NAME_PATTERNS)


def load_original_checkpoint(path: str, *models, variables: Optional[Mapping] = None,
                             allow_missing: Sequence[str] = ()) -> LoadReport:
    """Assigns checkpoint values to model variables by original name.

    Args:
      path: checkpoint prefix, ``.index`` file, or directory (see ``resolve_checkpoint``).
      *models: objects with ``original_variables()`` (our models).
      variables: alternatively/additionally an explicit ``{original name: variable}``.
      allow_missing: regexes of original names that may be absent from the
        checkpoint (e.g. ``r"^task_specific/"`` when starting fine-tuning).
    Returns:
      a :class:`LoadReport`. Optimizer slots, ``global_step``,
      ``generator_predictions/temperature`` and other unknown entries are ignored.
    Raises:
      CheckpointError: a required name is missing or a shape differs; nothing is
        assigned in that case.
    """
    prefix, reader, shapes = open_checkpoint(path)
    return _assign(prefix, shapes, reader.get_tensor, models, variables, allow_missing)


def open_checkpoint(path: str):
    """(prefix, reader, {name: shape}) of a checkpoint, or one CheckpointError."""
    prefix = resolve_checkpoint(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
        return prefix, reader, reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {prefix}: {_first_line(e)}") from e


def assign_original_weights(values: Mapping, *models, variables: Optional[Mapping] = None,
                            allow_missing: Sequence[str] = (),
                            source: str = "weights") -> LoadReport:
    """Like :func:`load_original_checkpoint`, from an in-memory ``{original name: array}``."""
    shapes = {name: list(np.shape(value)) for name, value in values.items()}
    return _assign(source, shapes, lambda name: values[name], models, variables, allow_missing)


def _assign(source: str, shapes: Mapping, get_value, models, variables,
            allow_missing) -> LoadReport:
    targets = dict(original_variables(*models))
    targets.update(variables or {})
    missing, missing_allowed, mismatched = [], [], []
    for name, variable in targets.items():
        if name not in shapes:
            (missing_allowed if any(re.search(p, name) for p in allow_missing)
             else missing).append(name)
        elif list(shapes[name]) != list(variable.shape):
            mismatched.append((name, list(shapes[name]), list(variable.shape)))
    problems = [f"shape mismatch for {n}: checkpoint has {c}, model expects {m}"
                for n, c, m in mismatched[:10]]
    if len(mismatched) > 10:
        problems.append(f"... and {len(mismatched) - 10} more shape mismatches")
    problems += [f"missing from checkpoint: {n} (model expects {list(targets[n].shape)})"
                 for n in missing[:10]]
    if len(missing) > 10:
        problems.append(f"... and {len(missing) - 10} more missing variables")
    if problems:
        hint = ("the checkpoint was made for other model sizes: check --model_size, "
                "embedding_size and generator_hidden_size, or build the config with "
                "infer_pretraining_config()" if mismatched else
                "the checkpoint lacks part of this model (e.g. a discriminator-only export "
                "has no generator)")
        raise CheckpointError(f"cannot load {source}:\n  " + "\n  ".join(problems)
                              + f"\n  hint: {hint}")
    for name, variable in targets.items():
        if name in shapes:
            variable.assign(tf.cast(get_value(name), variable.dtype))
    unused = sorted(n for n in shapes if n not in targets and not ignored_name(n))
    return LoadReport(path=source, loaded=sorted(n for n in targets if n in shapes),
                      unused=unused, missing_allowed=sorted(missing_allowed))


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def save_original_checkpoint(prefix: str, *models, variables: Optional[Mapping] = None,
                             global_step: Optional[int] = None) -> str:
    """Writes a TF1-readable checkpoint whose keys are the original names.

    The files are written under a temporary prefix and renamed into place, then
    the directory's ``checkpoint`` state file is updated, so an interrupted
    write never leaves a half-written checkpoint that looks valid.

    Args:
      prefix: e.g. ``/path/model.ckpt-1000`` (the directory is created).
      *models: objects with ``original_variables()``.
      variables: extra ``{original name: variable or array}`` (e.g. optimizer slots).
      global_step: stored as an int64 ``global_step`` if given.
    Returns:
      the prefix written.
    """
    tensors = {n: tf.convert_to_tensor(v) for n, v in original_variables(*models).items()}
    tensors.update({n: tf.convert_to_tensor(v) for n, v in (variables or {}).items()})
    if global_step is not None:
        tensors["global_step"] = tf.constant(global_step, tf.int64)
    if not tensors:
        raise ValueError("nothing to save")
    prefix = os.fspath(prefix)
    directory = os.path.dirname(prefix) or "."
    tf.io.gfile.makedirs(directory)
    tmp_prefix = os.path.join(directory, f".tmp-{uuid.uuid4().hex}", os.path.basename(prefix))
    names = sorted(tensors)
    try:
        tf.raw_ops.SaveV2(prefix=tmp_prefix, tensor_names=names,
                          shape_and_slices=[""] * len(names),
                          tensors=[tensors[n] for n in names])
        written = tf.io.gfile.glob(tmp_prefix + ".*")
        # Data shards first, index last: a reader only trusts a prefix whose .index exists.
        for src in sorted(written, key=lambda f: f.endswith(".index")):
            tf.io.gfile.rename(src, prefix + src[len(tmp_prefix):], overwrite=True)
    finally:
        if tf.io.gfile.exists(os.path.dirname(tmp_prefix)):
            tf.io.gfile.rmtree(os.path.dirname(tmp_prefix))
    write_state_file(directory, os.path.basename(prefix))
    return prefix


def write_state_file(directory: str, latest: str, kept: Optional[Sequence[str]] = None,
                     timestamps: bool = False) -> None:
    """Atomically rewrites the directory's ``checkpoint`` state file (CheckpointState text).

    Args:
      latest: the prefix it points at (only its base name is written: entries are
        relative to the directory).
      kept: every prefix it lists, oldest first (default: ``latest`` alone).
      timestamps: also list each ``.index`` file's mtime, without which
        ``tf.train.CheckpointManager`` never rotates (deletes) the listed checkpoints.
    """
    kept = [latest] if kept is None else list(kept)
    names = [os.path.basename(p) for p in kept]
    state = (f'model_checkpoint_path: "{os.path.basename(latest)}"\n'
             + "".join(f'all_model_checkpoint_paths: "{n}"\n' for n in names))
    if timestamps:
        stamps = [tf.io.gfile.stat(os.path.join(directory, n) + ".index").mtime_nsec / 1e9
                  for n in names]
        state += "".join(f"all_model_checkpoint_timestamps: {t}\n" for t in stamps)
    write_text_atomic(os.path.join(directory, "checkpoint"), state)


# ---------------------------------------------------------------------------
# Inferring model sizes from a checkpoint
# ---------------------------------------------------------------------------

def _num_layers(shapes: Mapping, scope: str) -> int:
    layer_ids = {int(m.group(1)) for n in shapes
                 if (m := re.match(rf"^{scope}/encoder/layer_(\d+)/", n))}
    return max(layer_ids) + 1 if layer_ids else 0


def infer_pretraining_config(path: str, hparams=None, **overrides) -> PretrainingConfig:
    """A :class:`PretrainingConfig` whose model shapes match a checkpoint.

    Reads the embedding width, hidden size, depth, feed-forward size, vocab and
    the generator's width/depth (e.g. the released small model's generator
    fraction 1.0, spec 7.3) from the variable shapes. Head counts cannot be
    read from shapes and follow the max(1, H // 64) rule. ``hparams`` and
    ``overrides`` are applied on top of what was inferred.
    """
    return infer_pretraining_config_from_shapes(read_checkpoint_shapes(path), path, hparams,
                                                **overrides)


def infer_pretraining_config_from_shapes(shapes: Mapping, source: str, hparams=None,
                                         **overrides) -> PretrainingConfig:
    """:func:`infer_pretraining_config` for ``{original name: shape}`` from any source."""
    shapes = {name: list(shape) for name, shape in shapes.items()}
    query = "electra/encoder/layer_0/attention/self/query/kernel"
    if "electra/embeddings/word_embeddings" not in shapes or query not in shapes:
        raise CheckpointError(f"{source} is not an ELECTRA checkpoint: it has no "
                              "electra/embeddings/word_embeddings or electra/encoder/layer_0")
    vocab, embedding = shapes["electra/embeddings/word_embeddings"]
    hidden = shapes[query][1]
    layers = _num_layers(shapes, "electra")
    intermediate = shapes["electra/encoder/layer_0/intermediate/dense/kernel"][1]
    size = preset_for_shape(hidden, layers)
    preset_positions = load_preset(size or "small")["transformer"]["max_position_embeddings"]
    positions = shapes.get("electra/embeddings/position_embeddings", [preset_positions])[0]
    model_overrides = {}
    if size is None:
        size = "small"
        model_overrides.update(hidden_size=hidden, num_hidden_layers=layers)
    if intermediate != 4 * hidden:
        model_overrides["intermediate_size"] = intermediate
    if positions != preset_positions:
        model_overrides["max_position_embeddings"] = positions
    inferred = {"model_size": size, "vocab_size": vocab, "embedding_size": embedding}
    if model_overrides:
        inferred["model_hparam_overrides"] = model_overrides
    for scope in ("generator", "generator_ltr"):
        gen_query = f"{scope}/encoder/layer_0/attention/self/query/kernel"
        if gen_query in shapes:
            inferred["generator_hidden_size"] = shapes[gen_query][1] / hidden
            inferred["generator_layers"] = _num_layers(shapes, scope) / layers
            inferred["untied_generator_embeddings"] = (
                f"{scope}/embeddings/word_embeddings" in shapes)
            if scope == "generator_ltr":
                inferred.update(electric_objective=True, electra_objective=False,
                                two_tower_generator=True)
            break
    return PretrainingConfig.from_preset(size, {**inferred, **parse_hparams(hparams), **overrides})
