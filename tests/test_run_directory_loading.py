"""A pre-training run directory is a model: every tool reads its newest complete ckpt-N.

One tiny run trained to step 4 (ckpt-2, ckpt-4 and the final tf1/ and discriminator/
exports) and one stopped at step 2 (a run directory mid-training: ckpt-2 only) are
shared by the tests.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from electra_tf import checkpoints, loading
from electra_tf.checkpoints import CheckpointError
from electra_tf.config import PretrainingConfig
from electra_tf.formats import files, hf
from electra_tf.networks.pretraining import build_pretraining_models
from electra_tf.tokenization import default_vocab_file
from electra_tf.training.pretrain import PretrainingRun, RunOptions, train
from pretraining_fixtures import tiny_hparams, write_learnable_records
from test_finetuning_driver import TINY_MODEL, write_sst_task

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def run_options(model_dir, records, **kwargs):
    return RunOptions(model_dir=str(model_dir), pretrain_tfrecords=records, quiet=True,
                      jit_compile=False, deterministic=True, **kwargs)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    records = write_learnable_records(root / "records", per_file=32)
    config = PretrainingConfig.from_preset("small", tiny_hparams(
        num_train_steps=4, save_checkpoints_steps=2, keep_checkpoint_max=0))
    train(config, run_options(root / "full", records))
    mid = train(config, run_options(root / "mid", records, stop_at_step=2))
    assert mid["step"] == 2 and "exports" not in mid
    return {"full": root / "full", "mid": root / "mid", "config": config, "records": records}


def copy_run(src, dst):
    """The top-level files of a run directory (checkpoints, state file, config)."""
    dst.mkdir(parents=True)
    for name in os.listdir(src):
        if os.path.isfile(src / name):
            shutil.copy(src / name, dst / name)
    return dst


def assert_same_values(a: dict, b: dict, names=None):
    names = sorted(a) if names is None else names
    assert names and set(names) <= set(a) and set(names) <= set(b)
    for name in names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_mid_run_directory_reads_its_newest_checkpoint(runs):
    assert sorted(n for n in os.listdir(runs["mid"]) if n.endswith(".index")) == ["ckpt-2.index"]
    assert not (runs["mid"] / "tf1").exists()
    weights = loading.read_weights(runs["mid"])
    assert weights.format == "training" and weights.global_step == 2
    assert weights.source == str(runs["mid"] / "ckpt-2")
    assert weights.vocab_file == str(runs["mid"] / "vocab.txt")  # written at the start
    # The driver's own restore of the same directory gives the same values, name by name.
    run = PretrainingRun(runs["config"], run_options(runs["mid"], runs["records"]),
                         training=False)
    assert run.restore() == str(runs["mid"] / "ckpt-2") and run.step == 2
    restored = checkpoints.original_values(*run.models.models)
    assert sorted(weights.values) == sorted(restored)
    assert any(n.startswith("generator/") for n in restored)
    assert "discriminator_predictions/dense/kernel" in restored
    assert_same_values(weights.values, restored)
    # ... and not the values of freshly initialised models.
    fresh = checkpoints.original_values(
        *build_pretraining_models(runs["config"]).models)
    assert not np.array_equal(fresh["electra/encoder/layer_0/attention/self/query/kernel"],
                              restored["electra/encoder/layer_0/attention/self/query/kernel"])


def test_ckpt_prefix_equals_the_final_tf1_export_and_steps_differ(runs):
    full = runs["full"]
    last = loading.read_weights(full / "ckpt-4")
    export = loading.read_weights(full / "tf1")  # written from the trained models at step 4
    assert (last.global_step, export.global_step) == (4, 4)
    assert sorted(last.values) == sorted(export.values)
    assert_same_values(last.values, export.values)
    assert loading.read_weights(full).source == str(full / "ckpt-4")
    second = loading.read_weights(str(full / "ckpt-2.index"))
    assert second.global_step == 2 and second.source == str(full / "ckpt-2")
    changed = [n for n in last.values if not np.array_equal(last.values[n], second.values[n])]
    assert len(changed) > len(last.values) // 2
    # load_pretrained takes over the models restored to read the checkpoint.
    model = loading.load_pretrained(full, require=("discriminator_head", "generator"))
    assert model.weights.built is None and model.weights.global_step == 4
    assert model.config.num_train_steps == 4
    assert_same_values(checkpoints.original_values(*model.models), export.values)


@pytest.mark.parametrize("damage", ["data_deleted", "index_deleted", "index_corrupt"])
def test_state_file_naming_a_broken_newest_checkpoint_falls_back(tmp_path, runs, damage):
    run_dir = copy_run(runs["full"], tmp_path / "run")
    state = tf.train.get_checkpoint_state(str(run_dir))
    assert state.model_checkpoint_path == str(run_dir / "ckpt-4")
    if damage == "data_deleted":
        os.remove(run_dir / "ckpt-4.data-00000-of-00001")
    elif damage == "index_deleted":
        os.remove(run_dir / "ckpt-4.index")
    else:
        (run_dir / "ckpt-4.index").write_bytes(b"not a checkpoint index")
    assert files.latest_complete_checkpoint(run_dir) == str(run_dir / "ckpt-2")
    assert files.resolve_checkpoint(str(run_dir)) == str(run_dir / "ckpt-2")
    weights = loading.read_weights(run_dir)
    assert weights.global_step == 2
    assert_same_values(weights.values, loading.read_weights(runs["full"] / "ckpt-2").values)


def test_newest_checkpoint_missing_from_the_state_file_is_found(tmp_path, runs):
    run_dir = copy_run(runs["full"], tmp_path / "run")
    (run_dir / "checkpoint").write_text('model_checkpoint_path: "ckpt-2"\n'
                                        'all_model_checkpoint_paths: "ckpt-2"\n')
    assert files.latest_complete_checkpoint(run_dir) == str(run_dir / "ckpt-4")
    os.remove(run_dir / "checkpoint")
    assert loading.read_weights(run_dir).global_step == 4


def test_empty_directory_and_missing_config_are_one_line_errors(tmp_path, runs):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError) as error:
        loading.read_weights(tmp_path / "empty")
    message = str(error.value)
    assert "\n" not in message and str(tmp_path / "empty") in message
    assert "looked for a 'checkpoint' state file, ckpt-N.index (a training run) or " \
           "<name>.index (a TF1 export)" in message
    assert files.latest_complete_checkpoint(tmp_path / "empty") is None
    broken = copy_run(runs["mid"], tmp_path / "broken")
    os.remove(broken / "ckpt-2.data-00000-of-00001")
    with pytest.raises(CheckpointError, match=r"^no checkpoint in directory .*broken: looked "
                                              r"for .*\(incomplete or unreadable: ckpt-2\.index\)$"):
        loading.read_weights(broken)
    run_dir = copy_run(runs["mid"], tmp_path / "run")
    os.remove(run_dir / "pretraining_config.json")
    with pytest.raises(CheckpointError, match=r"ckpt-2 is an object-based training checkpoint "
                                              r"but there is no pretraining_config\.json"):
        loading.read_weights(run_dir)


def test_config_that_does_not_fit_the_checkpoint_is_one_clear_error(tmp_path, runs):
    run_dir = copy_run(runs["mid"], tmp_path / "run")
    config = json.loads((run_dir / "pretraining_config.json").read_text())
    config["model_hparam_overrides"]["hidden_size"] = 64
    (run_dir / "pretraining_config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"cannot restore .*ckpt-2 into the models of "
                                              r"pretraining_config\.json"):
        loading.read_weights(run_dir)


def test_detect_cli_reads_a_run_directory(runs):
    proc = subprocess.run(
        [sys.executable, "-m", "electra_tf.detect", "--checkpoint", str(runs["mid"]),
         "--vocab_file", default_vocab_file(), "--json", "the quick brown fox jumped"],
        capture_output=True, text=True, timeout=300, env=ENV, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[0])
    assert result["tokens"] == ["the", "quick", "brown", "fox", "jumped"]
    assert len(result["labels"]) == 5


def test_convert_cli_writes_hf_from_a_ckpt(tmp_path, runs):
    out = tmp_path / "hf"
    proc = subprocess.run(
        [sys.executable, "-m", "electra_tf.convert", "--input", str(runs["mid"] / "ckpt-2"),
         "--output", str(out), "--to", "hf"],
        capture_output=True, text=True, timeout=300, env=ENV, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "discriminator" / "model.safetensors").exists()
    assert (out / "generator" / "model.safetensors").exists()
    assert hf.matches(str(out / "discriminator"))
    converted = loading.read_weights(out).values
    source = loading.read_weights(runs["mid"] / "ckpt-2").values
    names = ["electra/embeddings/word_embeddings",
             "electra/encoder/layer_1/attention/self/query/kernel",
             "discriminator_predictions/dense/kernel",
             "generator/encoder/layer_0/output/dense/bias"]
    assert_same_values(converted, source, names)


def finetuning_hparams():
    return json.dumps({"max_seq_length": 16, "train_batch_size": 16, "eval_batch_size": 16,
                       "num_train_epochs": 1, **TINY_MODEL})


def test_finetuning_cli_starts_from_a_mid_run_directory(tmp_path, runs):
    data = tmp_path / "data"
    write_sst_task(data, 32, 16)
    model = copy_run(runs["mid"], data / "models" / "electra_small")
    # A discriminator/ export of another step beside it: the run's own ckpt-N comes first.
    shutil.copytree(runs["full"] / "discriminator", model / "discriminator")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_finetuning.py"), f"--data_dir={data}",
         "--task_names=sst", f"--hparams={finetuning_hparams()}", "--nojit_compile"],
        capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"trial 1: initialised from {model / 'ckpt-2'} (step 2): loaded " in proc.stderr
    results = json.load(open(model / "results" / "sst_results.json"))
    assert results[0]["init_checkpoint"] == str(model / "ckpt-2")
    assert results[0]["init_step"] == 2
    assert "accuracy" in results[0]["sst"]


def test_finetuning_cli_init_checkpoint_none_trains_from_random_weights(tmp_path, runs):
    data = tmp_path / "data"
    write_sst_task(data, 32, 16)
    model = copy_run(runs["mid"], data / "models" / "electra_small")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_finetuning.py"), f"--data_dir={data}",
         "--task_names=sst", f"--hparams={finetuning_hparams()}", "--nojit_compile",
         "--init_checkpoint=none"],
        capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trial 1: no pre-trained weights (init_checkpoint none): random initialisation" \
        in proc.stderr
    assert "initialised from" not in proc.stderr and "loaded " not in proc.stderr
    results = json.load(open(model / "results" / "sst_results.json"))
    assert results[0]["init_checkpoint"] is None and results[0]["init_step"] is None
    assert "accuracy" in results[0]["sst"]
