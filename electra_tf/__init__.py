"""electra-tf: ELECTRA pre-training and fine-tuning in TensorFlow 2 / Keras 3.

Public API (imported lazily so that light tools do not pay for TensorFlow):

- ``PretrainingConfig`` / ``TransformerConfig``: typed configs from ``configs/*.json``.
- ``Discriminator``, ``Generator``, ``ElectraEncoder``, ``build_pretraining_models``.
- ``load_original_checkpoint``, ``save_original_checkpoint``,
  ``infer_pretraining_config``: Google's TF1 variable names (spec 7).
"""

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "electra_tf.config",
    "PretrainingConfig": "electra_tf.config",
    "TransformerConfig": "electra_tf.config",
    "derive_generator_config": "electra_tf.config",
    "Discriminator": "electra_tf.networks",
    "Generator": "electra_tf.networks",
    "ElectraEncoder": "electra_tf.networks",
    "ElectraEmbeddings": "electra_tf.networks",
    "PretrainingModels": "electra_tf.networks",
    "build_pretraining_models": "electra_tf.networks",
    "CheckpointError": "electra_tf.checkpoints",
    "load_original_checkpoint": "electra_tf.formats.tf1",
    "save_original_checkpoint": "electra_tf.formats.tf1",
    "infer_pretraining_config": "electra_tf.formats.tf1",
    "original_variables": "electra_tf.checkpoints",
    "read_checkpoint_shapes": "electra_tf.formats.files",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'electra_tf' has no attribute {name!r}")


def __dir__():
    return __all__
