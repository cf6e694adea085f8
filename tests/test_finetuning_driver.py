"""The fine-tuning driver end to end on a learnable fixture task, from a tiny pre-trained
checkpoint."""

import json

import numpy as np
import pytest

from electra_tf.config import FinetuningConfig, PretrainingConfig
from electra_tf.training.finetune import FinetuneOptions, run_finetuning
from electra_tf.training.pretrain import RunOptions, train
from pretraining_fixtures import tiny_hparams, write_learnable_records

WORDS = ["the", "movie", "was", "plot", "actor", "film", "story", "and", "a", "very"]


def sst_tsv(n, seed):
    """SST-2 format; label 1 iff the sentence says "good" (else "bad"): learnable."""
    rng = np.random.default_rng(seed)
    lines = ["sentence\tlabel"]
    for _ in range(n):
        label = int(rng.integers(0, 2))
        words = list(rng.choice(WORDS, 5)) + ["good" if label else "bad"]
        rng.shuffle(words)
        lines.append(f"{' '.join(words)}\t{label}")
    return "\n".join(lines) + "\n"


def write_sst_task(data_dir, n_train, n_dev):
    """``<data_dir>/finetuning_data/sst/{train,dev}.tsv`` of the learnable task (seeds 0, 1)."""
    task_dir = data_dir / "finetuning_data" / "sst"
    task_dir.mkdir(parents=True, exist_ok=True)
    (task_dir / "train.tsv").write_text(sst_tsv(n_train, 0))
    (task_dir / "dev.tsv").write_text(sst_tsv(n_dev, 1))
    return task_dir


TINY_MODEL = {"embedding_size": 16,
              "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2}}


def tiny_options(tmp_path, pretrained, **kwargs):
    """Options of an in-process run under tmp_path (data in data/, outputs beside it)."""
    return FinetuneOptions(
        data_dir=str(tmp_path / "data"), model_dir=str(tmp_path / "ft" / "model"),
        results_dir=str(tmp_path / "results"), preprocessed_dir=str(tmp_path / "cache"),
        init_checkpoint=pretrained, quiet=True, **kwargs)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    records = write_learnable_records(root / "records")
    config = PretrainingConfig.from_preset("small", tiny_hparams(num_train_steps=3))
    result = train(config, RunOptions(model_dir=str(root / "model"), pretrain_tfrecords=records,
                                      quiet=True))
    return result["exports"]["discriminator"]


def test_sst_fixture_fine_tunes_from_a_pretrained_checkpoint_and_beats_chance(
        tmp_path, pretrained):
    write_sst_task(tmp_path / "data", 320, 64)
    config = FinetuningConfig.from_preset("small", ["sst"], {
        "max_seq_length": 16, "train_batch_size": 16, "eval_batch_size": 16,
        "learning_rate": 1e-3, "num_train_epochs": 3, **TINY_MODEL})
    options = tiny_options(tmp_path, pretrained)
    results = run_finetuning(config, options)
    assert results[0]["sst"]["accuracy"] > 80.0  # chance is ~50
    written = json.load(open(tmp_path / "results" / "sst_results.json"))
    assert written[0]["sst"]["accuracy"] == pytest.approx(results[0]["sst"]["accuracy"])
    assert (tmp_path / "cache" / "sst_train.metadata").exists()
    assert json.load(open(tmp_path / "cache" / "sst_train.metadata"))["n_examples"] % 16 == 0
    assert (tmp_path / "ft" / "model_1" / "checkpoint").exists()


def test_cli_uses_the_original_layout(tmp_path, pretrained):
    import os
    import shutil
    import subprocess
    import sys
    from conftest import ROOT
    data = tmp_path / "data"
    task_dir = write_sst_task(data, 64, 32)
    test_rows = [line.split("\t")[0] for line in sst_tsv(20, 2).splitlines()[1:]]
    (task_dir / "test.tsv").write_text(
        "index\tsentence\n" + "".join(f"{i}\t{text}\n" for i, text in enumerate(test_rows)))
    model = data / "models" / "electra_small"
    shutil.copytree(os.path.dirname(pretrained), model / "discriminator")
    hparams = json.dumps({"max_seq_length": 16, "train_batch_size": 16, "eval_batch_size": 16,
                          "num_train_epochs": 1, "embedding_size": 16,
                          "write_test_outputs": True,
                          "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2}})
    proc = subprocess.run([sys.executable, str(ROOT / "run_finetuning.py"), f"--data_dir={data}",
                           "--task_names=sst", f"--hparams={hparams}", "--num_trials=2"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trial 1: sst: accuracy:" in proc.stderr
    assert (model / "results" / "sst_results.txt").read_text().startswith("sst: accuracy: ")
    assert (model / "finetuning_models" / "sst_model_2" / "checkpoint").exists()
    trials = json.load(open(model / "results" / "sst_results.json"))
    accuracies = [trial["sst"]["accuracy"] for trial in trials]
    summary = json.load(open(model / "results" / "sst_summary.json"))["sst"]["accuracy"]
    assert len(accuracies) == 2 and summary["n"] == 2
    assert summary["median"] == pytest.approx(np.median(accuracies))
    assert summary["std"] == pytest.approx(np.std(accuracies))
    assert "over trials: sst accuracy: median" in proc.stderr
    for trial in (1, 2):  # leaderboard file: header, one row per test example, label strings
        rows = (model / "results" / "test_predictions" / f"trial_{trial}" /
                "SST-2.tsv").read_text().splitlines()
        assert rows[0] == "index\tprediction" and len(rows) == 21
        assert [r.split("\t")[0] for r in rows[1:]] == [str(i) for i in range(20)]
        assert {r.split("\t")[1] for r in rows[1:]} <= {"0", "1"}
    wrong_size = subprocess.run(
        [sys.executable, str(ROOT / "run_finetuning.py"), f"--data_dir={data}", "--task_names=sst",
         "--hparams=" + json.dumps({**json.loads(hparams), "model_hparam_overrides": {
             "hidden_size": 64, "num_hidden_layers": 2}})],
        capture_output=True, text=True, timeout=600)
    assert wrong_size.returncode == 1 and "Traceback" not in wrong_size.stderr
    assert ("shape mismatch for electra/" in wrong_size.stderr
            and "--model_size" in wrong_size.stderr)
    missing = subprocess.run([sys.executable, str(ROOT / "run_finetuning.py"),
                              f"--data_dir={data}", "--task_names=cola", f"--hparams={hparams}"],
                             capture_output=True, text=True, timeout=600)
    assert (missing.returncode == 1 and "cola" in missing.stderr
            and "Traceback" not in missing.stderr)


def test_squad_fixture_trains_evaluates_and_writes_predictions(tmp_path, pretrained):
    import shutil
    from conftest import DATA
    data = tmp_path / "data" / "finetuning_data"
    shutil.copytree(DATA / "qa" / "squad", data / "squad")
    shutil.copy(data / "squad" / "dev.json", data / "squad" / "test.json")
    config = FinetuningConfig.from_preset("small", ["squad"], {"write_test_outputs": True,
        "max_seq_length": 48, "doc_stride": 16, "max_query_length": 16, "beam_size": 5,
        "n_best_size": 5, "train_batch_size": 8, "eval_batch_size": 8, "num_train_epochs": 1,
        **TINY_MODEL})
    options = tiny_options(tmp_path, pretrained)
    results = run_finetuning(config, options)[0]["squad"]
    for key in ("exact", "f1", "HasAns_exact", "NoAns_exact", "best_f1"):
        assert key in results and 0.0 <= results[key] <= 100.0, key
    predictions = json.load(open(tmp_path / "results" / "squad_preds.json"))
    assert predictions and all(isinstance(v, str) for v in predictions.values())
    assert (tmp_path / "results" / "squad_null_odds.json").exists()
    # Test output: every test question answered, "" where the null odds beat the threshold.
    test = json.load(open(tmp_path / "results" / "test_predictions" / "trial_1" /
                          "squad_test_predictions.json"))
    null_odds = json.load(open(tmp_path / "results" / "squad_null_odds.json"))
    assert set(test) == set(predictions)
    for qid, text in test.items():
        assert text == ("" if null_odds[qid] > -2.75 else predictions[qid])


@pytest.mark.parametrize("precision,jit", [("bfloat16", False), (None, True)])
def test_precision_and_xla_variants_train(tmp_path, pretrained, precision, jit):
    write_sst_task(tmp_path / "data", 32, 16)
    config = FinetuningConfig.from_preset("small", ["sst"], {
        "max_seq_length": 16, "train_batch_size": 16, "eval_batch_size": 16,
        "num_train_epochs": 1, **TINY_MODEL})
    options = tiny_options(tmp_path, pretrained, mixed_precision=precision, jit_compile=jit)
    try:
        accuracy = run_finetuning(config, options)[0]["sst"]["accuracy"]
    finally:
        import keras
        keras.mixed_precision.set_global_policy("float32")
    assert 0.0 <= accuracy <= 100.0


def test_chunk_fixture_trains_and_reports_span_f1(tmp_path, pretrained):
    import shutil
    from conftest import DATA
    data = tmp_path / "data" / "finetuning_data"
    shutil.copytree(DATA / "tagging" / "chunk", data / "chunk")
    config = FinetuningConfig.from_preset("small", ["chunk"], {
        "max_seq_length": 32, "train_batch_size": 4, "eval_batch_size": 4,
        "num_train_epochs": 2, **TINY_MODEL})
    options = tiny_options(tmp_path, pretrained)
    results = run_finetuning(config, options)[0]["chunk"]
    assert {"precision", "recall", "f1"} <= set(results)
    assert all(0.0 <= results[k] <= 100.0 for k in ("precision", "recall", "f1"))
    assert list((tmp_path / "cache").glob("chunk_label_mapping.json"))


def test_mirrored_strategy_fine_tunes(tmp_path, pretrained):
    """Two logical CPU replicas run the training loop (the loss is a per-replica sum)."""
    import os
    import subprocess
    import sys
    import textwrap
    from conftest import ROOT
    write_sst_task(tmp_path / "data", 64, 16)
    script = textwrap.dedent(f"""
        import json, sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        sys.path[:0] = [{str(ROOT)!r}]
        from electra_tf.config import FinetuningConfig
        from electra_tf.training.finetune import FinetuneOptions, run_finetuning
        config = FinetuningConfig.from_preset("small", ["sst"], {{
            "max_seq_length": 16, "train_batch_size": 16, "eval_batch_size": 16,
            "num_train_epochs": 1, "embedding_size": 16,
            "model_hparam_overrides": {{"hidden_size": 32, "num_hidden_layers": 2}}}})
        options = FinetuneOptions(data_dir={str(tmp_path / "data")!r},
            model_dir={str(tmp_path / "ft")!r}, results_dir={str(tmp_path / "results")!r},
            preprocessed_dir={str(tmp_path / "cache")!r}, init_checkpoint={pretrained!r},
            strategy="mirrored", quiet=True)
        print("RESULT" + json.dumps(run_finetuning(config, options)))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert 0.0 <= results[0]["sst"]["accuracy"] <= 100.0


def test_multi_task_run_scores_each_task(tmp_path, pretrained):
    import shutil
    from conftest import DATA
    write_sst_task(tmp_path / "data", 64, 16)
    shutil.copytree(DATA / "glue" / "cola",  # holds one malformed row
                    tmp_path / "data" / "finetuning_data" / "cola")
    config = FinetuningConfig.from_preset("small", "sst,cola", {
        "max_seq_length": 16, "train_batch_size": 8, "eval_batch_size": 8,
        "num_train_epochs": 1, **TINY_MODEL})
    assert config.task_names == ["sst", "cola"] and config.num_train_epochs == 1
    options = tiny_options(tmp_path, pretrained)
    results = run_finetuning(config, options)[0]
    assert set(results) == {"sst", "cola"}
    assert "accuracy" in results["sst"] and "mcc" in results["cola"]
    assert (tmp_path / "results" / "sst,cola_results.json").exists()
    assert (tmp_path / "cache" / "cola_sst_train.tfrecord").exists()  # one mixed cache
