"""Training at any scale equals one device at the global batch (issue 11).

Noise: each replica and micro-batch draws only its own rows of the update batch's
draw. Losses: every shard normalises by the counts of the whole update batch, as the
original's batch-level token means. Dropout: distinct masks per replica. Eval: any
eval batch size, a named checkpoint, every checkpoint into one learning curve.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from electra_tf.config import PretrainingConfig
from electra_tf.pretraining import losses, random
from electra_tf.training.pretrain import RunOptions, evaluate, train
from pretraining_fixtures import stand_in_steps, tiny_hparams, write_learnable_records


def options(model_dir, records, **kwargs):
    return RunOptions(model_dir=str(model_dir), pretrain_tfrecords=records, quiet=True,
                      deterministic=True, jit_compile=False, log_every_steps=1, **kwargs)


# ---------------------------------------------------------------------------
# Noise: a shard draws its own rows only, equal to the rows of the global draw
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("jit", [False, True])
def test_micro_batch_noise_is_its_rows_of_the_update_batch_draw(jit):
    """Reference: the one-device draw over the whole [k*b, N, V] update batch, which
    without XLA is tf.random.stateless_uniform's (XLA derives another philox key).

    Row size 19*1001 is not a multiple of 4, so every offset into Philox's 4-wide
    blocks is exercised.
    """
    seed, k, b, shape = tf.constant([3, 17], tf.int32), 4, 2, [19, 1001]
    whole = tf.function(lambda: random.uniform(seed, tf.constant([k * b, *shape]),
                                               random.SAMPLING), jit_compile=jit)().numpy()
    if not jit:  # the one-device draw is TensorFlow's own stateless philox stream
        np.testing.assert_array_equal(whole, tf.random.stateless_uniform(
            [k * b, *shape], random.fold(seed, random.SAMPLING), alg="philox").numpy())

    def draw(index):
        with random.microbatch(index, k):
            return random.uniform(seed, tf.constant([b, *shape]), random.SAMPLING)

    draw = tf.function(draw, jit_compile=jit)
    for index in range(k):
        np.testing.assert_array_equal(draw(tf.constant(index)).numpy(),
                                      whole[index * b:(index + 1) * b], err_msg=str(index))


def test_noise_bytes_per_device_no_longer_grow_with_replicas():
    """The Base recipe's Gumbel draw, 8 replicas: a shard materialises only [b, N, V]."""
    from benchmarks.noise_memory import noise_bytes_per_device
    before = noise_bytes_per_device(256, 512, 30522, replicas=8, per_shard_draw=False)
    after = noise_bytes_per_device(256, 512, 30522, replicas=8, per_shard_draw=True)
    assert before == 256 * 79 * 30522 * 4 and after == before // 8  # N = 79 at L = 512
    with_accumulation = noise_bytes_per_device(256, 512, 30522, replicas=8,
                                               accumulation_steps=4, per_shard_draw=True)
    assert with_accumulation == before // 32


# ---------------------------------------------------------------------------
# Losses: ratio of sums over the whole update batch
# ---------------------------------------------------------------------------

def test_shard_losses_with_global_denominators_sum_to_the_batch_loss():
    """Two shards of different lengths: their shares add up to the one-batch loss; the
    mean of per-shard means (the old rule) does not."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 6)).astype(np.float32)
    labels = (rng.random((4, 6)) < 0.3).astype(np.int32)
    mask = np.array([[1] * 6, [1] * 6, [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0]], np.int32)
    nll = np.log1p(np.exp(-np.abs(logits))) + np.maximum(logits, 0) - logits * labels
    expected = (nll * mask).sum() / (mask.sum() + 1e-6)  # spec 3.8, numpy
    total = float(mask.sum())
    shares = [float(losses.discriminator_loss(logits[s], labels[s], mask[s], total)[0])
              for s in (slice(0, 2), slice(2, 4))]
    assert sum(shares) == pytest.approx(expected, rel=1e-6)
    means = [float(losses.discriminator_loss(logits[s], labels[s], mask[s])[0])
             for s in (slice(0, 2), slice(2, 4))]
    assert np.mean(means) != pytest.approx(expected, rel=1e-3)


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path[:0] = [{root!r}, {tests!r}]
    from electra_tf.config import PretrainingConfig
    from electra_tf.networks.layers import Dropout
    from electra_tf.training.pretrain import RunOptions, train
    from pretraining_fixtures import tiny_hparams
    out = {{}}
    for name, strategy, k in (("one", "default", 1), ("mirrored", "mirrored", 1),
                              ("mirrored_k2", "mirrored", 2)):
        config = PretrainingConfig.from_preset("small", tiny_hparams(
            dropout=False, num_train_steps=4, gradient_accumulation_steps=k))
        result = train(config, RunOptions(model_dir={tmp!r} + "/" + name,
                       pretrain_tfrecords={records!r}, strategy=strategy, jit_compile=False,
                       deterministic=True, log_every_steps=1, quiet=True))
        out[name] = [stats for _, stats in result["history"]]
        out[name + "_export"] = result["exports"]["tf1"]
    # Dropout masks of the two replicas on the same input.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = Dropout(0.5, seed=1)
    ones = tf.ones([4, 64])
    masks = strategy.experimental_local_results(
        strategy.run(tf.function(lambda: layer(ones, training=True))))
    out["dropout"] = [m.numpy().tolist() for m in masks]
    print("RESULT" + json.dumps(out))
""")


@pytest.mark.slow
def test_two_replicas_and_accumulation_equal_one_device_on_records_of_different_lengths(
        tmp_path):
    """2 logical CPU replicas (k=1 and k=2) vs one device at the same global batch of 8.

    Records of 12..32 tokens, so per-shard token counts differ: losses rel 1e-5,
    weights atol 1e-5 (float32 sums in another order). With dropout on, the two
    replicas drop different units.
    """
    records = write_learnable_records(tmp_path / "records", full_length=False)
    script = MIRRORED_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"),
                                    tmp=str(tmp_path), records=records)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    reference = tf.train.load_checkpoint(out["one_export"])
    for name in ("mirrored", "mirrored_k2"):
        for one, other in zip(out["one"], out[name]):
            for key in ("total_loss", "mlm_loss", "disc_loss", "disc_accuracy"):
                assert other[key] == pytest.approx(one[key], rel=1e-5, abs=1e-7), (name, key)
        other = tf.train.load_checkpoint(out[name + "_export"])
        for var, _ in tf.train.list_variables(out["one_export"]):
            np.testing.assert_allclose(other.get_tensor(var), reference.get_tensor(var),
                                       atol=1e-5, rtol=0, err_msg=f"{name}: {var}")
    first, second = (np.array(m) for m in out["dropout"])
    assert 0.3 < (first == 0).mean() < 0.7 and 0.3 < (second == 0).mean() < 0.7
    assert (first != second).mean() > 0.3  # independent masks disagree on about half


# ---------------------------------------------------------------------------
# Evaluation at any batch size, on any checkpoint, into one learning curve
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evalrun")
    records = write_learnable_records(tmp / "records")
    config = PretrainingConfig.from_preset("small", tiny_hparams(
        num_train_steps=6, save_checkpoints_steps=2, keep_checkpoint_max=0))
    train(config, options(tmp / "run", records))
    return tmp / "run", records


def eval_config(**extra):
    return PretrainingConfig.from_preset("small", tiny_hparams(
        do_train=False, do_eval=True, num_eval_steps=2, **extra))


def test_eval_batch_size_differs_from_train_batch_size(trained):
    run_dir, records = trained
    for batch in (4, 6):  # train batch is 8
        results = evaluate(eval_config(eval_batch_size=batch), options(run_dir, records))
        assert results["global_step"] == 6
        assert 0.0 <= results["disc_auc"] <= 1.0


def test_named_checkpoint_and_learning_curve(trained):
    run_dir, records = trained
    at_2 = evaluate(eval_config(eval_batch_size=4), options(run_dir, records),
                    checkpoint="ckpt-2")
    assert at_2["global_step"] == 2
    curve = evaluate(eval_config(eval_batch_size=4), options(run_dir, records),
                     all_checkpoints=True)
    steps = [point["global_step"] for point in curve["checkpoints"]]
    assert steps == [2, 4, 6]
    # The same batches and noise at every checkpoint: the curve's point equals a
    # separate evaluation of that checkpoint, and training moved the metrics.
    assert curve["checkpoints"][0] == pytest.approx(at_2, rel=1e-6)
    assert curve["checkpoints"][0]["masked_lm_loss"] != curve["checkpoints"][2]["masked_lm_loss"]
    saved = json.loads((run_dir / "results" / "learning_curve.json").read_text())
    assert saved == curve
    assert os.listdir(run_dir / "eval")  # TensorBoard events
    # A re-run adds only new checkpoints: remove one point and it comes back alone.
    saved["checkpoints"] = saved["checkpoints"][:2]
    (run_dir / "results" / "learning_curve.json").write_text(json.dumps(saved))
    again = evaluate(eval_config(eval_batch_size=4), options(run_dir, records),
                     all_checkpoints=True)
    assert [p["global_step"] for p in again["checkpoints"]] == [2, 4, 6]
    assert again["checkpoints"][2] == pytest.approx(curve["checkpoints"][2], rel=1e-6)


def test_cli_eval_at_another_batch_size_after_a_debug_run(tmp_path, capsys, monkeypatch):
    """The issue's repro: a --debug run (train batch 8), then --do_eval at eval batch 4
    (run_pretraining.py's command line, in-process; the training steps stand-ins: the
    evaluation is at issue)."""
    from electra_tf import run_pretraining
    write_learnable_records(tmp_path / "data" / "pretrain_tfrecords", seq_len=128)
    common = [f"--data_dir={tmp_path / 'data'}", "--debug", "--nojit_compile",
              "--num_train_steps=2"]
    with monkeypatch.context() as patch:
        stand_in_steps(patch)
        assert run_pretraining.main(common) == 0, capsys.readouterr().err[-3000:]
    capsys.readouterr()
    status = run_pretraining.main(common + ["--do_eval"])
    out, err = capsys.readouterr()
    assert status == 0, err[-3000:]
    assert "disc_auc = " in out and "global_step = 2" in out
