"""Typed configuration built from the JSON presets in ``configs/``.

Every default lives in ``configs/*.json`` (spec 1.1, 1.3, 1.5); this module only
knows how to load, merge, override and derive. Construction follows the
original's order (spec 1.1): preset defaults -> user hparams -> derived values
-> debug preset -> objective-implied values -> user hparams again, so explicit
user values always win. Fine-tuning (spec 1.6, 1.7) follows its own order, see
:meth:`FinetuningConfig.from_preset`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import os
import typing
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from electra_tf.io_utils import write_text_atomic

HparamsLike = Union[None, str, os.PathLike, Mapping[str, Any]]


class ConfigError(ValueError):
    """A user-facing configuration error (unknown key, bad value, missing file)."""


# ---------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------

def configs_dir() -> Path:
    """The directory holding the JSON presets (source checkout or installed package)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
        if (candidate / "small.json").is_file():
            return candidate
    raise ConfigError(
        f"cannot find the configs/ presets next to {here}; reinstall electra-tf "
        "(pip install .) or run from a source checkout")


def available_presets() -> list[str]:
    """Model-size presets (small, base, large...): the files whose ``model_size`` is their name.

    Overlays such as ``debug.json`` and ``quickstart.json`` are not sizes.
    """
    return sorted(p.stem for p in configs_dir().glob("*.json")
                  if load_preset(p.stem).get("pretraining", {}).get("model_size") == p.stem)


def preset_for_shape(hidden_size: int, num_hidden_layers: int) -> Optional[str]:
    """The size preset whose transformer has this width and depth, or None."""
    for size in available_presets():
        transformer = load_preset(size)["transformer"]
        if (transformer["hidden_size"], transformer["num_hidden_layers"]) == (
                hidden_size, num_hidden_layers):
            return size
    return None


def _deep_merge(base: dict, update: Mapping) -> dict:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}:{e.colno}: invalid JSON ({e.msg})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level")
    return data


def load_preset(name: str) -> dict:
    """Returns the fully merged preset ``configs/<name>.json`` (``inherits`` resolved)."""
    path = configs_dir() / f"{name}.json"
    if not path.is_file():
        raise ConfigError(
            f"unknown model size / preset {name!r}; available: {', '.join(available_presets())}")
    data = _read_json(path)
    parent = data.pop("inherits", None)
    if parent:
        data = _deep_merge(load_preset(Path(parent).stem), data)
    return data


def parse_hparams(hparams: HparamsLike) -> dict:
    """Accepts None, a mapping, a JSON string, or a path to a ``.json`` file (as the original)."""
    if hparams is None or hparams == "":
        return {}
    if isinstance(hparams, Mapping):
        return dict(hparams)
    text = os.fspath(hparams)
    if text.endswith(".json"):
        return _read_json(Path(text))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"--hparams is neither a path ending in .json nor valid JSON ({e.msg} at "
            f"column {e.colno}): {text!r}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"--hparams must be a JSON object, got {text!r}")
    return data


# ---------------------------------------------------------------------------
# Typed application of overrides
# ---------------------------------------------------------------------------

def _unknown_key_error(kind: str, key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown {kind} {key!r}{hint} (known: {', '.join(sorted(known))})")


def _coerce(cls_name: str, key: str, value: Any, annotation: Any) -> Any:
    """Checks/coerces one value against its dataclass annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        annotation = next(a for a in args if a is not type(None))
        origin = typing.get_origin(annotation)
    bad = ConfigError(f"{cls_name} {key!r} expects {getattr(annotation, '__name__', annotation)}, "
                      f"got {value!r}")
    if annotation is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise bad
        return int(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping):
            raise bad
        return dict(value)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise bad
        item_args = typing.get_args(annotation)
        if not item_args:
            return list(value)
        return [_coerce(cls_name, key, v, item_args[0]) for v in value]
    return value


def _apply(cls_name: str, target: dict, updates: Mapping, fields: dict, *,
           forbidden: Mapping[str, str] = {}) -> None:
    for key, value in updates.items():
        if key in forbidden:
            raise ConfigError(f"{cls_name} {key!r} cannot be set: {forbidden[key]}")
        if key not in fields:
            raise _unknown_key_error(cls_name, key, [k for k in fields if k not in forbidden])
        target[key] = _coerce(cls_name, key, value, fields[key])


def _field_types(cls) -> dict:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


# ---------------------------------------------------------------------------
# Transformer (BERT-style) config
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Shape and regularisation of one ELECTRA transformer (spec 1.3, 2)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str
    hidden_dropout_prob: float
    attention_probs_dropout_prob: float
    max_position_embeddings: int
    type_vocab_size: int
    initializer_range: float
    embedding_size: int  # width of the embedding tables (E); a projection maps E->H if E != H

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size",
                     "embedding_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"transformer {name} must be positive, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                f"{self.num_attention_heads}")
        if self.hidden_act not in ("gelu", "gelu_approximate", "relu"):
            raise ConfigError(f"hidden_act {self.hidden_act!r} is not one of gelu, "
                              "gelu_approximate, relu")

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TransformerConfig":
        fields = _field_types(cls)
        checked: dict = {}
        _apply("transformer hparam", checked, values, fields)
        missing = sorted(set(fields) - set(checked))
        if missing:
            raise ConfigError(f"transformer config lacks {', '.join(missing)}")
        return cls(**checked)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "TransformerConfig":
        return dataclasses.replace(self, **changes)


def _bert_config(size_preset: Mapping, vocab_size: int, overrides: Mapping) -> dict:
    """The original's ``get_bert_config``: overrides are applied before and after derivation."""
    fields = _field_types(TransformerConfig)
    args = {k: v for k, v in size_preset.items()}
    args["vocab_size"] = vocab_size
    _apply("model_hparam_overrides key", args, overrides, fields)
    args["num_attention_heads"] = max(1, args["hidden_size"] // 64)
    args["intermediate_size"] = 4 * args["hidden_size"]
    _apply("model_hparam_overrides key", args, overrides, fields)
    return args


def derive_generator_config(disc: TransformerConfig, hidden_fraction: float,
                            layers_fraction: float, tied_embeddings: bool = True
                            ) -> TransformerConfig:
    """Generator size from the discriminator's (spec 1.4).

    G = round(H * hidden_fraction), layers = round(layers * layers_fraction),
    heads = max(1, G // 64), I = 4G. Tied embeddings keep the discriminator's
    embedding width E (the generator then projects E->G); untied use width G.
    """
    hidden = int(round(disc.hidden_size * hidden_fraction))
    layers = int(round(disc.num_hidden_layers * layers_fraction))
    if hidden <= 0 or layers <= 0:
        raise ConfigError(
            f"generator_hidden_size={hidden_fraction} and generator_layers={layers_fraction} "
            f"give a generator of width {hidden} and depth {layers}; both must be >= 1")
    return disc.replace(hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=max(1, hidden // 64), intermediate_size=4 * hidden,
                        embedding_size=disc.embedding_size if tied_embeddings else hidden)


# ---------------------------------------------------------------------------
# Pre-training config
# ---------------------------------------------------------------------------

_DERIVED_ONLY = {
    "max_predictions_per_seq":
        "it is derived as int((mask_prob + 0.005) * max_seq_length) (spec 1.1); "
        "set mask_prob or max_seq_length instead",
}


OPTIMIZERS = ("adamw", "lamb")


def _validate_update_hparams(config) -> None:
    """The optimizer name and accumulation steps (shared by both configs)."""
    if config.optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {config.optimizer!r}; choose one of "
                          f"{', '.join(OPTIMIZERS)}")
    k = config.gradient_accumulation_steps
    if k < 1:
        raise ConfigError(f"gradient_accumulation_steps must be >= 1, got {k}")
    if config.train_batch_size % k:
        raise ConfigError(f"train_batch_size {config.train_batch_size} is not divisible by "
                          f"gradient_accumulation_steps {k} (each update sums {k} "
                          "micro-batches of train_batch_size / k examples)")


class _ModelConfigMixin:
    """What the pre-training and fine-tuning configs share: the encoder and JSON output."""

    def discriminator_config(self) -> TransformerConfig:
        """The discriminator's (= the fine-tuned) transformer (spec 1.3, 1.5).

        ``get_bert_config`` on the size preset, then the debug preset's transformer (which
        ignores ``model_hparam_overrides``), then ``embedding_size`` (None means H).
        """
        args = _bert_config(load_preset(self.model_size)["transformer"], self.vocab_size,
                            self.model_hparam_overrides)
        if self.debug:
            args.update(load_preset("debug")["transformer"])
        args["embedding_size"] = self.embedding_size or args["hidden_size"]
        config = TransformerConfig.from_dict(args)
        if self.max_seq_length > config.max_position_embeddings:
            raise ConfigError(f"max_seq_length {self.max_seq_length} exceeds "
                              f"max_position_embeddings {config.max_position_embeddings}")
        return config

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, path: Union[str, os.PathLike]) -> None:
        """Writes the config as sorted, indented JSON, atomically (local or remote path)."""
        write_text_atomic(os.fspath(path),
                          json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


@dataclasses.dataclass
class PretrainingConfig(_ModelConfigMixin):
    """Hyperparameters of ELECTRA / Electric / MLM pre-training (spec 1.1).

    Build it with :meth:`from_preset`; defaults come from ``configs/<size>.json``.
    """

    model_size: str
    debug: bool
    do_train: bool
    do_eval: bool
    electra_objective: bool
    electric_objective: bool
    gen_weight: float
    disc_weight: float
    mask_prob: float
    learning_rate: float
    lr_decay_power: float
    weight_decay_rate: float
    # "adamw": the original AdamWeightDecay; "lamb": LAMB (large batches, not in the original).
    optimizer: str
    num_warmup_steps: int
    iterations_per_loop: int
    save_checkpoints_steps: int
    num_train_steps: int
    num_eval_steps: int
    keep_checkpoint_max: Optional[int]
    model_hparam_overrides: dict
    embedding_size: Optional[int]
    vocab_size: int
    do_lower_case: bool
    uniform_generator: bool
    two_tower_generator: bool
    untied_generator_embeddings: bool
    untied_generator: bool
    generator_layers: float
    generator_hidden_size: float
    disallow_correct: bool
    temperature: float
    max_seq_length: int
    train_batch_size: int
    # Micro-batches (of train_batch_size / k examples) summed into one update of
    # train_batch_size examples; 1 in the original.
    gradient_accumulation_steps: int
    eval_batch_size: int
    # Derived (spec 1.1); not settable by the user.
    max_predictions_per_seq: int = dataclasses.field(default=0)

    # -- construction -------------------------------------------------------

    @classmethod
    def hparam_names(cls) -> list[str]:
        return [n for n in _field_types(cls) if n not in _DERIVED_ONLY]

    @classmethod
    def from_preset(cls, model_size: str = "small", hparams: HparamsLike = None,
                    **overrides) -> "PretrainingConfig":
        """Loads ``configs/<model_size>.json`` and applies user hparams in the original's order.

        Args:
          model_size: "small", "base", "large" (or any preset in configs/). A
            ``model_size`` inside ``hparams`` takes precedence, as in the original.
          hparams: dict, JSON string, or path to a ``.json`` file.
          **overrides: more hparams (e.g. from command-line flags), applied after ``hparams``.
        """
        user = {**parse_hparams(hparams), **overrides}
        fields = _field_types(cls)
        size = user.get("model_size", model_size)
        if not isinstance(size, str):
            raise ConfigError(f"model_size must be a string, got {size!r}")
        preset = load_preset(size)
        values: dict = {}
        _apply("pretraining hparam", values, preset["pretraining"], fields)   # 1. defaults
        _apply("pretraining hparam", values, user, fields, forbidden=_DERIVED_ONLY)  # 2. user
        values["max_predictions_per_seq"] = int(                           # 3. derived
            (values["mask_prob"] + 0.005) * values["max_seq_length"])
        if values["debug"]:                                                  # 4. debug
            _apply("pretraining hparam", values, load_preset("debug")["pretraining"], fields)
        # 5. small -> embedding_size 128 is part of configs/small.json.
        if values["electric_objective"]:                                     # 6. implied
            values["two_tower_generator"] = True
        _apply("pretraining hparam", values, user, fields, forbidden=_DERIVED_ONLY)  # 7. user
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        if self.do_train == self.do_eval:
            raise ConfigError("exactly one of do_train and do_eval must be true")
        for name in ("num_train_steps", "train_batch_size", "eval_batch_size",
                     "save_checkpoints_steps", "num_eval_steps"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_warmup_steps < 0 or (self.keep_checkpoint_max or 0) < 0:
            raise ConfigError("num_warmup_steps and keep_checkpoint_max must be >= 0")
        if not 0.0 < self.mask_prob < 1.0:
            raise ConfigError(f"mask_prob must be in (0, 1), got {self.mask_prob}")
        if self.max_predictions_per_seq < 1:
            raise ConfigError(
                f"max_seq_length {self.max_seq_length} with mask_prob {self.mask_prob} leaves "
                "no masked-LM slot")
        if self.electric_objective and (self.uniform_generator or not self.untied_generator):
            raise ConfigError("electric_objective needs the two-tower cloze generator: it "
                              "cannot be combined with uniform_generator or untied_generator=false")
        _validate_update_hparams(self)
        self.discriminator_config()  # raises on inconsistent model hparams

    # -- derived model configs ---------------------------------------------

    def generator_config(self) -> TransformerConfig:
        """The small generator's transformer (spec 1.4)."""
        return derive_generator_config(
            self.discriminator_config(), self.generator_hidden_size, self.generator_layers,
            tied_embeddings=not self.untied_generator_embeddings)


# ---------------------------------------------------------------------------
# Fine-tuning config
# ---------------------------------------------------------------------------

_TASK_MATCHERS = {
    "exact": lambda task, names: task in names,
    "contains": lambda task, names: any(n in task for n in names),
    "any": lambda task, names: True,
}


# The task families' sections of the fine-tuning config (``configs/finetuning.json``:
# ``"finetuning": {"glue": {...}, "qa": {...}, "tagging": {...}}``): each family reads its
# own, typed (``electra_tf.finetuning.<family>.settings``), and gives it to its tasks.
FINETUNING_FAMILIES = ("glue", "qa", "tagging")
# Sections whose settings were flat FinetuningConfig fields before the families had sections
# (the original's names): a flat hparam such as {"doc_stride": 64} still sets them.
_FLAT_FAMILY_SECTIONS = ("glue", "qa")


def _family_defaults(spec: Mapping) -> dict:
    """``{family: its section of defaults}`` of the ``finetuning`` preset (finetuning.json)."""
    defaults = spec["finetuning"]
    missing = [f for f in FINETUNING_FAMILIES if not isinstance(defaults.get(f), Mapping)]
    if missing:
        raise ConfigError(f"configs/finetuning.json: the finetuning section lacks the "
                          f"{', '.join(missing)} section(s) of settings")
    return {family: dict(defaults[family]) for family in FINETUNING_FAMILIES}


def _flat_family_names(families: Mapping[str, dict]) -> dict:
    """Flat hparam name -> its family section (``doc_stride`` -> ``qa``)."""
    return {name: family for family in _FLAT_FAMILY_SECTIONS for name in families[family]}


def _setting_type(default: Any) -> Any:
    """The type a family setting is checked against: its default's (JSON) type."""
    for kind in (bool, int, float, str):
        if isinstance(default, kind):
            return kind
    return Any


def _apply_finetuning(values: dict, updates: Mapping, fields: dict,
                      families: Mapping[str, dict]) -> None:
    """``_apply`` for FinetuningConfig: a family section (``{"qa": {"doc_stride": 64}}``)
    is merged setting by setting into the run's section, each setting checked against its
    default's type; a flat original name (``{"doc_stride": 64}``) sets it in its section;
    any other key is a field."""
    kind = "finetuning hparam"
    flat = _flat_family_names(families)
    for key, value in updates.items():
        if key in families:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{kind} {key!r} expects an object of {key} settings, "
                                  f"got {value!r}")
            settings = value
        elif key in flat:
            key, settings = flat[key], {key: value}
        elif key in fields:
            _apply(kind, values, {key: value}, fields)
            continue
        else:
            raise _unknown_key_error(kind, key, [*fields, *flat])
        section = values.setdefault(key, {})
        for name, setting in settings.items():
            if name not in families[key]:
                raise _unknown_key_error(f"finetuning {key} setting", name, list(families[key]))
            section[name] = _coerce(f"finetuning {key} setting", name, setting,
                                    _setting_type(families[key][name]))


def finetuning_family_defaults(family: str) -> dict:
    """The defaults of a task family's settings: its section of ``configs/finetuning.json``."""
    families = _family_defaults(load_preset("finetuning"))
    if family not in families:
        raise ConfigError(f"no finetuning settings section {family!r}; known: "
                          f"{', '.join(FINETUNING_FAMILIES)}")
    return families[family]


def typed_settings(cls, kind: str, values: Mapping[str, Any]):
    """``cls`` (a dataclass of settings) from ``values``: every field, each checked against
    its annotation; a ConfigError names an unknown or a missing one."""
    fields = _field_types(cls)
    checked: dict = {}
    _apply(kind, checked, values, fields)
    missing = sorted(set(fields) - set(checked))
    if missing:
        raise ConfigError(f"{kind}s lack {', '.join(missing)}")
    return cls(**checked)


def _task_list(value: Any) -> Any:
    """``"rte,sts"`` -> ``["rte", "sts"]``; lists and tuples pass through (coerced later)."""
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    return value


def _size_finetuning_defaults(size: str) -> dict:
    """The ``finetuning`` section of ``configs/<size>.json`` itself, not inherited.

    The original sets these per exact size name (``if model_size == "small"``), so
    ``base.json`` does not pick up small's ``embedding_size`` through ``inherits``.
    ``size`` is one of :func:`available_presets`.
    """
    return _read_json(configs_dir() / f"{size}.json").get("finetuning", {})


@dataclasses.dataclass
class FinetuningConfig(_ModelConfigMixin):
    """Hyperparameters of fine-tuning (spec 1.6, 1.7).

    Build it with :meth:`from_preset`; defaults come from ``configs/finetuning.json``
    and the ``finetuning`` section of ``configs/<size>.json``.
    """

    model_size: str
    debug: bool
    log_examples: bool
    num_trials: int
    do_train: bool
    do_eval: bool
    keep_all_models: bool
    task_names: list[str]
    model_hparam_overrides: dict
    embedding_size: Optional[int]
    vocab_size: int
    do_lower_case: bool
    learning_rate: float
    weight_decay_rate: float
    optimizer: str  # as PretrainingConfig.optimizer
    layerwise_lr_decay: float
    # False reproduces the original's d^2 on the top layer (spec 4.4 [QUIRK]); True gives d.
    layerwise_lr_decay_corrected: bool
    num_train_epochs: float
    warmup_proportion: float
    save_checkpoints_steps: int
    iterations_per_loop: int
    use_tfrecords_if_existing: bool
    write_test_outputs: bool
    n_writes_test: int
    max_seq_length: int
    train_batch_size: int
    gradient_accumulation_steps: int  # as PretrainingConfig.gradient_accumulation_steps
    eval_batch_size: int
    predict_batch_size: int
    # The task families' settings, one section each (FINETUNING_FAMILIES): the GLUE tasks'
    # (double_unordered), the QA tasks' (windows, head, post-processing) and the conll:
    # tasks' defaults. Each family reads its own, typed (finetuning/<family>/settings.py).
    glue: dict
    qa: dict
    tagging: dict

    # -- construction -------------------------------------------------------

    @classmethod
    def hparam_names(cls) -> list[str]:
        return list(_field_types(cls))

    @classmethod
    def from_preset(cls, model_size: str = "small",
                    task_names: Union[None, str, list[str]] = None,
                    hparams: HparamsLike = None, **overrides) -> "FinetuningConfig":
        """Builds the config in the original's order, so explicit user values always win.

        Order: ``finetuning.json`` defaults -> the size preset's ``finetuning`` section ->
        user hparams -> per-task rules (only when exactly one task is given; the first
        matching rule of ``task_defaults``) -> ``debug_overrides`` if ``debug`` -> user
        hparams again.

        A family's settings are set in its section (``{"qa": {"doc_stride": 64}}``, merged
        into the defaults) or, for the GLUE and QA settings, by their original flat names
        (``{"doc_stride": 64}``).

        Args:
          model_size: "small", "base" or "large"; a ``model_size`` in ``hparams`` wins.
          task_names: a list or a comma-separated string ("rte,sts"); a ``task_names``
            in ``hparams`` (list or string) wins.
          hparams: dict, JSON string, or path to a ``.json`` file.
          **overrides: more hparams (e.g. from command-line flags), applied after ``hparams``.
        """
        user = {"model_size": model_size, **parse_hparams(hparams), **overrides}
        if task_names is not None:
            user.setdefault("task_names", task_names)
        if "task_names" in user:
            user["task_names"] = _task_list(user["task_names"])
        size = user["model_size"]
        if not isinstance(size, str):
            raise ConfigError(f"model_size must be a string, got {size!r}")
        sizes = available_presets()
        if size not in sizes:
            raise ConfigError(f"unknown model size {size!r}; available: {', '.join(sizes)}")
        fields = _field_types(cls)
        spec = load_preset("finetuning")
        families = _family_defaults(spec)

        def apply(updates):
            _apply_finetuning(values, updates, fields, families)

        values: dict = {}
        apply(spec["finetuning"])                                         # 1. defaults
        apply(_size_finetuning_defaults(size))                            # 2. per size
        apply(user)                                                       # 3. user
        if len(values["task_names"]) == 1:                                # 4. per task
            apply(cls._task_defaults(values["task_names"][0], spec["task_defaults"]))
        if values["debug"]:                                               # 5. debug
            apply(spec["debug_overrides"])
        apply(user)                                                       # 6. user
        config = cls(**values)
        config.validate()
        return config

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "FinetuningConfig":
        """The config :meth:`to_dict` (or :meth:`flat_dict`, the shape of before the family
        sections) gave: every field as given, each family section completed by its
        defaults; no preset rule is applied."""
        fields = _field_types(cls)
        families = _family_defaults(load_preset("finetuning"))
        checked: dict = {}
        _apply_finetuning(checked, families, fields, families)
        _apply_finetuning(checked, values, fields, families)
        missing = sorted(set(fields) - set(checked))
        if missing:
            raise ConfigError(f"finetuning config lacks {', '.join(missing)}")
        return cls(**checked)

    def flat_dict(self) -> dict:
        """The config as one flat mapping, the shape of the original's FinetuningConfig: the
        GLUE and QA settings beside the run-wide fields (the ``tagging`` section, which the
        original has not, stays a section)."""
        flat: dict = {}
        for key, value in self.to_dict().items():
            if key in _FLAT_FAMILY_SECTIONS:
                flat.update(value)
            else:
                flat[key] = value
        return flat

    @staticmethod
    def _task_defaults(task: str, rules: list) -> dict:
        """The ``set`` of the first rule matching ``task`` (an if/elif chain, spec 1.7)."""
        for rule in rules:
            match = rule.get("match")
            if match not in _TASK_MATCHERS:
                raise ConfigError(f"finetuning.json task_defaults: unknown match {match!r} "
                                  f"(expected one of {', '.join(_TASK_MATCHERS)})")
            if _TASK_MATCHERS[match](task, rule.get("names", [])):
                return rule.get("set", {})
        return {}

    def validate(self) -> None:
        if not self.task_names:
            raise ConfigError("task_names must name at least one task")
        for name in ("train_batch_size", "eval_batch_size", "predict_batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        _validate_update_hparams(self)
        self.discriminator_config()  # raises on inconsistent model hparams / max_seq_length
