"""benchmarks/precision_parity.py: its reading of the training log and its verdict arithmetic."""

import json
import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(str(ROOT), "benchmarks"))
import precision_parity as pp  # noqa: E402
from electra_tf.training.train_log import read_train_log  # noqa: E402

def step_record(step, total, mlm, disc):
    return {"event": "step", "time": 0.0, "step": step, "total_steps": 30,
            "stats": {"total_loss": total, "mlm_loss": mlm, "disc_loss": disc,
                      "masked_lm_accuracy": 0.01}, "learning_rate": 1e-3}


def test_the_training_log_gives_the_loss_curves(tmp_path):
    """Written as the format says (electra_tf/training/train_log.py): a first sitting
    killed mid-line after step 20, a second resumed from step 10 that logs 20 and 30 anew."""
    lines = [{"event": "start", "time": 0.0, "step": 0},
             step_record(10, 30.5, 10.0, 0.41), step_record(20, 29.0, 9.5, 0.40)]
    text = "".join(json.dumps(r) + "\n" for r in lines) + '{"event": "step", "ste'
    lines = [{"event": "start", "time": 1.0, "step": 10},
             step_record(20, 28.0, 9.0, 0.38), step_record(30, 26.0, 8.0, 0.36),
             {"event": "end", "time": 2.0, "step": 30, "reason": "finished"}]
    text += "\n" + "".join(json.dumps(r) + "\n" for r in lines)
    (tmp_path / "train_log.jsonl").write_text(text)
    curve = pp.loss_curves(read_train_log(str(tmp_path)))
    assert curve["total"] == [(10, 30.5), (20, 28.0), (30, 26.0)]
    assert curve["mlm"] == [(10, 10.0), (20, 9.0), (30, 8.0)]
    assert curve["disc"] == [(10, 0.41), (20, 0.38), (30, 0.36)]


def test_distance_is_the_mean_gap_of_smoothed_curves_over_the_second_half():
    a = [(s, float(s)) for s in range(1, 9)]
    b = [(s, float(s) + (0.0 if s <= 4 else 2.0)) for s in range(1, 9)]
    # window 1: no smoothing; second half = steps 5..8, gap 2 everywhere.
    assert pp.distance(a, b, window=1) == pytest.approx(2.0)
    # window 2: step 5 averages a gap of 0 (step 4) and 2 (step 5) -> 1; steps 6..8 -> 2.
    assert pp.distance(a, b, window=2) == pytest.approx((1 + 2 + 2 + 2) / 4)
    # Only common steps count.
    assert pp.distance(a, b[::2], window=1) == pytest.approx(2.0)


# ---------------------------------------------------------------------------
# Issue 26: the CPU probe may pick float32 or bfloat16, each with XLA on or off. The
# 300-step learning check compares bfloat16 with float32; XLA must not change what a step
# computes, so the check holds for whichever of the four the probe picks.
# ---------------------------------------------------------------------------


def _one_step(precision, jit_compile):
    """Loss and gradients of one discriminator training step (dropout off: the same
    function in every configuration) in ``precision``, with or without XLA."""
    import keras
    import numpy as np
    import tensorflow as tf
    from electra_tf.config import PretrainingConfig
    from electra_tf.networks.discriminator import Discriminator
    from electra_tf.training.strategy import set_precision
    config = PretrainingConfig.from_preset("small", {
        "embedding_size": 16, "model_hparam_overrides": {
            "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 64, "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0}}).discriminator_config()
    set_precision(None if precision == "float32" else precision)
    try:
        keras.utils.set_random_seed(0)
        model = Discriminator(config)
        model.build()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    rng = np.random.default_rng(0)
    inputs = {"input_ids": tf.constant(rng.integers(1000, 2000, (4, 16)), tf.int32),
              "input_mask": tf.ones((4, 16), tf.int32),
              "segment_ids": tf.zeros((4, 16), tf.int32)}
    labels = tf.constant(rng.random((4, 16)) < 0.15, tf.float32)

    @tf.function(jit_compile=jit_compile)
    def step():
        with tf.GradientTape() as tape:
            logits = tf.cast(model(inputs, training=True)["logits"], tf.float32)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))
        return loss, tape.gradient(loss, model.trainable_variables)
    loss, grads = step()
    return float(loss), np.concatenate([tf.convert_to_tensor(g).numpy().ravel() for g in grads])


def test_xla_computes_the_same_training_step_in_both_precisions_the_probe_may_pick():
    import numpy as np
    from electra_tf.training.precision_probe import CONFIGS
    assert {p for p, _ in CONFIGS} == {"float32", "bfloat16"}  # what parity was shown for
    results = {config: _one_step(*config) for config in CONFIGS}
    for precision, loss_tol, grad_tol in (("float32", 1e-5, 1e-4), ("bfloat16", 2e-2, 0.1)):
        (graph_loss, graph_grads), (xla_loss, xla_grads) = (results[(precision, False)],
                                                            results[(precision, True)])
        assert xla_loss == pytest.approx(graph_loss, rel=loss_tol), precision
        # relative to the gradient's scale: bfloat16 rounds differently in fused kernels
        error = np.linalg.norm(xla_grads - graph_grads) / np.linalg.norm(graph_grads)
        assert error < grad_tol, (precision, error)
    # and bfloat16 computes float32's step to bfloat16 accuracy, with XLA or without
    f32_loss, f32_grads = results[("float32", False)]
    for xla in (False, True):
        loss, grads = results[("bfloat16", xla)]
        assert loss == pytest.approx(f32_loss, rel=3e-2)
        assert np.linalg.norm(grads - f32_grads) / np.linalg.norm(f32_grads) < 0.15
