"""Hugging Face transformers ELECTRA directories, read and written without torch.

A transformers directory holds ``config.json`` and ``model.safetensors`` (read and
written with ``safetensors.numpy``), plus the tokenizer files. Three architectures
are supported, each mapped to the original (TF1) variable names (spec 7):

* ``ElectraForPreTraining`` (a discriminator): ``electra.*`` -> ``electra/*``,
  ``discriminator_predictions.dense`` -> ``discriminator_predictions/dense``,
  ``discriminator_predictions.dense_prediction`` -> ``discriminator_predictions/dense_1``.
* ``ElectraForMaskedLM`` (a generator): ``electra.*`` -> ``electra/*`` and
  ``generator_predictions.*`` -> ``generator_predictions/*``,
  ``generator_lm_head.bias`` -> ``generator_predictions/output_bias``; the
  original's masked-LM-only layout (spec 3.11), one full-size MLM network.
  ``generator_lm_head.weight`` is tied to the word embeddings (it may be absent).
* ``ElectraModel`` (a bare encoder, no head): ``*`` -> ``electra/*``.

Linear weights are transposed ([out, in] -> [in, out]); LayerNorm ``weight``/``bias``
are ``gamma``/``beta``. A directory holding ``discriminator/`` and ``generator/``
transformers directories (like the hub pairs ``google/electra-small-discriminator``
and ``-generator``) is read as one ELECTRA pre-training model: the generator's
encoder goes under ``generator/``, and its embedding block is the discriminator's
when the two are equal (tied, as pre-training makes them).
"""

from __future__ import annotations

import json
import os
import re
from typing import Mapping

import numpy as np
import tensorflow as tf

from electra_tf.checkpoints import CheckpointError
from electra_tf.formats.common import HF_KINDS, VOCAB_FILE, PretrainedWeights
from electra_tf.io_utils import chmod_as_new_file, staged_directory

NAME = "hf"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"
SPECIAL_TOKENS_NAME = "special_tokens_map.json"
PAIR_SUBDIRS = ("discriminator", "generator")

PRETRAINING = "ElectraForPreTraining"
MASKED_LM = "ElectraForMaskedLM"
MODEL = "ElectraModel"
ARCHITECTURES = (PRETRAINING, MASKED_LM, MODEL)

# transformers' ElectraConfig defaults: keys a config.json may leave out (and every
# key written, so that transformers reads our config.json without guessing).
HF_CONFIG_DEFAULTS = {
    "vocab_size": 30522, "embedding_size": 128, "hidden_size": 256, "num_hidden_layers": 12,
    "num_attention_heads": 4, "intermediate_size": 1024, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512, "type_vocab_size": 2, "initializer_range": 0.02,
    "layer_norm_eps": 1e-12, "summary_type": "first", "summary_use_proj": True,
    "summary_activation": "gelu", "summary_last_dropout": 0.1, "pad_token_id": 0,
    "use_cache": True, "classifier_dropout": None, "is_decoder": False,
    "add_cross_attention": False, "bos_token_id": None, "eos_token_id": None,
    "tie_word_embeddings": True,
}
# transformers activation name -> ours ("gelu" is the exact erf form in both).
_ACTIVATIONS_FROM_HF = {"gelu": "gelu", "gelu_new": "gelu_approximate",
                        "gelu_pytorch_tanh": "gelu_approximate", "relu": "relu"}
_ACTIVATIONS_TO_HF = {"gelu": "gelu", "gelu_approximate": "gelu_new", "relu": "relu"}
LAYER_NORM_EPS = 1e-12  # electra_tf.networks.layers.LAYER_NORM_EPSILON
SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                  "cls_token": "[CLS]", "mask_token": "[MASK]"}

_LAYER_PARTS = {  # HF module inside encoder.layer.<k> -> TF1 scope inside encoder/layer_<k>
    "attention.self.query": "attention/self/query",
    "attention.self.key": "attention/self/key",
    "attention.self.value": "attention/self/value",
    "attention.output.dense": "attention/output/dense",
    "attention.output.LayerNorm": "attention/output/LayerNorm",
    "intermediate.dense": "intermediate/dense",
    "output.dense": "output/dense",
    "output.LayerNorm": "output/LayerNorm",
}
_HEAD_MODULES = {
    "discriminator_predictions.dense": "discriminator_predictions/dense",
    "discriminator_predictions.dense_prediction": "discriminator_predictions/dense_1",
    "generator_predictions.dense": "generator_predictions/dense",
    "generator_predictions.LayerNorm": "generator_predictions/LayerNorm",
}
_TIED_LM_HEAD = "generator_lm_head.weight"


# ---------------------------------------------------------------------------
# Names and shapes
# ---------------------------------------------------------------------------

def _tf1_name(key: str, emb_scope: str = "electra/embeddings",
              enc_scope: str = "electra") -> tuple:
    """HF key (without the ``electra.`` prefix) -> (TF1 name, transpose?)."""
    module, leaf = key.rsplit(".", 1)
    if module.split(".")[-1] == "LayerNorm":
        tf1_leaf, transpose = {"weight": "gamma", "bias": "beta"}[leaf], False
    else:
        tf1_leaf, transpose = {"weight": "kernel", "bias": "bias"}[leaf], leaf == "weight"
    if module in ("embeddings.word_embeddings", "embeddings.position_embeddings",
                  "embeddings.token_type_embeddings"):
        return f"{emb_scope}/{module.split('.')[1]}", False
    if module == "embeddings.LayerNorm":
        return f"{emb_scope}/LayerNorm/{tf1_leaf}", False
    if module == "embeddings_project":
        return f"{enc_scope}/embeddings_project/{tf1_leaf}", transpose
    m = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)", module)
    if m and m.group(2) in _LAYER_PARTS:
        return f"{enc_scope}/encoder/layer_{m.group(1)}/{_LAYER_PARTS[m.group(2)]}/{tf1_leaf}", \
            transpose
    if key == "generator_lm_head.bias":
        return "generator_predictions/output_bias", False
    if module in _HEAD_MODULES:
        return f"{_HEAD_MODULES[module]}/{tf1_leaf}", transpose
    raise KeyError(key)


def expected_shapes(config: dict, architecture: str) -> dict:
    """``{HF key without 'electra.': shape}`` that ``architecture`` has under ``config``.

    ``generator_lm_head.weight`` (tied to the word embeddings) is not listed.
    """
    v, e, h = config["vocab_size"], config["embedding_size"], config["hidden_size"]
    i = config["intermediate_size"]
    shapes = {
        "embeddings.word_embeddings.weight": (v, e),
        "embeddings.position_embeddings.weight": (config["max_position_embeddings"], e),
        "embeddings.token_type_embeddings.weight": (config["type_vocab_size"], e),
        "embeddings.LayerNorm.weight": (e,), "embeddings.LayerNorm.bias": (e,),
    }
    if e != h:
        shapes.update({"embeddings_project.weight": (h, e), "embeddings_project.bias": (h,)})
    for k in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{k}."
        for name in ("query", "key", "value"):
            shapes.update({f"{p}attention.self.{name}.weight": (h, h),
                           f"{p}attention.self.{name}.bias": (h,)})
        shapes.update({
            f"{p}attention.output.dense.weight": (h, h), f"{p}attention.output.dense.bias": (h,),
            f"{p}attention.output.LayerNorm.weight": (h,),
            f"{p}attention.output.LayerNorm.bias": (h,),
            f"{p}intermediate.dense.weight": (i, h), f"{p}intermediate.dense.bias": (i,),
            f"{p}output.dense.weight": (h, i), f"{p}output.dense.bias": (h,),
            f"{p}output.LayerNorm.weight": (h,), f"{p}output.LayerNorm.bias": (h,),
        })
    if architecture == PRETRAINING:
        shapes.update({
            "discriminator_predictions.dense.weight": (h, h),
            "discriminator_predictions.dense.bias": (h,),
            "discriminator_predictions.dense_prediction.weight": (1, h),
            "discriminator_predictions.dense_prediction.bias": (1,),
        })
    elif architecture == MASKED_LM:
        shapes.update({
            "generator_predictions.dense.weight": (e, h), "generator_predictions.dense.bias": (e,),
            "generator_predictions.LayerNorm.weight": (e,),
            "generator_predictions.LayerNorm.bias": (e,),
            "generator_lm_head.bias": (v,),
        })
    return shapes


def _hf_key(key: str, architecture: str) -> str:
    """The key in a saved model: encoder keys get ``electra.`` except in a bare ElectraModel."""
    is_head = key.startswith(("discriminator_predictions.", "generator_predictions.",
                              "generator_lm_head."))
    return key if is_head or architecture == MODEL else "electra." + key


# ---------------------------------------------------------------------------
# Detection and reading
# ---------------------------------------------------------------------------

def _is_single_directory(path: str) -> bool:
    if not (tf.io.gfile.isdir(path) and tf.io.gfile.exists(os.path.join(path, CONFIG_NAME))):
        return False
    if tf.io.gfile.exists(os.path.join(path, WEIGHTS_NAME)) or \
            tf.io.gfile.exists(os.path.join(path, WEIGHTS_INDEX_NAME)):
        return True
    # config.json without safetensors: a transformers directory (read then says
    # what is missing) unless it is a TF checkpoint directory that happens to hold a config.json.
    return not tf.io.gfile.glob(os.path.join(path, "*.index"))


def _is_pair_directory(path: str) -> bool:
    return (tf.io.gfile.isdir(path) and not tf.io.gfile.exists(os.path.join(path, CONFIG_NAME))
            and all(_is_single_directory(os.path.join(path, d)) for d in PAIR_SUBDIRS))


def matches(path: str) -> bool:
    """True for a directory holding a transformers ``config.json`` and safetensors weights.

    Also true for a ``config.json`` directory without weights (reading it then names the
    missing file) and for a ``discriminator/`` + ``generator/`` pair of such directories.
    """
    path = os.fspath(path)
    return _is_single_directory(path) or _is_pair_directory(path)


def _read_json(path: str) -> dict:
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            data = json.loads(f.read())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from e
    except (tf.errors.OpError, OSError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def _read_safetensors(path: str) -> dict:
    """``{key: numpy array}`` of one safetensors file, floats as float32."""
    import ml_dtypes  # noqa: F401  (registers numpy's "bfloat16" for bf16 files)
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load
    try:
        if "://" in path:
            with tf.io.gfile.GFile(path, "rb") as f:
                tensors = load(f.read())
        else:
            with safe_open(path, framework="np") as f:
                tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, TypeError, tf.errors.OpError) as e:
        raise CheckpointError(
            f"cannot read {path} as safetensors ({str(e).strip() or type(e).__name__}): "
            "re-save the model with transformers' save_pretrained()") from e
    out = {}
    for key, value in tensors.items():
        if not (np.issubdtype(value.dtype, np.floating) or value.dtype.name == "bfloat16"):
            raise CheckpointError(f"{path}: tensor {key} has dtype {value.dtype}, expected "
                                  "floating point weights")
        out[key] = np.ascontiguousarray(value.astype(np.float32))
    return out


def _read_weights_files(path: str) -> tuple:
    """(tensors, file named in messages) of a transformers directory."""
    single = os.path.join(path, WEIGHTS_NAME)
    index = os.path.join(path, WEIGHTS_INDEX_NAME)
    if tf.io.gfile.exists(single):
        return _read_safetensors(single), single
    if tf.io.gfile.exists(index):
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index}: no 'weight_map' object")
        tensors = {}
        for shard in sorted(set(weight_map.values())):
            shard_path = os.path.join(path, shard)
            if not tf.io.gfile.exists(shard_path):
                raise CheckpointError(f"{index} names {shard}, which is not in {path}")
            tensors.update(_read_safetensors(shard_path))
        return tensors, index
    others = [n for n in ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")
              if tf.io.gfile.exists(os.path.join(path, n))]
    found = f" (it has {', '.join(others)})" if others else ""
    raise CheckpointError(
        f"no {WEIGHTS_NAME} in {path}{found}: electra_tf reads transformers weights in "
        "safetensors only; in Python with torch, run "
        "ElectraForPreTraining.from_pretrained(path).save_pretrained(path) (or the "
        "ElectraForMaskedLM / ElectraModel class the directory holds) to write it")


def _checked_config(path: str) -> dict:
    """config.json with transformers' defaults filled in, or one CheckpointError."""
    config_path = os.path.join(path, CONFIG_NAME)
    raw = _read_json(config_path)
    config = {**HF_CONFIG_DEFAULTS, **raw}
    where = f"{config_path}:"

    def unsupported(what: str, fix: str):
        return CheckpointError(f"{where} {what} is not supported by electra_tf; {fix}")

    if raw.get("model_type", "electra") != "electra":
        raise unsupported(f"model_type {raw['model_type']!r}",
                          "only ELECTRA (model_type 'electra') directories can be read")
    for key in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers",
                "num_attention_heads", "intermediate_size", "max_position_embeddings",
                "type_vocab_size"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise CheckpointError(f"{where} {key} must be a positive integer, got {value!r}")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise CheckpointError(f"{where} hidden_size {config['hidden_size']} is not divisible "
                              f"by num_attention_heads {config['num_attention_heads']}")
    if config["hidden_act"] not in _ACTIVATIONS_FROM_HF:
        raise unsupported(f"hidden_act {config['hidden_act']!r}",
                          f"use one of {', '.join(sorted(_ACTIVATIONS_FROM_HF))} "
                          "('gelu' is ELECTRA's)")
    if config["layer_norm_eps"] != LAYER_NORM_EPS:
        raise unsupported(f"layer_norm_eps {config['layer_norm_eps']!r}",
                          f"ELECTRA's LayerNorm uses {LAYER_NORM_EPS}")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise unsupported(f"position_embedding_type {config['position_embedding_type']!r}",
                          "ELECTRA uses absolute position embeddings")
    if config["is_decoder"] or config["add_cross_attention"]:
        raise unsupported("a decoder (is_decoder / add_cross_attention)",
                          "only the bidirectional encoder is ported")
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range"):
        if isinstance(config[key], bool) or not isinstance(config[key], (int, float)):
            raise CheckpointError(f"{where} {key} must be a number, got {config[key]!r}")
    architectures = raw.get("architectures") or []
    if not isinstance(architectures, list):
        raise CheckpointError(f"{where} 'architectures' must be a list")
    for name in architectures:
        if name not in ARCHITECTURES:
            raise unsupported(f"architecture {name!r}",
                              f"electra_tf reads {', '.join(ARCHITECTURES)} directories")
    return config


def _architecture(config: dict, keys: set) -> str:
    if config.get("architectures"):
        return config["architectures"][0]
    if any(k.startswith("discriminator_predictions.") for k in keys):
        return PRETRAINING
    if any(k.startswith(("generator_predictions.", "generator_lm_head.")) for k in keys):
        return MASKED_LM
    return MODEL


def _strip_prefix(key: str) -> str:
    return key.removeprefix("electra.")


def _check_tensors(tensors: dict, config: dict, architecture: str, weights_file: str,
                   config_path: str) -> dict:
    """Keys normalised (no ``electra.``), checked against the config's shapes."""
    normalised = {}
    for key, value in tensors.items():
        short = _strip_prefix(key)
        if short in normalised:
            raise CheckpointError(f"{weights_file}: {key} appears twice (with and without "
                                  "the 'electra.' prefix)")
        normalised[short] = value
    expected = expected_shapes(config, architecture)
    allowed_extra = {_TIED_LM_HEAD} if architecture == MASKED_LM else set()
    unexpected = sorted(set(normalised) - set(expected) - allowed_extra)
    missing = sorted(set(expected) - set(normalised))
    wrong = [(k, list(normalised[k].shape), list(expected[k])) for k in sorted(expected)
             if k in normalised and tuple(normalised[k].shape) != tuple(expected[k])]
    sizes = ", ".join(f"{k}={config[k]}" for k in (
        "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers",
        "intermediate_size", "max_position_embeddings", "type_vocab_size"))
    if wrong:
        lines = [f"{k} has shape {got}, config.json implies {want}" for k, got, want in wrong[:5]]
        more = f" (and {len(wrong) - 5} more)" if len(wrong) > 5 else ""
        raise CheckpointError(
            f"{weights_file} does not match {config_path} ({sizes}): " + "; ".join(lines)
            + more + ". The weights were saved with another config: use that model's "
            "config.json")
    if unexpected:
        raise CheckpointError(
            f"{weights_file} holds tensors that {architecture} does not have: "
            f"{', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}. electra_tf "
            f"reads {', '.join(ARCHITECTURES)} directories; check 'architectures' in "
            f"{config_path}")
    if missing:
        raise CheckpointError(
            f"{weights_file} lacks {len(missing)} tensor(s) of {architecture} "
            f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}): the file is "
            f"incomplete or {config_path} describes another model")
    if _TIED_LM_HEAD in normalised:
        lm_head = normalised.pop(_TIED_LM_HEAD)
        if not np.array_equal(lm_head, normalised["embeddings.word_embeddings.weight"]):
            raise CheckpointError(
                f"{weights_file}: generator_lm_head.weight differs from the word embeddings; "
                "ELECTRA's generator scores tokens against its word-embedding table, so an "
                "untied output layer cannot be read")
    elif architecture == MASKED_LM and not config["tie_word_embeddings"]:
        raise CheckpointError(f"{config_path} sets tie_word_embeddings=false but "
                              f"{weights_file} has no generator_lm_head.weight")
    return normalised


def _hparams(config: dict, tokenizer_config: dict | None) -> dict:
    """PretrainingConfig hparams for the shapes and settings of a transformers config."""
    from electra_tf.config import load_preset, preset_for_shape
    size = preset_for_shape(config["hidden_size"], config["num_hidden_layers"]) or "small"
    overrides = {key: config[key] for key in (
        "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
        "max_position_embeddings", "type_vocab_size")}
    overrides.update(hidden_act=_ACTIVATIONS_FROM_HF[config["hidden_act"]],
                     hidden_dropout_prob=float(config["hidden_dropout_prob"]),
                     attention_probs_dropout_prob=float(config["attention_probs_dropout_prob"]),
                     initializer_range=float(config["initializer_range"]))
    max_seq_length = min(load_preset(size)["pretraining"]["max_seq_length"],
                         config["max_position_embeddings"])
    hparams = {"model_size": size, "vocab_size": config["vocab_size"],
               "embedding_size": config["embedding_size"], "max_seq_length": max_seq_length,
               "model_hparam_overrides": overrides}
    if tokenizer_config and isinstance(tokenizer_config.get("do_lower_case"), bool):
        hparams["do_lower_case"] = tokenizer_config["do_lower_case"]
    return hparams


def _read_single(path: str):
    """(architecture, checked config, tensors by TF1 name in the MLM-only layout, hparams)."""
    config = _checked_config(path)
    config_path = os.path.join(path, CONFIG_NAME)
    tensors, weights_file = _read_weights_files(path)
    architecture = _architecture(config, set(map(_strip_prefix, tensors)))
    if architecture == MASKED_LM and config["hidden_act"] != "gelu":
        raise CheckpointError(
            f"{config_path}: hidden_act {config['hidden_act']!r} in an ElectraForMaskedLM is "
            "not supported: transformers' generator head always uses gelu while ELECTRA's "
            "uses hidden_act, so the two only agree for 'gelu'")
    normalised = _check_tensors(tensors, config, architecture, weights_file, config_path)
    values = {}
    for key, value in normalised.items():
        name, transpose = _tf1_name(key)
        values[name] = np.ascontiguousarray(value.T) if transpose else value
    tokenizer_path = os.path.join(path, TOKENIZER_CONFIG_NAME)
    tokenizer = _read_json(tokenizer_path) if tf.io.gfile.exists(tokenizer_path) else None
    return architecture, config, values, _hparams(config, tokenizer)


def _vocab_in(*directories) -> str | None:
    for directory in directories:
        vocab = os.path.join(directory, VOCAB_FILE)
        if tf.io.gfile.exists(vocab):
            return vocab
    return None


def read(path: str) -> PretrainedWeights:
    """Reads a transformers ELECTRA directory (or a discriminator/generator pair).

    Returns:
      a :class:`~electra_tf.formats.common.PretrainedWeights` (format ``"hf"``) whose values
      are keyed by original (TF1) name, with the hparams that shapes cannot tell.
    Raises:
      CheckpointError: naming the file and what to do, for a missing or unreadable
        ``model.safetensors``, an unsupported config or weights that do not match it.
    """
    path = os.fspath(path)
    if _is_pair_directory(path):
        return _read_pair(path)
    if not tf.io.gfile.exists(os.path.join(path, CONFIG_NAME)):
        raise CheckpointError(f"no {CONFIG_NAME} in {path}: not a transformers directory")
    architecture, _, values, hparams = _read_single(path)
    return PretrainedWeights(values=values, hparams=hparams, vocab_file=_vocab_in(path),
                             source=path, format="hf", architecture=architecture)


def _read_pair(path: str):
    disc_dir, gen_dir = (os.path.join(path, d) for d in PAIR_SUBDIRS)
    disc_arch, disc_cfg, values, hparams = _read_single(disc_dir)
    gen_arch, gen_cfg, gen_values, _ = _read_single(gen_dir)
    if disc_arch == MASKED_LM or gen_arch != MASKED_LM:
        raise CheckpointError(
            f"{path}: expected discriminator/ to hold an ElectraForPreTraining (or "
            f"ElectraModel) and generator/ an ElectraForMaskedLM, found {disc_arch} and "
            f"{gen_arch}")
    h, g = disc_cfg["hidden_size"], gen_cfg["hidden_size"]
    layers, gen_layers = disc_cfg["num_hidden_layers"], gen_cfg["num_hidden_layers"]
    different = [k for k in ("vocab_size", "max_position_embeddings", "type_vocab_size",
                             "hidden_act") if disc_cfg[k] != gen_cfg[k]]
    if gen_cfg["num_attention_heads"] != max(1, g // 64) or gen_cfg["intermediate_size"] != 4 * g:
        different.append("generator num_attention_heads/intermediate_size (ELECTRA derives "
                          f"max(1, {g} // 64) = {max(1, g // 64)} and 4 * {g} = {4 * g})")
    tied = all(np.array_equal(gen_values[n], values.get(n)) for n in gen_values
               if n.startswith("electra/embeddings/"))
    if not tied and gen_cfg["embedding_size"] != g:
        different.append("untied generator embeddings of width embedding_size != hidden_size")
    if different:
        raise CheckpointError(
            f"{path}: the generator cannot be combined with the discriminator into one ELECTRA "
            f"model ({'; '.join(different)}); load {gen_dir} or {disc_dir} on its own")
    for name, value in gen_values.items():
        if name.startswith("electra/embeddings/"):
            if not tied:
                values["generator/embeddings/" + name[len("electra/embeddings/"):]] = value
        elif name.startswith("electra/"):
            values["generator/" + name[len("electra/"):]] = value
        else:  # generator_predictions/*
            values[name] = value
    hparams.update(generator_hidden_size=g / h, generator_layers=gen_layers / layers,
                   untied_generator_embeddings=not tied)
    return PretrainedWeights(values=values, hparams=hparams,
                             vocab_file=_vocab_in(disc_dir, gen_dir, path), source=path,
                             format="hf", architecture=disc_arch)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def _encoders(config) -> tuple:
    """(``{scope: TransformerConfig}``, do_lower_case or None) of a writer's ``config``: a
    PretrainingConfig, FinetuningConfig or hparams (every scope it builds), or the
    ``{scope: TransformerConfig}`` of built models."""
    from electra_tf.checkpoints import encoder_configs, pretraining_config_of
    from electra_tf.config import TransformerConfig
    if isinstance(config, Mapping) and config and \
            all(isinstance(c, TransformerConfig) for c in config.values()):
        return dict(config), None
    try:
        _, full = pretraining_config_of(config)
    except TypeError:
        raise CheckpointError(f"config must be a PretrainingConfig, a FinetuningConfig or "
                              f"hparams, got {type(config).__name__}") from None
    return encoder_configs(full), full.do_lower_case


def plan(values: Mapping, kind: str = "auto") -> list:
    """``[(subdirectory or "", architecture, network)]`` that :func:`write` makes of
    ``values``: ``network`` is ``"discriminator"`` or ``"generator"``
    (:func:`electra_tf.checkpoints.network_values`).

    Args:
      kind: ``"discriminator"`` (ElectraForPreTraining), ``"generator"``
        (ElectraForMaskedLM), ``"model"`` (ElectraModel: the discriminator's encoder, or
        the MLM-only network's), ``"both"`` (``discriminator/`` and ``generator/``
        subdirectories, like the hub's ELECTRA pairs; the generator gets its own copy of
        shared embeddings; a discriminator without head goes in as ElectraModel), or
        ``"auto"``: both when there are both (an Electric two-tower generator is left
        out), else the one network there is (ElectraModel for a discriminator without
        head).
    """
    from electra_tf.pretraining.recipes import Recipe
    if kind not in HF_KINDS:
        raise ValueError(f"kind must be one of {', '.join(HF_KINDS)}, got {kind!r}")
    recipe = Recipe.from_checkpoint_names(values)
    has = lambda prefix: any(n.startswith(prefix) for n in values)  # noqa: E731
    has_disc = recipe.has_discriminator and has("electra/encoder/")
    has_head = has_disc and has("discriminator_predictions/")
    has_mlm = recipe.masked_lm_scope is not None and has("generator_predictions/")
    if kind == "auto":
        kind = ("both" if has_disc and has_mlm else
                ("discriminator" if has_head else "model") if has_disc else "generator")
    if kind == "discriminator" and not has_head:
        raise CheckpointError("the source has no replaced-token detection head "
                              "(discriminator_predictions/*), so it cannot be written as "
                              "ElectraForPreTraining; write it as kind='model' (ElectraModel)")
    if kind == "both" and not has_disc:
        raise CheckpointError("the source has no discriminator; write kind='generator'")
    if kind in ("both", "generator") and not has_mlm:
        what = ("Electric's two-tower cloze generator has no transformers equivalent"
                if recipe.cloze_generator else "the source has no generator")
        raise CheckpointError(f"{what}; write the discriminator alone (kind='discriminator')")
    if kind == "both":
        return [("discriminator", PRETRAINING if has_head else MODEL, "discriminator"),
                ("generator", MASKED_LM, "generator")]
    if kind == "discriminator":
        return [("", PRETRAINING, "discriminator")]
    if kind == "generator":
        return [("", MASKED_LM, "generator")]
    if not has_disc and not has_mlm:
        raise CheckpointError("the source has no encoder to write as ElectraModel")
    return [("", MODEL, "discriminator" if has_disc else "generator")]


def hf_config(c, architecture: str, pad_token_id: int = 0) -> dict:
    """The transformers ``config.json`` dict of an encoder's TransformerConfig ``c``."""
    if c.hidden_act not in _ACTIVATIONS_TO_HF:
        raise CheckpointError(f"hidden_act {c.hidden_act!r} has no transformers equivalent")
    if architecture == MASKED_LM and c.hidden_act != "gelu":
        raise CheckpointError(
            f"a generator with hidden_act {c.hidden_act!r} cannot be written as "
            "ElectraForMaskedLM: transformers' generator head always uses gelu")
    config = dict(HF_CONFIG_DEFAULTS)
    config.update(
        architectures=[architecture], model_type="electra", dtype="float32",
        vocab_size=c.vocab_size, embedding_size=c.embedding_size,
        hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
        hidden_act=_ACTIVATIONS_TO_HF[c.hidden_act], hidden_dropout_prob=c.hidden_dropout_prob,
        attention_probs_dropout_prob=c.attention_probs_dropout_prob,
        max_position_embeddings=c.max_position_embeddings, type_vocab_size=c.type_vocab_size,
        initializer_range=c.initializer_range, layer_norm_eps=LAYER_NORM_EPS,
        pad_token_id=pad_token_id)
    return dict(sorted(config.items()))


def hf_tensors(values: Mapping, architecture: str, config: dict) -> dict:
    """``{HF key: float32 array}`` of one network standing alone (``electra/*`` and its
    head, :func:`electra_tf.checkpoints.network_values`); no tied lm-head copy."""
    tensors, used = {}, set()
    for key, shape in expected_shapes(config, architecture).items():
        name, transpose = _tf1_name(key)
        if name not in values:
            raise CheckpointError(f"cannot write {architecture}: the weights lack {name}")
        value = np.asarray(values[name], dtype=np.float32)
        value = value.T if transpose else value
        if tuple(value.shape) != tuple(shape):
            raise CheckpointError(f"{name}: shape {value.shape}, the config implies {shape} "
                                  f"for {key}")
        tensors[_hf_key(key, architecture)] = np.ascontiguousarray(value)
        used.add(name)
    head = {n for n in values if n.startswith("discriminator_predictions/")}
    left = set(values) - used - (head if architecture == MODEL else set())
    if left:  # a network layout this writer does not know: never drop weights silently
        raise CheckpointError(f"cannot write {architecture}: no transformers name for "
                              f"{', '.join(sorted(left)[:5])}")
    return tensors


def _write_json(path: str, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")


def _write_one(directory: str, architecture: str, values: Mapping, encoder,
               vocab_file: str | None, do_lower_case: bool) -> None:
    from safetensors.numpy import save_file

    from electra_tf.tokenization import load_vocab_tokens
    tokens = load_vocab_tokens(vocab_file) if vocab_file else None
    pad_id = tokens.index("[PAD]") if tokens and "[PAD]" in tokens else 0
    config = hf_config(encoder, architecture, pad_token_id=pad_id)
    if tokens is not None and len(tokens) > config["vocab_size"]:
        raise CheckpointError(f"{vocab_file} has {len(tokens)} tokens but the model's "
                              f"vocab_size is {config['vocab_size']}: pass the vocab the "
                              "model was trained with")
    tensors = hf_tensors(values, architecture, config)
    os.makedirs(directory, exist_ok=True)
    weights_path = os.path.join(directory, WEIGHTS_NAME)
    save_file(tensors, weights_path, metadata={"format": "pt"})
    chmod_as_new_file(weights_path)  # safetensors writes 0600; the other files are 0644
    _write_json(os.path.join(directory, CONFIG_NAME), config)
    if vocab_file:
        tf.io.gfile.copy(vocab_file, os.path.join(directory, VOCAB_FILE), overwrite=True)
        _write_json(os.path.join(directory, TOKENIZER_CONFIG_NAME), {
            "tokenizer_class": "ElectraTokenizer", "do_lower_case": bool(do_lower_case),
            "do_basic_tokenize": True, "never_split": None, "tokenize_chinese_chars": True,
            "strip_accents": None, "model_max_length": config["max_position_embeddings"],
            **SPECIAL_TOKENS})
        _write_json(os.path.join(directory, SPECIAL_TOKENS_NAME), dict(SPECIAL_TOKENS))


def write(output_dir: str, values: Mapping, *, config, vocab_file: str | None = None,
          global_step: int | None = None, overwrite: bool = False, kind: str = "auto",
          do_lower_case: bool | None = None) -> str:
    """Writes ``values`` as transformers ELECTRA directories (safetensors, no torch).

    Args:
      output_dir: the directory to create (local path); written in a temporary sibling
        and renamed into place.
      values: ``{original name: array}`` of any kind of run; what is written is
        :func:`plan`'s for ``kind``.
      config: what the values were built with (a PretrainingConfig, FinetuningConfig or
        hparams; or the ``{scope: TransformerConfig}`` of built models): ``config.json``
        holds every size, the head count, activation and dropout of each network.
      vocab_file: the vocabulary; without one no tokenizer files are written.
      global_step: not stored (transformers directories have no step).
      kind: see :func:`plan`.
      do_lower_case: for ``tokenizer_config.json`` (default: the config's, else True).
      overwrite: replace a non-empty ``output_dir``.
    Returns:
      ``output_dir`` (absolute): one transformers directory, or a pair of them.
    """
    from electra_tf.checkpoints import network_values
    del global_step
    encoders, config_casing = _encoders(config)
    if do_lower_case is None:
        do_lower_case = True if config_casing is None else config_casing
    if "://" in os.fspath(output_dir):
        raise CheckpointError("transformers directories are written to local paths only")
    from electra_tf.pretraining.recipes import Recipe
    mlm_scope = Recipe.from_checkpoint_names(values).masked_lm_scope
    output_dir = os.path.abspath(os.fspath(output_dir))
    with staged_directory(output_dir, overwrite) as tmp:
        for subdir, architecture, network in plan(values, kind):
            scope = "electra" if network == "discriminator" else mlm_scope
            if scope not in encoders:
                raise CheckpointError(f"the config given for {output_dir} has no {scope} "
                                      "encoder")
            _write_one(os.path.join(tmp, subdir) if subdir else tmp, architecture,
                       network_values(values, network), encoders[scope], vocab_file,
                       do_lower_case)
    return output_dir


def write_hf_directory(source, output_dir: str, vocab_file: str | None = None,
                       kind: str = "auto", *, do_lower_case: bool | None = None,
                       overwrite: bool = False) -> dict:
    """Writes built models as transformers ELECTRA directories: :func:`write` of their
    values.

    Args:
      source: a :class:`electra_tf.loading.PretrainedModel`, a ``PretrainingModels``, a
        ``Discriminator``/``Generator``, an ``electra_tf.models.ElectraBackbone``
        (written as ElectraModel) or a list of them; a model with task heads is refused.
      vocab_file: the vocabulary (default: the PretrainedModel's).
      kind, do_lower_case, overwrite: as :func:`write`.
    Returns:
      ``{directory written: architecture}``.
    """
    from electra_tf import checkpoints
    if hasattr(source, "has_discriminator_head"):  # a loading.PretrainedModel (built above us)
        values, config = source.original_values(), source.config
        vocab_file = vocab_file or source.vocab_file
    else:
        models = list(getattr(source, "models", None) or
                      (source if isinstance(source, (list, tuple)) else [source]))
        models = [m for m in models if m is not None]
        for model in models:
            heads = sorted({"/".join(n.split("/")[:2]) for n in model.original_variables()
                            if n.startswith("task_specific/")})
            if heads:
                raise CheckpointError(
                    f"{type(model).__name__} holds the task head {', '.join(heads)}, which "
                    "transformers' ELECTRA classes do not have: write its encoder alone "
                    "(model.backbone) as ElectraModel, or save the whole model with "
                    "electra_tf.formats.tf1.save_original_checkpoint")
        if not models:
            raise ValueError("write_hf_directory needs a Discriminator, a Generator, an "
                             "ElectraBackbone, a PretrainingModels or a PretrainedModel")
        values, config = checkpoints.original_values(*models), checkpoints.model_encoders(*models)
    output_dir = write(output_dir, values, config=config, vocab_file=vocab_file,
                       overwrite=overwrite, kind=kind, do_lower_case=do_lower_case)
    return {os.path.join(output_dir, subdir) if subdir else output_dir: architecture
            for subdir, architecture, _ in plan(values, kind)}
