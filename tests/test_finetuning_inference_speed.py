"""benchmarks/finetuning_inference_speed.py at tiny shapes (no peers), and its peer's pieces
that do not need torch."""

import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(str(ROOT), "benchmarks"))
import finetuning_inference_speed as bench  # noqa: E402

TINY = json.dumps({"model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2,
                                              "num_attention_heads": 2,
                                              "intermediate_size": 64},
                   "embedding_size": 32})
OUR_PATHS = {"training.finetune.train_trial step", "detect_replaced_tokens", "discriminator_logits",
             "saved_model"}


def _peer_module():
    """The peer script as a module (it must import without torch)."""
    path = os.path.join(str(ROOT), "benchmarks", "peers", "hf_finetune_inference.py")
    spec = importlib.util.spec_from_file_location("hf_finetune_inference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The benchmark's JSON lines of one tiny float32 run (both tasks, no peers)."""
    out = tmp_path_factory.mktemp("speed") / "rows.jsonl"
    warmup, repeats, batch, sentences = 1, 2, 2, 5
    cmd = [sys.executable, os.path.join(str(ROOT), "benchmarks",
                                        "finetuning_inference_speed.py"),
           f"--batch_size={batch}", "--seq_length=16", f"--num_sentences={sentences}",
           f"--repeats={repeats}", f"--warmup={warmup}", "--mixed_precision=float32",
           f"--model_hparams={TINY}", "--no-peers", f"--json={out}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {"rows": rows, "stdout": proc.stdout, "warmup": warmup, "repeats": repeats,
            "batch": batch, "sentences": sentences - sentences % batch}


def test_every_row_has_consistent_positive_timings(tiny_run):
    results = [r for r in tiny_run["rows"] if r["record"] == "result"]
    assert {r["path"] for r in results} == OUR_PATHS
    for r in results:
        assert r["benchmark"] == "finetuning_inference_speed" and "error" not in r
        assert r["impl"] == "electra_tf" and r["precision"] == "float32"
        assert r["batch"] == tiny_run["batch"] and r["seq"] == 16
        times = r["repeat_times"]
        assert len(times) == tiny_run["repeats"]
        for value in times + [r["median_s_per_batch"], r["examples_per_s"], r["first_s"]]:
            assert math.isfinite(value) and value > 0
        assert r["median_s_per_batch"] == pytest.approx(
            statistics.median(times) / r["batches_per_repeat"])
        assert r["examples_per_s"] == pytest.approx(r["batch"] / r["median_s_per_batch"])
        if r["task"] == "inference":  # a repeat is one pass over all sentences
            assert r["num_sentences"] == tiny_run["sentences"]
            assert r["batches_per_repeat"] == tiny_run["sentences"] // tiny_run["batch"]
        else:
            assert r["batches_per_repeat"] == 1
    summary = [r for r in tiny_run["rows"] if r["record"] == "summary"]
    assert len(summary) == 1 and summary[0]["ratios"] == []
    assert {r["path"] for r in summary[0]["results"]} == OUR_PATHS
    assert "examples/s" in tiny_run["stdout"]


def test_the_finetuning_row_times_real_training_steps(tiny_run):
    row = next(r for r in tiny_run["rows"] if r.get("task") == "finetune")
    # One loss per step the driver ran (warm-up + timed), all finite; the weights moved.
    assert len(row["losses"]) == tiny_run["warmup"] + tiny_run["repeats"]
    assert all(math.isfinite(loss) and loss > 0 for loss in row["losses"])
    assert row["weights_changed"] is True and row["max_weight_change"] > 0
    assert row["layers"] == 2 and row["hidden"] == 32  # --model_hparams reached the model
    assert row["layerwise_lr_decay"] > 0


def test_saved_model_tokenizes_like_electra_tf(tiny_run):
    row = next(r for r in tiny_run["rows"] if r.get("path") == "saved_model")
    assert row["ids_match_fraction"] == 1.0 and row["padding"] == "max_length"


def test_ratios_pair_rows_of_the_same_inputs_and_precision():
    def row(impl, task, path, precision, examples_per_s):
        return {"impl": impl, "task": task, "path": path, "precision": precision,
                "examples_per_s": examples_per_s}
    rows = [row("electra_tf", "inference", "saved_model", "float32", 30.0),
            row("electra_tf", "inference", "discriminator_logits", "bfloat16", 40.0),
            row("hf", "inference", "ElectraForPreTraining text_max_length", "float32", 10.0),
            row("hf", "inference", "ElectraForPreTraining ids_by_length", "float32", 99.0),
            row("hf", "inference", "ElectraForPreTraining ids_by_length", "bfloat16", 20.0),
            {**row("hf", "finetune", "x", "float32", 1.0), "error": "exit 1"}]
    got = {(r["ours"], r["peer"]): r["ratio_examples_per_s"] for r in bench.ratios(rows)}
    assert got == {
        ("electra-tf saved_model fp32", "HF ElectraForPreTraining text_max_length fp32"): 3.0,
        ("electra-tf discriminator_logits bf16",
         "HF ElectraForPreTraining ids_by_length bf16"): 2.0}


def test_missing_peer_venv_is_reported_and_skipped(tmp_path):
    args = bench.parse_args(["--peer_python", str(tmp_path / "no-python")])
    assert bench.run_peer(args, "finetune", "float32", "unused.json") == []
    assert args.num_sentences % args.batch_size == 0 and args.batch_size == 32
    assert args.seq_length == 128 and args.precisions == ["float32", "bfloat16"]


def test_peer_script_imports_and_parses_without_torch():
    peer = _peer_module()
    args = peer.parse_args(["--task=inference", "--inputs=x.json", "--bf16",
                            "--modes=ids_by_length,text_max_length"])
    assert args.bf16 and args.modes == ["ids_by_length", "text_max_length"]
    assert (args.hidden, args.layers, args.heads, args.intermediate, args.embedding) == \
        (256, 12, 4, 1024, 128)
    with pytest.raises(SystemExit):
        peer.parse_args(["--task=inference", "--inputs=x.json", "--modes=bogus"])
    # The driver's layer-wise multipliers (n = 12, d = 0.8), by transformers' names.
    assert peer.layer_multiplier("electra.embeddings.word_embeddings.weight", 12, 0.8) == \
        pytest.approx(0.8 ** 14)
    assert peer.layer_multiplier("electra.encoder.layer.11.output.dense.weight", 12, 0.8) == \
        pytest.approx(0.8 ** 2)
    assert peer.layer_multiplier("electra.encoder.layer.0.output.dense.weight", 12, 0.8) == \
        pytest.approx(0.8 ** 13)
    assert peer.layer_multiplier("classifier.out_proj.weight", 12, 0.8) == 1.0
    assert peer.pad_rows([[5, 6], [7]], 3) == ([[5, 6, 0], [7, 0, 0]], [[1, 1, 0], [1, 0, 0]])
