"""keras-hub ``ElectraBackbone`` preset directories, read without keras-hub.

A preset directory as ``keras_hub.models.ElectraBackbone.save_to_preset`` writes it:
``config.json`` (``"registered_name": "keras_hub>ElectraBackbone"`` and the backbone's
``vocab_size``, ``num_layers``, ``num_heads``, ``hidden_dim``, ``embedding_dim``,
``intermediate_dim``, ``dropout``, ``max_sequence_length``, ``num_segments``),
``model.weights.h5``, ``metadata.json`` and, with a tokenizer, ``tokenizer.json`` and
``assets/tokenizer/vocabulary.txt``. It holds one encoder: no replaced-token detection
head and no generator head (reading one gives an encoder, like a transformers
``ElectraModel``), plus keras-hub's ``pooled_dense`` (a tanh pooler on [CLS] that ELECTRA
does not have: not read; written with keras-hub's random initialisation).

Names (keras-hub weight path <-> original name, ``<k>`` the layer, n heads of size d):

* ``token_embedding``, ``position_embedding``, ``segment_embedding``,
  ``embeddings_layer_norm`` <-> ``electra/embeddings/{word,position,token_type}_embeddings``,
  ``electra/embeddings/LayerNorm``; ``embeddings_projection`` (only if E != H) <->
  ``electra/embeddings_project``.
* ``transformer_layer_<k>/self_attention_layer/{query,key,value}``: kernel [H, n, d], bias
  [n, d] <-> ``electra/encoder/layer_<k>/attention/self/{query,key,value}`` [H, H], [H]
  (reshaped, columns in head-major order in both); ``.../attention_output`` kernel [n, d, H]
  <-> ``attention/output/dense`` [H, H]; ``self_attention_layer_norm`` <->
  ``attention/output/LayerNorm``; ``feedforward_intermediate_dense``,
  ``feedforward_output_dense``, ``feedforward_layer_norm`` <-> ``intermediate/dense``,
  ``output/dense``, ``output/LayerNorm``.

Numerics: keras-hub's ElectraBackbone always uses the tanh approximation of GELU, ELECTRA
(and this port, and transformers) the exact erf form. Reading a keras-hub preset gives
``hidden_act="gelu"`` (the released weights were trained with it) unless the
``pretraining_config.json`` we write beside it says otherwise; pass
``{"model_hparam_overrides": {"hidden_act": "gelu_approximate"}}`` to reproduce
keras-hub's outputs to float rounding. Between the two activations, sequence outputs of
real tokens differ by about 1e-5 with the released weights.

Reading needs h5py only (Keras depends on it); writing builds the keras-hub backbone and
calls its ``save_to_preset``, so it needs keras-hub (``pip install "electra-tf[keras-hub]"``).
Besides keras-hub's files the writer puts our ``pretraining_config.json`` (the encoder's
hparams: activation, dropout rates, casing, sequence length), which keras-hub ignores.
"""

from __future__ import annotations

import json
import os
import re
from typing import Mapping, Optional

import numpy as np

from electra_tf.formats.common import CONFIG_FILE, PretrainedWeights

NAME = "keras_hub"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.weights.h5"
METADATA_NAME = "metadata.json"
TOKENIZER_NAME = "tokenizer.json"
VOCABULARY_PATH = os.path.join("assets", "tokenizer", "vocabulary.txt")
BACKBONE = "keras_hub>ElectraBackbone"
INSTALL_HINT = 'pip install "electra-tf[keras-hub]"'
# keras-hub's config.json keys <-> our TransformerConfig fields.
_SIZES = {"vocab_size": "vocab_size", "num_layers": "num_hidden_layers",
          "num_heads": "num_attention_heads", "hidden_dim": "hidden_size",
          "embedding_dim": "embedding_size", "intermediate_dim": "intermediate_size",
          "max_sequence_length": "max_position_embeddings", "num_segments": "type_vocab_size"}
_POOLER = "pooled_dense"


def _error(message: str):
    from electra_tf.checkpoints import CheckpointError
    return CheckpointError(message)


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise _error(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    except OSError as e:
        raise _error(f"cannot read {path}: {e.strerror or e}") from None
    if not isinstance(data, dict):
        raise _error(f"{path}: expected a JSON object")
    return data


def _registered_name(config: dict) -> Optional[str]:
    name = config.get("registered_name")
    if isinstance(name, str) and name.startswith(("keras_hub>", "keras_nlp>")):
        return name
    module = config.get("module")
    if isinstance(module, str) and module.startswith(("keras_hub", "keras_nlp")) and \
            isinstance(config.get("class_name"), str):
        return "keras_hub>" + config["class_name"]
    return None


def matches(path: str) -> bool:
    """True for a directory whose ``config.json`` is a keras-hub (or keras-nlp) model's.

    Looks at the JSON only (keras-hub is not imported); any keras-hub backbone counts,
    so that reading one that is not ELECTRA names it.
    """
    path = os.fspath(path)
    config_path = os.path.join(path, CONFIG_NAME)
    if "://" in path or not os.path.isfile(config_path):
        return False
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and _registered_name(config) is not None


# ---------------------------------------------------------------------------
# Names and shapes
# ---------------------------------------------------------------------------

def weight_map(c) -> dict:
    """``{keras-hub weight path: (original name, keras-hub shape, original shape)}`` of an
    ``electra/`` encoder of TransformerConfig ``c`` (keras-hub's ``pooled_dense`` is not
    listed); another network is first moved there
    (:func:`electra_tf.checkpoints.network_values`)."""
    encoder_scope = "electra"
    v, e, h, i = c.vocab_size, c.embedding_size, c.hidden_size, c.intermediate_size
    n = c.num_attention_heads
    d = h // n
    emb = f"{encoder_scope}/embeddings"
    names = {
        "token_embedding/embeddings": (f"{emb}/word_embeddings", [v, e], [v, e]),
        "position_embedding/embeddings": (f"{emb}/position_embeddings",
                                          [c.max_position_embeddings, e],
                                          [c.max_position_embeddings, e]),
        "segment_embedding/embeddings": (f"{emb}/token_type_embeddings",
                                         [c.type_vocab_size, e], [c.type_vocab_size, e]),
        "embeddings_layer_norm/gamma": (f"{emb}/LayerNorm/gamma", [e], [e]),
        "embeddings_layer_norm/beta": (f"{emb}/LayerNorm/beta", [e], [e]),
    }
    if e != h:
        names["embeddings_projection/kernel"] = (f"{encoder_scope}/embeddings_project/kernel",
                                                 [e, h], [e, h])
        names["embeddings_projection/bias"] = (f"{encoder_scope}/embeddings_project/bias",
                                               [h], [h])
    for k in range(c.num_hidden_layers):
        ours, theirs = f"{encoder_scope}/encoder/layer_{k}", f"transformer_layer_{k}"
        for part in ("query", "key", "value"):
            names[f"{theirs}/self_attention_layer/{part}/kernel"] = (
                f"{ours}/attention/self/{part}/kernel", [h, n, d], [h, h])
            names[f"{theirs}/self_attention_layer/{part}/bias"] = (
                f"{ours}/attention/self/{part}/bias", [n, d], [h])
        names[f"{theirs}/self_attention_layer/attention_output/kernel"] = (
            f"{ours}/attention/output/dense/kernel", [n, d, h], [h, h])
        names[f"{theirs}/self_attention_layer/attention_output/bias"] = (
            f"{ours}/attention/output/dense/bias", [h], [h])
        for keras_name, original, width in (
                ("self_attention_layer_norm", "attention/output/LayerNorm", h),
                ("feedforward_layer_norm", "output/LayerNorm", h)):
            names[f"{theirs}/{keras_name}/gamma"] = (f"{ours}/{original}/gamma", [width], [width])
            names[f"{theirs}/{keras_name}/beta"] = (f"{ours}/{original}/beta", [width], [width])
        for keras_name, original, shape in (
                ("feedforward_intermediate_dense", "intermediate/dense", [h, i]),
                ("feedforward_output_dense", "output/dense", [i, h])):
            names[f"{theirs}/{keras_name}/kernel"] = (f"{ours}/{original}/kernel", shape, shape)
            names[f"{theirs}/{keras_name}/bias"] = (f"{ours}/{original}/bias", shape[-1:],
                                                    shape[-1:])
    return names


def _transformer_config(raw: dict, config_path: str):
    """Our TransformerConfig of a keras-hub ElectraBackbone ``config`` dict."""
    from electra_tf.config import ConfigError, TransformerConfig
    where = f"{config_path}:"
    sizes = {}
    for key, field in _SIZES.items():
        value = raw.get(key, raw.get("vocabulary_size") if key == "vocab_size" else None)
        if value is None and key == "num_segments":
            value = 2
        if value is None and key == "max_sequence_length":
            value = 512
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise _error(f"{where} {key} must be a positive integer, got {value!r}")
        sizes[field] = value
    dropout = raw.get("dropout", 0.1)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise _error(f"{where} dropout must be a number, got {dropout!r}")
    try:
        return TransformerConfig(hidden_act="gelu", hidden_dropout_prob=float(dropout),
                                 attention_probs_dropout_prob=float(dropout),
                                 initializer_range=0.02, **sizes)
    except ConfigError as e:
        raise _error(f"{where} {e}") from None


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

# keras' automatic layer names (older files without the layers' own names) -> keras-hub's.
_FALLBACK_TOP = {"reversible_embedding": "token_embedding", "position_embedding":
                 "position_embedding", "embedding": "segment_embedding",
                 "layer_normalization": "embeddings_layer_norm"}
_FALLBACK_INNER = {"query_dense": "query", "key_dense": "key", "value_dense": "value",
                   "output_dense": "attention_output"}


def _layer_name(key: str, group, depth: int) -> str:
    vars_group = group.get("vars")
    name = vars_group.attrs.get("name") if vars_group is not None else None
    if isinstance(name, bytes):
        name = name.decode()
    if name:
        return str(name)
    if depth == 0:
        m = re.fullmatch(r"transformer_encoder(?:_(\d+))?", key)
        if m:
            return f"transformer_layer_{int(m.group(1) or 0)}"
        return _FALLBACK_TOP.get(key, key)
    return _FALLBACK_INNER.get(key, key.lstrip("_"))


def _leaf_names(layer: str, count: int) -> list:
    if layer.endswith("embedding"):
        return ["embeddings"][:count]
    if layer.endswith(("layer_norm", "norm")):
        return ["gamma", "beta"][:count]
    return ["kernel", "bias"][:count]


def _read_h5(path: str, hidden: int, embedding: int) -> dict:
    """``{keras-hub weight path: array}`` of a ``model.weights.h5`` (Keras 3 layout)."""
    import h5py

    from electra_tf.checkpoints import CheckpointError
    tensors = {}

    def visit(group, prefix: str, depth: int):
        for key in sorted(group.keys()):
            child = group[key]
            if key == "vars" or not isinstance(child, h5py.Group):
                continue
            layer = _layer_name(key, child, depth)
            if depth == 0 and re.fullmatch(r"dense(_\d+)?", key) and layer == key:
                first = child.get("vars/0")  # no names: the projection is [E, H], the pooler [H, H]
                layer = ("embeddings_projection" if first is not None and embedding != hidden
                         and tuple(first.shape) == (embedding, hidden) else _POOLER)
            path_here = f"{prefix}{layer}"
            vars_group = child.get("vars")
            if vars_group is not None and len(vars_group):
                indices = sorted(vars_group.keys(), key=lambda x: int(x) if x.isdigit() else x)
                for index, leaf in zip(indices, _leaf_names(layer, len(indices))):
                    value = vars_group[index]
                    array = np.asarray(value[()])
                    if value.attrs.get("dtype") in ("bfloat16", b"bfloat16"):
                        import ml_dtypes
                        array = array.view(ml_dtypes.bfloat16)
                    tensors[f"{path_here}/{leaf}"] = array
            visit(child, f"{path_here}/", depth + 1)

    try:
        with h5py.File(path, "r") as f:
            root = f.get("layers") or f.get("_layer_checkpoint_dependencies")
            if root is None:
                raise _error(f"{path} holds no Keras 3 layer weights (no 'layers' group): "
                             "re-save the preset with keras-hub's save_to_preset()")
            visit(root, "", 0)
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError) as e:
        raise _error(f"cannot read {path} as Keras weights ({' '.join(str(e).split())}): "
                     "re-save the preset with keras-hub's save_to_preset()") from None
    return tensors


def _read_tensors_with_keras_hub(path: str) -> Optional[dict]:
    """The weights by keras-hub path, loaded by keras-hub itself (when installed)."""
    try:
        import keras_hub
    except ImportError:
        return None
    try:
        backbone = keras_hub.models.Backbone.from_preset(path)
    except Exception:  # noqa: BLE001 (keras' loading errors vary): report what h5py found
        return None
    return {w.path: np.asarray(w.numpy()) for w in backbone.weights}


def _do_lower_case(path: str, vocab: Optional[str]) -> Optional[bool]:
    """The tokenizer's casing: ``lowercase`` of tokenizer.json; an uncased vocabulary (no
    upper-case token) is lower-cased whatever that says (upper case would be [UNK])."""
    lowercase = None
    tokenizer_path = os.path.join(path, TOKENIZER_NAME)
    if os.path.isfile(tokenizer_path):
        config = _read_json(tokenizer_path).get("config") or {}
        if isinstance(config.get("lowercase"), bool):
            lowercase = config["lowercase"]
    if lowercase is not True and vocab:
        with open(vocab, encoding="utf-8", errors="replace") as f:
            tokens = [line.strip() for line in f]
        if not any(re.search(r"[A-Z]", t) for t in tokens
                   if not (t.startswith("[") and t.endswith("]"))):
            lowercase = True
    return lowercase


def read(path: str) -> PretrainedWeights:
    """The encoder of a keras-hub ElectraBackbone preset directory by original name.

    Raises:
      CheckpointError: one line naming the file and what to do: not an ElectraBackbone,
        missing weights, weights that do not match ``config.json``.
    """
    from electra_tf.config import load_preset, preset_for_shape
    path = os.path.abspath(os.fspath(path))
    config_path = os.path.join(path, CONFIG_NAME)
    config = _read_json(config_path)
    registered = _registered_name(config)
    if registered is None:
        raise _error(f"{config_path} is not a keras-hub model's config")
    if registered.split(">", 1)[1] != "ElectraBackbone":
        raise _error(f"{path} is a keras-hub {registered.split('>', 1)[1]} preset, not an "
                     f"ElectraBackbone: electra_tf reads {BACKBONE} presets only")
    raw = config.get("config")
    if not isinstance(raw, dict):
        raise _error(f"{config_path}: no 'config' object")
    c = _transformer_config(raw, config_path)
    weights_path = os.path.join(path, WEIGHTS_NAME)
    if not os.path.isfile(weights_path):
        sharded = os.path.isfile(os.path.join(path, "model.weights.json"))
        raise _error(f"no {WEIGHTS_NAME} in {path}" + (
            " (its weights are sharded: re-save with save_to_preset(max_shard_size=None))"
            if sharded else ": not a complete keras-hub preset"))
    tensors = _read_h5(weights_path, c.hidden_size, c.embedding_size)
    names = weight_map(c)
    if not any(k in tensors for k in names):
        # A layout this reader does not know (another Keras version): keras-hub knows it.
        tensors = _read_tensors_with_keras_hub(path) or tensors
    sizes = ", ".join(f"{k}={raw.get(k)}" for k in _SIZES if k in raw)
    where = f"{weights_path} does not match {config_path} ({sizes})"
    missing = [k for k in names if k not in tensors]
    wrong = [f"{k} has shape {list(tensors[k].shape)}, config.json implies {theirs}"
             for k, (_, theirs, _) in names.items()
             if k in tensors and list(tensors[k].shape) != list(theirs)]
    unknown = sorted(k for k in tensors if k not in names and not k.startswith(_POOLER + "/"))
    if wrong:
        more = f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""
        raise _error(f"{where}: {'; '.join(wrong[:3])}{more}. The weights were saved with "
                     "another config: use that preset's config.json")
    if missing:
        raise _error(f"{where}: it lacks {len(missing)} weight(s) ({', '.join(missing[:3])}"
                     f"{' ...' if len(missing) > 3 else ''}); "
                     + (f"install keras-hub ({INSTALL_HINT}) to read this file's layout"
                        if not _has_keras_hub()
                        else "the file is incomplete or config.json describes another model"))
    if unknown:
        raise _error(f"{where}: it holds weights an ElectraBackbone does not have "
                     f"({', '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''})")
    values = {original: np.ascontiguousarray(
        np.asarray(tensors[k], dtype=np.float32).reshape(ours))
        for k, (original, _, ours) in names.items()}
    vocab = os.path.join(path, VOCABULARY_PATH)
    vocab = vocab if os.path.isfile(vocab) else None
    size = preset_for_shape(c.hidden_size, c.num_hidden_layers) or "small"
    overrides = {k: getattr(c, k) for k in (
        "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
        "max_position_embeddings", "type_vocab_size", "hidden_act", "hidden_dropout_prob",
        "attention_probs_dropout_prob")}
    hparams = {"model_size": size, "vocab_size": c.vocab_size,
               "embedding_size": c.embedding_size,
               "max_seq_length": min(load_preset(size)["pretraining"]["max_seq_length"],
                                     c.max_position_embeddings)}
    ours = os.path.join(path, CONFIG_FILE)
    if os.path.isfile(ours):  # written by us: what keras-hub's config cannot say
        stored = _read_json(ours)
        stored_overrides = stored.get("model_hparam_overrides") or {}
        for key in ("hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
                    "initializer_range"):
            if key in stored_overrides:
                overrides[key] = stored_overrides[key]
        for key in ("model_size", "max_seq_length", "do_lower_case"):
            if key in stored:
                hparams[key] = stored[key]
    hparams["model_hparam_overrides"] = overrides
    if "do_lower_case" not in hparams:
        lower = _do_lower_case(path, vocab)
        if lower is not None:
            hparams["do_lower_case"] = lower
    return PretrainedWeights(values=values, hparams=hparams, vocab_file=vocab, source=path,
                             format=NAME)


def _has_keras_hub() -> bool:
    import importlib.util
    return importlib.util.find_spec("keras_hub") is not None


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def _network_config(config, network: str, values: Mapping):
    """(TransformerConfig of the encoder written, PretrainingConfig or None)."""
    from electra_tf.checkpoints import CheckpointError, encoder_configs, pretraining_config_of
    from electra_tf.config import TransformerConfig
    from electra_tf.pretraining.recipes import Recipe
    if network not in ("discriminator", "generator"):
        raise ValueError(f"network must be 'discriminator' or 'generator', got {network!r}")
    if isinstance(config, TransformerConfig):
        if network != "discriminator":
            raise ValueError("a TransformerConfig describes one encoder: network must be "
                             "'discriminator'")
        return config, None
    try:
        _, full = pretraining_config_of(config)
    except TypeError:
        raise CheckpointError(f"config must be a PretrainingConfig, a FinetuningConfig, a "
                              f"TransformerConfig or hparams, got {type(config).__name__}"
                              ) from None
    scope = "electra"
    if network == "generator":
        scope = Recipe.from_checkpoint_names(values).masked_lm_scope or "generator"
    return encoder_configs(full)[scope], full


def write(output_dir: str, values: Mapping, *, config, vocab_file: Optional[str] = None,
          global_step: Optional[int] = None, overwrite: bool = False,
          network: str = "discriminator", do_lower_case: Optional[bool] = None) -> str:
    """Writes one encoder of ``values`` as a keras-hub ElectraBackbone preset directory.

    Args:
      output_dir: a local directory, written in a temporary sibling and renamed into place.
      values: ``{original name: array}`` (heads and other networks are left out).
      config: what the values were built with (PretrainingConfig, FinetuningConfig, hparams
        or the encoder's TransformerConfig): the head count is not in the shapes.
      vocab_file: written as keras-hub's ElectraTokenizer (``tokenizer.json``,
        ``assets/tokenizer/vocabulary.txt``); without one, no tokenizer is written.
      do_lower_case: the tokenizer's casing (default: the config's, else True); lowercase
        also strips accents, as BERT's uncased tokenizer does.
      global_step: not stored (a keras-hub preset has no step).
      network: ``"discriminator"`` (the ``electra/`` encoder: a discriminator, a backbone or
        an MLM-only network) or ``"generator"`` (the masked LM's encoder with the
        embeddings it reads, :func:`electra_tf.checkpoints.network_values`, like
        keras-hub's generator presets).
      overwrite: replace a non-empty ``output_dir``.
    Returns:
      the absolute directory written.
    Raises:
      CheckpointError: keras-hub missing, an activation keras-hub cannot run, missing
        weights or shapes the config does not describe (nothing is written).
    """
    from electra_tf.formats.common import write_sidecar_files
    from electra_tf.io_utils import staged_directory
    from electra_tf.checkpoints import network_values
    del global_step
    c, full = _network_config(config, network, values)
    if "://" in os.fspath(output_dir):
        raise _error("keras-hub presets are written to local paths only")
    if c.hidden_act not in ("gelu", "gelu_approximate"):
        raise _error(f"hidden_act {c.hidden_act!r} cannot be written as a keras-hub "
                     "ElectraBackbone, which always uses GELU")
    if network == "generator":  # its encoder moved under electra/, as the MLM-only layout
        values = network_values(values, "generator")
    names = weight_map(c)
    missing = [original for original, _, _ in names.values() if original not in values]
    if missing:
        raise _error(f"cannot write a keras-hub {network} backbone: the weights lack "
                     f"{len(missing)} variable(s) of the config's encoder "
                     f"({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''})")
    wrong = [f"{original} {list(np.shape(values[original]))}, the config implies {ours}"
             for original, _, ours in names.values()
             if list(np.shape(values[original])) != list(ours)]
    if wrong:
        raise _error(f"the config given for {output_dir} does not describe the weights "
                     f"({'; '.join(wrong[:3])})")
    if vocab_file and not os.path.isfile(vocab_file):
        raise _error(f"vocab file not found: {vocab_file}")
    if do_lower_case is None:
        do_lower_case = full.do_lower_case if full is not None else True
    try:
        import keras_hub
    except ImportError:
        raise _error(f"writing a keras-hub preset ({output_dir}) needs keras-hub: "
                     f"{INSTALL_HINT}") from None
    backbone = keras_hub.models.ElectraBackbone(
        vocab_size=c.vocab_size, num_layers=c.num_hidden_layers,
        num_heads=c.num_attention_heads, hidden_dim=c.hidden_size,
        embedding_dim=c.embedding_size, intermediate_dim=c.intermediate_size,
        dropout=c.hidden_dropout_prob, max_sequence_length=c.max_position_embeddings,
        num_segments=c.type_vocab_size, dtype="float32")
    assigned = set()
    for weight in backbone.weights:
        if weight.path in names:
            original, theirs, _ = names[weight.path]
            weight.assign(np.asarray(values[original], np.float32).reshape(theirs))
            assigned.add(weight.path)
        elif not weight.path.startswith(_POOLER + "/"):
            raise _error(f"keras-hub's ElectraBackbone has a weight {weight.path} that "
                         "electra_tf does not map: this keras-hub version is not supported")
    if assigned != set(names):
        raise _error(f"keras-hub's ElectraBackbone lacks {sorted(set(names) - assigned)[:3]}: "
                     "this keras-hub version is not supported")
    sidecar = {"model_size": full.model_size if full is not None else "small",
               "vocab_size": c.vocab_size, "embedding_size": c.embedding_size,
               "do_lower_case": bool(do_lower_case),
               "model_hparam_overrides": {k: getattr(c, k) for k in (
                   "hidden_size", "num_hidden_layers", "num_attention_heads",
                   "intermediate_size", "hidden_act", "hidden_dropout_prob",
                   "attention_probs_dropout_prob", "max_position_embeddings",
                   "type_vocab_size", "initializer_range")}}
    if full is not None:
        sidecar["max_seq_length"] = min(full.max_seq_length, c.max_position_embeddings)
    output_dir = os.path.abspath(os.fspath(output_dir))
    with staged_directory(output_dir, overwrite) as tmp:
        backbone.save_to_preset(tmp)
        if vocab_file:
            tokenizer = keras_hub.models.ElectraTokenizer(
                vocabulary=vocab_file, lowercase=bool(do_lower_case),
                strip_accents=bool(do_lower_case))
            tokenizer.save_to_preset(tmp)
        write_sidecar_files(tmp, sidecar, None)
    return output_dir
