"""Replaced-token detection (electra_tf.detection, command line electra_tf.detect): API, CLI
and errors on a tiny checkpoint."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from electra_tf import detect, detection, tokenization
from electra_tf.formats import tf1
from electra_tf.config import PretrainingConfig
from electra_tf.networks import build_pretraining_models

ROOT = Path(__file__).resolve().parents[1]
VOCAB = Path(__file__).resolve().parent / "data" / "detect" / "vocab.txt"  # 64 word-pieces
MAX_LEN = 16

TEXTS = ["The quick brown fox fake over the lazy dog",
         "a cat sat on the mat!",
         "Unbelievable news today, it was rainy",
         "big"]
PAIR = ("the dog was bad", "it is very good news")


def tiny_config(**objective):
    hparams = {"max_seq_length": MAX_LEN, "embedding_size": 16, "vocab_size": 64,
               "generator_hidden_size": 0.5,
               "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2,
                                          "num_attention_heads": 2, "intermediate_size": 64},
               **objective}
    return PretrainingConfig.from_preset("small", hparams)


def write_checkpoint(directory: Path, seed: int = 0, vocab: bool = True, head: bool = True,
                     **objective):
    """A tiny pre-training export: TF1-name weights, pretraining_config.json, vocab.txt."""
    keras.utils.set_random_seed(seed)
    config = tiny_config(**objective)
    models = build_pretraining_models(config)
    directory.mkdir(parents=True, exist_ok=True)
    saved = models.models if head else [models.discriminator.encoder]
    tf1.save_original_checkpoint(str(directory / "model.ckpt-7"), *saved, global_step=7)
    (directory / "pretraining_config.json").write_text(json.dumps(config.to_dict()))
    if vocab:
        shutil.copy(VOCAB, directory / "vocab.txt")
    return models


def direct_logits(discriminator, ids, segments=None):
    """The discriminator head's logits of one unpadded sequence, from a plain Keras call."""
    ids = np.asarray([ids], np.int32)
    segments = np.zeros_like(ids) if segments is None else np.asarray([segments], np.int32)
    out = discriminator({"input_ids": ids, "input_mask": np.ones_like(ids),
                         "segment_ids": segments}, training=False)
    return np.asarray(out["logits"], np.float64)[0]


@pytest.fixture(scope="module")
def electra(tmp_path_factory):
    directory = tmp_path_factory.mktemp("detect") / "tf1"
    return directory, write_checkpoint(directory)


def test_one_label_per_word_piece_equal_to_a_direct_discriminator_call(electra):
    directory, models = electra
    tok = tokenization.FullTokenizer(str(VOCAB))
    # The API of the detect command is the toolbox's.
    assert detect.detect_replaced_tokens is detection.detect_replaced_tokens
    results = detection.detect_replaced_tokens(str(directory), TEXTS + [PAIR], batch_size=3)
    assert len(results) == len(TEXTS) + 1
    all_labels = []
    for text, r in zip(TEXTS, results[:-1]):
        pieces = tok.tokenize(text)
        assert r.text == text and r.text_b is None and r.truncated == 0
        assert r.tokens == pieces and "[CLS]" not in r.tokens and "[SEP]" not in r.tokens
        assert len(r.labels) == len(r.probabilities) == len(r.logits) == len(pieces)
        ids = [tok.cls_id] + tok.convert_tokens_to_ids(pieces) + [tok.sep_id]
        expected = direct_logits(models.discriminator, ids)[1:-1]
        assert r.labels == [int(v > 0) for v in expected]
        np.testing.assert_allclose(r.logits, expected, atol=1e-5)
        np.testing.assert_allclose(r.probabilities, 1 / (1 + np.exp(-expected)), atol=1e-6)
        all_labels += r.labels
    assert set(all_labels) == {0, 1}  # the fixture model says both, so a constant would fail

    pair = results[-1]
    a, b = tok.tokenize(PAIR[0]), tok.tokenize(PAIR[1])
    assert (pair.text, pair.text_b) == PAIR
    assert pair.tokens == a + b and pair.segments == [0] * len(a) + [1] * len(b)
    ids = [tok.cls_id, *tok.convert_tokens_to_ids(a), tok.sep_id,
           *tok.convert_tokens_to_ids(b), tok.sep_id]
    segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
    logits = direct_logits(models.discriminator, ids, segments)
    expected = np.concatenate([logits[1:1 + len(a)], logits[len(a) + 2:-1]])
    assert pair.labels == [int(v > 0) for v in expected]
    np.testing.assert_allclose(pair.logits, expected, atol=1e-5)


def test_truncation_is_reported_not_silent(electra):
    _, models = electra
    long = "the quick brown fox jumps over the lazy dog"  # 10 word-pieces
    single, pair, no_b = detection.detect_replaced_tokens(
        models.discriminator, [long, ("the quick brown fox jumps", "a cat"), (long, "")],
        vocab_file=str(VOCAB), max_seq_length=7)
    assert single.tokens == ["the", "quick", "brown", "fox", "jump"] and single.truncated == 5
    # pairs: the longer text loses word-pieces first, [CLS] a [SEP] b [SEP] fits in 7
    assert pair.tokens == ["the", "quick", "a", "cat"] and pair.segments == [0, 0, 1, 1]
    assert pair.truncated == 4
    # an empty second text counts as absent, as in fine-tuning: L - 2 pieces of the first
    assert (no_b.tokens, no_b.segments, no_b.truncated) == (single.tokens, [0] * 5, 5)
    with pytest.raises(detection.InputError, match=r"max_seq_length must be in \[3, 512\]"):
        detection.detect_replaced_tokens(models.discriminator, [("a", "b")],
                                         vocab_file=str(VOCAB), max_seq_length=2)


def _one_line_error(capsys, argv, expected, status=1):
    assert detect.main(argv) == status
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert expected in err, err


def test_cli_table_and_one_line_errors(electra, tmp_path, capsys):
    directory, _ = electra
    assert detect.main(["--checkpoint", str(directory), "--max_seq_length=6",
                        "The quick brown fox fake over the lazy dog"]) == 0
    captured = capsys.readouterr()
    assert "text 1: The quick brown fox fake over the lazy dog" in captured.out
    assert "word-piece" in captured.out and "[CLS]" not in captured.out
    rows = [line.split() for line in captured.out.splitlines()[2:] if line.split()[0].isdigit()]
    assert [r[1] for r in rows] == ["the", "quick", "brown", "fox"]
    assert all(r[2] in ("0", "1") and 0 <= float(r[3]) <= 1 for r in rows)
    assert "5 word-piece(s) beyond --max_seq_length=6 were not scored" in captured.err
    # --nodo_lower_case keeps case: "The" is not in the lower-cased vocabulary
    assert detect.main(["--checkpoint", str(directory), "--nodo_lower_case", "--json",
                        "The cat"]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] == ["[UNK]", "cat"]
    assert detect.main(["--help"]) == 0
    help_text = capsys.readouterr().out
    assert "Replaced-token detection" in help_text and "--checkpoint" in help_text

    bad = tmp_path / "bad.txt"
    bad.write_text("fine line\na\tb\tc\n")
    no_head = tmp_path / "no_head"
    write_checkpoint(no_head, head=False)
    no_vocab = tmp_path / "no_vocab"
    write_checkpoint(no_vocab, vocab=False)
    ckpt = str(directory)
    _one_line_error(capsys, ["--checkpoint", str(tmp_path / "missing"), "x"], "not found")
    _one_line_error(capsys, ["--checkpoint", ckpt, "--input_file", str(bad)],
                    "bad.txt:2: expected 'text' or 'text_a<TAB>text_b', got 3")
    _one_line_error(capsys, ["--checkpoint", ckpt, "--input_file", str(tmp_path / "nope")],
                    "no such file")
    _one_line_error(capsys, ["--checkpoint", ckpt, "--max_seq_length", "1", "x"],
                    "max_seq_length must be in [2, 512]")
    _one_line_error(capsys, ["--checkpoint", ckpt, "--vocab_file",
                             str(ROOT / "tests/data/tokenization/tiny_vocab.txt"), "x"],
                    "has 47 tokens but the model's embedding table has 64 rows")
    _one_line_error(capsys, ["--checkpoint", str(no_head), "x"],
                    "no replaced-token detection head")
    _one_line_error(capsys, ["--checkpoint", str(no_vocab), "x"], "pass --vocab_file")
    _one_line_error(capsys, ["--checkpoint", ckpt], "give texts or --input_file")
    _one_line_error(capsys, ["x"], "--checkpoint", status=2)
    assert detect.main(["--checkpoint", str(no_vocab), "--vocab_file", str(VOCAB), "x"]) == 0


def test_cli_json_batch_mode_agrees_with_the_api(electra, tmp_path):
    directory, _ = electra
    lines = ["a cat sat on the mat!", "", f"{PAIR[0]}\t{PAIR[1]}",
             "the quick brown fox jumps over the lazy dog today"]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "electra_tf.detect", "--checkpoint", str(directory), "--json",
         "--batch_size", "2", "--max_seq_length", "12", "--input_file",
         str(tmp_path / "in.txt"), TEXTS[0]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["source"] for r in records] == ["text 1", f"{tmp_path / 'in.txt'}:1",
                                              f"{tmp_path / 'in.txt'}:3",
                                              f"{tmp_path / 'in.txt'}:4"]
    assert "in.txt:4: 1 word-piece(s) beyond --max_seq_length=12" in proc.stderr
    api = detection.detect_replaced_tokens(
        str(directory), [TEXTS[0], lines[0], PAIR, lines[3]], max_seq_length=12)
    for record, r in zip(records, api):
        assert record["tokens"] == r.tokens and record["labels"] == r.labels
        assert record["text_b"] == r.text_b and record["truncated"] == r.truncated
        np.testing.assert_allclose(record["probabilities"], r.probabilities, atol=1e-6)
        assert all(lab == int(p > 0.5) for lab, p in zip(r.labels, r.probabilities)
                   if not math.isclose(p, 0.5))


def test_pad_batch_rounds_lengths_and_adds_padding_rows():
    a = detection.Encoded([2, 5, 6, 3], [0, 0, 0, 0], [1, 2], 0)
    b = detection.Encoded([2, 7, 3], [0, 0, 1], [1], 0)
    ids, mask, segments = detection.pad_batch([a, b], length_multiple=3, num_rows=4)
    assert ids.tolist() == [[2, 5, 6, 3, 0, 0], [2, 7, 3, 0, 0, 0], [0] * 6, [0] * 6]
    assert mask.tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0], [0] * 6, [0] * 6]
    assert segments.tolist() == [[0] * 6, [0, 0, 1, 0, 0, 0], [0] * 6, [0] * 6]
    ids, mask, _ = detection.pad_batch([b, a])  # defaults: the longest, no extra rows
    assert ids.shape == (2, 4) and mask.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]


def test_xla_path_pads_to_fixed_shapes_and_matches_the_plain_path(electra):
    """XLA pads batches to a multiple of 16 positions and full rows; the logits of the real
    positions must not change, and the number of compiled shapes must stay small."""
    _, models = electra
    disc = models.discriminator
    tok = tokenization.FullTokenizer(str(VOCAB))
    texts = TEXTS * 3 + [PAIR, "the cat"]  # 14 examples, batch 4: a partial last batch
    examples = [detection.encode(tok, t, MAX_LEN) for t in texts]
    assert not detection.use_xla(disc)  # float32 model: no compile by default
    plain = detection.discriminator_logits(disc, examples, 4, jit_compile=False)
    xla = detection.discriminator_logits(disc, examples, 4, jit_compile=True)
    for e, p, x in zip(examples, plain, xla):
        assert len(p) == len(x) == len(e.input_ids)
        np.testing.assert_allclose(x, p, atol=1e-4)
        np.testing.assert_allclose(p, direct_logits(disc, e.input_ids, e.segment_ids),
                                   atol=1e-5)
    shapes = []
    real_pad_batch = detection.pad_batch

    def spy(*args, **kwargs):
        arrays = real_pad_batch(*args, **kwargs)
        shapes.append(arrays[0].shape)
        return arrays
    detection.pad_batch = spy
    try:
        detection.discriminator_logits(disc, examples, 4, jit_compile=True)
        detection.discriminator_logits(disc, examples, 4, jit_compile=False)
    finally:
        detection.pad_batch = real_pad_batch
    assert shapes[:4] == [(4, 16)] * 4  # XLA: one shape, so one compile
    assert len(set(shapes[4:])) > 1 and all(s[0] <= 4 and s[1] <= 16 for s in shapes[4:])


def test_bfloat16_detection_runs_under_xla_and_agrees_with_float32(electra, capsys):
    directory, _ = electra
    assert detect.main(["--checkpoint", str(directory), "--json", *TEXTS]) == 0
    fp32 = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    try:
        assert detect.main(["--checkpoint", str(directory), "--json",
                            "--mixed_precision=bfloat16", *TEXTS]) == 0
        bf16 = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert keras.mixed_precision.global_policy().name == "float32"  # restored
        with detection.keras_precision("bfloat16") as precision:
            model = detection.load(str(directory), ("discriminator_head",))
        assert precision == "bfloat16" and model.discriminator.compute_dtype == "bfloat16"
        assert detection.use_xla(model.discriminator)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for a, b in zip(fp32, bf16):
        assert a["tokens"] == b["tokens"]
        # bfloat16 keeps 8 bits of mantissa: logits agree to ~1e-2 of their scale
        np.testing.assert_allclose(b["logits"], a["logits"], atol=0.05 + 0.02 * np.abs(
            a["logits"]).max())
    assert bf16 != fp32  # it really ran in another precision
