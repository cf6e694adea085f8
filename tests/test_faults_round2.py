"""Faults of issue 23, round two: outputs written over a run, resumes under other inputs,
and tracebacks where one line is promised (pre-training, export, convert).

Every case goes through a command line's in-process ``main(argv)`` and asserts what an
operator must see: exit status 1 and one ``error:`` line naming the file or flag, the value
found and what to do, and the run directory exactly as it was.
"""

import errno
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import convert, export
from electra_tf.formats import tf1
from electra_tf import run_pretraining
from electra_tf.training import run_directory
import conftest
from pretraining_fixtures import stand_in_steps, tiny_hparams, write_learnable_records


def one_error_line(status, capsys, *fragments):
    """The one ``error:`` line of a failed command (conftest.one_error_line on stderr)."""
    return conftest.one_error_line(status, capsys.readouterr().err, *fragments)


def pretrain(data_dir, *args):
    """``run_pretraining.py`` in-process on the tiny model (2 steps unless told)."""
    hparams = json.dumps(tiny_hparams(save_checkpoints_steps=1, keep_checkpoint_max=5))
    return run_pretraining.main([f"--data_dir={data_dir}", f"--hparams={hparams}",
                                 "--nojit_compile", "--log_every_steps=1", "--deterministic",
                                 *args])


def snapshot(directory):
    """{relative path: sha256} of every file under ``directory``: "nothing was rewritten"."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return found


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 2-step run ($DATA/models/electra_small with ckpt-1, ckpt-2, tf1/,
    discriminator/), made once; tests work on copies (:func:`run_copy`)."""
    data = tmp_path_factory.mktemp("run")
    write_learnable_records(data / "pretrain_tfrecords", per_file=40)
    with pytest.MonkeyPatch.context() as patch:
        stand_in_steps(patch)  # what the steps compute is not at issue in this file
        assert pretrain(data, "--num_train_steps=2") == 0
    return data


@pytest.fixture
def run_copy(finished_run, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(finished_run, data)
    capsys.readouterr()
    return data, data / "models" / "electra_small"


# ---------------------------------------------------------------------------
# Outputs never replace what the command did not write
# ---------------------------------------------------------------------------

def test_export_over_the_run_it_reads_is_refused_with_or_without_overwrite(run_copy, capsys):
    """Was: exit 0, and the run directory (every checkpoint, tf1/, config, vocab) replaced
    by the SavedModel."""
    _, run = run_copy
    before = snapshot(run)
    for extra in ([], ["--overwrite"]):
        status = export.main(["--checkpoint", str(run / "discriminator"), "--output", str(run),
                              *extra])
        line = one_error_line(status, capsys, str(run), "--checkpoint", "choose another --output")
        assert "pass --overwrite" not in line  # the refusal must not lead to the data loss
    assert snapshot(run) == before


def test_export_and_convert_never_replace_a_checkpoint_they_did_not_write(run_copy, capsys,
                                                                           tmp_path):
    _, run = run_copy
    before = snapshot(run)
    # The run's own TF1 export (with Adam slots), as export's and convert's output.
    status = export.main(["--checkpoint", str(run), "--output", str(run / "tf1"),
                          "--overwrite"])
    one_error_line(status, capsys, str(run / "tf1"), "checkpoint", "choose another --output")
    status = convert.main(["--input", str(run), "--output", str(run / "tf1"), "--to", "tf1",
                           "--overwrite"])
    one_error_line(status, capsys, str(run / "tf1"), "checkpoint", "choose another --output")
    # A directory of someone else's files.
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine\n")
    status = convert.main(["--input", str(run), "--output", str(other), "--to", "hf",
                           "--overwrite"])
    one_error_line(status, capsys, str(other), "todo.txt")
    assert (other / "todo.txt").read_text() == "mine\n"
    assert snapshot(run) == before


def test_overwrite_replaces_what_the_same_command_wrote(run_copy, capsys, tmp_path):
    _, run = run_copy
    out = tmp_path / "hf"
    args = ["--input", str(run / "discriminator"), "--output", str(out), "--to", "hf"]
    assert convert.main(args) == 0
    one_error_line(convert.main(args), capsys, "pass --overwrite")  # its own output
    (out / "stale.txt").write_text("from before\n")
    assert convert.main(args + ["--overwrite"]) == 0
    assert not (out / "stale.txt").exists()  # replaced as a whole, atomically
    assert (out / "model.safetensors").exists()

    saved = tmp_path / "saved"
    args = ["--checkpoint", str(run / "discriminator"), "--output", str(saved),
            "--max_seq_length=16"]
    assert export.main(args) == 0
    one_error_line(export.main(args), capsys, "exists: pass --overwrite")
    # What a second export with --overwrite writes, without building the SavedModel again.
    export._write_atomically(str(saved), True,
                             lambda tmp: open(os.path.join(tmp, "saved_model.pb"), "w").close())
    assert sorted(os.listdir(saved)) == [".electra_tf_output.json", "saved_model.pb"]


# ---------------------------------------------------------------------------
# A resume under other inputs stops before any step and rewrites nothing
# ---------------------------------------------------------------------------

def write_small_vocab_records(directory, seq_len=32, vocab_size=22, per_file=40):
    """The shards rebuilt in place (same files, same counts) with ids of a
    ``vocab_size``-token vocabulary."""
    rng = np.random.default_rng(0)
    for shard in range(2):
        path = directory / f"pretrain_data.tfrecord-{shard}-of-2"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for _ in range(per_file):
                ids = rng.integers(5, vocab_size, seq_len)
                ids[0], ids[-1] = 2, 3
                feature = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
                           for k, v in (("input_ids", ids),
                                        ("input_mask", np.ones(seq_len, np.int64)),
                                        ("segment_ids", np.zeros(seq_len, np.int64)))}
                writer.write(tf.train.Example(
                    features=tf.train.Features(feature=feature)).SerializeToString())


def test_resume_with_another_vocabulary_is_refused_and_rewrites_nothing(run_copy, capsys):
    """Was: resumed silently and overwrote the run's vocab.txt with the 22-token one, while
    pretraining_config.json kept vocab_size 30522."""
    data, run = run_copy
    vocab = data / "small_vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                               + [f"w{i}" for i in range(17)]) + "\n")
    write_small_vocab_records(data / "pretrain_tfrecords")
    before = snapshot(run)
    status = pretrain(data, "--num_train_steps=4", f"--vocab_file={vocab}")
    one_error_line(status, capsys, str(vocab), "22 tokens", "30522 tokens",
                   str(run / "vocab.txt"), "--vocab_file=")
    assert snapshot(run) == before


def test_resume_with_another_max_seq_length_is_one_line_before_any_step(run_copy, capsys):
    """Was: "resuming from ckpt-2", then InvalidArgumentError (a TensorFlow traceback)."""
    data, run = run_copy
    shutil.rmtree(data / "pretrain_tfrecords")
    write_learnable_records(data / "pretrain_tfrecords", per_file=40, seq_len=16)
    before = snapshot(run)
    status = pretrain(data, "--num_train_steps=4", "--max_seq_length=16")
    err = one_error_line(status, capsys, "max_seq_length", "32", "16", "--init_checkpoint")
    assert "resuming" not in err
    assert snapshot(run) == before


def test_run_directory_records_what_it_was_built_with(run_copy):
    _, run = run_copy
    record = json.loads((run / run_directory.RUN_RECORD).read_text())
    assert record["max_seq_length"] == 32
    assert record["vocab"]["tokens"] == 30522 and len(record["vocab"]["sha256"]) == 64
    assert record["model"]["discriminator"]["hidden_size"] == 32
    assert record["objective"]["electra_objective"] is True


# ---------------------------------------------------------------------------
# Tracebacks that become one line
# ---------------------------------------------------------------------------

def test_model_dir_that_is_a_file_or_holds_something_else_is_one_line(run_copy, capsys,
                                                                      tmp_path):
    data, run = run_copy
    a_file = tmp_path / "a_file"
    a_file.write_text("x\n")
    status = pretrain(data, "--num_train_steps=4", f"--model_dir={a_file}")
    one_error_line(status, capsys, str(a_file), "not a directory")
    assert a_file.read_text() == "x\n"
    # The run's discriminator/ export is a checkpoint, not a run directory to train in.
    before = snapshot(run)
    status = pretrain(data, "--num_train_steps=4", f"--model_dir={run / 'discriminator'}")
    one_error_line(status, capsys, str(run / "discriminator"), "model.ckpt-2",
                   "--model_dir")
    assert snapshot(run) == before


def test_read_only_model_directory_is_one_line(run_copy, capsys, monkeypatch):
    """Was: OSError [Errno 30] on <model_dir>/.lock. (Tests run as root, whom chmod does
    not stop: the read-only file system is simulated at the open of the lock file.)"""
    import builtins
    data, run = run_copy

    def read_only_open(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(run_directory, "open", read_only_open, raising=False)
    before = snapshot(run)
    status = pretrain(data, "--num_train_steps=4")
    one_error_line(status, capsys, str(run), "Read-only file system", "writable")
    assert snapshot(run) == before


def test_full_disk_during_the_final_export_is_one_line_and_the_rerun_exports(
        run_copy, capsys, monkeypatch):
    """Was: ResourceExhaustedError with a traceback (checkpoint saves already gave one
    line)."""
    stand_in_steps(monkeypatch)  # the step's arithmetic is not at issue here
    data, run = run_copy
    real_save = tf1.save_original_checkpoint

    def full_disk(prefix, *args, **kwargs):
        if os.sep + "tf1" + os.sep in str(prefix):
            raise tf.errors.ResourceExhaustedError(
                None, None, f"{prefix}.data-00000-of-00001; No space left on device")
        return real_save(prefix, *args, **kwargs)

    monkeypatch.setattr(tf1, "save_original_checkpoint", full_disk)
    status = pretrain(data, "--num_train_steps=3")
    one_error_line(status, capsys, "No space left on device", str(run / "tf1"), "ckpt-3",
                   "re-run")
    assert os.path.exists(run / "ckpt-3.index")
    monkeypatch.setattr(tf1, "save_original_checkpoint", real_save)
    assert pretrain(data, "--num_train_steps=3") == 0
    assert os.path.exists(run / "tf1" / "model.ckpt-3.index")
    assert os.path.exists(run / "discriminator" / "model.ckpt-3.index")
