"""The ELECTRA transformer encoder: BERT without the pooler (spec 2)."""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from electra_tf.config import TransformerConfig
from electra_tf.networks import layers
from electra_tf.networks.embeddings import ElectraEmbeddings
from electra_tf.networks.transformer import TransformerLayer, attention_bias


class ElectraEncoder(keras.layers.Layer):
    """Embeddings (own or shared), optional E->H projection, and the layer stack.

    Args:
      config: the transformer shape. When ``embeddings`` is given, its width must
        equal ``config.embedding_size``.
      scope: original variable scope (``electra``, ``generator``, ``generator_ltr``...).
      embeddings: a shared :class:`ElectraEmbeddings`; ``None`` creates one under
        ``<scope>/embeddings`` (untied).
      attention_direction: None, "ltr" or "rtl" (Electric's causal towers, spec 2.4).
    """

    def __init__(self, config: TransformerConfig, scope: str = "electra",
                 embeddings: Optional[ElectraEmbeddings] = None,
                 attention_direction: Optional[str] = None, **kwargs):
        kwargs.setdefault("name", scope)
        super().__init__(**kwargs)
        self.config = config
        self.scope = scope
        self.attention_direction = attention_direction
        if embeddings is None:
            embeddings = ElectraEmbeddings(config, scope=f"{scope}/embeddings")
        elif embeddings.embedding_size != config.embedding_size:
            raise ValueError(
                f"shared embeddings have width {embeddings.embedding_size} but the {scope} "
                f"config expects embedding_size {config.embedding_size}")
        self.embeddings = embeddings
        self.embeddings_project = None
        if config.embedding_size != config.hidden_size:
            # Framework-default (Glorot) kernel, as the original (spec 2.3).
            self.embeddings_project = layers.dense(config.hidden_size, "embeddings_project")
        self.transformer_layers = [TransformerLayer(config, name=f"layer_{k}")
                                   for k in range(config.num_hidden_layers)]

    def build(self, input_shape=None):
        if not self.embeddings.built:
            self.embeddings.build()
        if self.embeddings_project is not None:
            self.embeddings_project.build((None, None, self.config.embedding_size))
        for layer in self.transformer_layers:
            layer.build((None, None, self.config.hidden_size))
        super().build(input_shape)

    def call(self, input_ids, input_mask=None, token_type_ids=None, training=False):
        """Encodes a batch.

        Args:
          input_ids: int [B, L], L <= max_position_embeddings.
          input_mask: int [B, L], 1 = real token (default all ones). Only keys are masked.
          token_type_ids: int [B, L] segment ids (default zeros).
        Returns:
          dict with ``sequence_output`` [B, L, H]; ``pooled_output`` [B, H], the raw
          [CLS] vector (no pooler); ``hidden_states``: list of num_layers + 1 tensors
          [B, L, H] (the projected embeddings, then each layer's output);
          ``attention_probs``: list of [B, heads, L, L].
        """
        if input_mask is None:
            input_mask = tf.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = tf.zeros_like(input_ids)
        hidden = self.embeddings(input_ids, token_type_ids, training=training)
        if self.embeddings_project is not None:
            rows = tf.reshape(hidden, [-1, self.config.embedding_size])  # fuses the bias add
            hidden = tf.reshape(self.embeddings_project(rows),
                                tf.concat([tf.shape(hidden)[:-1], [self.config.hidden_size]], 0))
        bias = attention_bias(input_mask, self.attention_direction, dtype=hidden.dtype)
        hidden_states, attention_probs = [hidden], []
        for layer in self.transformer_layers:
            hidden, probs = layer(hidden, bias, training=training)
            hidden_states.append(hidden)
            attention_probs.append(probs)
        return {
            "sequence_output": hidden,
            "pooled_output": hidden[:, 0],
            "hidden_states": hidden_states,
            "attention_probs": attention_probs,
        }

    def original_variables(self) -> dict:
        """{TF1 name: variable} for the embeddings, projection and layers (spec 7.1)."""
        names = dict(self.embeddings.original_variables())
        if self.embeddings_project is not None:
            names.update(layers.dense_variables(self.embeddings_project,
                                                f"{self.scope}/embeddings_project"))
        for k, layer in enumerate(self.transformer_layers):
            names.update(layer.original_variables(f"{self.scope}/encoder/layer_{k}"))
        return names
