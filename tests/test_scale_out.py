"""Scaling out (issue 7): gradient accumulation, LAMB in the driver, input sharding and
multi-worker pre-training with real worker processes on localhost."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from electra_tf.config import ConfigError, PretrainingConfig
from electra_tf.training.input_pipeline import pretraining_dataset
from electra_tf.training.pretrain import RunOptions, train
from pretraining_fixtures import SEQ_LEN, tiny_hparams, write_learnable_records


def options(model_dir, records, **kwargs):
    return RunOptions(model_dir=str(model_dir), pretrain_tfrecords=records, quiet=True,
                      deterministic=True, jit_compile=False, log_every_steps=1, **kwargs)


def export_values(path):
    reader = tf.train.load_checkpoint(path)
    return {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(path)}


def assert_same_weights(a, b, atol):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=atol, rtol=0, err_msg=name)


# ---------------------------------------------------------------------------
# Gradient accumulation and LAMB
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def adamw_run(tmp_path_factory):
    """The reference run of this section: AdamW, one batch of 8 per update, 4 updates,
    dropout off, records of different lengths: (records, result)."""
    tmp = tmp_path_factory.mktemp("adamw")
    records = write_learnable_records(tmp / "records", full_length=False)
    config = PretrainingConfig.from_preset("small", tiny_hparams(
        dropout=False, num_train_steps=4))
    return records, train(config, options(tmp / "k1", records))


def test_accumulated_micro_batches_give_the_update_of_one_large_batch(tmp_path, adamw_run):
    """k micro-batches of b == one batch of k*b: same losses, same weights after 4 updates.

    Records of different lengths: each micro-batch normalises its summed token losses
    by the counts of the whole update batch, so the micro-batches add up to the batch's
    token means. Dropout off; each micro-batch's noise is its rows of the update batch's
    draw. Tolerance: losses rel 1e-5, weights 1e-5 absolute (float32 sums in another order).
    """
    records, results = adamw_run[0], {1: adamw_run[1]}
    config = PretrainingConfig.from_preset("small", tiny_hparams(
        dropout=False, num_train_steps=4, gradient_accumulation_steps=4))
    results[4] = train(config, options(tmp_path / "k4", records))
    assert results[4]["step"] == 4  # the optimizer counts updates, not micro-batches
    for (_, one), (_, acc) in zip(results[1]["history"], results[4]["history"]):
        for name in ("total_loss", "mlm_loss", "disc_loss", "masked_lm_accuracy"):
            assert acc[name] == pytest.approx(one[name], rel=1e-5, abs=1e-7), name
    one, acc = (export_values(results[k]["exports"]["tf1"]) for k in (1, 4))
    assert int(acc["global_step"]) == 4
    assert_same_weights(one, acc, atol=1e-5)
    # ... and accumulation is not a no-op: 4 updates of micro-batches alone differ.
    config = PretrainingConfig.from_preset("small", tiny_hparams(
        dropout=False, num_train_steps=4, train_batch_size=2))
    small = export_values(train(config, options(tmp_path / "b2", records))["exports"]["tf1"])
    name = "electra/encoder/layer_0/attention/self/query/kernel"
    assert np.abs(small[name] - one[name]).max() > 1e-4


def test_fine_tuning_accumulation_equals_the_large_batch(tmp_path, monkeypatch):
    """Fine-tuning (loss summed over the batch, spec 6.3): k=4 micro-batches of 4 == batch 16.

    With LAMB, so the optimizer option is exercised too. Dropout off everywhere
    (the head's fixed 0.1 as well) so both runs are deterministic.
    """
    from electra_tf.finetuning import heads
    monkeypatch.setattr(heads, "HEAD_DROPOUT", 0.0)
    from electra_tf.config import FinetuningConfig
    from electra_tf.training.finetune import FinetuneOptions, run_finetuning
    from test_finetuning_driver import TINY_MODEL, write_sst_task
    write_sst_task(tmp_path / "data", 48, 16)
    no_dropout = {**TINY_MODEL, "model_hparam_overrides": {
        **TINY_MODEL["model_hparam_overrides"], "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0}}
    weights = {}
    for k in (1, 4):
        config = FinetuningConfig.from_preset("small", ["sst"], {
            "max_seq_length": 16, "train_batch_size": 16, "eval_batch_size": 16,
            "learning_rate": 1e-3, "num_train_epochs": 2, "gradient_accumulation_steps": k,
            "optimizer": "lamb", **no_dropout})
        run_finetuning(config, FinetuneOptions(
            data_dir=str(tmp_path / "data"), model_dir=str(tmp_path / f"k{k}" / "model"),
            results_dir=str(tmp_path / f"k{k}" / "results"),
            preprocessed_dir=str(tmp_path / "cache"), quiet=True, seed=0))
        weights[k] = export_values(str(tmp_path / f"k{k}" / "model_1"))
    assert int(weights[4]["global_step"]) == 6  # 48 examples / 16 * 2 epochs updates
    assert_same_weights(weights[1], weights[4], atol=2e-6)


def test_accumulation_and_optimizer_hparams_are_validated():
    with pytest.raises(ConfigError, match="not divisible by gradient_accumulation_steps 3"):
        PretrainingConfig.from_preset("small", tiny_hparams(gradient_accumulation_steps=3))
    with pytest.raises(ConfigError, match="gradient_accumulation_steps must be >= 1"):
        PretrainingConfig.from_preset("small", tiny_hparams(gradient_accumulation_steps=0))
    with pytest.raises(ConfigError, match="unknown optimizer 'adam'"):
        PretrainingConfig.from_preset("small", tiny_hparams(optimizer="adam"))


def test_lamb_trains_through_the_driver_and_differs_from_adamw(tmp_path, adamw_run):
    records, adamw = adamw_run
    config = PretrainingConfig.from_preset("small", tiny_hparams(
        dropout=False, num_train_steps=4, optimizer="lamb"))
    lamb = train(config, options(tmp_path / "lamb", records))
    weights = {}
    for name, result in (("adamw", adamw), ("lamb", lamb)):
        weights[name] = export_values(result["exports"]["tf1"])
        assert all(np.isfinite(s["total_loss"]) for _, s in result["history"])
    assert "electra/encoder/layer_1/output/dense/kernel/adam_m" in weights["lamb"]
    name = "electra/encoder/layer_0/output/dense/kernel"
    assert np.abs(weights["lamb"][name] - weights["adamw"][name]).max() > 1e-5


# ---------------------------------------------------------------------------
# Input sharding across workers
# ---------------------------------------------------------------------------

def _first_ids(records, num_pipelines, pipeline, batches=6):
    context = tf.distribute.InputContext(num_input_pipelines=num_pipelines,
                                         input_pipeline_id=pipeline, num_replicas_in_sync=2)
    dataset = pretraining_dataset(records, SEQ_LEN, 4, seed=3, input_context=context)
    return [tuple(row) for batch in dataset.take(batches)
            for row in batch["input_ids"].numpy().tolist()]


def write_numbered_records(directory, num_files, per_file):
    """Record j of file f carries the id 2000 + 100 f + j: every example is distinct."""
    directory.mkdir(parents=True, exist_ok=True)
    for f in range(num_files):
        with tf.io.TFRecordWriter(str(directory / f"pretrain_data.tfrecord-{f}")) as w:
            for j in range(per_file):
                ids = np.zeros(SEQ_LEN, np.int64)
                ids[:3] = (101, 2000 + 100 * f + j, 102)
                mask = (ids > 0).astype(np.int64)
                feature = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
                           for k, v in (("input_ids", ids), ("input_mask", mask),
                                        ("segment_ids", np.zeros(SEQ_LEN, np.int64)))}
                w.write(tf.train.Example(
                    features=tf.train.Features(feature=feature)).SerializeToString())
    return str(directory / "pretrain_data.tfrecord*")


@pytest.mark.parametrize("num_files", [4, 1])  # by file, and by record when files are few
def test_workers_read_disjoint_examples(tmp_path, num_files):
    records = write_numbered_records(tmp_path / "r", num_files=num_files, per_file=48)
    seen = [set(_first_ids(records, 2, i)) for i in range(2)]
    # (Within one worker a record may recur early: files are repeated before the
    # interleave, as in the original.) Across workers: never the same example.
    assert len(seen[0]) > 10 and len(seen[1]) > 10
    assert not seen[0] & seen[1]


# ---------------------------------------------------------------------------
# Multi-worker with real processes
# ---------------------------------------------------------------------------

def write_identical_records(directory, num_files=2, per_file=64):
    """Every record the same full-length example: any sharding yields the same batches."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = np.arange(1000, 1000 + SEQ_LEN)
    ids[0], ids[-1] = 101, 102
    feature = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for k, v in (
        ("input_ids", ids), ("input_mask", np.ones(SEQ_LEN, np.int64)),
        ("segment_ids", np.zeros(SEQ_LEN, np.int64)))}
    record = tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
    for shard in range(num_files):
        with tf.io.TFRecordWriter(str(directory / f"pretrain_data.tfrecord-{shard}")) as w:
            for _ in range(per_file):
                w.write(record)
    return str(directory / "pretrain_data.tfrecord*")


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def cli_args(model_dir, records, steps, strategy):
    hparams = tiny_hparams(dropout=False, num_train_steps=steps, save_checkpoints_steps=2,
                           num_warmup_steps=0)
    return [sys.executable, str(ROOT / "run_pretraining.py"), f"--data_dir={model_dir}",
            f"--model_dir={model_dir}", f"--pretrain_tfrecords={records}",
            f"--hparams={json.dumps(hparams)}", f"--strategy={strategy}", "--nojit_compile",
            "--deterministic", "--log_every_steps=1"]


def start_workers(model_dir, records, steps, log_dir, tag):
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": index}})}
        log = open(log_dir / f"{tag}_worker{index}.log", "w")
        procs.append(subprocess.Popen(cli_args(model_dir, records, steps, "multi_worker"),
                                      stdout=log, stderr=subprocess.STDOUT, env=env,
                                      cwd=str(log_dir)))
    return procs


def wait_all(procs, timeout):
    deadline = time.time() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(1, deadline - time.time()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [p.returncode for p in procs]


@pytest.mark.slow
def test_two_worker_processes_match_one_process_and_resume_after_a_kill(tmp_path):
    """Two MultiWorkerMirroredStrategy workers (1 CPU replica each) on localhost.

    1. Reference: one process, global batch 8, 8 steps.
    2. Two workers, global batch 8 (4 each); worker 1 is SIGKILLed after the chief's
       step-4 checkpoint, the chief stops with one error line saying to restart,
       then both are restarted: they resume from
       the chief's checkpoint and end with the reference's weights (atol 1e-5:
       float32 all-reduce in another order; identical records, dropout off and
       replica-consistent noise make the runs otherwise equal).
    Only the chief writes: one events file, no scratch directory left behind.
    """
    records = write_identical_records(tmp_path / "records")
    single = subprocess.run(cli_args(tmp_path / "single", records, 8, "default"),
                            capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert single.returncode == 0, single.stderr[-3000:]
    reference = export_values(str(tmp_path / "single" / "tf1"))

    model_dir = tmp_path / "cluster"
    procs = start_workers(model_dir, records, 8, tmp_path, "first")
    deadline = time.time() + 240
    while time.time() < deadline and not (model_dir / "ckpt-4.index").exists():
        assert all(p.poll() is None for p in procs), (tmp_path / "first_worker0.log").read_text()
        time.sleep(0.2)
    assert (model_dir / "ckpt-4.index").exists(), (tmp_path / "first_worker0.log").read_text()
    procs[1].send_signal(signal.SIGKILL)
    codes = wait_all(procs, 120)  # the chief notices the dead peer and stops by itself
    chief_log = (tmp_path / "first_worker0.log").read_text()
    assert codes[0] == 1, chief_log[-3000:]
    errors = [line for line in chief_log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "restart every worker" in errors[0], chief_log[-3000:]
    assert "Traceback" not in chief_log
    assert not (model_dir / "tf1").exists()  # the first cluster did not finish

    procs = start_workers(model_dir, records, 8, tmp_path, "second")
    codes = wait_all(procs, 300)
    logs = [(tmp_path / f"second_worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "resuming from ckpt-" in logs[0]
    resumed_at = int(logs[0].split("resuming from ckpt-")[1].split()[0])
    assert 4 <= resumed_at < 8
    assert "the chief writes checkpoints" in logs[1]
    assert_same_weights(reference, export_values(str(model_dir / "tf1")), atol=1e-5)
    assert len(os.listdir(model_dir / "train")) == 2  # one events file per cluster start
    assert not (model_dir / ".workers").exists() or not os.listdir(model_dir / ".workers")


# ---------------------------------------------------------------------------
# GPU readiness and strategy errors (checkable without the hardware)
# ---------------------------------------------------------------------------

def test_every_gpu_gets_memory_growth_before_the_strategy_is_built(monkeypatch):
    from electra_tf.training import strategy as strategy_lib
    fake_gpus = ["GPU:0", "GPU:1"]
    grown = []
    real_list = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: fake_gpus if kind == "GPU" else real_list(kind))
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth",
                        lambda device, enable: grown.append((device, enable)))
    strategy_lib.create_strategy("default")
    assert grown == [("GPU:0", True), ("GPU:1", True)]


def test_tpu_and_multi_worker_without_the_hardware_are_one_clear_error(monkeypatch):
    from electra_tf.training.strategy import StrategyError, create_strategy
    with pytest.raises(StrategyError, match="no TPU could be reached"):
        create_strategy("tpu", tpu="")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(StrategyError, match="needs the TF_CONFIG"):
        create_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(StrategyError, match="TF_CONFIG is not valid JSON"):
        create_strategy("multi_worker")


def test_cli_reports_a_missing_tpu_in_one_line(tmp_path, capsys):
    """run_pretraining.py's command line (in-process) with --strategy=tpu and no TPU."""
    from electra_tf import run_pretraining
    records = write_learnable_records(tmp_path / "records")  # valid data: the TPU is what fails
    capsys.readouterr()
    status = run_pretraining.main(cli_args(tmp_path / "m", records, 2, "tpu")[2:])
    err = capsys.readouterr().err
    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--strategy=tpu" in errors[0], err[-2000:]
    assert "Traceback" not in err


def test_two_worker_fine_tuning_writes_once_from_the_chief(tmp_path):
    """run_finetuning.py --strategy=multi_worker with two real worker processes."""
    from electra_tf.formats.tf1 import save_original_checkpoint
    from electra_tf.config import FinetuningConfig
    from electra_tf.networks.discriminator import Discriminator
    from test_finetuning_driver import TINY_MODEL, write_sst_task
    data = tmp_path / "data"
    write_sst_task(data, 64, 32)
    hparams = {"max_seq_length": 16, "train_batch_size": 16, "eval_batch_size": 16,
               "num_train_epochs": 1, **TINY_MODEL}
    disc = Discriminator(FinetuningConfig.from_preset("small", ["sst"], hparams)
                         .discriminator_config())
    disc.build()
    model = data / "models" / "electra_small"
    save_original_checkpoint(str(model / "discriminator" / "model.ckpt-1"), disc, global_step=1)
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        log = open(tmp_path / f"ft_worker{index}.log", "w")
        procs.append(subprocess.Popen(
            [sys.executable, str(ROOT / "run_finetuning.py"), f"--data_dir={data}",
             "--task_names=sst", f"--hparams={json.dumps(hparams)}", "--strategy=multi_worker",
             "--nojit_compile"], stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=str(tmp_path)))
    codes = wait_all(procs, 300)
    logs = [(tmp_path / f"ft_worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "trial 1: sst: accuracy:" in logs[0] and "trial 1: sst" not in logs[1]
    results = json.load(open(model / "results" / "sst_results.json"))
    assert len(results) == 1 and "accuracy" in results[0]["sst"]
    checkpoint = model / "finetuning_models" / "sst_model_1"
    assert int(tf.train.load_checkpoint(str(checkpoint)).get_tensor("global_step")) == 4
