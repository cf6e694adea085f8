"""Faults of the data tools, through their command lines: nothing lost, nothing hangs.

build_pretraining_dataset.py: input without examples, leftovers of a killed build
(worker processes, hidden temporary shards), binary files and very long lines.
run_finetuning.py: a feature cache that follows its inputs, empty splits found before
training. The converter writes model.safetensors with the mode of the other files.

Every bad value gives one ``error: ...`` line, exit status 1 and no traceback. A builder
that is killed runs as a subprocess bounded by a timeout; the other runs call the same
command lines in-process (``build_pretraining_dataset.main(argv)``, ``run_finetuning.main(argv)``,
``convert.main(argv)``), which spares a TensorFlow start-up per run.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import DATA, ROOT, run_in_process
from test_finetuning_driver import sst_tsv, write_sst_task

BUILDER = ROOT / "build_pretraining_dataset.py"
PLAIN = DATA / "corpus" / "plain.txt"
EMBEDDED_CORPUS = ROOT / "electra_tf" / "assets" / "corpus"
# The tiny model of tests/test_finetuning_driver.py.
TINY_HPARAMS = {"max_seq_length": 16, "train_batch_size": 8, "eval_batch_size": 8,
                "num_train_epochs": 1, "embedding_size": 16,
                "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2}}


def env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def build(capsys, *args):
    """``build_pretraining_dataset.py`` in-process, with what it wrote to stderr."""
    from electra_tf import build_pretraining_dataset
    return run_in_process(capsys, build_pretraining_dataset.main, ["--noprogress", *args])


def finetune(capsys, data_dir, hparams, *args):
    """``run_finetuning.py`` in-process, with what it wrote to stderr."""
    from electra_tf import run_finetuning
    return run_in_process(capsys, run_finetuning.main, [
        f"--data_dir={data_dir}", "--task_names=sst", "--init_checkpoint=none",
        "--hparams=" + json.dumps(hparams), *args])


def one_error_line(proc, *fragments):
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def warnings_about(stderr, name):
    return [line for line in stderr.splitlines() if line.startswith("warning:") and name in line]


def hidden_files(directory):
    return sorted(n for n in os.listdir(directory) if n.startswith(".")) if os.path.isdir(
        directory) else []


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=30)
    return int(proc.stdout)


# ---------------------------------------------------------------------------
# build_pretraining_dataset.py
# ---------------------------------------------------------------------------


def test_input_without_text_is_an_error_and_writes_nothing(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("   \n\t\n  \n")
    (corpus / "b.txt").write_text("\n\n\n")
    (corpus / "c.txt").write_text("")
    out = tmp_path / "out"
    out.mkdir()
    (out / "pretrain_data.tfrecord-0-of-1").write_bytes(b"old")  # replaced only on success
    proc = build(capsys, f"--corpus_dir={corpus}", f"--output_dir={out}", "--overwrite",
                 "--num_out_files=2")
    one_error_line(proc, f"error: {corpus} produced no examples (3 files, all empty or "
                         "whitespace): nothing written")
    assert sorted(os.listdir(out)) == ["pretrain_data.tfrecord-0-of-1"]  # no temp, no empty
    assert (out / "pretrain_data.tfrecord-0-of-1").read_bytes() == b"old"


def test_binary_files_and_long_lines_are_one_warning_each(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("the quick brown fox jumps over the lazy dog.\n" * 50)
    (corpus / "blob.dat").write_bytes(b"\x00" + np.random.default_rng(0).bytes(20000))
    # A 5 MB line without a newline (line 2) between two ordinary lines.
    (corpus / "long.txt").write_text("a first line.\n" + "word " * 1_000_000 + "\nthe end.\n")
    out = tmp_path / "out"
    proc = build(capsys, f"--corpus_dir={corpus}", f"--output_dir={out}", "--num_out_files=2",
                 "--max_seq_length=16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    [binary] = warnings_about(proc.stderr, "blob.dat")
    assert "binary" in binary and binary.endswith("skipped"), binary
    [long_line] = warnings_about(proc.stderr, "long.txt")
    assert "long.txt line 2: a line of 5.0 MB" in long_line and "truncated" in long_line
    assert not warnings_about(proc.stderr, "good.txt")
    assert sorted(os.listdir(out)) == ["pretrain_data.json", "pretrain_data.tfrecord-0-of-2",
                                       "pretrain_data.tfrecord-1-of-2"]
    # Unusable input only: one error, nothing written.
    os.remove(corpus / "good.txt")
    os.remove(corpus / "long.txt")
    (corpus / "utf16.txt").write_bytes("some text\n".encode("utf-16"))
    proc = build(capsys, f"--corpus_dir={corpus}", f"--output_dir={tmp_path / 'out2'}")
    one_error_line(proc, "produced no examples (2 files, all skipped as binary)")
    assert len(warnings_about(proc.stderr, "utf16.txt")) == 1
    assert not (tmp_path / "out2").exists()


def test_stale_temporary_shards_are_removed_and_overwrite_removes_all(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".pretrain_data.tfrecord-0-of-2.tmp-{dead_pid()}-1"
    # A live "build": a process that runs and is not this builder (which is in-process here,
    # so not os.getpid(): a build's own temporary shards are its to remove).
    live = os.getppid()
    running = out / f".pretrain_data.tfrecord-1-of-2.tmp-{live}-1"
    other = out / ".keep-me.tmp-1"  # not the builder's temp-name pattern
    for path in (stale, running, other):
        path.write_bytes(b"partial")
    proc = build(capsys, f"--corpus_dir={PLAIN}", f"--output_dir={out}", "--num_out_files=2",
                 "--max_seq_length=16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"removed 1 stale temporary shard of an earlier build that did not finish from {out}" \
        in proc.stderr
    [kept] = warnings_about(proc.stderr, "still running")
    assert f"(pid {live})" in kept and "--overwrite" in kept
    assert hidden_files(out) == [other.name, running.name]
    proc = build(capsys, f"--corpus_dir={PLAIN}", f"--output_dir={out}", "--num_out_files=2",
                 "--max_seq_length=16", "--overwrite")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "removed 1 stale temporary shard" in proc.stderr
    assert hidden_files(out) == [other.name]
    assert sorted(os.listdir(out)) == [other.name, "pretrain_data.json",
                                       "pretrain_data.tfrecord-0-of-2",
                                       "pretrain_data.tfrecord-1-of-2"]


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()  # [state, ppid, ...]


def _children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat_fields(entry)[1]) == pid:
                    kids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def _running(pid):
    try:
        return _stat_fields(pid)[0] not in ("Z", "X")
    except OSError:
        return False


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds the workers in /proc")
def test_killed_builder_leaves_no_workers_and_no_temporary_shards(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for copy in range(8):  # ~25 MB of text: far more than 10 s of work after the kill
        for source in sorted(EMBEDDED_CORPUS.glob("*.gz")):
            shutil.copy(source, corpus / f"c{copy}_{source.name}")
    out = tmp_path / "out"
    with open(tmp_path / "build.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(BUILDER), "--noprogress", f"--corpus_dir={corpus}",
             f"--output_dir={out}", "--num_out_files=4", "--num_processes=2",
             "--nofast_tokenizer"],
            stdout=log, stderr=subprocess.STDOUT, env=env(), cwd=str(ROOT))
    children = []
    try:
        deadline = time.monotonic() + 120
        while True:  # both workers are writing their temporary shards
            workers = [p for p in _children(proc.pid) if "spawn_main" in _cmdline(p)]
            if len(workers) == 2 and len(hidden_files(out)) == 4:
                break
            assert proc.poll() is None, (tmp_path / "build.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.05)
        children = _children(proc.pid)  # the workers and multiprocessing's resource tracker
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed = time.monotonic()
        while any(_running(p) for p in children) and time.monotonic() - killed < 10:
            time.sleep(0.1)
        assert not [p for p in children if _running(p)], (
            "still running 10 s after the builder was killed: "
            + "; ".join(_cmdline(p)[:100] for p in children if _running(p)))
        assert hidden_files(out) == []  # each worker removed its temporary shards
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in children:  # only the workers of the builder this test started
            if _running(pid) and "multiprocessing" in _cmdline(pid):
                os.kill(pid, signal.SIGKILL)
    # A killed single-process build leaves its temporary shards; the next build removes them.
    (out / f".pretrain_data.tfrecord-0-of-4.tmp-{proc.pid}-1").write_bytes(b"partial")
    again = build(capsys, f"--corpus_dir={PLAIN}", f"--output_dir={out}", "--num_out_files=4",
                  "--max_seq_length=16")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "removed 1 stale temporary shard" in again.stderr
    assert hidden_files(out) == []
    assert len(os.listdir(out)) == 5  # 4 shards + pretrain_data.json


# ---------------------------------------------------------------------------
# run_finetuning.py
# ---------------------------------------------------------------------------


def cache_metadata(data_dir, split):
    path = (data_dir / "models" / "electra_small" / "finetuning_tfrecords" / "sst_tfrecords"
            / f"sst_{split}.metadata")
    return json.loads(path.read_text())


def test_feature_cache_is_rebuilt_when_its_inputs_change(tmp_path, capsys):
    data = tmp_path / "data"
    task_dir = write_sst_task(data, 40, 16)
    proc = finetune(capsys, data, TINY_HPARAMS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "features of sst_train: sst 40 examples -> 40 features" in proc.stderr
    assert "step 5/5" in proc.stderr
    assert cache_metadata(data, "train")["examples"] == {"sst": 40}

    (task_dir / "train.tsv").write_text(sst_tsv(16, 0))  # 40 rows -> 16
    proc = finetune(capsys, data, TINY_HPARAMS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [stale] = [line for line in proc.stderr.splitlines() if " are stale " in line]
    assert stale.startswith("features of sst_train are stale (sst train.tsv changed (")
    assert stale.endswith("): rebuilding")
    assert "features of sst_train: sst 16 examples -> 16 features" in proc.stderr
    assert "features of sst_dev: reusing" in proc.stderr  # the dev file did not change
    assert "step 2/2" in proc.stderr  # 16 examples at batch 8, one epoch
    assert cache_metadata(data, "train")["examples"] == {"sst": 16}
    assert cache_metadata(data, "train")["n_examples"] == 16

    longer = {**TINY_HPARAMS, "max_seq_length": 24}
    proc = finetune(capsys, data, longer)
    assert proc.returncode == 0, proc.stderr[-3000:]  # was: int64_list slice was not parsed
    assert "Traceback" not in proc.stderr
    for split in ("train", "dev"):
        assert (f"features of sst_{split} are stale (max_seq_length 16 -> 24): rebuilding"
                in proc.stderr)
    assert cache_metadata(data, "dev")["fingerprint"]["max_seq_length"] == 24


def test_empty_splits_fail_before_training(tmp_path, capsys):
    data = tmp_path / "data"
    task_dir = write_sst_task(data, 16, 8)
    (task_dir / "dev.tsv").write_text("sentence\tlabel\n")  # a header, no rows
    proc = finetune(capsys, data, TINY_HPARAMS)
    one_error_line(proc, f"sst: the 'dev' split {task_dir / 'dev.tsv'} has no examples",
                   "--nodo_eval")
    assert "step" not in proc.stderr  # nothing trained
    # (finetuning_models/ holds the run's lock file, nothing else)
    assert not list((data / "models" / "electra_small").glob("finetuning_models/sst_model_*"))

    (task_dir / "dev.tsv").write_text(sst_tsv(8, 1))
    (task_dir / "train.tsv").write_text("sentence\tlabel\nno label column\n")
    proc = finetune(capsys, data, TINY_HPARAMS)
    one_error_line(proc, f"sst: the 'train' split {task_dir / 'train.tsv'} has no examples "
                         "(all 1 rows malformed and skipped)", "--nodo_train")
    assert not list((data / "models" / "electra_small").glob("finetuning_models/sst_model_*"))


# ---------------------------------------------------------------------------
# Written file modes
# ---------------------------------------------------------------------------


def test_converter_writes_model_safetensors_like_the_other_files(tmp_path):
    from electra_tf import convert
    out = tmp_path / "hf"
    old = os.umask(0o022)
    try:
        status = convert.main(["--input", str(DATA / "hf_interop" / "pair"), "--output",
                               str(out), "--to", "hf"])
    finally:
        os.umask(old)
    assert status == 0
    modes = {}
    for root, dirs, files in os.walk(out):
        for name in dirs + files:
            path = os.path.join(root, name)
            modes[os.path.relpath(path, out)] = os.stat(path).st_mode & 0o777
    assert "discriminator/model.safetensors" in modes
    assert {name: mode for name, mode in modes.items()
            if mode != (0o755 if os.path.isdir(out / name) else 0o644)} == {}
    assert os.stat(out).st_mode & 0o777 == 0o755


def test_atomic_writes_respect_the_umask(tmp_path):
    from electra_tf.io_utils import staged_directory, write_text_atomic
    old = os.umask(0o027)
    try:
        write_text_atomic(str(tmp_path / "a.json"), "{}\n")
        with staged_directory(str(tmp_path / "d")) as staged:
            with open(os.path.join(staged, "f"), "w") as f:
                f.write("x")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "a.json").st_mode & 0o777 == 0o640
    assert os.stat(tmp_path / "d").st_mode & 0o777 == 0o750
