"""Pre-training output heads: the masked-LM/cloze head (spec 3.5) and the
replaced-token-detection head (spec 3.8)."""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.config import TransformerConfig
from electra_tf.networks import layers


class MaskedLMHead(keras.layers.Layer):
    """dense(->E) + GELU, LayerNorm, then logits against the word-embedding table.

    The output matrix is the (shared) word-embedding table passed at call time;
    this head owns only ``dense``, ``LayerNorm`` and ``output_bias``.

    Args:
      config: the generator's transformer config (``vocab_size``, ``hidden_act``,
        ``initializer_range``).
      embedding_size: E, the width of the output embedding table.
      scope: ``generator_predictions`` (MLM) or ``cloze_predictions`` (Electric).
    """

    def __init__(self, config: TransformerConfig, embedding_size: int,
                 scope: str = "generator_predictions", **kwargs):
        kwargs.setdefault("name", scope)
        super().__init__(**kwargs)
        self.config = config
        self.scope = scope
        self.embedding_size = embedding_size
        self.dense = layers.dense(embedding_size, "dense",
                                  layers.truncated_normal(config.initializer_range),
                                  act=layers.activation(config.hidden_act))
        self.layer_norm = layers.layer_norm("LayerNorm")

    def build(self, input_shape):
        self.dense.build((None, input_shape[-1]))
        self.layer_norm.build((None, self.embedding_size))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.config.vocab_size,),
                                           initializer="zeros")
        super().build(input_shape)

    def call(self, hidden, output_embeddings):
        """Token logits.

        Args:
          hidden: float [B, N, D] (hidden states at the predicted positions).
          output_embeddings: the word-embedding table [V, E].
        Returns:
          float logits [B, N, V].
        """
        shape = tf.shape(hidden)
        # A 2-D matmul is faster than the 3-D transpose_b form on CPU (environment notes).
        flat = tf.reshape(hidden, [-1, hidden.shape[-1]])
        flat = self.layer_norm(self.dense(flat))
        logits = tf.matmul(flat, tf.cast(output_embeddings, flat.dtype), transpose_b=True)
        logits = tf.nn.bias_add(logits, tf.cast(self.output_bias, logits.dtype))
        return tf.reshape(logits, tf.concat([shape[:-1], [self.config.vocab_size]], 0))

    def original_variables(self) -> dict:
        s = self.scope
        return {
            **layers.dense_variables(self.dense, f"{s}/dense"),
            **layers.layer_norm_variables(self.layer_norm, f"{s}/LayerNorm"),
            f"{s}/output_bias": self.output_bias,
        }


class DiscriminatorHead(keras.layers.Layer):
    """dense(H->H) + GELU (trunc-normal), then dense_1(H->1) (Glorot), squeezed.

    Original scope ``discriminator_predictions`` with ``dense`` and ``dense_1``.
    """

    def __init__(self, config: TransformerConfig, scope: str = "discriminator_predictions",
                 **kwargs):
        kwargs.setdefault("name", scope)
        super().__init__(**kwargs)
        self.config = config
        self.scope = scope
        self.dense = layers.dense(config.hidden_size, "dense",
                                  layers.truncated_normal(config.initializer_range),
                                  act=layers.activation(config.hidden_act))
        self.dense_1 = layers.dense(1, "dense_1")

    def build(self, input_shape):
        self.dense.build((None, None, self.config.hidden_size))
        self.dense_1.build((None, None, self.config.hidden_size))
        super().build(input_shape)

    def call(self, sequence_output):
        """[B, L, H] -> logits [B, L] (a token is predicted fake iff its logit > 0)."""
        # On [B*L, H] rows: a 2-D MatMul fuses with its bias add and GELU (transformer.py).
        rows = tf.reshape(sequence_output, [-1, self.config.hidden_size])
        return tf.reshape(self.dense_1(self.dense(rows)), tf.shape(sequence_output)[:-1])

    def original_variables(self) -> dict:
        return {**layers.dense_variables(self.dense, f"{self.scope}/dense"),
                **layers.dense_variables(self.dense_1, f"{self.scope}/dense_1")}
