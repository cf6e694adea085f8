"""pretrain_data.json: written by the build beside its shards, checked by pre-training."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from electra_tf import tokenization  # noqa: E402
from electra_tf.data import build as build_lib  # noqa: E402
from electra_tf.data import corpus, shard_metadata  # noqa: E402
from electra_tf.data.errors import PretrainingDataError  # noqa: E402
from electra_tf.training.input_pipeline import match_files, validate_records  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAIN = os.path.join(ROOT, "tests", "data", "corpus", "plain.txt")
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           TF_CPP_MIN_LOG_LEVEL="2")


def build(out, max_seq_length=16, num_out_files=2, vocab_file=None, **kwargs):
    return build_lib.build_pretraining_dataset(
        corpus.find_corpus_files(PLAIN), str(out),
        build_lib.TokenizerSpec(vocab_file=vocab_file, fast=False),
        max_seq_length=max_seq_length, num_out_files=num_out_files, show_progress=False,
        **kwargs)


def sidecar(out):
    with open(os.path.join(out, "pretrain_data.json")) as f:
        return json.load(f)


def token_hash(path):
    """Independent of electra_tf.tokenization: the tokens, one per line, in id order."""
    with open(path, encoding="utf-8") as f:
        tokens = [line.strip() for line in f.read().splitlines()]
    return hashlib.sha256("\n".join(tokens).encode("utf-8")).hexdigest()[:12], len(tokens)


def count_records(paths):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return sum(1 for path in paths for _ in tf.data.TFRecordDataset(path))


def other_vocab(tmp_path):
    """The bundled vocab with two tokens swapped: same size, other ids."""
    with open(tokenization.default_vocab_file(), encoding="utf-8") as f:
        tokens = f.read().splitlines()
    tokens[2000], tokens[2001] = tokens[2001], tokens[2000]
    path = tmp_path / "swapped_vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


def test_build_describes_its_shards(tmp_path):
    out = tmp_path / "out"
    stats = build(out, max_seq_length=16, num_out_files=3, seed=4)
    meta = sidecar(out)
    shards = sorted(p for p in os.listdir(out) if p.startswith("pretrain_data.tfrecord-"))
    assert stats.metadata_file == str(out / "pretrain_data.json")
    assert meta["max_seq_length"] == 16
    assert meta["num_files"] == len(shards) == 3
    assert meta["num_examples"] == count_records([str(out / s) for s in shards]) > 0
    expected_hash, expected_size = token_hash(tokenization.default_vocab_file())
    assert meta["vocab"] == {"kind": "wordpiece", "file": "vocab.txt",
                             "size": expected_size, "sha256": expected_hash}
    assert expected_size == 30522
    assert (meta["do_lower_case"], meta["strip_accents"]) == (True, True)
    assert meta["corpus"] == PLAIN and meta["seed"] == 4
    assert meta["builder_version"] == shard_metadata.BUILDER_VERSION
    assert not [p for p in os.listdir(out) if p.startswith(".")]  # no temporary left

    cased = tmp_path / "cased"
    build_lib.build_pretraining_dataset(
        corpus.find_corpus_files(PLAIN), str(cased),
        build_lib.TokenizerSpec(do_lower_case=False, fast=False), max_seq_length=16,
        num_out_files=1, show_progress=False)
    assert (sidecar(cased)["do_lower_case"], sidecar(cased)["strip_accents"]) == (False, False)


def test_a_tokenizer_that_does_not_describe_itself_leaves_vocab_null(tmp_path):
    def plain_tokenizer():
        return tokenization.FullTokenizer(tokenization.default_vocab_file())

    out = tmp_path / "out"
    build_lib.build_pretraining_dataset(corpus.find_corpus_files(PLAIN), str(out),
                                        plain_tokenizer, max_seq_length=16, num_out_files=1,
                                        show_progress=False)
    meta = sidecar(out)
    assert meta["vocab"] is None and meta["do_lower_case"] is None
    validate_records(str(out / "pretrain_data.tfrecord-*"), 16,
                     vocab_file=other_vocab(tmp_path))  # nothing to compare the vocab with


def test_max_seq_length_mismatch_is_one_error_naming_file_values_and_flag(tmp_path):
    out = tmp_path / "out"
    build(out, max_seq_length=16)
    with pytest.raises(PretrainingDataError) as e:
        validate_records(str(out / "pretrain_data.tfrecord*"), 32)
    message = str(e.value)
    assert message.startswith(str(out / "pretrain_data.json") + ":")
    assert "max_seq_length 16" in message and "max_seq_length 32" in message
    assert "--max_seq_length=16" in message and "--max_seq_length=32" in message
    assert "\n" not in message
    assert validate_records(str(out / "pretrain_data.tfrecord*"), 16) == []


def test_vocab_mismatch_is_one_error_and_the_same_tokens_in_another_file_pass(tmp_path):
    out = tmp_path / "out"
    build(out)
    pattern = str(out / "pretrain_data.tfrecord*")
    swapped = other_vocab(tmp_path)
    with pytest.raises(PretrainingDataError) as e:
        validate_records(pattern, 16, vocab_file=swapped)
    message = str(e.value)
    bundled_hash, _ = token_hash(tokenization.default_vocab_file())
    swapped_hash, _ = token_hash(swapped)
    assert message.startswith(str(out / "pretrain_data.json") + ":")
    assert f"'vocab.txt' (30522 tokens, sha256 {bundled_hash})" in message
    assert f"'swapped_vocab.txt' (30522 tokens, sha256 {swapped_hash})" in message
    assert "--vocab_file" in message and swapped in message and "\n" not in message
    # The bundled vocab copied elsewhere with Windows line endings: the same tokens.
    with open(tokenization.default_vocab_file(), encoding="utf-8") as f:
        crlf = tmp_path / "run" / "vocab.txt"
        crlf.parent.mkdir()
        crlf.write_bytes(f.read().replace("\n", "\r\n").encode("utf-8"))
    assert validate_records(pattern, 16, vocab_file=str(crlf)) == []
    assert validate_records(pattern, 16) == []  # no run vocab given: not compared


def test_shards_without_the_file_still_work(tmp_path):
    out = tmp_path / "out"
    build(out)
    os.remove(out / "pretrain_data.json")  # as an older build left them
    assert validate_records(str(out / "pretrain_data.tfrecord*"), 16,
                            vocab_file=other_vocab(tmp_path)) == []


def test_a_broken_file_is_one_error_naming_it(tmp_path):
    out = tmp_path / "out"
    build(out)
    (out / "pretrain_data.json").write_text("{not json")
    with pytest.raises(PretrainingDataError, match="pretrain_data.json: not a description"):
        validate_records(str(out / "pretrain_data.tfrecord*"), 16)


def test_a_star_pattern_does_not_read_the_file_as_records(tmp_path):
    out = tmp_path / "out"
    build(out, num_out_files=2)
    assert [os.path.basename(p) for p in match_files(str(out / "*"))] == [
        "pretrain_data.tfrecord-0-of-2", "pretrain_data.tfrecord-1-of-2"]
    assert validate_records(str(out / "*"), 16) == []
    records = list(build_lib.shards_lib.read_pretraining_dataset(str(out / "*"), 16))
    assert len(records) == sidecar(out)["num_examples"]


def test_rebuild_rewrites_the_file(tmp_path):
    out = tmp_path / "out"
    build(out, max_seq_length=16, num_out_files=2)
    build(out, max_seq_length=32, num_out_files=3, overwrite=True)
    meta = sidecar(out)
    shards = sorted(p for p in os.listdir(out) if p.startswith("pretrain_data.tfrecord-"))
    assert (meta["max_seq_length"], meta["num_files"], len(shards)) == (32, 3, 3)
    assert meta["num_examples"] == count_records([str(out / s) for s in shards])
    assert validate_records(str(out / "pretrain_data.tfrecord*"), 32) == []


def test_failed_rebuilds_never_leave_a_file_describing_missing_shards(tmp_path, monkeypatch):
    out = tmp_path / "out"
    build(out, max_seq_length=16)
    before = sidecar(out)

    # Fails before any shard is replaced: the old shards and their description stay.
    class Boom(Exception):
        pass

    def failing_tokenizer():
        raise Boom()

    with pytest.raises(Boom):
        build_lib.build_pretraining_dataset(corpus.find_corpus_files(PLAIN), str(out),
                                            failing_tokenizer, max_seq_length=32,
                                            num_out_files=2, overwrite=True,
                                            show_progress=False)
    assert sidecar(out) == before

    # Fails while the shards are being replaced: no description at all (as an old build).
    real_finalize = build_lib.shards_lib.finalize_shards

    def finalize_then_fail(output_dir, temp_to_final, old_shards):
        real_finalize(output_dir, temp_to_final, old_shards)
        raise OSError("disk gone")

    monkeypatch.setattr(build_lib.shards_lib, "finalize_shards", finalize_then_fail)
    with pytest.raises(OSError):
        build(out, max_seq_length=32, num_out_files=3, overwrite=True)
    assert not os.path.exists(out / "pretrain_data.json")
    monkeypatch.undo()

    # A description whose shards were deleted by hand goes with the next build into the
    # directory, even one that fails.
    for name in os.listdir(out):
        if name.startswith("pretrain_data.tfrecord-"):
            os.remove(out / name)
    (out / "pretrain_data.json").write_text(json.dumps(before))
    with pytest.raises(Boom):
        build_lib.build_pretraining_dataset(corpus.find_corpus_files(PLAIN), str(out),
                                            failing_tokenizer, num_out_files=2,
                                            show_progress=False)
    assert not os.path.exists(out / "pretrain_data.json")


def test_the_check_starts_no_tensorflow_runtime(tmp_path):
    """Like the record check, the description is read before any strategy exists."""
    out = tmp_path / "out"
    build(out)
    script = f"""
from tensorflow.python.eager import context
from electra_tf.data.errors import PretrainingDataError
from electra_tf.training.input_pipeline import validate_records
pattern = {str(out / 'pretrain_data.tfrecord*')!r}
assert validate_records(pattern, 16, vocab_file={tokenization.default_vocab_file()!r}) == []
try:
    validate_records(pattern, 16, vocab_file={other_vocab(tmp_path)!r})
except PretrainingDataError as e:
    print("mismatch:", e)
assert context.context()._context_handle is None, "the check started the runtime"
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mismatch:" in proc.stdout and proc.stdout.rstrip().endswith("ok")


def test_the_command_line_build_writes_the_file(tmp_path, capsys):
    """build_pretraining_dataset.py's command line, in-process (``build_pretraining_dataset.main``)."""
    import signal
    from electra_tf import build_pretraining_dataset
    out = tmp_path / "out"
    sigterm = signal.getsignal(signal.SIGTERM)  # the command sets its own, for good
    try:
        status = build_pretraining_dataset.main(["build_pretraining_dataset.py", "--noprogress",
                                 f"--corpus_dir={PLAIN}", f"--output_dir={out}",
                                 "--max_seq_length=24", "--num_out_files=2",
                                 "--nofast_tokenizer", "--nodo_lower_case"])
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    assert status == 0, capsys.readouterr().err[-3000:]
    meta = sidecar(out)
    assert (meta["max_seq_length"], meta["num_files"], meta["do_lower_case"]) == (24, 2, False)
    assert meta["corpus"] == PLAIN and meta["vocab"]["file"] == "vocab.txt"


def test_pretraining_at_another_length_stops_with_the_one_error(tmp_path, capsys):
    """run_pretraining.py (its command line, in-process) checks the description before it
    builds anything."""
    from electra_tf import run_pretraining
    build(tmp_path / "data" / "pretrain_tfrecords", max_seq_length=16)
    hparams = {"max_seq_length": 32, "train_batch_size": 8, "num_train_steps": 1,
               "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2}}
    capsys.readouterr()
    status = run_pretraining.main([f"--data_dir={tmp_path / 'data'}",
                                   f"--hparams={json.dumps(hparams)}", "--nojit_compile"])
    err = capsys.readouterr().err
    assert status == 1, err[-3000:]
    assert "Traceback" not in err
    [error] = [line for line in err.splitlines() if line.startswith("error:")]
    assert "pretrain_data.json" in error and "--max_seq_length=16" in error, error
    assert not (tmp_path / "data" / "models").exists()  # stopped before the run started
