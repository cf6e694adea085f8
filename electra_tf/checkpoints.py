"""The original (TF1) variable-name layer (spec 7): names, not files.

Every weight of our Keras models has one canonical original name (e.g.
``electra/encoder/layer_3/attention/self/query/kernel``), given by the
``original_variables()`` method of each model. This module is what every checkpoint
format shares above its files:

* names <-> variables: :func:`original_variables`, :func:`original_values`, and
  :func:`assign_original_weights` (``{original name: array}`` into built models, every
  shape checked first);
* configs from names: what built models or a checkpoint's ``{name: shape}`` say of the
  :class:`~electra_tf.config.PretrainingConfig` that builds them
  (:func:`config_of_models`, :func:`infer_pretraining_config_from_shapes`), and the
  check of a config written beside weights (:func:`config_to_write`).

It reads and writes no file: the checkpoint files are :mod:`electra_tf.formats` (Google's
TF1-name checkpoints: :mod:`electra_tf.formats.tf1`, whose ``load_original_checkpoint`` /
``save_original_checkpoint`` join the two).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping, Optional, Sequence

import numpy as np

from electra_tf.config import (FinetuningConfig, PretrainingConfig, load_preset, parse_hparams,
                               preset_for_shape)

# The files our writers put beside the weights (electra_tf.formats.common writes them).
CONFIG_FILE = "pretraining_config.json"
VOCAB_FILE = "vocab.txt"
# The optimizer's two moments of a variable are saved as "<original name>/<suffix>".
SLOT_SUFFIXES = ("adam_m", "adam_v")
# Names present in original checkpoints that no model variable maps to (spec 7.2).
IGNORED_NAME_PATTERNS = tuple(rf"/{suffix}$" for suffix in SLOT_SUFFIXES) + (
    r"^global_step$", r"^generator_predictions/temperature$")
# The encoder scopes of every kind of run: the discriminator (or MLM-only network) and the
# generators (Electric's two towers included).
_ENCODER_SCOPES = ("electra", "generator", "generator_ltr", "generator_rtl")
_GENERATOR_SCOPES = _ENCODER_SCOPES[1:]


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
# Networks inside pre-training weights
# ---------------------------------------------------------------------------

def embeddings_scope(names, encoder_scope: str) -> str:
    """The embedding block an encoder reads: its own when the names hold one, else the
    discriminator's (a generator with tied embeddings, spec 1.4)."""
    own = f"{encoder_scope}/embeddings"
    return own if any(n.startswith(own + "/") for n in names) else "electra/embeddings"


def network_values(values: Mapping, network: str) -> dict:
    """One network of pre-training weights, named as it is when it stands alone.

    Args:
      values: ``{original name: array}`` of any kind of run (the recipe is recognised
        from the names, :mod:`electra_tf.pretraining.recipes`).
      network: ``"discriminator"``: ``electra/*`` and ``discriminator_predictions/*``;
        ``"generator"``: the masked LM (the recipe's ``masked_lm_scope``) moved under
        ``electra/`` with the embeddings it reads, beside ``generator_predictions/*``: the
        original's MLM-only layout (spec 3.11), which is also transformers'
        ``ElectraForMaskedLM``.
    Raises:
      CheckpointError: the weights hold no such network.
    """
    from electra_tf.pretraining.recipes import Recipe
    if network == "discriminator":
        out = {n: v for n, v in values.items()
               if n.startswith(("electra/", "discriminator_predictions/"))}
        if not any(n.startswith("electra/encoder/") for n in out):
            raise CheckpointError("the weights hold no discriminator (electra/encoder/*)")
        return out
    if network != "generator":
        raise ValueError(f"network must be 'discriminator' or 'generator', got {network!r}")
    scope = Recipe.from_checkpoint_names(values).masked_lm_scope
    if scope is None or not any(n.startswith("generator_predictions/") for n in values):
        raise CheckpointError("the weights hold no masked-LM generator "
                              "(generator_predictions/* on one encoder)")
    embeddings = embeddings_scope(values, scope)
    out = {}
    for name, value in values.items():
        if name.startswith(embeddings + "/"):
            out["electra/embeddings/" + name[len(embeddings) + 1:]] = value
        elif name.startswith(scope + "/") and not name.startswith(scope + "/embeddings/"):
            out["electra/" + name[len(scope) + 1:]] = value
        elif name.startswith("generator_predictions/"):
            out[name] = value
    return out


def encoder_configs(config: PretrainingConfig, scopes=None) -> dict:
    """``{original scope: TransformerConfig}`` that ``config`` builds: ``electra`` (the
    discriminator or the MLM-only network) and every generator scope (or only ``scopes``)."""
    generator = config.generator_config()
    found = {"electra": config.discriminator_config(),
             **{scope: generator for scope in _GENERATOR_SCOPES}}
    return found if scopes is None else {s: found[s] for s in scopes if s in found}


# ---------------------------------------------------------------------------
# Assigning by name
# ---------------------------------------------------------------------------

def ignored_name(name: str) -> bool:
    return any(re.search(p, name) for p in IGNORED_NAME_PATTERNS)


def assign_original_weights(values: Mapping, *models, variables: Optional[Mapping] = None,
                            allow_missing: Sequence[str] = (),
                            source: str = "weights") -> LoadReport:
    """Assigns ``{original name: array}`` to model variables by original name.

    Args:
      *models: objects with ``original_variables()`` (our models).
      variables: alternatively/additionally an explicit ``{original name: variable}``.
      allow_missing: regexes of original names that may be absent from ``values``
        (e.g. ``r"^task_specific/"`` when starting fine-tuning).
      source: what the values were read from, for the report and errors.
    Returns:
      a :class:`LoadReport`. Optimizer slots, ``global_step``,
      ``generator_predictions/temperature`` and other unknown entries are ignored.
    Raises:
      CheckpointError: a required name is missing or a shape differs; nothing is
        assigned in that case.
    """
    shapes = {name: list(np.shape(value)) for name, value in values.items()}
    return assign_by_name(source, shapes, lambda name: values[name], models, variables,
                          allow_missing)


def assign_by_name(source: str, shapes: Mapping, get_value, models, variables,
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
    import tensorflow as tf  # here: the name layer imports light (command lines check first)
    for name, variable in targets.items():
        if name in shapes:
            variable.assign(tf.cast(get_value(name), variable.dtype))
    unused = sorted(n for n in shapes if n not in targets and not ignored_name(n))
    return LoadReport(path=source, loaded=sorted(n for n in targets if n in shapes),
                      unused=unused, missing_allowed=sorted(missing_allowed))


# ---------------------------------------------------------------------------
# The config written beside the weights
# ---------------------------------------------------------------------------

# The TransformerConfig fields that change what a built model computes (dropout and the
# initializer range do not, at inference): a config written beside weights must match them.
MODEL_FIELDS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers",
                "num_attention_heads", "intermediate_size", "hidden_act",
                "max_position_embeddings", "type_vocab_size")


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
    from electra_tf.networks.encoder import ElectraEncoder
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


def derived_hparams(models, encoders, tensors, prefix) -> Optional[dict]:
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
    expected = encoder_configs(config, ["electra", *(
        _GENERATOR_SCOPES if any(s in encoders for s in _GENERATOR_SCOPES) else ())])
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
    expected = encoder_configs(config, ["electra", *(
        s for s in _GENERATOR_SCOPES
        if f"{s}/encoder/layer_0/attention/self/query/kernel" in shapes)])
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
