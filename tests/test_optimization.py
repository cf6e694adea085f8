"""Optimisation (spec 4): schedule, AdamWeightDecay, clipping, layer-wise LR, slots, distribution.

The optimizer is checked against an independent float64 numpy implementation
of spec 4.1 + 4.2 + 4.3 written below (it does not call electra_tf).
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import keras

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # for the subprocess worker (conftest does it under pytest)
    sys.path.insert(0, str(ROOT))

from electra_tf.formats.tf1 import save_original_checkpoint  # noqa: E402
from electra_tf.config import TransformerConfig  # noqa: E402
from electra_tf.formats import tf1  # noqa: E402
from electra_tf.networks import ElectraEncoder  # noqa: E402
from electra_tf.optimization import (AdamWeightDecay, WarmupPolynomialDecay,  # noqa: E402
                                     create_optimizer, layerwise_lr_multipliers)

LR0 = 0.1


# ---------------------------------------------------------------------------
# Independent numpy reference (spec 4.1, 4.2, 4.3)
# ---------------------------------------------------------------------------

def ref_learning_rate(t, lr0, total, warmup, power):
    decayed = lr0 * (1.0 - min(t, total) / total) ** power
    return decayed * (min(1.0, t / warmup) if warmup > 0 else 1.0)


class RefAdamWeightDecay:
    """Float64 reference: global clip, Adam without bias correction, decay x LR."""

    def __init__(self, params, lr0, total, warmup, power, weight_decay, multipliers,
                 clip=1.0, exclude=("LayerNorm", "layer_norm", "bias")):
        self.params = {n: np.array(p, np.float64) for n, p in params.items()}
        self.m = {n: np.zeros_like(p) for n, p in self.params.items()}
        self.v = {n: np.zeros_like(p) for n, p in self.params.items()}
        self.lr_args = (lr0, total, warmup, power)
        self.weight_decay, self.multipliers, self.clip = weight_decay, multipliers, clip
        self.exclude = exclude
        self.t = 0
        self.norms = []

    def step(self, grads):
        norm = math.sqrt(sum(float(np.sum(np.square(np.float64(g)))) for g in grads.values()))
        self.norms.append(norm)
        scale = self.clip / max(norm, self.clip)
        lr = ref_learning_rate(self.t, *self.lr_args)
        for name, p in self.params.items():
            g = np.float64(grads[name]) * scale
            self.m[name] = 0.9 * self.m[name] + 0.1 * g
            self.v[name] = 0.999 * self.v[name] + 0.001 * g * g
            u = self.m[name] / (np.sqrt(self.v[name]) + 1e-6)
            if not any(re.search(r, name) for r in self.exclude):
                u = u + self.weight_decay * p
            self.params[name] = p - lr * self.multipliers.get(name, 1.0) * u
        self.t += 1


# Names exercising the exclusions: kernel and embedding decayed; bias, LayerNorm, output_bias not.
SHAPES = {
    "electra/encoder/layer_0/attention/self/query/kernel": (3, 4),
    "electra/encoder/layer_0/attention/self/query/bias": (4,),
    "electra/embeddings/LayerNorm/gamma": (4,),
    "electra/embeddings/word_embeddings": (6, 3),
    "generator_predictions/output_bias": (6,),
}
MULTIPLIERS = {"electra/encoder/layer_0/attention/self/query/kernel": 0.5,
               "electra/embeddings/word_embeddings": 0.25}
# Gradient scale per step: global norms well above and below the clip norm 1.0.
GRAD_SCALES = [3.0, 0.05, 2.0, 0.1, 5.0, 0.3]


def make_variables(seed=0):
    rng = np.random.default_rng(seed)
    values = {n: rng.normal(size=s).astype(np.float32) for n, s in SHAPES.items()}
    variables = {n: keras.Variable(v, name=n.replace("/", "_")) for n, v in values.items()}
    return values, variables


def make_grads(seed=1):
    rng = np.random.default_rng(seed)
    return [{n: (scale * rng.normal(size=s) / math.sqrt(sum(np.prod(x) for x in SHAPES.values())))
             .astype(np.float32) for n, s in SHAPES.items()} for scale in GRAD_SCALES]


@pytest.mark.parametrize("schedule_kwargs, total, warmup, power", [
    (dict(num_train_steps=10, num_warmup_steps=3), 10, 3.0, 1.0),          # pre-training style
    (dict(num_train_steps=8, warmup_proportion=0.3, power=2.0), 8, 2.4, 2.0),  # W=0.3T float
])
def test_matches_numpy_reference(schedule_kwargs, total, warmup, power):
    init, variables = make_variables()
    schedule = WarmupPolynomialDecay(LR0, **schedule_kwargs)
    opt = AdamWeightDecay(schedule, weight_decay_rate=0.01, original_variables=variables,
                          lr_multipliers=MULTIPLIERS, clip_norm=1.0)
    ref = RefAdamWeightDecay(init, LR0, total, warmup, power, 0.01, MULTIPLIERS)
    slots = None
    for step, grads in enumerate(make_grads()):
        opt.apply_gradients([(tf.constant(grads[n]), variables[n]) for n in SHAPES])
        ref.step(grads)
        slots = tf1.slot_variables(opt)
        if step == 0:  # LR 0: parameters unchanged (exactly), moments updated
            for n in SHAPES:
                np.testing.assert_array_equal(variables[n].numpy(), init[n])
                assert np.abs(slots[f"{n}/adam_m"].numpy()).max() > 0
        for n in SHAPES:
            np.testing.assert_allclose(variables[n].numpy(), ref.params[n], rtol=0, atol=1e-6,
                                       err_msg=f"{n} step {step}")
            np.testing.assert_allclose(slots[f"{n}/adam_m"].numpy(), ref.m[n], rtol=0, atol=1e-6)
            np.testing.assert_allclose(slots[f"{n}/adam_v"].numpy(), ref.v[n], rtol=1e-5,
                                       atol=1e-9)
        assert int(opt.iterations) == step + 1
    assert max(ref.norms) > 1.5 and min(ref.norms) < 0.5  # clipping active on some steps only
    moved = {n: np.abs(variables[n].numpy() - init[n]).max() for n in SHAPES}
    assert min(moved.values()) > 1e-3


def test_reference_is_sensitive_to_the_details():
    """The reference differs from plausible mistakes (so the comparison can fail)."""
    init, _ = make_variables()
    grads = make_grads()
    base = RefAdamWeightDecay(init, LR0, 10, 3, 1.0, 0.01, MULTIPLIERS)
    no_clip = RefAdamWeightDecay(init, LR0, 10, 3, 1.0, 0.01, MULTIPLIERS, clip=1e9)
    no_decay = RefAdamWeightDecay(init, LR0, 10, 3, 1.0, 0.0, MULTIPLIERS)
    for g in grads:
        for r in (base, no_clip, no_decay):
            r.step(g)
    for other in (no_clip, no_decay):
        assert max(np.abs(base.params[n] - other.params[n]).max() for n in SHAPES) > 1e-5


def test_indexed_slices_gradient_equals_dense():
    """Embedding gradients (IndexedSlices, duplicate rows) are summed densely before clipping."""
    name = "electra/embeddings/word_embeddings"
    results = []
    for sparse in (True, False):
        init, variables = make_variables()
        opt = AdamWeightDecay(0.1, weight_decay_rate=0.01, original_variables=variables,
                              clip_norm=1.0)
        values = tf.constant(np.full((3, 3), 2.0, np.float32))
        indices = tf.constant([1, 1, 4])
        grad = (tf.IndexedSlices(values, indices, tf.constant([6, 3])) if sparse else
                tf.math.unsorted_segment_sum(values, indices, 6))
        opt.apply_gradients([(grad, variables[name])])
        results.append(variables[name].numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=0, atol=1e-7)


def test_keras_global_clipnorm_formula_matches_tf1_on_one_device():
    """Finding: Keras' global_clipnorm computes what tf.clip_by_global_norm does (one device)."""
    rng = np.random.default_rng(3)
    grads = [tf.constant(rng.normal(size=s).astype(np.float32) * 2) for s in SHAPES.values()]
    variables = [keras.Variable(np.zeros(s, np.float32)) for s in SHAPES.values()]
    keras.optimizers.SGD(1.0, global_clipnorm=1.0).apply_gradients(zip(grads, variables))
    clipped, norm = tf.clip_by_global_norm(grads, 1.0)
    assert float(norm) > 1.0
    for v, c in zip(variables, clipped):
        np.testing.assert_allclose(-v.numpy(), c.numpy(), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# Schedule (spec 4.1)
# ---------------------------------------------------------------------------

def lr_at(schedule, t):
    return float(schedule(tf.constant(t, tf.int64)))


def test_schedule_hand_computed_values():
    s = WarmupPolynomialDecay(LR0, num_train_steps=100, num_warmup_steps=10)
    expected = {0: 0.0, 5: LR0 * 0.95 * 0.5, 10: LR0 * 0.9, 50: LR0 * 0.5, 99: LR0 * 0.01,
                100: 0.0, 150: 0.0}
    for t, value in expected.items():
        assert lr_at(s, t) == pytest.approx(value, rel=1e-6, abs=1e-12), t
    squared = WarmupPolynomialDecay(LR0, 100, num_warmup_steps=10, power=2.0)
    assert lr_at(squared, 5) == pytest.approx(LR0 * 0.95 ** 2 * 0.5, rel=1e-6)
    assert lr_at(squared, 40) == pytest.approx(LR0 * 0.6 ** 2, rel=1e-6)


def test_schedule_fine_tuning_float_warmup_and_no_warmup():
    s = WarmupPolynomialDecay(LR0, num_train_steps=123, warmup_proportion=0.1)
    assert s.warmup_steps == pytest.approx(12.3)
    assert lr_at(s, 6) == pytest.approx(LR0 * (1 - 6 / 123) * 6 / 12.3, rel=1e-6)
    assert lr_at(s, 12) < LR0 * (1 - 12 / 123)  # still warming up at t=12 < 12.3
    assert lr_at(s, 13) == pytest.approx(LR0 * (1 - 13 / 123), rel=1e-6)
    # W = max(T * proportion, num_warmup_steps)
    assert WarmupPolynomialDecay(LR0, 1000, num_warmup_steps=10000).warmup_steps == 10000
    assert WarmupPolynomialDecay(LR0, 1000, 50, warmup_proportion=0.1).warmup_steps == 100
    no_warmup = WarmupPolynomialDecay(LR0, 100)
    assert lr_at(no_warmup, 0) == pytest.approx(LR0)
    assert lr_at(no_warmup, 25) == pytest.approx(LR0 * 0.75, rel=1e-6)
    restored = WarmupPolynomialDecay.from_config(s.get_config())
    assert lr_at(restored, 6) == lr_at(s, 6)


# ---------------------------------------------------------------------------
# Layer-wise LR (spec 4.4)
# ---------------------------------------------------------------------------

def encoder_names(n, scope="electra"):
    names = [f"{scope}/embeddings/word_embeddings", f"{scope}/embeddings/LayerNorm/gamma",
             f"{scope}/embeddings_project/kernel", "task_specific/mnli/dense/kernel",
             "task_specific/mnli/dense/bias"]
    for k in range(n):
        names += [f"{scope}/encoder/layer_{k}/attention/self/query/kernel",
                  f"{scope}/encoder/layer_{k}/output/LayerNorm/beta"]
    return names


@pytest.mark.parametrize("n, d, top, layer0, embeddings", [
    (12, 0.8, 0.64, 0.0550, 0.0440),   # base (and small: same n and d)
    (24, 0.9, 0.81, 0.0718, 0.0646),   # large
])
def test_layerwise_multipliers_spec_examples(n, d, top, layer0, embeddings):
    m = layerwise_lr_multipliers(encoder_names(n), n, d)
    assert m[f"electra/encoder/layer_{n - 1}/attention/self/query/kernel"] == pytest.approx(top)
    assert m["electra/encoder/layer_0/output/LayerNorm/beta"] == pytest.approx(layer0, abs=5e-5)
    assert m["electra/embeddings/word_embeddings"] == pytest.approx(embeddings, abs=5e-5)
    assert m["electra/embeddings/word_embeddings"] == pytest.approx(d ** (n + 2))
    assert m["electra/embeddings_project/kernel"] == pytest.approx(d ** (n + 2))
    assert m["electra/encoder/layer_5/attention/self/query/kernel"] == pytest.approx(d ** (n - 4))
    assert m["task_specific/mnli/dense/kernel"] == 1.0
    assert m["task_specific/mnli/dense/bias"] == 1.0


def test_layerwise_corrected_disabled_and_errors():
    c = layerwise_lr_multipliers(encoder_names(12), 12, 0.8, corrected=True)
    assert c["electra/encoder/layer_11/attention/self/query/kernel"] == pytest.approx(0.8)
    assert c["electra/encoder/layer_0/attention/self/query/kernel"] == pytest.approx(0.8 ** 12)
    assert c["electra/embeddings/word_embeddings"] == pytest.approx(0.8 ** 13)
    assert c["task_specific/mnli/dense/kernel"] == 1.0
    for d in (0.0, -1.0):
        assert set(layerwise_lr_multipliers(encoder_names(2), 2, d).values()) == {1.0}
    with pytest.raises(ValueError, match="discriminator_predictions/dense/kernel"):
        layerwise_lr_multipliers(encoder_names(2) + ["discriminator_predictions/dense/kernel"],
                                 2, 0.8)
    with pytest.raises(ValueError, match="encoder/layer_2/"):  # beyond num_layers
        layerwise_lr_multipliers(encoder_names(3), 2, 0.8)


# ---------------------------------------------------------------------------
# Names, slots, original checkpoints
# ---------------------------------------------------------------------------

class Named:
    """Anything with original_variables(), like the package's models."""

    def __init__(self, variables):
        self.variables = variables

    def original_variables(self):
        return dict(self.variables)


def test_unnamed_variable_errors_only_when_names_are_needed():
    _, variables = make_variables()
    stray = keras.Variable(np.ones(3, np.float32), name="stray")
    opt = AdamWeightDecay(0.1, weight_decay_rate=0.01, original_variables=variables)
    with pytest.raises(ValueError, match="stray"):
        opt.build(list(variables.values()) + [stray])
    plain = AdamWeightDecay(0.1, original_variables=variables)  # no decay, no multipliers
    plain.build(list(variables.values()) + [stray])
    with pytest.raises(ValueError, match="stray"):
        tf1.slot_variables(plain)
    with pytest.raises(ValueError, match="not/a/variable"):
        AdamWeightDecay(0.1, original_variables=variables, lr_multipliers={"not/a/variable": 1})
    with pytest.raises(ValueError, match="clip_norm"):
        AdamWeightDecay(0.1, global_clipnorm=1.0)
    with pytest.raises(ValueError, match="build"):
        tf1.slot_variables(AdamWeightDecay(0.1))
    shared = list(variables.values())[:2]
    with pytest.raises(ValueError, match="more than once"):
        AdamWeightDecay(0.1).build(shared + shared[:1])


def test_optimizer_config_round_trip():
    schedule = WarmupPolynomialDecay(LR0, 100, warmup_proportion=0.1, power=2.0)
    opt = AdamWeightDecay(schedule, weight_decay_rate=0.01, clip_norm=1.0,
                          exclude_from_weight_decay=["bias"], epsilon=1e-5)
    clone = AdamWeightDecay.from_config(opt.get_config())
    assert (clone.weight_decay_rate, clone.clip_norm, clone.epsilon, clone.beta_2) == (
        0.01, 1.0, 1e-5, 0.999)
    assert clone.exclude_from_weight_decay == ("bias",)
    assert float(clone._learning_rate(tf.constant(5))) == pytest.approx(float(schedule(5)))


def test_slot_export_and_load_original_checkpoint(tmp_path):
    init, variables = make_variables()
    opt = AdamWeightDecay.for_models(Named(variables), learning_rate=0.1,
                                     weight_decay_rate=0.01, clip_norm=1.0)
    grads = make_grads()[0]
    opt.apply_gradients([(tf.constant(grads[n]), variables[n]) for n in SHAPES])
    slots = tf1.slot_variables(opt)
    assert set(slots) == {f"{n}/{s}" for n in SHAPES for s in ("adam_m", "adam_v")}
    scale = 1.0 / math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    for n in SHAPES:  # first step from zero moments: m = 0.1 g, v = 0.001 g^2 (g clipped)
        g = grads[n] * min(1.0, scale)
        np.testing.assert_allclose(slots[f"{n}/adam_m"].numpy(), 0.1 * g, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(slots[f"{n}/adam_v"].numpy(), 0.001 * g * g, rtol=1e-5)

    prefix = save_original_checkpoint(str(tmp_path / "model.ckpt-1"), Named(variables),
                                      variables=slots, global_step=int(opt.iterations))
    reader = tf.train.load_checkpoint(prefix)
    assert set(reader.get_variable_to_shape_map()) == set(SHAPES) | set(slots) | {"global_step"}
    for name, slot in slots.items():
        np.testing.assert_array_equal(reader.get_tensor(name), slot.numpy())

    _, fresh_vars = make_variables(seed=5)
    fresh = AdamWeightDecay.for_models(Named(fresh_vars), learning_rate=0.1)
    fresh.build([fresh_vars[n] for n in SHAPES])
    report = tf1.load_slots(fresh, prefix, restore_iterations=True)
    assert report.missing == [] and len(report.loaded) == 2 * len(SHAPES)
    assert int(fresh.iterations) == 1 and report.global_step == 1
    fresh_slots = tf1.slot_variables(fresh)
    for name, slot in slots.items():
        np.testing.assert_array_equal(fresh_slots[name].numpy(), slot.numpy())

    # A released-style checkpoint without slots: nothing loaded, no error.
    bare = save_original_checkpoint(str(tmp_path / "bare" / "model.ckpt"), Named(variables))
    other = AdamWeightDecay.for_models(Named(fresh_vars), learning_rate=0.1)
    other.build([fresh_vars[n] for n in SHAPES])
    report = tf1.load_slots(other, bare)
    assert report.loaded == [] and len(report.missing) == 2 * len(SHAPES)
    assert report.global_step is None and int(other.iterations) == 0


def test_optimizer_names_are_the_configs():
    from electra_tf import optimization
    from electra_tf.config import OPTIMIZERS
    assert list(optimization.OPTIMIZERS) == list(OPTIMIZERS)
    assert optimization.OPTIMIZERS["adamw"] is AdamWeightDecay
    assert optimization.OPTIMIZERS["lamb"].__name__ == "Lamb"
    variable = tf.Variable([1.0])
    for name, cls in optimization.OPTIMIZERS.items():
        opt = create_optimizer({"electra/x/kernel": variable}, learning_rate=0.1,
                               num_train_steps=10, optimizer=name)
        assert type(opt) is cls
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'; choose one of"):
        create_optimizer({"electra/x/kernel": variable}, learning_rate=0.1,
                         num_train_steps=10, optimizer="sgd")


# ---------------------------------------------------------------------------
# Train steps: tf.function, XLA, tf.train.Checkpoint, MirroredStrategy
# ---------------------------------------------------------------------------

TINY_NAMES = {"emb": "electra/embeddings/word_embeddings",
              "gamma": "electra/embeddings/LayerNorm/gamma",
              "kernel": "electra/encoder/layer_0/intermediate/dense/kernel",
              "bias": "electra/encoder/layer_0/intermediate/dense/bias",
              "out_kernel": "task_specific/dense/kernel",
              "out_bias": "generator_predictions/output_bias"}
TINY_SHAPES = {"emb": (7, 4), "gamma": (4,), "kernel": (4, 5), "bias": (5,),
               "out_kernel": (5, 7), "out_bias": (7,)}


class TinyNet(keras.Model):
    """Embedding gather (IndexedSlices gradients), LayerNorm-like scale, dense, head."""

    def build(self, input_shape=None):
        rng = np.random.default_rng(7)
        for attr, shape in TINY_SHAPES.items():
            setattr(self, attr, self.add_weight(
                name=attr, shape=shape,
                initializer=keras.initializers.Constant(rng.normal(size=shape).astype(np.float32))))
        super().build(input_shape)

    def call(self, ids):
        x = tf.gather(self.emb, ids) * self.gamma
        h = tf.tanh(tf.einsum("ble,eh->blh", x, self.kernel) + self.bias)
        return tf.reduce_mean(h, axis=1) @ self.out_kernel + self.out_bias

    def original_variables(self):
        return {name: getattr(self, attr) for attr, name in TINY_NAMES.items()}


def tiny_batches(steps=3, batch=8, seed=11):
    rng = np.random.default_rng(seed)
    return [(tf.constant(rng.integers(0, 7, (batch, 5)), tf.int32),
             tf.constant(rng.integers(0, 7, (batch,)), tf.int32)) for _ in range(steps)]


def tiny_setup():
    model = TinyNet()
    model.build()
    opt = create_optimizer(model, learning_rate=0.1, num_train_steps=10, num_warmup_steps=2,
                           weight_decay_rate=0.01, clip_norm=1.0)
    return model, opt


def make_step(model, opt, global_batch):
    def step(ids, labels):
        with tf.GradientTape() as tape:
            per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, model(ids))
            # A summed loss (like fine-tuning) scaled so that clipping is active.
            loss = tf.reduce_sum(per_example) * (20.0 / global_batch)
        variables = opt.built_variables
        grads = tape.gradient(loss, variables)
        opt.apply_gradients(zip(grads, variables))
        return tf.linalg.global_norm([tf.convert_to_tensor(g) for g in grads])
    return step


def snapshot(model, opt):
    values = {n: v.numpy() for n, v in model.original_variables().items()}
    values.update({n: v.numpy() for n, v in tf1.slot_variables(opt).items()})
    return values


def test_create_optimizer_configures_schedule_decay_and_layerwise():
    config = TransformerConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=12, hidden_act="gelu",
                               hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                               max_position_embeddings=16, type_vocab_size=2,
                               initializer_range=0.02, embedding_size=4)
    encoder = ElectraEncoder(config)
    encoder.build()
    head = keras.layers.Dense(3)
    head.build((None, 8))
    task = Named({"task_specific/mnli/dense/kernel": head.kernel,
                  "task_specific/mnli/dense/bias": head.bias})
    opt = create_optimizer([encoder, task], learning_rate=1e-4, num_train_steps=100,
                           warmup_proportion=0.1, weight_decay_rate=0.01,
                           layerwise_lr_decay=0.8, num_layers=2)
    assert opt.built and len(opt.built_variables) == len(encoder.original_variables()) + 2
    assert isinstance(opt._learning_rate, WarmupPolynomialDecay)
    assert opt._learning_rate.warmup_steps == pytest.approx(10.0)
    assert opt.lr_multipliers["electra/encoder/layer_1/output/dense/kernel"] == pytest.approx(0.64)
    assert opt.lr_multipliers["electra/embeddings/word_embeddings"] == pytest.approx(0.8 ** 4)
    assert opt.lr_multipliers["electra/embeddings_project/bias"] == pytest.approx(0.8 ** 4)
    assert opt.lr_multipliers["task_specific/mnli/dense/kernel"] == 1.0
    assert opt.clip_norm == 1.0
    ids = tf.constant([[1, 2, 3, 2]])
    with tf.GradientTape() as tape:
        out = encoder(ids, tf.ones_like(ids), tf.zeros_like(ids))["sequence_output"]
        loss = tf.reduce_sum(head(out[:, 0]) ** 2)
    grads = tape.gradient(loss, opt.built_variables)
    opt.apply_gradients(zip(grads, opt.built_variables))
    assert int(opt.iterations) == 1
    assert len(tf1.slot_variables(opt)) == 2 * len(opt.built_variables)
    with pytest.raises(ValueError, match="num_layers"):
        create_optimizer(encoder, learning_rate=1e-4, num_train_steps=100,
                         layerwise_lr_decay=0.8)


def test_tf_function_and_xla_match_eager():
    batches = tiny_batches()
    results, norms = {}, {}
    for mode in ("eager", "function", "xla"):
        model, opt = tiny_setup()
        step = make_step(model, opt, 8)
        if mode != "eager":
            step = tf.function(step, jit_compile=(mode == "xla"))
        norms[mode] = [float(step(*b)) for b in batches]
        results[mode] = snapshot(model, opt)
        assert int(opt.iterations) == len(batches)
    assert min(norms["eager"]) > 1.0  # clipping active
    for mode in ("function", "xla"):
        for name, value in results["eager"].items():
            np.testing.assert_allclose(results[mode][name], value, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{mode} {name}")


def test_tf_train_checkpoint_round_trip_restores_slots_and_iterations(tmp_path):
    batches = tiny_batches(steps=3)
    model, opt = tiny_setup()
    step = tf.function(make_step(model, opt, 8))
    for b in batches[:2]:
        step(*b)
    path = tf.train.Checkpoint(model=model, optimizer=opt).save(str(tmp_path / "ckpt"))

    model2, opt2 = tiny_setup()  # built: slots exist before restore
    status = tf.train.Checkpoint(model=model2, optimizer=opt2).restore(path)
    status.assert_consumed()
    assert int(opt2.iterations) == 2
    before = snapshot(model, opt)
    restored = snapshot(model2, opt2)
    for name, value in before.items():
        np.testing.assert_array_equal(restored[name], value, err_msg=name)
    step(*batches[2])
    tf.function(make_step(model2, opt2, 8))(*batches[2])
    after, after2 = snapshot(model, opt), snapshot(model2, opt2)
    for name, value in after.items():
        np.testing.assert_array_equal(after2[name], value, err_msg=name)


MIRRORED_TOLERANCE = 2e-6  # max abs difference, one device vs two replicas (|w| <= ~2.3:
#                             a few float32 ulps; measured 6e-7)


def _mirrored_worker():
    """Runs in a subprocess: 2 logical CPUs must be configured before TF initialises devices."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    batches = tiny_batches(steps=3, batch=8)

    model, opt = tiny_setup()
    step = tf.function(make_step(model, opt, 8))
    norms = [float(step(*b)) for b in batches]
    single = snapshot(model, opt)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model2, opt2 = tiny_setup()
    replica_step = make_step(model2, opt2, 8)
    ids = tf.concat([b[0] for b in batches], 0)
    labels = tf.concat([b[1] for b in batches], 0)
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((ids, labels)).batch(8))

    @tf.function
    def distributed_step(ids, labels):
        return strategy.run(replica_step, args=(ids, labels))

    for ids_b, labels_b in dataset:
        distributed_step(ids_b, labels_b)
    mirrored = snapshot(model2, opt2)
    diff = max(float(np.abs(single[n] - mirrored[n]).max()) for n in single)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "norms": norms,
                      "max_abs_diff": diff, "iterations": int(opt2.iterations.numpy()),
                      "names": sorted(single)}))


def test_mirrored_strategy_matches_one_device():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, __file__, "mirrored"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["iterations"] == 3
    assert min(result["norms"]) > 1.0  # clipping active on every step
    assert "electra/embeddings/word_embeddings/adam_v" in result["names"]
    assert result["max_abs_diff"] <= MIRRORED_TOLERANCE, result


if __name__ == "__main__" and sys.argv[1:] == ["mirrored"]:
    _mirrored_worker()
