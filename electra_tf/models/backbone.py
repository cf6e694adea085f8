"""The pre-trained discriminator encoder as a Keras model (the backbone of every task model)."""

from __future__ import annotations

import os
from typing import Mapping, Optional

import keras
import tensorflow as tf

from electra_tf import checkpoints, loading
from electra_tf.config import TransformerConfig
from electra_tf.networks import ElectraEncoder

# The original scope of the encoder that gets fine-tuned: the fine-tuning model's
# ``electra/...`` names, so checkpoints move between this API and the drivers.
ENCODER_SCOPE = "electra"


def read_pretrained(path_or_weights):
    """The weights (``loading.PretrainedWeights``) of a path, or ones already read.

    ``path_or_weights``: anything ``loading.read_weights`` reads (a pre-training run
    directory or its ``ckpt-N``, a TF1 export, a transformers or keras-format directory).
    """
    if isinstance(path_or_weights, (str, os.PathLike)):
        return loading.read_weights(os.fspath(path_or_weights))
    return path_or_weights


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraBackbone(keras.Model):
    """The ELECTRA discriminator's transformer encoder (no replaced-token head).

    Its weights are the fine-tuning model's ``electra/...`` encoder: ``original_variables()``
    gives the same names, so ``electra_tf.formats.tf1.save_original_checkpoint(prefix, backbone)``
    writes an ``init_checkpoint`` for ``run_finetuning.py``.

    Build it from a checkpoint (:meth:`from_pretrained`), from a ``TransformerConfig``
    (``ElectraBackbone(config)``), or with keras-hub's keywords::

        ElectraBackbone(vocabulary_size=30522, num_layers=12, num_heads=4, hidden_dim=256,
                        intermediate_dim=1024, embedding_dim=128)

    Args:
      config: the transformer's shape (``TransformerConfig``), or None to give it by keywords.
      model_size: the size preset the weights were trained with (``small``, ``base``...);
        the task models take their fine-tuning defaults (learning rate, layer-wise decay)
        from it.
      vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, embedding_dim,
      dropout, max_sequence_length, num_segments: keras-hub's names for the config's
        ``vocab_size``, ``num_hidden_layers``, ``num_attention_heads``, ``hidden_size``,
        ``intermediate_size``, ``embedding_size`` (default: ``hidden_dim``), both dropout
        rates, ``max_position_embeddings`` and ``type_vocab_size`` (without ``config``).

    Call with a dict of int [B, L] ``input_ids``, ``input_mask`` (1 = real token; default
    all ones) and ``segment_ids`` (default zeros). Returns ``sequence_output`` [B, L, H]
    and ``pooled_output`` [B, H] (the [CLS] vector, as fine-tuning's sentence heads read
    it; ELECTRA has no pooler), float32 whatever the dtype policy.
    """

    def __init__(self, config: Optional[TransformerConfig] = None, model_size: str = "small",
                 *, vocabulary_size: Optional[int] = None, num_layers: Optional[int] = None,
                 num_heads: Optional[int] = None, hidden_dim: Optional[int] = None,
                 intermediate_dim: Optional[int] = None, embedding_dim: Optional[int] = None,
                 dropout: float = 0.1, max_sequence_length: int = 512, num_segments: int = 2,
                 **kwargs):
        kwargs.setdefault("name", "electra_backbone")
        super().__init__(**kwargs)
        keywords = dict(vocabulary_size=vocabulary_size, num_layers=num_layers,
                        num_heads=num_heads, hidden_dim=hidden_dim,
                        intermediate_dim=intermediate_dim)
        if config is None:
            missing = [k for k, v in keywords.items() if v is None]
            if missing:
                raise ValueError(f"ElectraBackbone needs a TransformerConfig or the keywords "
                                 f"{', '.join(keywords)} (missing: {', '.join(missing)})")
            config = TransformerConfig(
                vocab_size=int(vocabulary_size), hidden_size=int(hidden_dim),
                num_hidden_layers=int(num_layers), num_attention_heads=int(num_heads),
                intermediate_size=int(intermediate_dim), hidden_act="gelu",
                hidden_dropout_prob=float(dropout), attention_probs_dropout_prob=float(dropout),
                max_position_embeddings=int(max_sequence_length),
                type_vocab_size=int(num_segments), initializer_range=0.02,
                embedding_size=int(embedding_dim or hidden_dim))
        elif isinstance(config, Mapping):
            config = TransformerConfig.from_dict(config)
        elif any(v is not None for v in keywords.values()):
            raise ValueError("ElectraBackbone takes a config or keywords, not both")
        self.config = config
        self.model_size = model_size
        self.encoder = ElectraEncoder(config, scope=ENCODER_SCOPE)

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    def build(self, input_shape=None):
        if not self.encoder.built:
            self.encoder.build()
        super().build(input_shape)

    def call(self, features: Mapping[str, tf.Tensor], training=False):
        # Keras' data adapters may hand integer features over as floats.
        ids, mask, segments = (None if features.get(name) is None
                               else tf.cast(features[name], tf.int32)
                               for name in ("input_ids", "input_mask", "segment_ids"))
        encoded = self.encoder(ids, mask, segments, training=training)
        return {name: tf.cast(encoded[name], tf.float32)
                for name in ("sequence_output", "pooled_output")}

    def original_variables(self) -> dict:
        """``{original (TF1) name: variable}``, e.g. ``electra/encoder/layer_0/...``."""
        return self.encoder.original_variables()

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict(),
                "model_size": self.model_size}

    @classmethod
    def from_config(cls, config):
        return cls(**config)  # __init__ takes the config as a dict too

    @classmethod
    def from_pretrained(cls, path, hparams=None) -> "ElectraBackbone":
        """The discriminator encoder of a pre-trained checkpoint, weights assigned.

        Args:
          path: anything ``loading.read_weights`` reads (a pre-training run directory at
            its newest complete checkpoint, one ``ckpt-N``, a TF1 export such as
            ``<model_dir>/tf1``, ``<model_dir>/discriminator`` or a released model, a
            transformers, keras-format or keras-hub preset directory, or a released
            model's name such as ``electra_small_discriminator``), or weights it returned.
          hparams: PretrainingConfig overrides (dict, JSON or .json path), e.g.
            ``{"model_hparam_overrides": {"hidden_dropout_prob": 0.0}}``; sizes come from
            the checkpoint.
        """
        weights = read_pretrained(path)
        backbone = cls.for_weights(weights, hparams)
        backbone.build()
        assign_weights(weights, backbone)
        return backbone

    @classmethod
    def from_preset(cls, preset, hparams=None) -> "ElectraBackbone":
        """keras-hub's name for :meth:`from_pretrained`: a released model by name
        (``electra_small_discriminator``, keras-hub's ``electra_base_generator_uncased_en``,
        ``google/electra-large-discriminator``; downloaded and verified on first use, see
        :mod:`electra_tf.presets`), a keras-hub preset directory, or any path
        :meth:`from_pretrained` reads. A generator preset gives the generator's encoder."""
        return cls.from_pretrained(preset, hparams)

    @classmethod
    def for_weights(cls, weights, hparams=None) -> "ElectraBackbone":
        """The backbone the weights describe, not yet built nor assigned.

        Built later (a task model builds it with its head, in fine-tuning's order, so
        both draw the same initial values from one seed).
        """
        config = loading.config_for_weights(weights, hparams)
        return cls(config.discriminator_config(), model_size=config.model_size)


def assign_weights(weights, *models) -> checkpoints.LoadReport:
    """Assigns every variable of ``models`` found by original name in ``weights``.

    The encoder must be complete; a task head (``task_specific/...``) is assigned when the
    checkpoint holds it (a fine-tuned model) and keeps its initialisation otherwise.
    """
    return checkpoints.assign_original_weights(
        weights.values, *models, allow_missing=[r"^task_specific/"], source=weights.source)
