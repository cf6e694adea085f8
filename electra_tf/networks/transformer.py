"""One post-LayerNorm BERT/ELECTRA transformer layer (spec 2.4, 2.5)."""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.config import TransformerConfig
from electra_tf.networks import layers


def attention_bias(input_mask: tf.Tensor, direction: str | None = None,
                   dtype=tf.float32) -> tf.Tensor:
    """Additive attention bias from a key mask (spec 2.4).

    Args:
      input_mask: int/float [B, L], 1 for real tokens.
      direction: None (bidirectional), "ltr" (keys j <= i) or "rtl" (keys j >= i),
        the causal masks of Electric's two-tower generator.
    Returns:
      [B, 1, 1, L] for None, [B, 1, L, L] otherwise: 0 where attention is allowed,
      -10000 where it is not.
    """
    mask = tf.cast(input_mask, dtype)[:, tf.newaxis, tf.newaxis, :]
    if direction is not None:
        length = tf.shape(input_mask)[1]
        ones = tf.ones((length, length), dtype)
        if direction == "ltr":
            causal = tf.linalg.band_part(ones, -1, 0)
        elif direction == "rtl":
            causal = tf.linalg.band_part(ones, 0, -1)
        else:
            raise ValueError(f"attention direction must be None, 'ltr' or 'rtl', got {direction!r}")
        mask = mask * causal[tf.newaxis, tf.newaxis]
    return (1.0 - mask) * layers.ATTENTION_MASK_BIAS


class TransformerLayer(keras.layers.Layer):
    """Self-attention + feed-forward block with residuals and LayerNorm after each.

    Original scope: ``<encoder>/encoder/layer_<k>`` with sublayers
    ``attention/self/{query,key,value}``, ``attention/output/{dense,LayerNorm}``,
    ``intermediate/dense``, ``output/{dense,LayerNorm}``.
    """

    def __init__(self, config: TransformerConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        h, init = config.hidden_size, layers.truncated_normal(config.initializer_range)
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.query = layers.dense(h, "query", init)
        self.key = layers.dense(h, "key", init)
        self.value = layers.dense(h, "value", init)
        self.attention_probs_dropout = layers.Dropout(config.attention_probs_dropout_prob,
                                                      name="attention_probs_dropout")
        self.attention_output = layers.dense(h, "attention_output", init)
        self.attention_output_dropout = layers.Dropout(config.hidden_dropout_prob,
                                                       name="attention_output_dropout")
        self.attention_layer_norm = layers.layer_norm("attention_layer_norm")
        self.intermediate = layers.dense(config.intermediate_size, "intermediate", init,
                                         act=layers.activation(config.hidden_act))
        self.output_dense = layers.dense(h, "output_dense", init)
        self.output_dropout = layers.Dropout(config.hidden_dropout_prob, name="output_dropout")
        self.output_layer_norm = layers.layer_norm("output_layer_norm")

    def build(self, input_shape):
        h, i = self.config.hidden_size, self.config.intermediate_size
        for dense in (self.query, self.key, self.value, self.attention_output):
            dense.build((None, None, h))
        self.intermediate.build((None, None, h))
        self.output_dense.build((None, None, i))
        self.attention_layer_norm.build((None, None, h))
        self.output_layer_norm.build((None, None, h))
        super().build(input_shape)

    def _split_heads(self, x, batch, length):
        # [B*L, H] -> [B, heads, L, d]
        x = tf.reshape(x, [batch, length, self.num_heads, self.head_size])
        return tf.transpose(x, [0, 2, 1, 3])

    def call(self, hidden, bias, training=False):
        """Runs the layer.

        Args:
          hidden: float [B, L, H].
          bias: additive attention bias, [B, 1, 1, L] or [B, 1, L, L] (see ``attention_bias``).
        Returns:
          (output [B, L, H], attention probabilities float32 [B, heads, L, L]).
        """
        shape = tf.shape(hidden)
        batch, length = shape[0], shape[1]
        # Every dense layer runs on [B*L, H] rows, as the original's reshape_to_matrix:
        # a 2-D MatMul fuses with its bias add and GELU in oneDNN, where a rank-3 Dense is
        # MatMul -> Reshape -> BiasAdd (benchmarks/profile_step.py shows the difference).
        rows = tf.reshape(hidden, [-1, self.config.hidden_size])
        q = self._split_heads(self.query(rows), batch, length)
        k = self._split_heads(self.key(rows), batch, length)
        v = self._split_heads(self.value(rows), batch, length)
        # Softmax statistics in float32 under mixed precision (a no-op cast in float32):
        # bfloat16's 8-bit mantissa loses the row sums over hundreds of keys.
        scores = tf.cast(tf.matmul(q, k, transpose_b=True), tf.float32)
        scores = scores * (1.0 / float(self.head_size) ** 0.5) + tf.cast(bias, tf.float32)
        probs = tf.nn.softmax(scores, axis=-1)
        context = tf.matmul(
            self.attention_probs_dropout(tf.cast(probs, v.dtype), training=training), v)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), tf.shape(rows))
        attended = self.attention_output_dropout(self.attention_output(context), training=training)
        attended = self.attention_layer_norm(attended + rows)
        out = self.output_dropout(self.output_dense(self.intermediate(attended)), training=training)
        return tf.reshape(self.output_layer_norm(out + attended), shape), probs

    def original_variables(self, scope: str) -> dict:
        """{TF1 name: variable} with names under ``scope`` (``.../encoder/layer_<k>``)."""
        return {
            **layers.dense_variables(self.query, f"{scope}/attention/self/query"),
            **layers.dense_variables(self.key, f"{scope}/attention/self/key"),
            **layers.dense_variables(self.value, f"{scope}/attention/self/value"),
            **layers.dense_variables(self.attention_output, f"{scope}/attention/output/dense"),
            **layers.layer_norm_variables(self.attention_layer_norm,
                                          f"{scope}/attention/output/LayerNorm"),
            **layers.dense_variables(self.intermediate, f"{scope}/intermediate/dense"),
            **layers.dense_variables(self.output_dense, f"{scope}/output/dense"),
            **layers.layer_norm_variables(self.output_layer_norm, f"{scope}/output/LayerNorm"),
        }
