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

from electra_tf.config import (FinetuningConfig, PretrainingConfig, load_preset, parse_hparams,
                               preset_for_shape)
from electra_tf.formats.common import CONFIG_FILE, VOCAB_FILE, write_sidecar_files
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
    tensors = {n: tf.convert_to_tensor(v) for n, v in original_variables(*models).items()}
    tensors.update({n: tf.convert_to_tensor(v) for n, v in (variables or {}).items()})
    if global_step is not None:
        tensors["global_step"] = tf.constant(global_step, tf.int64)
    if not tensors:
        raise ValueError("nothing to save")
    prefix = os.fspath(prefix)
    encoders = model_encoders(*models)
    shapes = {n: list(t.shape) for n, t in tensors.items()}
    if config is None:
        sidecar = _derived_hparams(models, encoders, tensors, prefix)
    elif config is False:
        sidecar = None
    else:
        sidecar = config_to_write(config, shapes, prefix, encoders)
    if vocab_file and not tf.io.gfile.exists(vocab_file):
        raise CheckpointError(f"vocab file not found: {vocab_file} (to be copied beside "
                              f"{prefix} as {VOCAB_FILE})")
    directory = os.path.dirname(prefix) or "."
    tf.io.gfile.makedirs(directory)
    vocab_tokens = None if vocab_file else _preprocessor_vocabulary(models)
    tmp_prefix = os.path.join(directory, f".tmp-{uuid.uuid4().hex}", os.path.basename(prefix))
    names = sorted(tensors)
    try:
        tf.raw_ops.SaveV2(prefix=tmp_prefix, tensor_names=names,
                          shape_and_slices=[""] * len(names),
                          tensors=[tensors[n] for n in names])
        # The config and vocab before the index: a checkpoint is never seen without them.
        write_sidecar_files(directory, sidecar, vocab_file)
        if vocab_tokens is not None:  # a Keras task model's preprocessor knows its vocab
            write_text_atomic(os.path.join(directory, VOCAB_FILE),
                              "".join(token + "\n" for token in vocab_tokens))
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
# The config written beside the weights
# ---------------------------------------------------------------------------

# The TransformerConfig fields that change what a built model computes (dropout and the
# initializer range do not, at inference): a config written beside weights must match them.
MODEL_FIELDS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers",
                "num_attention_heads", "intermediate_size", "hidden_act",
                "max_position_embeddings", "type_vocab_size")
_ENCODER_SCOPES = ("electra", "generator", "generator_ltr", "generator_rtl")
_GENERATOR_SCOPES = _ENCODER_SCOPES[1:]


def _layers_of(models) -> list:
    """The models and every layer inside them (a PretrainingModels counts as its models)."""
    found = []
    for model in models:
        if model is None:
            continue
        if not hasattr(model, "_flatten_layers") and hasattr(model, "models"):
            found += _layers_of(model.models)
            continue
        found.append(model)
        if hasattr(model, "_flatten_layers"):
            found += list(model._flatten_layers(include_self=False))
    return found


def model_encoders(*models) -> dict:
    """``{original scope: TransformerConfig}`` of the encoders inside ``models``.

    Scopes: ``electra`` (the discriminator, a backbone or a task model's encoder, or the
    MLM-only network), ``generator``, ``generator_ltr`` / ``generator_rtl`` (Electric).
    """
    from electra_tf.modeling.encoder import ElectraEncoder
    found: dict = {}
    for layer in _layers_of(models):
        if isinstance(layer, ElectraEncoder):
            found.setdefault(layer.scope, layer.config)
    return found


def _model_size(models) -> Optional[str]:
    """The size preset a model says it was trained as (``ElectraBackbone.model_size``)."""
    from electra_tf.config import available_presets
    for layer in _layers_of(models):
        size = getattr(layer, "model_size", None)
        if isinstance(size, str) and size in available_presets():
            return size
    return None


def merge_hparams(*layers) -> dict:
    """Hparams (dicts, JSON or .json paths) merged, later ones winning;
    ``model_hparam_overrides`` are merged key by key, so that e.g.
    ``{"model_hparam_overrides": {"num_attention_heads": 4}}`` keeps the sizes read from a
    checkpoint or its config."""
    merged: dict = {}
    for layer in layers:
        for key, value in parse_hparams(layer).items():
            if key == "model_hparam_overrides" and isinstance(value, Mapping) and \
                    isinstance(merged.get(key), Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


def model_hparams(*models, names=None) -> Optional[dict]:
    """The PretrainingConfig hparams that built models carry, or None without a
    discriminator encoder (``electra/``).

    Every field of the discriminator's ``TransformerConfig`` (sizes, heads, activation,
    dropout, positions, token types), the embedding width and vocab size, the size
    preset (the backbone's ``model_size``, else the preset of that width and depth, else
    ``small``), the objective the names show (the recipe they are recognised as, see
    :mod:`electra_tf.pretraining.recipes`) and the generator's width and depth as
    fractions. Not what models cannot tell (casing, training hyperparameters): readers
    take those from the preset.
    """
    encoders = model_encoders(*models)
    disc = encoders.get("electra")
    if disc is None:
        return None
    names = list(original_variables(*models) if names is None else names)
    size = (_model_size(models) or preset_for_shape(disc.hidden_size, disc.num_hidden_layers)
            or "small")
    hparams = {"model_size": size, "vocab_size": disc.vocab_size,
               "embedding_size": disc.embedding_size,
               "model_hparam_overrides": {k: v for k, v in disc.to_dict().items()
                                          if k not in ("vocab_size", "embedding_size")}}
    if disc.max_position_embeddings < load_preset(size)["pretraining"]["max_seq_length"]:
        hparams["max_seq_length"] = disc.max_position_embeddings
    from electra_tf.pretraining.recipes import Recipe
    recipe = Recipe.from_checkpoint_names(names)
    hparams.update(recipe.checkpoint_hparams(names))
    gen = encoders.get(recipe.generator_scope)
    if gen is not None:
        hparams.update(generator_hidden_size=gen.hidden_size / disc.hidden_size,
                       generator_layers=gen.num_hidden_layers / disc.num_hidden_layers)
    return hparams


def config_of_models(*models, **hparams) -> PretrainingConfig:
    """The PretrainingConfig of built models (:func:`model_hparams`), ``hparams`` on top
    (e.g. ``do_lower_case=False``): what to pass as ``config`` to the format writers.

    Raises:
      CheckpointError: the models hold no discriminator encoder, or a PretrainingConfig
        cannot describe them (a generator whose heads are not max(1, G // 64)).
    """
    derived = model_hparams(*models)
    if derived is None:
        raise CheckpointError("the models hold no discriminator encoder (electra/encoder/*): "
                              "there is no PretrainingConfig to derive from them")
    merged = merge_hparams(derived, hparams)
    config = PretrainingConfig.from_preset(merged["model_size"], merged)
    problems = _config_problems(config, model_encoders(*models))
    if problems:
        raise CheckpointError(_underivable(problems, "the models"))
    return config


def _underivable(problems, what) -> str:
    return (f"a PretrainingConfig cannot describe {what} ({'; '.join(problems[:3])}): it "
            "derives a generator's num_attention_heads as max(1, G // 64) and its "
            f"intermediate_size as 4 * G; write with config=False (no {CONFIG_FILE})")


def _derived_hparams(models, encoders, tensors, prefix) -> Optional[dict]:
    """The models' hparams to write beside ``prefix``, checked to rebuild the same encoders."""
    hparams = model_hparams(*models, names=tensors)
    if hparams is None:
        return None
    config = PretrainingConfig.from_preset(hparams["model_size"], hparams)
    problems = _config_problems(config, encoders)
    if problems:
        raise CheckpointError(_underivable(problems, f"the models saved to {prefix}"))
    return hparams


def _config_problems(config: PretrainingConfig, encoders: Mapping) -> list:
    """How the encoders ``config`` builds differ from ``encoders`` (by scope)."""
    expected = {"electra": config.discriminator_config()}
    if any(s in encoders for s in _GENERATOR_SCOPES):
        generator = config.generator_config()
        expected.update({s: generator for s in _GENERATOR_SCOPES})
    problems = []
    for scope, want in expected.items():
        have = encoders.get(scope)
        for field in MODEL_FIELDS if have is not None else ():
            if getattr(want, field) != getattr(have, field):
                problems.append(f"{scope} {field} {getattr(want, field)!r} in the config, "
                                f"{getattr(have, field)!r} in the model")
    return problems


def _shape_facts(shapes: Mapping, scope: str) -> dict:
    """The TransformerConfig fields that the shapes of one scope show."""
    facts = {}
    layer = f"{scope}/encoder/layer_0"
    if f"{layer}/attention/self/query/kernel" in shapes:
        facts["hidden_size"] = shapes[f"{layer}/attention/self/query/kernel"][-1]
        facts["num_hidden_layers"] = _num_layers(shapes, scope)
    if f"{layer}/intermediate/dense/kernel" in shapes:
        facts["intermediate_size"] = shapes[f"{layer}/intermediate/dense/kernel"][-1]
    table = lambda name: shapes.get(f"{scope}/embeddings/{name}")  # noqa: E731
    if table("word_embeddings"):
        facts["vocab_size"], facts["embedding_size"] = table("word_embeddings")
    if table("position_embeddings"):
        facts["max_position_embeddings"] = table("position_embeddings")[0]
    if table("token_type_embeddings"):
        facts["type_vocab_size"] = table("token_type_embeddings")[0]
    return facts


def _shape_problems(config: PretrainingConfig, shapes: Mapping) -> list:
    """How the shapes of the models ``config`` builds differ from ``shapes``."""
    shapes = {n: list(s) for n, s in shapes.items()}
    expected = {"electra": config.discriminator_config()}
    for scope in _GENERATOR_SCOPES:
        if f"{scope}/encoder/layer_0/attention/self/query/kernel" in shapes:
            expected[scope] = config.generator_config()
    problems = []
    for scope, want in expected.items():
        for field, value in _shape_facts(shapes, scope).items():
            if getattr(want, field) != value:
                problems.append(f"{scope} {field} {getattr(want, field)} in the config, "
                                f"{value} in the weights")
    return problems


def pretraining_config_of(config) -> tuple:
    """(what to write as ``pretraining_config.json``, the PretrainingConfig it builds) for a
    PretrainingConfig (written whole), a FinetuningConfig (its model hparams and casing) or
    a mapping of PretrainingConfig hparams.

    Raises:
      TypeError: any other object.
    """
    if isinstance(config, PretrainingConfig):
        return config, config
    if isinstance(config, FinetuningConfig):
        payload = {k: getattr(config, k) for k in (
            "model_size", "debug", "model_hparam_overrides", "embedding_size", "vocab_size",
            "do_lower_case", "max_seq_length")}
        return payload, PretrainingConfig.from_preset(config.model_size, payload)
    if isinstance(config, Mapping):
        payload = {k: v for k, v in config.items() if k != "max_predictions_per_seq"}
        return payload, PretrainingConfig.from_preset(payload.get("model_size", "small"), payload)
    raise TypeError(f"config must be a PretrainingConfig, a FinetuningConfig or a dict of "
                    f"hparams, got {type(config).__name__}")


def config_to_write(config, shapes: Mapping, where: str, encoders: Optional[Mapping] = None):
    """What to write as ``pretraining_config.json`` for ``config``, checked against the
    weights' shapes (and the models' encoders, when known).

    Args:
      config: a PretrainingConfig (returned as is: written whole), a FinetuningConfig
        (its model hparams and casing) or a mapping of PretrainingConfig hparams.
      shapes: ``{original name: shape}`` of the weights written.
      where: the checkpoint, for the error.
    Raises:
      CheckpointError: the config does not describe the weights.
    """
    payload, built = pretraining_config_of(config)
    problems = _config_problems(built, encoders or {}) + _shape_problems(built, shapes)
    if problems:
        raise CheckpointError(
            f"the config given for {where} does not describe the weights written "
            f"({'; '.join(problems[:3])}{' ...' if len(problems) > 3 else ''}): pass the "
            f"config the models were built with, or write no {CONFIG_FILE} (config=False)")
    return payload


# ---------------------------------------------------------------------------
# Inferring model sizes from a checkpoint
# ---------------------------------------------------------------------------

def _num_layers(shapes: Mapping, scope: str) -> int:
    layer_ids = {int(m.group(1)) for n in shapes
                 if (m := re.match(rf"^{scope}/encoder/layer_(\d+)/", n))}
    return max(layer_ids) + 1 if layer_ids else 0


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
    from electra_tf.formats.common import read_sidecar_files
    prefix, _, shapes = open_checkpoint(path)
    stored, _ = read_sidecar_files(prefix)
    if stored:
        merged = merge_hparams(stored, hparams, overrides)
        return PretrainingConfig.from_preset(merged.get("model_size", "small"), merged)
    return infer_pretraining_config_from_shapes(shapes, prefix, hparams, **overrides)


def heads_are_certain(hidden: int, layers: int, intermediate: int) -> bool:
    """True for the shapes of a released size (small, base, large), whose head count is
    max(1, H // 64); other shapes do not tell the number of attention heads."""
    return preset_for_shape(hidden, layers) is not None and intermediate == 4 * hidden


def infer_pretraining_config_from_shapes(shapes: Mapping, source: str, hparams=None,
                                         **overrides) -> PretrainingConfig:
    """:func:`infer_pretraining_config` for ``{original name: shape}`` from any source.

    Raises:
      CheckpointError: not an ELECTRA checkpoint, or shapes of no released size and no
        head count given (``model_hparam_overrides.num_attention_heads``, or a
        ``model_size`` to accept max(1, H // 64)).
    """
    shapes = {name: list(shape) for name, shape in shapes.items()}
    user = merge_hparams(hparams, overrides)
    query = "electra/encoder/layer_0/attention/self/query/kernel"
    if "electra/embeddings/word_embeddings" not in shapes or query not in shapes:
        raise CheckpointError(f"{source} is not an ELECTRA checkpoint: it has no "
                              "electra/embeddings/word_embeddings or electra/encoder/layer_0")
    vocab, embedding = shapes["electra/embeddings/word_embeddings"]
    hidden = shapes[query][1]
    layers = _num_layers(shapes, "electra")
    intermediate = shapes["electra/encoder/layer_0/intermediate/dense/kernel"][1]
    given = (user.get("model_hparam_overrides") or {}).get("num_attention_heads")
    if given is None and "model_size" not in user and not user.get("debug") and \
            not heads_are_certain(hidden, layers, intermediate):
        guess = max(1, hidden // 64)
        raise CheckpointError(
            f"{source}: the number of attention heads is not in the shapes (hidden_size "
            f"{hidden}, {layers} layers, intermediate_size {intermediate}: no released "
            f"ELECTRA size) and there is no {CONFIG_FILE} beside it; pass it in hparams, "
            f"e.g. --hparams='{{\"model_hparam_overrides\": {{\"num_attention_heads\": "
            f"{guess}}}}}', or give a model_size (--model_size, or \"model_size\" in hparams) "
            f"to accept the released sizes' max(1, {hidden} // 64) = {guess}")
    size = preset_for_shape(hidden, layers)
    preset = load_preset(size or "small")
    preset_positions = preset["transformer"]["max_position_embeddings"]
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
    if positions < preset["pretraining"]["max_seq_length"]:
        inferred["max_seq_length"] = positions
    if model_overrides:
        inferred["model_hparam_overrides"] = model_overrides
    from electra_tf.pretraining.recipes import Recipe
    recipe = Recipe.from_checkpoint_names(shapes)
    scope = recipe.generator_scope
    gen_query = f"{scope}/encoder/layer_0/attention/self/query/kernel"
    if scope and gen_query in shapes:  # a generator's sizes, and the objective that trains it
        inferred["generator_hidden_size"] = shapes[gen_query][1] / hidden
        inferred["generator_layers"] = _num_layers(shapes, scope) / layers
        inferred.update(recipe.checkpoint_hparams(shapes))
    merged = merge_hparams(inferred, user)
    return PretrainingConfig.from_preset(merged.get("model_size", size), merged)


def _preprocessor_vocabulary(models):
    """The vocabulary tokens of the first model with a Keras preprocessor, or None."""
    for model in models:
        tokens = getattr(getattr(model, "preprocessor", None), "vocabulary", None)
        if tokens:
            return list(tokens)
    return None

