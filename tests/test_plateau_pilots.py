"""benchmarks/plateau_pilots.py: its state file, shared by processes that run side by side."""

import json
import os
import sys

from conftest import ROOT

sys.path.insert(0, os.path.join(str(ROOT), "benchmarks"))
import plateau_pilots as pp  # noqa: E402


def test_processes_side_by_side_keep_each_others_entries(tmp_path):
    """Was: the long run read the file when it started and wrote all of it back when it
    stopped, erasing the fine-tuning results written in between (seen on the real study)."""
    long_run = pp.State(str(tmp_path))  # both read the file before either writes
    finetune = pp.State(str(tmp_path))
    pilot = pp.State(str(tmp_path))
    finetune.add_finetune("random:sst", {"values": [72.4, 70.3, 68.9]})
    long_run.add("L64_bert_gen0.5", wall=600.0, cpu=540.0, cpus="0")
    pilot.add("L64_wiki8k", wall=100.0, cpu=90.0, cpus="1")
    finetune.add_finetune("random:mrpc", {"values": [68.4, 68.4, 68.4]})
    long_run.add("L64_bert_gen0.5", wall=60.0, cpu=50.0, cpus="0")

    on_disk = json.loads((tmp_path / pp.STATE_FILE).read_text())
    assert sorted(on_disk["finetune"]) == ["random:mrpc", "random:sst"]
    assert on_disk["finetune"]["random:sst"]["values"] == [72.4, 70.3, 68.9]
    assert on_disk["L64_bert_gen0.5"]["train_cpu_s"] == 590.0
    assert [s["cpu_s"] for s in on_disk["L64_bert_gen0.5"]["sittings"]] == [540.0, 50.0]
    assert on_disk["L64_wiki8k"]["train_cpu_s"] == 90.0
    assert pp.State(str(tmp_path)).cpu("L64_bert_gen0.5") == 590.0


def test_a_sitting_killed_outright_keeps_its_time_on_the_books(tmp_path, monkeypatch):
    """Was: a pilot's time was written only when its process ended, so a sitting killed
    with the machine's session (no SIGTERM reaches the study) lost all its core-minutes
    (seen on the real study: 45 minutes missing from the long run's budget)."""
    cpu_readings = iter([30.0, 60.0, 90.0, 120.0])

    class Running:
        pid, returncode = 4242, None

        def poll(self):
            return None

    sleeps = []

    def sleep(seconds):
        if len(sleeps) == 4:
            raise SystemExit("the session ends: nothing in the study gets to clean up")
        sleeps.append(seconds)

    monkeypatch.setattr(pp, "pilot_args", lambda work_dir, name: [])
    monkeypatch.setattr(pp.subprocess, "Popen", lambda *a, **k: Running())
    monkeypatch.setattr(pp, "process_cpu_seconds", lambda pid: next(cpu_readings))
    monkeypatch.setattr(pp.time, "sleep", sleep)
    monkeypatch.setattr(pp, "CREDIT_EVERY_S", 0)
    pp.State(str(tmp_path)).add("L64_bert_gen0.5", wall=100.0, cpu=80.0, cpus="0")

    try:
        pp.stage_train(str(tmp_path), ["L64_bert_gen0.5"], cpu_minutes=60, cpus=["0"])
    except SystemExit:
        pass

    entry = pp.State(str(tmp_path)).data["L64_bert_gen0.5"]
    assert entry["train_cpu_s"] == 80.0 + 120.0  # the last reading before the kill
    assert [s["cpu_s"] for s in entry["sittings"]] == [80.0, 120.0]  # one record per sitting
    assert entry["sittings"][1]["started"] <= entry["sittings"][1]["ended"]


def _finetune_results(tmp_path) -> dict:
    state = pp.State(str(tmp_path))
    for arm, task, values, wall in (("random", "sst", [70.0, 60.0, 80.0], 600.0),
                                    ("random", "mrpc", [66.0, 70.0, 62.0], 300.0),
                                    ("L64_bert_gen0.5@2500", "sst", [59.0, 61.0, 60.0], 60.0)):
        state.add_finetune(f"{arm}:{task}", {"arm": arm, "task": task, "metric": "accuracy",
                                             "values": values, "wall_s": wall})
    return pp.State(str(tmp_path)).data["finetune"]


def test_finetune_table_averages_seed_by_seed(tmp_path):
    """The issue's goal compares ELECTRA's worst seed with random init's best on the task
    average, so the average is taken per seed (seed i of every task), not of the medians."""
    table = pp.finetune_table(_finetune_results(tmp_path))
    per_seed = table.index("| arm | task | seed 1 | seed 2 | seed 3 |")
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:]
            for line in table[:per_seed] if line.startswith("| ")}
    assert table[per_seed + 2:per_seed + 5] == [
        "| random | sst | 70.00 | 60.00 | 80.00 |", "| random | mrpc | 66.00 | 70.00 | 62.00 |",
        "| L64_bert_gen0.5@2500 | sst | 59.00 | 61.00 | 60.00 |"]
    # per seed: (70+66)/2=68, (60+70)/2=65, (80+62)/2=71 -> median 68, worst 65, best 71
    assert rows["random"] == ["70.0 (60.0-80.0)", "66.0 (62.0-70.0)", "68.0 (65.0-71.0)",
                              "15 |"]
    assert rows["L64_bert_gen0.5@2500"] == ["60.0 (59.0-61.0)", "-", "", "1 |"]
    assert list(rows)[:3] == ["arm", "random", "L64_bert_gen0.5@2500"]


def test_markdown_is_regenerated_from_the_committed_results_alone(tmp_path, monkeypatch):
    """The issue asks for a command that regenerates the fine-tuning table from committed
    logs: ``--stages=markdown`` reads only plateau_pilots.json, no study directory."""
    monkeypatch.setattr(pp.signal, "signal", lambda *args: None)  # keep pytest's handlers
    report = {"pilots": {"L64_bert": {
        "flops_per_step": 99e9, "steps": 500, "train_cpu_s": 600, "train_wall_s": 900,
        "flops": 4.95e13, "exit": None, "command": "python run_pretraining.py ...",
        "curve": [{"step": 500, "flops": 4.95e13, "mlm_acc": 0.1, "mlm_loss": 7.0,
                   "sampled_acc": 0.05, "disc_auc": 0.58, "disc_loss": 0.35,
                   "disc_recall": 0.01}]}},
        "finetune": _finetune_results(tmp_path)}
    results = tmp_path / "results"
    results.mkdir()
    (results / "plateau_pilots.json").write_text(json.dumps(report))
    work_dir = tmp_path / "no_study_here"
    assert pp.main([f"--work_dir={work_dir}", f"--results_dir={results}",
                    "--stages=markdown"]) == 0
    md = (results / "plateau_pilots.md").read_text()
    assert "| random | 70.0 (60.0-80.0) | 66.0 (62.0-70.0) | 68.0 (65.0-71.0) | 15 |" in md
    assert "| L64_bert | 99 | 500 | 10 | 15 | 4.95e+13 | 0.1 | 0.58 |" in md
    assert not work_dir.exists()
    (results / "plateau_pilots.json").unlink()
    assert pp.main([f"--results_dir={results}", "--stages=markdown"]) == 2


def test_a_report_for_one_pilot_keeps_the_others(tmp_path, monkeypatch):
    """Was: ``--pilots=L64_bert_gen0.5 --stages=eval,report`` rewrote plateau_pilots.json
    with that pilot alone, dropping every other pilot's committed results."""
    monkeypatch.setattr(pp.signal, "signal", lambda *args: None)
    monkeypatch.setattr(pp, "flops_per_step", lambda work_dir, name: 1e11)
    monkeypatch.setattr(pp, "pilot_args", lambda work_dir, name: [f"--model_dir={name}"])
    pp.State(str(tmp_path)).add("L64_wiki8k", wall=60.0, cpu=50.0, cpus="1")
    pp.State(str(tmp_path)).add("L64_bert_gen0.5", wall=600.0, cpu=540.0, cpus="0")
    results = tmp_path / "results"
    assert pp.main([f"--work_dir={tmp_path}", f"--results_dir={results}",
                    "--pilots=L64_bert_gen0.5", "--stages=report"]) == 0
    report = json.loads((results / "plateau_pilots.json").read_text())
    assert sorted(report["pilots"]) == ["L64_bert_gen0.5", "L64_wiki8k"]
