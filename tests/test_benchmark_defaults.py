"""The benchmarks' "defaults" rows (issue 26): when they are timed, and the summary that sets
the default configuration beside our best of the four and the peers' best."""

import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(str(ROOT), "benchmarks"))
import finetuning_inference_speed as fis  # noqa: E402
import pretraining_throughput as pt  # noqa: E402


def step_row(impl, precision, xla, seconds, round_=0, batch=32, default=False):
    row = {"impl": impl, "precision": precision, "xla": xla, "batch": batch,
           "round": round_, "median_step_s": seconds, "tokens_per_s": batch * 128 / seconds}
    if default:
        row["default"] = True
    return row


def test_pretraining_defaults_row_is_timed_when_the_four_are():
    assert pt.parse_args(["--mixed_precision=float32,bfloat16", "--xla=both"]).time_defaults
    assert not pt.parse_args(["--mixed_precision=float32", "--xla=both"]).time_defaults
    assert not pt.parse_args(["--xla=off"]).time_defaults
    assert pt.parse_args(["--xla=off", "--defaults=on"]).time_defaults
    assert not pt.parse_args(["--defaults=off"]).time_defaults
    with pytest.raises(SystemExit):
        pt.parse_args(["--rounds=0"])


def test_pretraining_summary_sets_the_default_beside_the_best_and_the_peers_best():
    rows = []
    for round_, scale in ((0, 1.0), (1, 2.0), (2, 1.1)):  # a slower machine in round 1
        rows += [step_row("electra_tf", "float32", False, 2.6 * scale, round_),
                 step_row("electra_tf", "float32", True, 2.8 * scale, round_),
                 step_row("electra_tf", "bfloat16", False, 1.8 * scale, round_),
                 step_row("electra_tf", "bfloat16", True, 3.0 * scale, round_),
                 step_row("electra_tf", "bfloat16", False, 1.9 * scale, round_, default=True),
                 step_row("hf", "float32", None, 3.0 * scale, round_),
                 step_row("hf", "bfloat16", None, 2.0 * scale, round_)]
    rows.append({**step_row("hf", "bfloat16", None, 0.1, 2), "error": "exit 1"})
    summary = pt.defaults_summary(rows)
    assert len(summary["per_round"]) == 3
    for entry in summary["per_round"]:
        assert entry["best"] == "electra-tf no XLA bf16"
        assert entry["default"] == "electra-tf DEFAULT no XLA bf16"
        assert entry["peer_best"] == "HF transformers PyTorch bf16"  # the failed row ignored
        assert entry["default_is_best_config"]
        assert entry["default_vs_best"] == pytest.approx(1.8 / 1.9)
        assert entry["default_vs_peer_best"] == pytest.approx(2.0 / 1.9)
        assert entry["best_vs_peer_best"] == pytest.approx(2.0 / 1.8)
    median, = summary["medians"]
    assert median["rounds"] == 3 and median["default_s"] == pytest.approx(1.9 * 1.1)
    assert median["default_vs_best"] == pytest.approx(1.8 / 1.9)
    # The default rows stay out of the per-precision ours/peer ratios.
    assert all("DEFAULT" not in r["ours"] for r in pt.ratios(rows))


def test_pretraining_summary_flags_a_default_that_is_not_the_best_config():
    rows = [step_row("electra_tf", "float32", False, 2.6),
            step_row("electra_tf", "bfloat16", False, 1.8),
            step_row("electra_tf", "float32", False, 2.5, default=True)]
    entry, = pt.defaults_summary(rows)["per_round"]
    assert not entry["default_is_best_config"] and entry["default_vs_best"] == pytest.approx(
        1.8 / 2.5)
    assert "peer_best" not in entry
    assert pt.defaults_summary(rows[:2]) == {"per_round": [], "medians": []}  # no default row


def test_rotated_order_differs_by_round():
    items = ["a", "b", "c"]
    assert [pt.rotated(items, r) for r in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert fis.rotated(items, 1) == ["b", "c", "a"] and pt.rotated([], 3) == []


def finetune_row(impl, precision, xla, examples_per_s, round_=0, default=False,
                 path="training.finetune.train_trial step"):
    row = {"impl": impl, "task": "finetune", "path": path, "precision": precision,
           "xla": xla, "round": round_, "examples_per_s": examples_per_s}
    if default:
        row["default"] = True
    return row


def test_finetuning_defaults_row_is_timed_when_both_precisions_and_xla_modes_are():
    assert fis.parse_args(["--xla=both"]).time_defaults
    assert not fis.parse_args([]).time_defaults  # --xla=off by default
    assert not fis.parse_args(["--xla=both", "--mixed_precision=float32"]).time_defaults
    assert not fis.parse_args(["--xla=both", "--what=inference"]).time_defaults
    assert fis.parse_args(["--defaults=on"]).time_defaults


def test_finetuning_summary_sets_the_default_beside_the_best_and_the_peers_best():
    peer = "ElectraForSequenceClassification + torch AdamW"
    rows = []
    for round_ in (0, 1):
        rows += [finetune_row("electra_tf", "float32", False, 20.0, round_),
                 finetune_row("electra_tf", "float32", True, 18.0, round_),
                 finetune_row("electra_tf", "bfloat16", False, 15.0, round_),
                 finetune_row("electra_tf", "bfloat16", True, 19.0, round_),
                 finetune_row("electra_tf", "float32", False, 19.5 + round_, round_,
                              default=True),
                 finetune_row("hf", "float32", False, 16.0, round_, path=peer),
                 finetune_row("hf", "bfloat16", False, 17.0, round_, path=peer),
                 finetune_row("hf", "float32", False, 99.0, round_,
                              path="ElectraForPreTraining ids_by_length")]  # inference
    summary = fis.defaults_summary(rows)
    first, second = summary["per_round"]
    assert first["best"] == "electra-tf training.finetune.train_trial step fp32"
    assert first["default"] == "electra-tf DEFAULT training.finetune.train_trial step fp32"
    assert first["peer_best"].endswith("bf16") and first["default_is_best_config"]
    assert first["default_vs_best"] == pytest.approx(19.5 / 20.0)
    # faster than the explicit twin in round 2: the default is that round's best itself
    assert second["default_vs_best"] == 1.0 and "DEFAULT" in second["best"]
    assert first["default_vs_peer_best"] == pytest.approx(19.5 / 17.0)
    assert summary["medians"]["default_vs_best"] == pytest.approx((19.5 / 20.0 + 1.0) / 2)
    assert summary["medians"]["best_vs_peer_best"] == pytest.approx((20.0 + 20.5) / 2 / 17.0)
    # ratios pair rows of the same round only
    got = fis.ratios(rows)
    assert len([r for r in got if r["task"] == "finetune"]) == 2 * 5


# ---------------------------------------------------------------------------
# --interleave: live processes stepping in turn
# ---------------------------------------------------------------------------

FAKE_PEER = '''
import argparse, time
ap = argparse.ArgumentParser()
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--scale", type=float, default=1.0)
args = ap.parse_args()
calls = []
def train_step():
    calls.append(1)
    return float(len(calls)) * args.scale
t0 = time.perf_counter()
first = train_step()
raise SystemExit("the stepper must not run the timing loop")
'''


def test_stepper_runs_a_peer_scripts_step_on_request(tmp_path):
    import subprocess
    script = tmp_path / "peer.py"
    script.write_text(FAKE_PEER)
    proc = subprocess.run([sys.executable, pt.STEPPER, str(script), "--warmup=3", "--scale=2"],
                          input="step\nstep\nnoise\nquit\nstep\n", capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("READY ") and '"warmup": 3' in lines[0]
    losses = [float(line.split()[2]) for line in lines[1:]]
    assert [line.split()[0] for line in lines[1:]] == ["TIME", "TIME"]
    assert losses == [8.0, 10.0]  # after 3 warm-up calls: the 4th and 5th, x2; quit stops


def test_stepper_refuses_a_script_without_the_step_marker(tmp_path):
    import subprocess
    script = tmp_path / "peer.py"
    script.write_text("print('no marker')\n")
    proc = subprocess.run([sys.executable, pt.STEPPER, str(script)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "cannot run its step" in proc.stderr


@pytest.mark.parametrize("name", ["peers_hf.py", "peers_mg.py"])
def test_the_shared_peer_scripts_have_a_step_the_stepper_finds(name):
    stepper_path = pt.STEPPER
    path = os.path.join(pt.DEFAULT_BENCH_DIR, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} not here")
    import importlib.util
    spec = importlib.util.spec_from_file_location("stepper", stepper_path)
    stepper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stepper)
    with open(path, encoding="utf-8") as f:
        setup, step = stepper.split_script(f.read())
    assert "train_step(" in step and "def train_step" in setup


def test_interleaved_rows_split_into_one_round_per_step():
    rows = [{**step_row("electra_tf", "float32", False, 2.0, round_=1), "interleaved": True,
             "step_times": [2.0, 3.0]},
            {**step_row("electra_tf", "bfloat16", False, 1.0, round_=1), "interleaved": True,
             "step_times": [1.5, 1.0]},
            {**step_row("electra_tf", "bfloat16", False, 1.2, round_=1, default=True),
             "interleaved": True, "step_times": [1.5, 1.2]}]
    split = pt.rounds_of(rows)
    assert [(r["round"], r["median_step_s"]) for r in split[:2]] == [(1000, 2.0), (1001, 3.0)]
    summary = pt.defaults_summary(split)
    assert [e["default_vs_best"] for e in summary["per_round"]] == [1.0, pytest.approx(1 / 1.2)]


def test_interleaved_finetuning_rows_split_into_rounds_and_the_default_counts_as_its_config():
    rows = [{**finetune_row("electra_tf", "float32", False, 20.0, default=True),
             "stands_for": "float32, XLA off", "interleaved": True, "repeat_times": [1.6, 1.5]},
            {**finetune_row("electra_tf", "bfloat16", False, 16.0), "interleaved": True,
             "repeat_times": [2.0, 1.4]},
            {**finetune_row("hf", "float32", False, 18.0,
                            path="ElectraForSequenceClassification + torch AdamW"),
             "interleaved": True, "repeat_times": [1.6, 1.6]}]
    split = fis.rounds_of(rows, batch=32)
    assert [r["examples_per_s"] for r in split[:2]] == [32 / 1.6, 32 / 1.5]
    first, second = fis.defaults_summary(split)["per_round"]
    assert first["default_vs_best"] == 1.0 and first["default_is_best_config"]
    assert first["default_vs_peer_best"] == pytest.approx(1.0)
    assert second["best"].endswith("bf16") and second["default_vs_best"] == pytest.approx(
        1.4 / 1.5)


def test_timed_steppers_keeps_the_timed_ones_and_turns_the_others_into_error_rows():
    class FakeStepper:
        def __init__(self, name, error="", times=()):
            self.row = {"name": name, "step_times": list(times)}
            self.error = error

    rows = [{"name": "earlier"}]
    timed = pt.timed_steppers([FakeStepper("ok", times=[1.0, 2.0]),
                               FakeStepper("crashed", error="exit 1", times=[1.0]),
                               FakeStepper("silent")], rows)
    assert [(row["name"], times) for row, times in timed] == [("ok", [1.0, 2.0])]
    assert [(r["name"], r.get("error")) for r in rows] == [
        ("earlier", None), ("crashed", "exit 1"), ("silent", "no step timed")]
