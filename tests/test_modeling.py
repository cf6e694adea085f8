"""Keras models: sizes, sharing, shapes, XLA, dropout, masks and initialisers.

Spec 2, 3.5, 3.8, 7.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import Discriminator, PretrainingConfig, build_pretraining_models
from electra_tf.checkpoints import count_parameters
from electra_tf.config import TransformerConfig
from electra_tf.networks import ElectraEncoder, attention_bias
from electra_tf.networks.layers import Dropout, activation


def tiny_config(**changes) -> TransformerConfig:
    values = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=24, hidden_act="gelu", hidden_dropout_prob=0.1,
                  attention_probs_dropout_prob=0.1, max_position_embeddings=512,
                  type_vocab_size=2, initializer_range=0.02, embedding_size=8)
    values.update(changes)
    return TransformerConfig(**values)


def batch(b, length, vocab=50, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((b, length), np.int32)
    if length > 2:
        mask[0, length - 2:] = 0
    return {"input_ids": tf.constant(rng.integers(0, vocab, (b, length)), tf.int32),
            "input_mask": tf.constant(mask),
            "segment_ids": tf.constant((np.arange(length) >= length // 2)[None].repeat(b, 0),
                                       tf.int32)}


def split(variables, prefix):
    return {k: v for k, v in variables.items() if k.startswith(prefix)}


# Spec 7.3: (size, generator fraction, disc params without heads, disc head, generator
# params excluding the shared embeddings and including its head).
RELEASED = [("small", 1.0, 13_483_008, 66_049, 9_573_818),
            ("base", 1 / 3, 108_891_648, 591_361, 9_903_418),
            ("large", 0.25, 334_092_288, 1_050_625, 19_512_378)]


@pytest.mark.parametrize("size,fraction,disc,head,gen", RELEASED, ids=[r[0] for r in RELEASED])
def test_parameter_counts_equal_spec_7_3(size, fraction, disc, head, gen):
    models = build_pretraining_models(
        PretrainingConfig.from_preset(size, {"generator_hidden_size": fraction}))
    d = models.discriminator.original_variables()
    g = models.generator.original_variables()
    assert count_parameters(split(d, "electra/")) == disc
    assert count_parameters(split(d, "discriminator_predictions/")) == head
    assert count_parameters({k: v for k, v in g.items() if not k.startswith("electra/")}) == gen
    # Keras sees the same unique weights as the original-name map.
    unique = {id(w): w for m in models.models for w in m.weights}
    assert sum(int(np.prod(w.shape)) for w in unique.values()) == disc + head + gen


def small_models(**hparams):
    base = {"vocab_size": 60, "embedding_size": 16,
            "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2}}
    return build_pretraining_models(PretrainingConfig.from_preset("small", {**base, **hparams}))


def test_default_generator_shares_the_whole_embedding_block():
    models = small_models(generator_hidden_size=0.25)
    gen, disc = models.generator, models.discriminator
    assert gen.encoder.embeddings is disc.encoder.embeddings
    names = models.original_variables()
    assert not any(n.startswith("generator/embeddings/") for n in names)
    assert list(names["generator/embeddings_project/kernel"].shape) == [16, 8]
    assert list(names["electra/embeddings_project/kernel"].shape) == [16, 32]
    assert list(names["generator_predictions/dense/kernel"].shape) == [8, 16]
    assert list(names["generator_predictions/output_bias"].shape) == [60]
    # Both losses reach the shared table and LayerNorm.
    x = batch(2, 6, vocab=60)
    with tf.GradientTape(persistent=True) as tape:
        g_out = tf.reduce_sum(gen(x, training=False)["logits"])
        d_out = tf.reduce_sum(disc(x, training=False)["logits"])
    for var in (names["electra/embeddings/word_embeddings"],
                names["electra/embeddings/LayerNorm/gamma"]):
        assert tape.gradient(g_out, var) is not None and tape.gradient(d_out, var) is not None


def test_untied_generator_embeddings():
    models = small_models(generator_hidden_size=0.5, untied_generator_embeddings=True)
    names = models.original_variables()
    assert list(names["generator/embeddings/word_embeddings"].shape) == [60, 16]
    assert "generator/embeddings/LayerNorm/gamma" in names
    assert "generator/embeddings_project/kernel" not in names
    assert list(names["generator_predictions/dense/kernel"].shape) == [16, 16]
    assert models.generator.encoder.embeddings is not models.discriminator.encoder.embeddings


def test_mlm_only_and_uniform_and_fully_tied_variants():
    mlm = small_models(electra_objective=False)
    assert mlm.discriminator is None
    names = mlm.original_variables()
    assert "electra/encoder/layer_1/output/LayerNorm/beta" in names
    assert list(names["generator_predictions/dense/kernel"].shape) == [32, 16]
    assert not any(n.startswith(("generator/", "discriminator_predictions/")) for n in names)

    uniform = small_models(uniform_generator=True)
    assert uniform.generator is None
    assert not any(n.startswith("generator") for n in uniform.original_variables())

    tied = small_models(untied_generator=False)
    assert tied.generator.encoder is tied.discriminator.encoder
    assert not any(n.startswith("generator/") for n in tied.original_variables())


def test_electric_two_tower_generator_names_and_context():
    electric = small_models(electric_objective=True, electra_objective=False,
                            generator_hidden_size=0.25)
    names = electric.original_variables()
    for tower in ("generator_ltr", "generator_rtl"):
        assert list(names[f"{tower}/embeddings_project/kernel"].shape) == [16, 8]
        assert f"{tower}/encoder/layer_1/output/LayerNorm/gamma" in names
    assert list(names["cloze_predictions/dense/kernel"].shape) == [16, 16]  # [2G, E]
    assert list(names["cloze_predictions/output_bias"].shape) == [60]
    absent = ("generator/", "generator_predictions/", "generator_ltr/embeddings/")
    assert not any(n.startswith(absent) for n in names)
    # Position i is predicted from tokens != i only: changing token i leaves its logits.
    # (Not at the wrap-around ends: position 0 reads ltr at L-1, which saw everything.)
    gen = electric.generator
    # No padding: a padded query's attention degenerates to unmasked (spec 2.4, 3.10).
    x = dict(batch(1, 7, vocab=60), input_mask=tf.ones((1, 7), tf.int32))
    logits = gen(x)["logits"][0]
    for i in range(1, 6):
        changed = dict(x, input_ids=tf.tensor_scatter_nd_update(x["input_ids"], [[0, i]], [59]))
        changed_logits = gen(changed)["logits"][0]
        np.testing.assert_allclose(logits[i], changed_logits[i], atol=1e-5)
    assert not np.allclose(logits[3], changed_logits[3])


@pytest.mark.parametrize("b,length", [(1, 1), (3, 7), (2, 512)])
def test_any_batch_and_length_up_to_512(b, length):
    models = small_models()
    x = batch(b, length, vocab=60)
    out = models.discriminator(x)
    assert out["logits"].shape == (b, length)
    assert out["sequence_output"].shape == (b, length, 32)
    assert out["pooled_output"].shape == (b, 32)
    assert len(out["hidden_states"]) == 3
    positions = tf.zeros((b, 3), tf.int32)
    assert models.generator({**x, "masked_lm_positions": positions})["logits"].shape == (b, 3, 60)
    assert models.generator(x)["logits"].shape == (b, length, 60)


def test_sequence_longer_than_positions_is_rejected():
    models = small_models()
    with pytest.raises(ValueError, match="513 exceeds max_position_embeddings 512"):
        models.discriminator(batch(1, 513, vocab=60))


def test_xla_matches_eager_and_handles_new_shapes():
    models = small_models()
    disc, gen = models.discriminator, models.generator

    @tf.function(jit_compile=True)
    def step(x, positions):
        return (disc(x, training=False)["logits"],
                gen({**x, "masked_lm_positions": positions}, training=False)["logits"],
                disc(x, training=True)["logits"])

    for b, length in [(2, 9), (3, 16)]:
        x = batch(b, length, vocab=60, seed=length)
        positions = tf.constant(np.tile([[1, 2, 2]], (b, 1)), tf.int32)
        d, g, d_train = step(x, positions)
        np.testing.assert_allclose(d, disc(x)["logits"], atol=1e-5)
        np.testing.assert_allclose(
            g, gen({**x, "masked_lm_positions": positions})["logits"], atol=1e-5)
        assert d_train.shape == (b, length)
        assert not np.allclose(d_train, d)  # dropout is active in training


def test_inference_is_deterministic_and_training_uses_dropout():
    models = small_models()
    x = batch(2, 8, vocab=60)
    a, b = models.discriminator(x)["logits"], models.discriminator(x)["logits"]
    np.testing.assert_array_equal(a, b)
    t1 = models.discriminator(x, training=True)["logits"]
    t2 = models.discriminator(x, training=True)["logits"]
    assert not np.allclose(t1, t2)


@pytest.mark.parametrize("jit", [False, True])
def test_dropout_drops_at_rate_and_rescales(jit):
    layer = Dropout(0.25, seed=3)
    run = tf.function(lambda x: layer(x, training=True), jit_compile=jit)
    ones = tf.ones((200, 500))
    out = run(ones).numpy()
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.75], rtol=1e-6)
    assert abs((out == 0).mean() - 0.25) < 0.01
    assert not np.array_equal(out, run(ones).numpy())  # a fresh mask every call
    np.testing.assert_array_equal(layer(ones, training=False), ones)


def test_gelu_is_the_exact_erf_form():
    xs = np.linspace(-4, 4, 41).astype(np.float32)
    expected = [x * 0.5 * (1 + math.erf(x / math.sqrt(2))) for x in xs]
    np.testing.assert_allclose(activation("gelu")(tf.constant(xs)), expected, atol=1e-6)


def test_attention_bias_values():
    mask = tf.constant([[1, 1, 0]])
    np.testing.assert_array_equal(attention_bias(mask)[0, 0, 0], [0, 0, -10000.0])
    ltr = attention_bias(tf.constant([[1, 1, 1]]), "ltr")[0, 0]
    np.testing.assert_array_equal(ltr, [[0, -1e4, -1e4], [0, 0, -1e4], [0, 0, 0]])
    rtl = attention_bias(tf.constant([[1, 1, 1]]), "rtl")[0, 0]
    np.testing.assert_array_equal(rtl, [[0, 0, 0], [-1e4, 0, 0], [-1e4, -1e4, 0]])


def test_only_keys_are_masked():
    disc = Discriminator(tiny_config())
    disc.build()
    x = batch(2, 10)
    changed = dict(x, input_ids=tf.tensor_scatter_nd_update(
        x["input_ids"], [[0, 8], [0, 9]], [7, 7]))  # row 0 positions 8, 9 are padding
    a, b = disc(x)["sequence_output"].numpy(), disc(changed)["sequence_output"].numpy()
    np.testing.assert_allclose(a[0, :8], b[0, :8], atol=1e-6)
    assert not np.allclose(a[0, 8:], b[0, 8:])  # padding queries are still computed
    np.testing.assert_array_equal(a[1], b[1])


def test_left_to_right_encoder_does_not_see_the_future():
    encoder = ElectraEncoder(tiny_config(), attention_direction="ltr")
    x = batch(1, 6)
    later = tf.tensor_scatter_nd_update(x["input_ids"], [[0, 5]], [3])
    a = encoder(x["input_ids"], None, x["segment_ids"])["sequence_output"].numpy()
    b = encoder(later, None, x["segment_ids"])["sequence_output"].numpy()
    np.testing.assert_allclose(a[0, :5], b[0, :5], atol=1e-6)
    assert not np.allclose(a[0, 5], b[0, 5])


def test_initializers_follow_spec_2_7():
    models = build_pretraining_models(PretrainingConfig.from_preset("small"))
    names = {k: v.numpy() for k, v in models.original_variables().items()}
    for name in ("electra/embeddings/word_embeddings",
                 "electra/encoder/layer_0/attention/self/query/kernel",
                 "electra/encoder/layer_3/intermediate/dense/kernel",
                 "generator_predictions/dense/kernel",
                 "discriminator_predictions/dense/kernel"):
        w = names[name]
        assert np.abs(w).max() <= 0.04 + 1e-7, name           # truncated at 2 sigma
        assert 0.015 < w.std() < 0.02, name                   # sigma 0.02 before truncation
    for name, (fan_in, fan_out) in {"electra/embeddings_project/kernel": (128, 256),
                                    "discriminator_predictions/dense_1/kernel": (256, 1)}.items():
        w, limit = names[name], math.sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() <= limit and np.abs(w).max() > 0.9 * limit, name  # Glorot-uniform
    for name, value in names.items():
        if name.endswith("/bias") or name.endswith("/beta") or name.endswith("output_bias"):
            assert not value.any(), name
        if name.endswith("/gamma"):
            assert (value == 1).all(), name


def test_attention_softmax_statistics_stay_float32_under_mixed_bfloat16():
    import keras
    from electra_tf.networks.transformer import TransformerLayer
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = TransformerLayer(tiny_config(hidden_size=64, num_attention_heads=1,
                                             intermediate_size=32), name="layer_0")
        layer.build((None, None, 64))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    length = 384  # many keys: a bfloat16 row sum drifts from 1 by ~1e-3
    hidden = tf.cast(tf.random.stateless_normal((2, length, 64), seed=(1, 2)) * 3, tf.bfloat16)
    mask = np.ones((2, length), np.int32)
    mask[1, 300:] = 0
    output, probs = layer(hidden, attention_bias(mask), training=False)
    assert output.dtype == tf.bfloat16 and probs.dtype == tf.float32
    # Independent reference: numpy float64 softmax of the layer's own bfloat16 Q K^T.
    q = tf.cast(layer.query(hidden), tf.float64).numpy()
    k = tf.cast(layer.key(hidden), tf.float64).numpy()
    scores = q @ k.transpose(0, 2, 1) / 8.0 + (1.0 - mask[:, None, :]) * -10000.0
    expected = np.exp(scores - scores.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    got = probs.numpy()[:, 0].astype(np.float64)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, expected, atol=2e-3)
    assert got[1, :, 300:].max() < 1e-30
