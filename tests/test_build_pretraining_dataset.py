"""Command-line tests of build_pretraining_dataset.py: as a subprocess (the script), and
in-process through the same command line (``build_pretraining_dataset.main(argv)``) where a
run gets past the flag checks, which spares a TensorFlow start-up per build."""

import os
import subprocess
import sys

from conftest import run_in_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "build_pretraining_dataset.py")
PLAIN = os.path.join(ROOT, "tests", "data", "corpus", "plain.txt")


def run_script(*args, timeout=300):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return subprocess.run(
        [sys.executable, SCRIPT, "--noprogress"] + list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def run_main(capsys, *args):
    """The same command line in-process, with what it wrote to stderr."""
    from electra_tf import build_pretraining_dataset  # pylint: disable=g-import-not-at-top
    return run_in_process(capsys, build_pretraining_dataset.main,
                          ["build_pretraining_dataset.py", "--noprogress", *args])


def assert_one_line_error(result, *fragments):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def test_missing_corpus_is_one_line_error(tmp_path):
    missing = str(tmp_path / "no_such_corpus")
    result = run_script("--corpus_dir=" + missing, "--output_dir=%s" % (tmp_path / "out"))
    assert_one_line_error(result, "no input files found at '%s'" % missing)
    assert not (tmp_path / "out").exists()


def test_output_errors_are_one_line(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "pretrain_data.tfrecord-0-of-1").write_bytes(b"old")
    result = run_script("--corpus_dir=" + PLAIN, "--output_dir=%s" % out)
    assert_one_line_error(result, "already holds 1", "--overwrite")
    assert (out / "pretrain_data.tfrecord-0-of-1").read_bytes() == b"old"

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    result = run_script("--corpus_dir=" + PLAIN, "--output_dir=%s" % (blocker / "out"))
    assert_one_line_error(result, "cannot create output directory")

    result = run_script(
        "--corpus_dir=" + PLAIN, "--max_seq_length=3", "--output_dir=%s" % (tmp_path / "o3")
    )
    assert_one_line_error(result, "--max_seq_length must be at least 5")

    result = run_script(
        "--corpus_dir=" + PLAIN,
        "--vocab_file=%s" % (tmp_path / "vocab.txt"),
        "--output_dir=%s" % (tmp_path / "o4"),
    )
    assert_one_line_error(result, "--vocab_file: no such file")


def test_tfds_without_data_fails_fast(tmp_path):
    result = run_script(
        "--tfds_dataset=wikipedia/20230601.en",
        "--tfds_data_dir=%s" % tmp_path,
        "--output_dir=%s" % (tmp_path / "out"),
        timeout=60,
    )
    assert_one_line_error(result, "not prepared", "--tfds_data_dir")


def test_end_to_end_with_real_tokenizer(tmp_path, capsys):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from electra_tf import tokenization  # pylint: disable=g-import-not-at-top

    out = tmp_path / "out"
    result = run_main(
        capsys,
        "--corpus_dir=" + PLAIN,
        "--output_dir=%s" % out,
        "--max_seq_length=32",
        "--num_out_files=2",
        "--blanks_separate_docs=false",
    )
    assert result.returncode == 0, result.stderr
    assert "documents: 1 " in result.stderr  # blank lines did not split
    assert "wrote 2 file(s)" in result.stderr
    assert sorted(os.listdir(out)) == [
        "pretrain_data.json",
        "pretrain_data.tfrecord-0-of-2",
        "pretrain_data.tfrecord-1-of-2",
    ]
    spec = {
        name: tf.io.FixedLenFeature([32], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids")
    }
    records = [
        tf.io.parse_single_example(r, spec)
        for r in tf.data.TFRecordDataset(sorted(str(p) for p in out.glob("*.tfrecord-*")))
    ]
    assert len(records) == 1  # 28 wordpieces in one document, L = 32
    tok = tokenization.FullTokenizer(tokenization.default_vocab_file(), True, True)
    ids = [int(i) for i in records[0]["input_ids"].numpy()]
    n = int(records[0]["input_mask"].numpy().sum())
    assert n in (30, 31)  # 28 + [CLS] + one or two [SEP]
    assert ids[0] == tok.special_ids["cls"]
    assert ids[n - 1] == tok.special_ids["sep"] and ids[n:] == [0] * (32 - n)
    words = [w for w in tok.convert_ids_to_tokens(ids[:n]) if w not in ("[CLS]", "[SEP]")]
    assert words == tok.tokenize(" ".join(open(PLAIN).read().split()))

    # Again with blank lines as document boundaries: the empty line and the
    # whitespace-only line split the file into three documents.
    result = run_main(
        capsys,
        "--corpus_dir=" + PLAIN,
        "--output_dir=%s" % out,
        "--max_seq_length=32",
        "--num_out_files=2",
        "--overwrite",
    )
    assert result.returncode == 0, result.stderr
    assert "documents: 3 " in result.stderr


def test_default_embedded_corpus(tmp_path):
    out = tmp_path / "out"
    result = run_script("--output_dir=%s" % out, "--num_processes=2")
    assert result.returncode == 0, result.stderr
    assert "embedded corpus" in result.stderr
    files = sorted(os.listdir(out))
    assert files[0] == "pretrain_data.json"
    assert len(files[1:]) == 8 and files[1] == "pretrain_data.tfrecord-0-of-8"
    examples = [line for line in result.stderr.splitlines() if line.startswith("documents: ")]
    assert examples and "documents: 131 " in examples[0]
