"""The embedding block: word + token type + position, LayerNorm, dropout (spec 2.2)."""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.config import TransformerConfig
from electra_tf.networks import layers


class ElectraEmbeddings(keras.layers.Layer):
    """Embedding block shared (by default) by the generator and the discriminator.

    Holds the tables and the embedding LayerNorm; the E->H projection belongs to
    each encoder, not to this block (spec 2.3, 2.7).

    Args:
      config: uses ``vocab_size``, ``embedding_size`` (E), ``type_vocab_size``,
        ``max_position_embeddings``, ``hidden_dropout_prob``, ``initializer_range``.
      scope: the original variable scope of the block, ``electra/embeddings`` when
        shared, ``generator/embeddings`` for an untied generator.
    """

    def __init__(self, config: TransformerConfig, scope: str = "electra/embeddings", **kwargs):
        kwargs.setdefault("name", "embeddings")
        super().__init__(**kwargs)
        self.config = config
        self.scope = scope
        self.layer_norm = layers.layer_norm("LayerNorm")
        self.dropout = layers.Dropout(config.hidden_dropout_prob, name="dropout")

    @property
    def embedding_size(self) -> int:
        return self.config.embedding_size

    def build(self, input_shape=None):
        c = self.config
        init = layers.truncated_normal(c.initializer_range)
        self.word_embeddings = self.add_weight(
            name="word_embeddings", shape=(c.vocab_size, c.embedding_size), initializer=init)
        self.token_type_embeddings = self.add_weight(
            name="token_type_embeddings", shape=(c.type_vocab_size, c.embedding_size),
            initializer=init)
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(c.max_position_embeddings, c.embedding_size),
            initializer=init)
        self.layer_norm.build((None, None, c.embedding_size))
        super().build(input_shape)

    def call(self, input_ids, token_type_ids, training=False):
        """Embeds a batch.

        Args:
          input_ids: int [B, L], L <= max_position_embeddings.
          token_type_ids: int [B, L] (segment ids).
        Returns:
          float [B, L, E].
        """
        length = input_ids.shape[1]
        if length is not None and length > self.config.max_position_embeddings:
            raise ValueError(f"sequence length {length} exceeds max_position_embeddings "
                             f"{self.config.max_position_embeddings}")
        if length is None:
            length = tf.shape(input_ids)[1]
        embedded = tf.gather(self.word_embeddings, input_ids)
        embedded += tf.gather(self.token_type_embeddings, token_type_ids)
        embedded += self.position_embeddings[:length][tf.newaxis]
        embedded = self.layer_norm(embedded)
        return self.dropout(embedded, training=training)

    def original_variables(self) -> dict:
        """{TF1 name: variable} for this block, under ``self.scope``."""
        s = self.scope
        return {
            f"{s}/word_embeddings": self.word_embeddings,
            f"{s}/token_type_embeddings": self.token_type_embeddings,
            f"{s}/position_embeddings": self.position_embeddings,
            **layers.layer_norm_variables(self.layer_norm, f"{s}/LayerNorm"),
        }
