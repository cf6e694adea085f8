"""Small building blocks shared by every ELECTRA network (spec 2, 10)."""

from __future__ import annotations

import keras
import tensorflow as tf

# LayerNorm epsilon of tf.contrib.layers.layer_norm; Keras' default 1e-3 is wrong here.
LAYER_NORM_EPSILON = 1e-12
# Additive attention bias for masked keys (the original uses -10000, not -inf).
ATTENTION_MASK_BIAS = -10000.0


def truncated_normal(stddev: float) -> keras.initializers.Initializer:
    """TF1 ``truncated_normal_initializer``: resample beyond 2 sigma, no variance rescaling."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


def activation(name: str):
    """The transformer activations the original supports; "gelu" is the exact erf form."""
    if name == "gelu":
        return lambda x: tf.nn.gelu(x, approximate=False)
    if name == "gelu_approximate":
        return lambda x: tf.nn.gelu(x, approximate=True)
    if name == "relu":
        return tf.nn.relu
    raise ValueError(f"unsupported activation {name!r}")


def layer_norm(name: str) -> keras.layers.LayerNormalization:
    return keras.layers.LayerNormalization(axis=-1, epsilon=LAYER_NORM_EPSILON, name=name)


def dense(units: int, name: str, initializer=None, act=None) -> keras.layers.Dense:
    """A dense layer; ``initializer=None`` means the framework default (Glorot-uniform).

    Spec 2.7: the original leaves some kernels (embedding projection, the
    discriminator's logit layer, task heads) at the framework default.
    """
    return keras.layers.Dense(
        units, activation=act, name=name,
        kernel_initializer=initializer or keras.initializers.GlorotUniform(),
        bias_initializer="zeros")


class Dropout(keras.layers.Layer):
    """Inverted dropout drawn with stateless Philox random numbers.

    Same semantics as ``keras.layers.Dropout(rate)`` (drop probability, kept
    units scaled by 1/(1-rate)). Stock Keras dropout lets TensorFlow pick the
    RNG algorithm, which under XLA on CPU is far slower per call; Philox keeps
    ``jit_compile=True`` steps fast (measured in the environment notes).
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if self.rate > 0 else None

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # The generator's state is mirrored: without this every replica would drop
            # the same units of its (different) examples.
            seed = tf.random.experimental.stateless_fold_in(
                seed, tf.cast(context.replica_id_in_sync_group, tf.int32))
        keep = tf.random.stateless_uniform(tf.shape(inputs), seed=seed, alg="philox") >= self.rate
        scale = tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
        return tf.where(keep, inputs * scale, tf.zeros_like(inputs))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def gather_positions(sequence: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """Picks rows of a sequence at per-example positions (spec 3.3).

    Args:
      sequence: [B, L] or [B, L, D].
      positions: int [B, N].
    Returns:
      [B, N] or [B, N, D].
    """
    return tf.gather(sequence, tf.cast(positions, tf.int32), batch_dims=1)


def dense_variables(layer: keras.layers.Dense, scope: str) -> dict:
    """Original (TF1) names of a dense layer's weights: ``<scope>/kernel``, ``<scope>/bias``."""
    return {f"{scope}/kernel": layer.kernel, f"{scope}/bias": layer.bias}


def layer_norm_variables(layer: keras.layers.LayerNormalization, scope: str) -> dict:
    """Original (TF1) names of a LayerNorm's weights: ``<scope>/gamma``, ``<scope>/beta``."""
    return {f"{scope}/gamma": layer.gamma, f"{scope}/beta": layer.beta}
