"""The pre-training driver's evaluation mode and its failure paths, in-process on a tiny model.

* ``--do_eval`` runs the network with dropout off (spec 3.12 / Estimator EVAL mode): the
  metrics of a checkpoint trained with dropout equal those of the same weights under a
  dropout-free config.
* A non-finite loss stops the run with one PretrainingError naming the step, and no
  checkpoint of the broken weights is written.
* float16 loss scaling: an overflowing update is skipped (it is not a step and does not
  trip the non-finite stop); 100 consecutive overflows are an error, a good step resets
  the count.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.config import PretrainingConfig
from electra_tf.pretraining import PretrainingObjective
from electra_tf.training import pretrain, runtime
from electra_tf.training.pretrain import PretrainingError, RunOptions, evaluate, train
from pretraining_fixtures import stand_in_steps, tiny_hparams, write_learnable_records


def options(model_dir, records, **kwargs):
    return RunOptions(model_dir=str(model_dir), pretrain_tfrecords=records, quiet=True,
                      deterministic=True, jit_compile=False, log_every_steps=1, **kwargs)


def config(**hparams):
    return PretrainingConfig.from_preset("small", tiny_hparams(**hparams))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return write_learnable_records(tmp_path_factory.mktemp("records"), num_files=1, per_file=48)


def checkpoint_steps(model_dir):
    return [step for step, _ in pretrain.run_checkpoints(str(model_dir), complete_only=False)]


def test_eval_uses_no_dropout(tmp_path, records, monkeypatch):
    with monkeypatch.context() as patch:  # a checkpoint to evaluate (its steps: stand-ins)
        stand_in_steps(patch)
        train(config(num_train_steps=4), options(tmp_path / "m", records, stop_at_step=2))
    eval_hparams = dict(do_train=False, do_eval=True, num_eval_steps=2)
    with_dropout = evaluate(config(**eval_hparams), options(tmp_path / "m", records))
    assert with_dropout["global_step"] == 2
    again = evaluate(config(**eval_hparams), options(tmp_path / "m", records))
    assert again == with_dropout  # same checkpoint, same batches and noise: identical
    # That alone would not notice dropout in eval: the checkpoint restores the dropout RNG
    # state too. The reference: the same weights under a config whose dropout rates are 0.
    # Same computation, so equal to the last bit (dropout in eval moves the losses ~1e-4).
    no_dropout = evaluate(config(dropout=False, **eval_hparams), options(tmp_path / "m", records))
    assert with_dropout == no_dropout


def test_exploding_learning_rate_stops_on_the_first_non_finite_loss(tmp_path, records):
    # No warm-up: step 1 updates with LR 1e30; the loss of step 2 (computed with the
    # exploded weights, before its update) is the first non-finite one.
    hparams = dict(num_train_steps=6, learning_rate=1e30, num_warmup_steps=0, dropout=False)
    with pytest.raises(PretrainingError, match=r"non-finite loss at step 2\b"):
        train(config(**hparams), options(tmp_path / "m", records))
    assert checkpoint_steps(tmp_path / "m") == []  # nothing saved from the broken weights


def patch_objective(monkeypatch, poisoned_calls, factor):
    """Multiplies the total loss of the given (1-based) training calls of the objective by
    ``factor`` (inf or NaN): their gradients are non-finite. Returns the call counter."""
    calls = tf.Variable(0, dtype=tf.int32, trainable=False)
    original = PretrainingObjective.__call__

    def poisoned(self, features, seed, training=True, denominators=None):
        out = original(self, features, seed, training=training, denominators=denominators)
        if training:
            calls.assign_add(1)
            bad = tf.reduce_any(tf.equal(calls.read_value(), list(poisoned_calls)))
            out = dict(out, total_loss=out["total_loss"] * tf.where(bad, factor, 1.0))
        return out

    monkeypatch.setattr(PretrainingObjective, "__call__", poisoned)
    return calls


def test_nan_loss_in_float32_stops_the_run(tmp_path, records, monkeypatch):
    calls = patch_objective(monkeypatch, [3], float("nan"))
    with pytest.raises(PretrainingError, match=r"non-finite loss at step 3\b"):
        train(config(num_train_steps=6), options(tmp_path / "m", records))
    assert int(calls.numpy()) == 3  # stopped at once, not at the end of the run
    assert checkpoint_steps(tmp_path / "m") == []


def test_float16_overflow_is_skipped_not_counted_and_not_fatal(tmp_path, records, monkeypatch):
    # Start the dynamic loss scale at 1 (not 2**15) so that only the poisoned call
    # overflows: its update is skipped and the scale halves once.
    scalers = []

    def with_loss_scaling(optimizer, mixed_precision):
        scaled = real_with_loss_scaling(optimizer, mixed_precision)
        scaled.dynamic_scale.assign(1.0)
        scalers.append(scaled)
        return scaled

    real_with_loss_scaling = runtime.with_loss_scaling
    monkeypatch.setattr(runtime, "with_loss_scaling", with_loss_scaling)
    calls = patch_objective(monkeypatch, [2], float("inf"))
    result = train(config(num_train_steps=5), options(
        tmp_path / "m", records, mixed_precision="float16", stop_at_step=4))
    # 5 attempts for 4 updates: the overflowing one (call 2) is skipped and redone.
    assert int(calls.numpy()) == 5
    assert float(scalers[0].dynamic_scale.numpy()) == 0.5
    assert result["step"] == 4
    assert [step for step, _ in result["history"]] == [1, 2, 3, 4]
    assert all(math.isfinite(v) for _, stats in result["history"] for v in stats.values())
    assert checkpoint_steps(tmp_path / "m") == [4]
    prefix = str(tmp_path / "m" / "ckpt-4")  # the skipped update wrote no inf/NaN anywhere
    reader = tf.train.load_checkpoint(prefix)
    floats = [reader.get_tensor(name) for name, dtype in
              reader.get_variable_to_dtype_map().items() if dtype.is_floating]
    assert len(floats) > 50 and all(np.isfinite(t).all() for t in floats)


def test_float16_skip_counter_allows_100_and_resets_after_a_good_step(tmp_path, records,
                                                                      monkeypatch):
    """A stand-in train step (no model run): 'ok' advances the optimizer's step, 'skip'
    leaves it (what LossScaleOptimizer does on overflow) and reports an inf loss."""
    pattern = ["ok"] + ["skip"] * 100 + ["ok"] + ["skip"] * 101 + ["ok"]
    attempts = []

    def fake_make_train_step(run, jit_compile):
        def step(iterator):
            kind = pattern[len(attempts)]
            attempts.append(kind)
            if kind == "ok":
                run.base_optimizer.iterations.assign_add(1)
                return {"total_loss": tf.constant(1.0)}
            return {"total_loss": tf.constant(float("inf"))}
        return step

    monkeypatch.setattr(pretrain, "make_train_step", fake_make_train_step)
    with pytest.raises(PretrainingError, match="100 consecutive float16 updates overflowed"):
        train(config(num_train_steps=10), options(tmp_path / "m", records))
    # 100 skips after step 1 were tolerated; the 101st after step 2 stopped the run.
    assert len(attempts) == 1 + 100 + 1 + 101
