"""LAMB (optional optimizer): several steps against an independent float64 numpy reference.

The reference below follows the LAMB paper's Algorithm 2 (You et al., 2020) with
decoupled weight decay inside the trust ratio, exclusions by original name and
the global-norm clip of spec 4.3 applied first; it does not call electra_tf.
"""

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.formats import tf1
from electra_tf.optimization import Lamb, WarmupPolynomialDecay, create_optimizer

EXCLUDE = ("LayerNorm", "layer_norm", "bias")
SHAPES = {
    "electra/encoder/layer_0/attention/self/query/kernel": (3, 4),
    "electra/encoder/layer_0/attention/self/query/bias": (4,),
    "electra/embeddings/LayerNorm/gamma": (4,),
    "electra/embeddings/word_embeddings": (6, 3),
}
MULTIPLIERS = {"electra/embeddings/word_embeddings": 0.5}
GRAD_SCALES = [3.0, 0.05, 2.0, 0.1, 5.0]


class RefLamb:
    def __init__(self, params, lr, weight_decay, bias_correction, exclude_adapt=EXCLUDE):
        self.p = {n: np.array(v, np.float64) for n, v in params.items()}
        self.m = {n: np.zeros_like(v) for n, v in self.p.items()}
        self.v = {n: np.zeros_like(v) for n, v in self.p.items()}
        self.lr, self.wd, self.bc = lr, weight_decay, bias_correction
        self.exclude_adapt = exclude_adapt
        self.t = 0
        self.ratios = []

    def step(self, grads):
        norm = math.sqrt(sum(float(np.sum(np.float64(g) ** 2)) for g in grads.values()))
        scale = 1.0 / max(norm, 1.0)
        self.t += 1
        lr = self.lr(self.t - 1)
        for n, p in self.p.items():
            g = np.float64(grads[n]) * scale
            self.m[n] = 0.9 * self.m[n] + 0.1 * g
            self.v[n] = 0.999 * self.v[n] + 0.001 * g * g
            m, v = self.m[n], self.v[n]
            if self.bc:
                m, v = m / (1 - 0.9 ** self.t), v / (1 - 0.999 ** self.t)
            r = m / (np.sqrt(v) + 1e-6)
            if not any(re.search(e, n) for e in EXCLUDE):
                r = r + self.wd * p
            ratio = 1.0
            if not any(re.search(e, n) for e in self.exclude_adapt):
                w_norm, r_norm = np.linalg.norm(p), np.linalg.norm(r)
                ratio = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
                self.ratios.append(ratio)
            self.p[n] = p - lr * MULTIPLIERS.get(n, 1.0) * ratio * r


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    init = {n: rng.normal(size=s).astype(np.float32) for n, s in SHAPES.items()}
    init["electra/encoder/layer_0/attention/self/query/bias"][:] = 0  # zero norm: ratio 1
    variables = {n: keras.Variable(v, name=n.replace("/", "_")) for n, v in init.items()}
    grng = np.random.default_rng(seed + 1)
    grads = [{n: (s * grng.normal(size=shape)).astype(np.float32) for n, shape in SHAPES.items()}
             for s in GRAD_SCALES]
    return init, variables, grads


@pytest.mark.parametrize("bias_correction, adapt_all", [(True, False), (False, False),
                                                        (True, True)])
def test_lamb_matches_numpy_reference(bias_correction, adapt_all):
    init, variables, grads = _setup()
    schedule = WarmupPolynomialDecay(0.05, num_train_steps=10, num_warmup_steps=2)
    opt = Lamb(schedule, weight_decay_rate=0.01, original_variables=variables,
               lr_multipliers=MULTIPLIERS, clip_norm=1.0, bias_correction=bias_correction,
               exclude_from_layer_adaptation=() if adapt_all else None)
    ref = RefLamb(init, lambda t: 0.05 * (1 - min(t, 10) / 10) * min(1.0, t / 2), 0.01,
                  bias_correction, exclude_adapt=() if adapt_all else EXCLUDE)
    for step, g in enumerate(grads):
        opt.apply_gradients([(tf.constant(g[n]), variables[n]) for n in SHAPES])
        ref.step(g)
        for n in SHAPES:
            np.testing.assert_allclose(variables[n].numpy(), ref.p[n], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{n} step {step}")
    moved = [np.abs(variables[n].numpy() - init[n]).max() for n in SHAPES]
    assert min(moved) > 1e-4
    # The trust ratio is far from 1 here, so a missing ratio would fail the comparison.
    assert max(abs(math.log(r)) for r in ref.ratios) > 0.5


def test_lamb_is_selected_by_create_optimizer():
    _, variables, _ = _setup()
    opt = create_optimizer(variables, learning_rate=0.05, num_train_steps=10,
                           weight_decay_rate=0.01, optimizer="lamb")
    assert isinstance(opt, Lamb)
    assert sorted(tf1.slot_variables(opt))[0].endswith(("adam_m", "adam_v"))
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        create_optimizer(variables, learning_rate=0.05, num_train_steps=10, optimizer="sgd")
    config = opt.get_config()
    assert config["bias_correction"] is True
    assert "LayerNorm" in config["exclude_from_layer_adaptation"]
