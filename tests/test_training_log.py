"""The pre-training driver's machine-readable log, <model_dir>/train_log.jsonl
(electra_tf/training/train_log.py): what a run writes, a resumed run appending, a torn
line of a killed run, and benchmarks/quality_study.py reading the same curve."""

import json
import os
import sys

import pytest
import tensorflow as tf

from conftest import ROOT
from electra_tf.config import PretrainingConfig
from electra_tf.training import pretrain, train_log
from electra_tf.training.pretrain import RunOptions, train
from pretraining_fixtures import tiny_hparams, write_learnable_records

sys.path.insert(0, os.path.join(str(ROOT), "benchmarks"))
import quality_study as qs  # noqa: E402

TOTAL, FIRST_STOP = 6, 3
TORN = '{"event": "step", "time": 1.0, "step": 99, "stats": {"total_lo'


def _fake_train_step(run, jit_compile):
    """A stand-in step (no model run): advances the optimizer's step and reports
    statistics that depend on it, so the second sitting costs no tracing."""
    def step(iterator):
        run.base_optimizer.iterations.assign_add(1)
        n = tf.cast(run.base_optimizer.iterations, tf.float32)
        return {"total_loss": 10.0 / n, "mlm_loss": 8.0 / n, "disc_loss": 0.5 / n,
                "masked_lm_accuracy": n / 100.0}
    return step


@pytest.fixture(scope="module")
def sittings(tmp_path_factory):
    """One tiny run in two sittings: the real driver to step 3 (``stop_at_step``), a torn
    line as a kill would leave, then a resume to step 6 (with a stand-in step)."""
    root = tmp_path_factory.mktemp("train_log")
    records = write_learnable_records(root / "records", num_files=1, per_file=40)
    hparams = tiny_hparams(num_train_steps=TOTAL)
    hparams["model_hparam_overrides"]["num_hidden_layers"] = 1  # less to trace
    config = PretrainingConfig.from_preset("small", hparams)
    model_dir = str(root / "model")

    def options(**kwargs):
        return RunOptions(model_dir=model_dir, pretrain_tfrecords=records, quiet=True,
                          deterministic=True, jit_compile=False, log_every_steps=1, **kwargs)

    first = train(config, options(stop_at_step=FIRST_STOP))
    after_first = train_log.read_train_log(model_dir)
    offset = train_log.follow_train_log(model_dir)[1]
    with open(train_log.train_log_path(model_dir), "a", encoding="utf-8") as f:
        f.write(TORN)  # no newline: the process died while writing
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pretrain, "make_train_step", _fake_train_step)
        second = train(config, options())
    return {"model_dir": model_dir, "config": config, "first": first, "second": second,
            "after_first": after_first, "offset": offset,
            "records": train_log.read_train_log(model_dir)}


def test_every_logged_step_is_a_record_with_the_driver_losses(sittings):
    first = train_log.sittings(sittings["after_first"])
    assert len(first) == 1
    start, steps, end = first[0]["start"], first[0]["steps"], first[0]["end"]
    assert (start["step"], start["total_steps"], start["stop_step"]) == (0, TOTAL, FIRST_STOP)
    assert start["resumed_from"] is None and start["recipe"] == "electra"
    assert start["config"] == sittings["config"].to_dict()
    assert start["run_record"]["objective"]["electra_objective"] is True
    assert start["runtime"]["precision"] == "float32" and start["runtime"]["jit_compile"] is False
    history = sittings["first"]["history"]
    assert [r["step"] for r in steps] == [s for s, _ in history] == [1, 2, 3]
    assert [r["stats"] for r in steps] == [stats for _, stats in history]  # exactly
    assert {"total_loss", "mlm_loss", "disc_loss", "masked_lm_accuracy", "disc_accuracy",
            "sampled_masked_lm_accuracy"} <= set(steps[0]["stats"])
    for a, b in zip(steps, steps[1:]):
        assert a["time"] <= b["time"] and a["elapsed_s"] <= b["elapsed_s"]
        assert a["cpu_s"] <= b["cpu_s"]
    for r in steps:
        assert r["total_steps"] == TOTAL and r["learning_rate"] > 0
        assert r["steps_per_s"] > 0 and r["step_time_s"] > 0
        assert r["examples_per_s"] == pytest.approx(8 * r["steps_per_s"])
    assert end["reason"] == "stop_at_step" and end["step"] == FIRST_STOP
    assert end["elapsed_s"] >= steps[-1]["elapsed_s"]


def test_a_resumed_run_appends_to_the_same_file(sittings):
    records = sittings["records"]
    assert records[:len(sittings["after_first"])] == sittings["after_first"]
    both = train_log.sittings(records)
    assert len(both) == 2
    start, steps, end = both[1]["start"], both[1]["steps"], both[1]["end"]
    assert start["resumed_from"] == f"ckpt-{FIRST_STOP}" and start["step"] == FIRST_STOP
    assert [r["step"] for r in steps] == [s for s, _ in sittings["second"]["history"]] == [
        4, 5, 6]
    assert [r["stats"] for r in steps] == [stats for _, stats in sittings["second"]["history"]]
    assert end["reason"] == "finished" and end["step"] == TOTAL
    assert [r["step"] for r in train_log.training_curve(records)] == list(range(1, TOTAL + 1))
    spent = train_log.training_time(records)
    assert spent["wall_s"] == pytest.approx(both[0]["end"]["elapsed_s"] + end["elapsed_s"])
    assert spent["cpu_s"] == pytest.approx(both[0]["end"]["cpu_s"] + end["cpu_s"])
    # Following the file from where the first sitting ended gives the second's records.
    new, offset = train_log.follow_train_log(sittings["model_dir"], sittings["offset"])
    assert new == records[len(sittings["after_first"]):]
    assert offset == os.path.getsize(train_log.train_log_path(sittings["model_dir"]))


def test_a_torn_line_is_skipped_and_the_next_sitting_starts_a_new_line(sittings):
    with open(train_log.train_log_path(sittings["model_dir"]), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert TORN in lines  # on its own line: the resumed run's first record is intact
    assert len(lines) == len(sittings["records"]) + 1
    assert all(r["step"] != 99 for r in sittings["records"])


def test_a_torn_last_line_waits_when_followed_and_is_skipped_when_read(tmp_path):
    writer = train_log.TrainLogWriter(str(tmp_path))
    writer.write("start", step=0, total_steps=10)
    writer.step(step=5, total_steps=10, stats={"total_loss": 1.5}, learning_rate=1e-3,
                window_steps=5, window_s=2.0, batch_size=4, elapsed_s=2.0, cpu_s=1.5)
    writer.close()
    path = train_log.train_log_path(str(tmp_path))
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"event": "step", "step": 10, "st')
    records = train_log.read_train_log(str(tmp_path))
    assert [r["event"] for r in records] == ["start", "step"]
    step = records[1]
    assert (step["steps_per_s"], step["examples_per_s"], step["step_time_s"]) == (2.5, 10.0, 0.4)
    followed, offset = train_log.follow_train_log(str(tmp_path))
    assert followed == records and offset < os.path.getsize(path)  # the torn line waits
    assert train_log.training_time(records) == {"wall_s": 2.0, "cpu_s": 1.5}  # killed
    assert train_log.read_train_log(str(tmp_path / "nowhere")) == []


def test_a_log_that_cannot_be_written_warns_once_and_training_goes_on(tmp_path):
    warnings = []
    writer = train_log.TrainLogWriter(str(tmp_path / "missing" / "dir"), warn=warnings.append)
    writer.write("start", step=0)
    writer.end(step=0, total_steps=1, reason="finished", elapsed_s=0.0, cpu_s=0.0)
    assert not writer.enabled and len(warnings) == 1 and "cannot write" in warnings[0]
    silent = train_log.TrainLogWriter(str(tmp_path), enabled=False)
    silent.write("start", step=0)
    assert not os.path.exists(train_log.train_log_path(str(tmp_path)))
    # JSON has no NaN: a non-finite number is written as null.
    writer = train_log.TrainLogWriter(str(tmp_path))
    writer.step(step=1, total_steps=1, stats={"total_loss": 1.0}, learning_rate=0.0,
                window_steps=1, window_s=0.0, batch_size=2, elapsed_s=0.0, cpu_s=0.0)
    writer.close()
    with open(train_log.train_log_path(str(tmp_path)), encoding="utf-8") as f:
        record = json.loads(f.read(), parse_constant=lambda name: pytest.fail(name))
    assert record["steps_per_s"] is None and record["examples_per_s"] is None


def test_quality_study_reads_the_same_curve(sittings):
    log = qs.pretraining_log(sittings["model_dir"])
    history = sittings["first"]["history"] + sittings["second"]["history"]
    assert [r["step"] for r in log["curve"]] == [s for s, _ in history]
    for point, (step, stats) in zip(map(qs.curve_point, log["curve"]), history):
        assert point == {"step": step, "total": stats["total_loss"], "mlm": stats["mlm_loss"],
                         "disc": stats["disc_loss"], "mlm_acc": stats["masked_lm_accuracy"]}
    assert log["sittings"] == 2
    assert log["elapsed_s"] == pytest.approx(train_log.training_time(sittings["records"])[
        "wall_s"])
    line = qs.progress_line(log["curve"][-1])
    assert line.startswith(f"step {TOTAL}/{TOTAL} | ") and "| loss total=" in line
    assert "disc=" in line and "| mlm_acc=" in line
