"""Faults of issue 23, round two, in the data tools: corpus entries the builder cannot read
(a named pipe, a dangling link, a truncated .gz), an output directory that holds a run, and
GLUE files in another task's layout.

The builder reads only regular files and turns every read error of a file into one warning
line naming it (an error with ``--strict``); it never hangs. GLUE readers check the columns
against the task's layout. Each case runs a command line (in-process ``main(argv)``, or a
subprocess with a timeout where the old behaviour was a hang).
"""

import gzip
import json
import os
import subprocess
import sys

import pytest
from absl import flags

from conftest import DATA, ROOT, one_error_line
from electra_tf import build_pretraining_dataset
from electra_tf import run_finetuning
from test_finetuning_driver import sst_tsv, write_sst_task

PLAIN = DATA / "corpus" / "plain.txt"
TINY_FINETUNING = {"max_seq_length": 16, "train_batch_size": 8, "eval_batch_size": 8,
                   "num_train_epochs": 1, "embedding_size": 16,
                   "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2}}


def warnings_about(err, name):
    return [line for line in err.splitlines() if line.startswith("warning:") and name in line]


def build(capsys, corpus, out, *args):
    status = build_pretraining_dataset.main(["--noprogress", f"--corpus_dir={corpus}", f"--output_dir={out}",
                             "--max_seq_length=16", "--num_out_files=2", *args])
    return status, capsys.readouterr().err


def corpus_with_good_text(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text(PLAIN.read_text())
    return corpus


def shards(out):
    return sorted(n for n in os.listdir(out) if n.startswith("pretrain_data.tfrecord-"))


# ---------------------------------------------------------------------------
# Corpus entries that are not readable regular files
# ---------------------------------------------------------------------------

def test_named_pipe_in_the_corpus_is_skipped_not_a_hang(tmp_path):
    """Was: "warning: empty input file", then blocked forever opening the pipe."""
    corpus = corpus_with_good_text(tmp_path)
    os.mkfifo(corpus / "pipe")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "build_pretraining_dataset.py"), "--noprogress",
         f"--corpus_dir={corpus}", f"--output_dir={tmp_path / 'out'}", "--max_seq_length=16",
         "--num_out_files=2"],
        capture_output=True, text=True, timeout=90, cwd=str(ROOT),
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    [warning] = warnings_about(proc.stderr, "pipe")
    assert "named pipe" in warning and "skipped" in warning, warning
    assert shards(tmp_path / "out") == ["pretrain_data.tfrecord-0-of-2",
                                        "pretrain_data.tfrecord-1-of-2"]


def test_dangling_symlink_is_a_warning_or_with_strict_an_error(tmp_path, capsys):
    """Was: FileNotFoundError (a traceback) before anything was read."""
    corpus = corpus_with_good_text(tmp_path)
    os.symlink(tmp_path / "gone.txt", corpus / "link.txt")
    os.symlink(corpus / "good.txt", corpus / "alias.txt")  # a link that resolves is read
    status, err = build(capsys, corpus, tmp_path / "out")
    assert status == 0, err[-3000:]
    [warning] = warnings_about(err, "link.txt")
    assert "dangling symbolic link" in warning and "skipped" in warning, warning
    assert not warnings_about(err, "alias.txt")
    assert "input: 2 unit(s)" in err  # good.txt and alias.txt
    status, err = build(capsys, corpus, tmp_path / "strict", "--strict")
    one_error_line(status, err, str(corpus / "link.txt"), "dangling symbolic link", "--strict")
    assert not (tmp_path / "strict").exists()


def test_truncated_gz_is_one_warning_naming_it_or_with_strict_an_error(tmp_path, capsys):
    """Was: EOFError, aborting the whole build and naming no file."""
    corpus = corpus_with_good_text(tmp_path)
    whole = gzip.compress(PLAIN.read_bytes() * 20)
    (corpus / "cut.txt.gz").write_bytes(whole[:len(whole) // 2])
    (corpus / "corrupt.txt.gz").write_bytes(whole[:10] + b"\xff" * 200)
    status, err = build(capsys, corpus, tmp_path / "out")
    assert status == 0, err[-3000:]
    for name in ("cut.txt.gz", "corrupt.txt.gz"):
        [warning] = warnings_about(err, name)
        assert "cannot read" in warning, warning
    assert len(shards(tmp_path / "out")) == 2
    status, err = build(capsys, corpus, tmp_path / "strict", "--strict")
    one_error_line(status, err, "cannot read", ".txt.gz", "--strict")
    assert not os.listdir(tmp_path / "strict")  # nothing written, no temporary shard left


def test_builder_refuses_an_output_directory_that_holds_a_run(tmp_path, capsys):
    corpus = corpus_with_good_text(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "pretraining_config.json").write_text("{}\n")
    (run / "ckpt-40.index").write_bytes(b"")
    for extra in ([], ["--overwrite"]):
        status, err = build(capsys, corpus, run, *extra)
        one_error_line(status, err, str(run), "ckpt-40", "--output_dir")
    assert sorted(os.listdir(run)) == ["ckpt-40.index", "pretraining_config.json"]


# ---------------------------------------------------------------------------
# GLUE files checked against the task's layout
# ---------------------------------------------------------------------------

def cola_rows(n):
    """CoLA's layout: source, label, original label, sentence; no header."""
    return "".join(f"gj04\t{i % 2}\t\tsentence number {i} is here .\n" for i in range(n))


def test_file_in_another_tasks_layout_is_one_line_naming_file_row_and_layout(tmp_path,
                                                                             capsys):
    """Was: SST-2 trained with exit 0 on a CoLA file: the first row dropped as a header and
    the source-id column read as the text."""
    data = tmp_path / "data"
    task_dir = write_sst_task(data, 16, 8)
    (task_dir / "train.tsv").write_text(cola_rows(16))
    argv = [f"--data_dir={data}", "--task_names=sst", "--init_checkpoint=none",
            "--hparams=" + json.dumps(TINY_FINETUNING)]
    status = run_finetuning.main(argv)
    line = one_error_line(status, capsys.readouterr().err, str(task_dir / "train.tsv"),
                          "line 1", "'sentence' in column 1", "'label' in column 2", "'gj04'",
                          "--nocheck_glue_columns")
    assert not list((data / "models" / "electra_small").glob("finetuning_models/sst_model_*"))


def test_the_original_reading_by_position_is_a_switch(tmp_path):
    from electra_tf.config import FinetuningConfig
    from electra_tf.finetuning.registry import build_tasks
    from electra_tf.tokenization import FullTokenizer, default_vocab_file
    from electra_tf.training.finetune import FinetuneOptions
    flag_values = flags.FlagValues()
    run_finetuning.define_flags(flag_values)
    flag_values(["run_finetuning.py", "--nocheck_glue_columns"])
    assert flag_values.check_glue_columns is False
    options = FinetuneOptions(data_dir="", model_dir="", results_dir="", preprocessed_dir="",
                              check_glue_columns=flag_values.check_glue_columns)
    config = FinetuningConfig.from_preset("small", ["sst"])
    [sst] = build_tasks(config, options, FullTokenizer(default_vocab_file()))
    assert sst.check_columns is False


def test_headerless_task_checks_its_first_row(tmp_path):
    from electra_tf.finetuning import glue
    from electra_tf.finetuning.task import TaskDataError
    from electra_tf.tokenization import FullTokenizer, default_vocab_file
    tokenizer = FullTokenizer(default_vocab_file())
    cola = tmp_path / "cola"
    cola.mkdir()
    (cola / "train.tsv").write_text(sst_tsv(8, 0))  # SST's file given as CoLA's
    task = glue.get_glue_task("cola", str(cola), tokenizer, 16)
    with pytest.raises(TaskDataError,
                       match=r"cola: .*train.tsv line 1 .*expected 4 tab-separated columns"):
        task.get_examples("train")
    task = glue.get_glue_task("cola", str(cola), tokenizer, 16, check_columns=False)
    assert task.get_examples("train") == []  # the original: every row malformed, skipped
    (cola / "train.tsv").write_text(cola_rows(4))
    assert len(glue.get_glue_task("cola", str(cola), tokenizer, 16).get_examples("train")) == 4
