"""The pre-training driver end to end: training, resume, eval, exports, distribution, CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, run_in_process
from electra_tf.formats import files
from electra_tf.config import PretrainingConfig
from electra_tf.training.pretrain import RunOptions, evaluate, train
from pretraining_fixtures import stand_in_steps, tiny_hparams, write_learnable_records


def options(model_dir, records, **kwargs):
    kwargs.setdefault("jit_compile", False)
    return RunOptions(model_dir=str(model_dir), pretrain_tfrecords=records, quiet=True,
                      deterministic=True, log_every_steps=1, **kwargs)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return write_learnable_records(tmp_path_factory.mktemp("records"))


def test_tiny_model_trains_losses_fall_and_exports(tmp_path, records):
    config = PretrainingConfig.from_preset("small", tiny_hparams(num_train_steps=40))
    result = train(config, options(tmp_path / "m", records, jit_compile=True))
    losses = {k: [stats[k] for _, stats in result["history"]]
              for k in ("mlm_loss", "disc_loss", "total_loss")}
    assert [s for s, _ in result["history"]] == list(range(1, 41))
    # 40 steps of a tiny model: the generator is still far from the 30522-way uniform start.
    for name, ratio in (("mlm_loss", 0.9), ("disc_loss", 0.8), ("total_loss", 0.8)):
        first, last = np.mean(losses[name][:5]), np.mean(losses[name][-5:])
        assert last < ratio * first, (name, first, last)
    # Exports: everything with Adam slots, and the discriminator alone, in TF1 names.
    full = files.read_checkpoint_shapes(result["exports"]["tf1"])
    assert "electra/encoder/layer_1/output/dense/kernel/adam_m" in full
    assert "generator_predictions/output_bias/adam_v" in full
    assert full["global_step"] == []
    assert tf.train.load_checkpoint(result["exports"]["tf1"]).get_tensor("global_step") == 40
    disc = files.read_checkpoint_shapes(result["exports"]["discriminator"])
    assert "electra/embeddings/word_embeddings" in disc
    assert not any(n.startswith("generator") or "adam" in n for n in disc)
    export_dir = os.path.dirname(result["exports"]["discriminator"])
    assert os.path.exists(os.path.join(export_dir, "vocab.txt"))
    saved = json.load(open(os.path.join(export_dir, "pretraining_config.json")))
    assert saved["num_train_steps"] == 40 and saved["max_predictions_per_seq"] == 4
    events = os.listdir(tmp_path / "m" / "train")
    assert events and events[0].startswith("events.out.tfevents")

    eval_config = PretrainingConfig.from_preset(
        "small", tiny_hparams(do_train=False, do_eval=True, num_eval_steps=3))
    results = evaluate(eval_config, options(tmp_path / "m", records))
    written = json.load(open(tmp_path / "m" / "results" / "unsup_results.json"))
    assert written == pytest.approx(results)
    assert results["global_step"] == 40
    for key in ("masked_lm_accuracy", "sampled_masked_lm_accuracy", "disc_auc",
                "disc_accuracy", "disc_precision", "disc_recall"):
        assert 0.0 <= results[key] <= 1.0, key
    assert abs(results["loss"] - np.mean(losses["total_loss"][-5:])) < 5.0  # same model
    assert (tmp_path / "m" / "results" / "unsup_results.txt").read_text().count(" = ") == \
        len(results)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, records):
    """... also over the stray files of a crash while a checkpoint was written: the state
    file still names the last good one."""
    config = PretrainingConfig.from_preset("small", tiny_hparams(num_train_steps=9))
    whole = train(config, options(tmp_path / "one", records))
    first = train(config, options(tmp_path / "two", records, stop_at_step=4))
    assert first["step"] == 4 and "exports" not in first
    (tmp_path / "two" / "ckpt-5.index").write_bytes(b"half written")
    (tmp_path / "two" / "ckpt-5_temp").mkdir()
    second = train(config, options(tmp_path / "two", records))
    assert [s for s, _ in second["history"]] == list(range(5, 10))
    assert second["history"] == whole["history"][4:]  # same losses: data, masks, dropout
    a = tf.train.load_checkpoint(whole["exports"]["tf1"])
    b = tf.train.load_checkpoint(second["exports"]["tf1"])
    for name, _ in tf.train.list_variables(whole["exports"]["tf1"]):
        np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), err_msg=name)


@pytest.mark.parametrize("objective,expect,absent", [
    ({"electric_objective": True, "electra_objective": False},
     "generator_ltr/encoder/layer_0/attention/self/query/kernel", "generator_predictions/"),
    ({"electra_objective": False}, "generator_predictions/output_bias", "discriminator_"),
    ({"uniform_generator": True}, "discriminator_predictions/dense_1/kernel", "generator"),
])
def test_every_objective_trains_and_exports(tmp_path, records, objective, expect, absent):
    config = PretrainingConfig.from_preset("small", tiny_hparams(num_train_steps=3, **objective))
    result = train(config, options(tmp_path / "m", records))
    assert all(np.isfinite(v) for _, stats in result["history"] for v in stats.values())
    names = files.read_checkpoint_shapes(result["exports"]["tf1"])
    assert expect in names and f"{expect}/adam_m" in names
    assert not any(n.startswith(absent) for n in names)
    # The fine-tuning export always holds the electra/ encoder.
    disc = files.read_checkpoint_shapes(result["exports"]["discriminator"])
    assert "electra/encoder/layer_1/output/LayerNorm/gamma" in disc


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_trains_with_float32_losses(tmp_path, records, precision):
    config = PretrainingConfig.from_preset("small", tiny_hparams(num_train_steps=3))
    result = train(config, options(tmp_path / precision, records, mixed_precision=precision))
    assert result["step"] == 3
    assert all(np.isfinite(v) for _, stats in result["history"] for v in stats.values())
    # Weights stay float32 (mixed policy); the export holds float32 tensors.
    reader = tf.train.load_checkpoint(result["exports"]["tf1"])
    assert reader.get_tensor("electra/embeddings/word_embeddings").dtype == np.float32


def test_evaluate_without_checkpoint_is_a_clear_error(tmp_path, records):
    from electra_tf.training.pretrain import PretrainingError
    config = PretrainingConfig.from_preset("small", tiny_hparams(do_train=False, do_eval=True))
    with pytest.raises(PretrainingError, match="no checkpoint to evaluate"):
        evaluate(config, options(tmp_path / "empty", records))


def run_cli(*args, cwd=ROOT, timeout=600):
    return subprocess.run([sys.executable, str(ROOT / "run_pretraining.py"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_cli_trains_resumes_and_continues_from_init_checkpoint(tmp_path, capsys, monkeypatch):
    """run_pretraining.py's command line, in-process (``run_pretraining.main(argv)``), with a
    stand-in step: this is about the runs' directories, resumes and exports (the step is
    the other tests')."""
    from electra_tf import run_pretraining
    stand_in_steps(monkeypatch)
    records = write_learnable_records(tmp_path / "data" / "pretrain_tfrecords")
    assert records.endswith("pretrain_data.tfrecord*")
    hparams = json.dumps(tiny_hparams(num_train_steps=4))
    common = [f"--data_dir={tmp_path / 'data'}", f"--hparams={hparams}", "--nojit_compile",
              "--log_every_steps=2"]

    def cli(*args):
        done = run_in_process(capsys, run_pretraining.main, [*common, *args])
        return done.returncode, done.stderr

    status, err = cli("--num_train_steps=2")
    assert status == 0, err[-3000:]
    assert "starting at step 0/2" in err and "step 2/2 (100.0%)" in err
    model_dir = tmp_path / "data" / "models" / "electra_small"
    assert (model_dir / "discriminator" / "model.ckpt-2.index").exists()
    status, err = cli()  # num_train_steps back to 4: resumes at 2
    assert status == 0, err[-3000:]
    assert "resuming from ckpt-2 at step 2/4" in err
    assert "ETA" in err and "examples/s" in err

    # Continue pre-training from the TF1-name export, as from a Google release.
    init = model_dir / "tf1"
    status, err = cli("--model_name=continued", f"--init_checkpoint={init}",
                      "--num_train_steps=6")
    assert status == 0, err[-3000:]
    assert "at step 4/6" in err
    assert (tmp_path / "data" / "models" / "continued" / "tf1" / "model.ckpt-6.index").exists()

    status, err = cli("--model_name=x", "--init_checkpoint=/no/such/ckpt")
    assert status == 1 and "error: checkpoint not found: /no/such/ckpt" in err
    assert "Traceback" not in err


def test_records_named_by_flag_are_never_replaced_by_the_bundled_corpus(tmp_path, capsys,
                                                                       monkeypatch):
    """Was: without --data_dir the quick start applied even when --pretrain_tfrecords named
    the user's records, so a glob with a typo built the bundled corpus at that path and
    trained on it, and configs/quickstart.json (100 steps) replaced the paper's preset."""
    from electra_tf import run_pretraining
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "corpus" / "pretrain_data.tfrecord*"
    done = run_in_process(capsys, run_pretraining.main, [
        f"--pretrain_tfrecords={typo}", f"--model_dir={tmp_path / 'run'}", "--nojit_compile"])
    assert done.returncode == 1
    assert f"error: no pre-training TFRecords match '{typo}'" in done.stderr
    assert "quick start" not in done.stderr and "Traceback" not in done.stderr
    assert sorted(os.listdir(tmp_path)) == []  # nothing built, no run directory


@pytest.mark.slow
def test_readme_quickstart_builds_the_bundled_corpus_and_trains(tmp_path):
    """The README's main command, shortened with flags: ELECTRA-Small on the bundled corpus."""
    result = run_cli("--model_size=small", "--num_train_steps=2", "--train_batch_size=4",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "quick start" in result.stderr and "building TFRecords" in result.stderr
    assert len(list((tmp_path / "data" / "pretrain_tfrecords").glob("pretrain_data.tfrecord-*"))) == 8
    assert (tmp_path / "data" / "models" / "electra_small" / "discriminator" /
            "model.ckpt-2.index").exists()
