"""benchmarks/quality_study.py: its reading of the runs' train_log.jsonl, the commands of the
cpu study, input errors, and the smoke scale end to end, run twice (the second run must be
a no-op)."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import quality_study as qs  # noqa: E402

SCRIPT = str(ROOT / "benchmarks" / "quality_study.py")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
ARMS = ("electra", "mlm", "random")

def _write_sitting(model_dir, start_step, total, points, killed=False):
    """One sitting of the driver's train_log.jsonl: ``points`` are (step, elapsed_s,
    {stat: value}); a killed sitting writes no end record and leaves a torn line."""
    from electra_tf.training.train_log import TrainLogWriter, train_log_path
    writer = TrainLogWriter(str(model_dir))
    writer.write("start", step=start_step, total_steps=total)
    for step, elapsed, stats in points:
        writer.step(step=step, total_steps=total, stats=stats, learning_rate=1e-4,
                    window_steps=50, window_s=100.0, batch_size=32, elapsed_s=elapsed,
                    cpu_s=elapsed / 2)
    if not killed:
        writer.end(step=points[-1][0], total_steps=total, reason="finished",
                   elapsed_s=points[-1][1] + 5, cpu_s=points[-1][1] / 2)
    writer.close()
    if killed:
        with open(train_log_path(str(model_dir)), "a", encoding="utf-8") as f:
            f.write('{"event": "step", "time": 1.0, "step": 160, "st')


def electra_stats(total, mlm, disc, acc):
    return {"total_loss": total, "mlm_loss": mlm, "masked_lm_accuracy": acc,
            "disc_loss": disc, "sampled_masked_lm_accuracy": 0.01, "disc_accuracy": 0.9}


def test_training_log_of_two_sittings(tmp_path):
    """The first sitting is killed after step 150 (last checkpoint at 100, a torn line);
    the second resumes from ckpt-100 and logs 150 again."""
    _write_sitting(tmp_path, 0, 200, [(50, 117.0, electra_stats(25.3294, 8.4996, 0.3366, 0.043)),
                                      (100, 212.0, electra_stats(26.8013, 6.9677, 0.3967, 0.075)),
                                      (150, 310.0, electra_stats(24.0, 6.5, 0.35, 0.08))],
                   killed=True)
    _write_sitting(tmp_path, 100, 200, [(150, 82.0, electra_stats(23.5, 6.4, 0.34, 0.085)),
                                        (200, 165.0, electra_stats(22.0, 6.0, 0.33, 0.09))])
    log = qs.pretraining_log(str(tmp_path))
    assert log["sittings"] == 2
    assert [p["step"] for p in log["curve"]] == [50, 100, 150, 200]
    points = {p["step"]: qs.curve_point(p) for p in log["curve"]}
    assert points[150] == {"step": 150, "total": 23.5, "mlm": 6.4, "disc": 0.34,
                           "mlm_acc": 0.085}  # the resumed run
    assert points[50] == {"step": 50, "total": 25.3294, "mlm": 8.4996, "disc": 0.3366,
                          "mlm_acc": 0.043}
    # The killed sitting's last step record, the finished one's end record.
    assert log["elapsed_s"] == pytest.approx(310 + 165 + 5)
    assert log["cpu_s"] == pytest.approx(155 + 82.5)
    assert qs.progress_line(log["curve"][-1]) == (
        "step 200/200 | 0.50 steps/s | elapsed 2m45s | loss total=22.0000 mlm=6.0000 "
        "disc=0.3300 | mlm_acc=0.090")


def test_training_log_of_an_mlm_run_and_of_none(tmp_path):
    mlm = {"total_loss": 8.1821, "mlm_loss": 8.1821, "masked_lm_accuracy": 0.072}
    _write_sitting(tmp_path, 0, 3062, [(50, 90.0, mlm)])
    log = qs.pretraining_log(str(tmp_path))
    assert [qs.curve_point(p) for p in log["curve"]] == [
        {"step": 50, "total": 8.1821, "mlm": 8.1821, "mlm_acc": 0.072}]
    assert "disc=" not in qs.progress_line(log["curve"][0])
    assert qs.pretraining_log(str(tmp_path / "nowhere")) == {
        "curve": [], "sittings": 0, "elapsed_s": None, "cpu_s": None}


def test_cpu_study_commands_are_the_running_ones():
    """Re-running the cpu study must resume the runs started with exactly these commands."""
    args = qs.parse_args([])
    settings = qs.build_settings(args)
    hp = ('{"model_hparam_overrides": {"num_hidden_layers": 4, "hidden_size": 256, '
          '"intermediate_size": 1024, "num_attention_heads": 4}, "keep_checkpoint_max": 0}')
    expected = {
        "electra": ["--data_dir=data/quality_study", "--model_name=electra", f"--hparams={hp}",
                    "--num_train_steps=4000", "--num_warmup_steps=400", "--learning_rate=5e-4",
                    "--train_batch_size=32", "--save_checkpoints_steps=500",
                    "--log_every_steps=50"],
        "mlm": ["--data_dir=data/quality_study", "--model_name=mlm", "--noelectra_objective",
                f"--hparams={hp}", "--num_train_steps=6124", "--num_warmup_steps=612",
                "--learning_rate=5e-4", "--train_batch_size=32", "--save_checkpoints_steps=766",
                "--log_every_steps=50"],
    }
    plans = {arm: qs.plan_arm(settings, arm, args.work_dir) for arm in ("electra", "mlm")}
    for arm, argv in expected.items():
        assert plans[arm]["args"] == argv
        assert plans[arm]["done_marker"].endswith(
            f"data/quality_study/models/{arm}/tf1/model.ckpt-{plans[arm]['steps']}.index")
    e, m = plans["electra"], plans["mlm"]
    assert e["flops_per_step"] / m["flops_per_step"] == pytest.approx(1.531, abs=1e-3)
    assert abs(e["flops"] - m["flops"]) <= min(e["flops_per_step"], m["flops_per_step"])
    electric = qs.plan_arm(settings, "electric", args.work_dir)
    assert electric["args"][2:4] == ["--electric_objective", "--noelectra_objective"]
    assert abs(electric["flops"] - e["flops"]) <= electric["flops_per_step"]


def test_a_run_started_with_other_settings_is_refused(tmp_path):
    """<model_dir>/pretraining_config.json (written by run_pretraining.py) must be the
    config of the study's command, or the arm is neither resumed nor counted."""
    from electra_tf.config import PretrainingConfig
    settings = qs.build_settings(qs.parse_args(["--scale=smoke"]))
    plan = qs.plan_arm(settings, "mlm", str(tmp_path))
    assert qs.run_settings_mismatch(plan) is None  # no run yet
    os.makedirs(plan["model_dir"])
    path = os.path.join(plan["model_dir"], "pretraining_config.json")
    PretrainingConfig.from_preset("small", plan["hparams"]).to_json(path)
    assert qs.run_settings_mismatch(plan) is None
    PretrainingConfig.from_preset("small", {**plan["hparams"], "learning_rate": 5e-4}).to_json(
        path)
    message = qs.run_settings_mismatch(plan)
    assert "learning_rate 0.0005 there, 0.001 here" in message


def test_gpu_settings_and_cpu_overrides():
    gpu = qs.build_settings(qs.parse_args(["--scale=gpu"]))
    assert gpu["pretrain_hparams"] == {"keep_checkpoint_max": 0}  # the small preset as is
    assert gpu["extra_flags"] == ["--jit_compile", "--mixed_precision=bfloat16"]
    assert (gpu["train_batch_size"], gpu["learning_rate"]["electra"], gpu["electra_steps"]) == (
        128, "5e-4", 100000)
    assert set(gpu["learning_rate"].values()) == {"5e-4"}
    plan = qs.plan_arm(gpu, "electra", "/tmp/x")
    assert "--num_warmup_steps=10000" in plan["args"]
    cpu_run = qs.build_settings(qs.parse_args(
        ["--scale=gpu", "--max_steps_override=2", "--train_batch_size_override=4",
         "--nojit_compile", "--mixed_precision=none"]))
    assert cpu_run["extra_flags"] == ["--nojit_compile"]
    assert cpu_run["jit_compile"] is False and cpu_run["mixed_precision"] is None
    assert qs.plan_arm(cpu_run, "electra", "/tmp/x")["args"][3:5] == [
        "--num_train_steps=2", "--num_warmup_steps=0"]


def _main(capsys, argv):
    rc = qs.main(argv)
    return rc, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_missing_inputs_are_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    rc, lines = _main(capsys, ["--scale=smoke", f"--work_dir={tmp_path / 'w'}",
                               f"--glue_dir={missing}", "--stages=finetune"])
    assert rc == 1 and len(lines) == 1
    assert lines[0].startswith("error: GLUE data not found: ") and str(missing) in lines[0]
    rc, lines = _main(capsys, ["--scale=smoke", f"--work_dir={tmp_path / 'w'}",
                               f"--corpus_dir={missing}", "--stages=data"])
    assert rc == 1 and len(lines) == 1
    assert lines[0] == f"error: corpus not found: {missing} (pass --corpus_dir)"


def test_work_dir_keeps_its_settings(tmp_path, capsys):
    work = tmp_path / "w"
    assert _main(capsys, ["--scale=smoke", f"--work_dir={work}", "--stages=report"])[0] == 0
    rc, lines = _main(capsys, ["--scale=smoke", f"--work_dir={work}", "--stages=report",
                               "--max_steps_override=20"])
    assert rc == 1 and len(lines) == 1
    assert "other settings" in lines[0] and "electra_steps" in lines[0]


def test_finds_a_run_already_training_an_arm(tmp_path):
    """A run_pretraining.py of this work_dir and arm (not an evaluation) is waited for."""
    work = tmp_path / "w"
    work.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                                "run_pretraining.py", f"--data_dir={work.name}",
                                "--model_name=mlm"], cwd=tmp_path)
    try:
        deadline = time.time() + 10
        while qs.find_running_pretraining(str(work), "mlm") is None and time.time() < deadline:
            time.sleep(0.1)
        assert qs.find_running_pretraining(str(work), "mlm") == sleeper.pid
        assert qs.find_running_pretraining(str(work), "electra") is None
        assert qs.find_running_pretraining(str(tmp_path), "mlm") is None
    finally:
        sleeper.kill()
        sleeper.wait()


# ---------------------------------------------------------------------------
# The smoke scale end to end
# ---------------------------------------------------------------------------

def _run(args):
    started = time.time()
    proc = subprocess.run([sys.executable, SCRIPT, *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=1800)
    return proc, time.time() - started


def _read(path):
    with open(path) as f:
        return json.load(f)


NEEDS_GLUE = pytest.mark.skipif(
    not os.path.isdir(os.path.join(os.path.dirname(str(ROOT)), "shared", "data", "glue")),
    reason="../shared/data/glue is absent (the study fine-tunes on its GLUE TSVs): not a pass")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality_study")
    args = ["--scale=smoke", f"--work_dir={root / 'work'}", f"--results_dir={root / 'results'}"]
    first, first_s = _run(args)
    runs = {"root": root, "first": first, "first_s": first_s,
            "state": _read(root / "work" / qs.STATE_FILE)}
    if first.returncode == 0:
        runs["report"] = _read(root / "results" / "quality_study.json")
        second, second_s = _run(args)
        runs.update(second=second, second_s=second_s,
                    state2=_read(root / "work" / qs.STATE_FILE),
                    report2=_read(root / "results" / "quality_study.json"))
    yield runs
    shutil.rmtree(root, ignore_errors=True)


def _expected_stages():
    return ({"data"} | {f"data:glue:{t}" for t in qs.TASKS}
            | {f"{stage}:{arm}" for stage in ("pretrain", "eval") for arm in ("electra", "mlm")}
            | {f"finetune:{arm}:{task}" for arm in ARMS for task in qs.TASKS})


@pytest.mark.slow
@NEEDS_GLUE
def test_smoke_runs_every_stage(smoke):
    first = smoke["first"]
    assert first.returncode == 0, first.stderr[-3000:]
    sitting = smoke["state"]["last_sitting"]
    assert sitting["failed"] == []
    assert set(sitting["ran"]) == _expected_stages()
    assert all(rec["done"] for rec in smoke["state"]["stages"].values())
    results = smoke["root"] / "results"
    assert (results / "quality_study.md").exists()
    try:
        import matplotlib  # noqa: F401
        assert (results / "quality_study.png").stat().st_size > 0
    except ImportError:
        assert 'pip install -e ".[bench]"' in first.stderr


@pytest.mark.slow
@NEEDS_GLUE
def test_smoke_report(smoke):
    assert smoke["first"].returncode == 0, smoke["first"].stderr[-3000:]
    report = smoke["report"]
    assert set(report["arms"]) == set(ARMS)
    seeds = report["settings"]["finetune"]["num_trials"]
    assert seeds == 2
    for arm in ARMS:
        entry = report["arms"][arm]
        assert set(entry["finetuning"]) == set(qs.TASKS)
        for task, result in entry["finetuning"].items():
            assert result["metric"] == {"sst": "accuracy", "mrpc": "accuracy",
                                        "cola": "mcc"}[task]
            assert len(result["values"]) == seeds
            assert all(isinstance(v, float) for v in result["values"])
            assert result["min"] <= result["median"] <= result["max"]
            assert [trial[result["metric"]] for trial in result["all_metrics"]] == \
                result["values"]
        average = entry["glue_average"]
        assert len(average["values"]) == seeds
        assert average["values"][0] == pytest.approx(
            sum(entry["finetuning"][t]["values"][0] for t in qs.TASKS) / len(qs.TASKS))
    assert report["arms"]["random"]["pretraining"] is None
    electra = report["arms"]["electra"]["pretraining"]
    mlm = report["arms"]["mlm"]["pretraining"]
    # Equal pre-training FLOPs, within one step.
    assert abs(electra["flops"] - mlm["flops"]) <= min(electra["flops_per_step"],
                                                       mlm["flops_per_step"])
    assert mlm["steps"] > electra["steps"]
    for p in (electra, mlm):
        assert p["finished"] and p["wall_s"] > 0
        assert p["train_curve"][-1]["step"] == p["steps"]
        assert p["eval_curve"][-1]["global_step"] == p["steps"]
        assert p["final_eval"]["masked_lm_accuracy"] >= 0
    assert "disc_auc" in electra["final_eval"] and "disc" in electra["train_curve"][-1]
    assert "disc_auc" not in mlm["final_eval"]
    md = (smoke["root"] / "results" / "quality_study.md").read_text()
    for arm in ARMS:
        assert f"| {arm} |" in md


@pytest.mark.slow
@NEEDS_GLUE
def test_smoke_rerun_is_a_no_op(smoke):
    assert smoke["first"].returncode == 0, smoke["first"].stderr[-3000:]
    second = smoke["second"]
    assert second.returncode == 0, second.stderr[-3000:]
    sitting = smoke["state2"]["last_sitting"]
    assert sitting["ran"] == [] and sitting["failed"] == []
    assert set(sitting["skipped"]) == _expected_stages()
    assert "running" not in second.stderr and "fine-tuning" not in second.stderr
    assert smoke["second_s"] < 30  # no TensorFlow, no subprocess: the report only
    assert smoke["report2"] == smoke["report"]  # the same numbers
    assert smoke["state2"]["stages"] == smoke["state"]["stages"]


@pytest.mark.slow
@NEEDS_GLUE
def test_gpu_preset_runs_on_a_cpu(tmp_path):
    """The gpu scale end to end, shrunk: ELECTRA-Small for 2 steps at batch 4, no XLA, float32."""
    corpus = ROOT / "electra_tf" / "assets" / "corpus" / "wiki_00.gz"
    proc, _ = _run(["--scale=gpu", f"--work_dir={tmp_path / 'work'}",
                    f"--results_dir={tmp_path / 'results'}", f"--corpus_dir={corpus}",
                    "--arms=electra", "--tasks=mrpc", "--max_steps_override=2",
                    "--train_batch_size_override=4", "--num_eval_steps_override=1",
                    "--max_train_override=8", "--max_dev_override=16",
                    "--num_trials_override=1", "--nojit_compile", "--mixed_precision=none"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _read(tmp_path / "results" / "quality_study.json")
    p = report["arms"]["electra"]["pretraining"]
    assert p["steps"] == 2 and p["final_eval"] is not None
    assert "--train_batch_size=4" in p["command"] and "--nojit_compile" in p["command"]
    assert "mixed_precision" not in p["command"]
    assert "model_hparam_overrides" not in p["command"]  # ELECTRA-Small as is
    assert len(report["arms"]["electra"]["finetuning"]["mrpc"]["values"]) == 1
