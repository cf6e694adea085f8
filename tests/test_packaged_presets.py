"""Releases that ship inside electra_tf (issue 21, deliverable 4): float16 storage through
``convert --dtype=float16`` and packaged presets (:func:`electra_tf.convert.pack`).

The tiny pre-training run of ``conftest`` is packed as ``electra_tinypack`` (registered for
the test only, in a temporary package directory). The reference for every weight read back
is numpy's own float16 rounding of the float32 export.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import one_error_line, run_in_process
from pretraining_fixtures import tiny_hparams

from electra_tf import convert, detect, loading, presets
from electra_tf.checkpoints import CheckpointError
from electra_tf.config import PretrainingConfig
from electra_tf.formats import tf1
from electra_tf.models import ElectraBackbone

TINY = tiny_hparams(num_train_steps=3)  # the hparams of conftest's tiny_pretrained_run
BATCH = {"input_ids": tf.constant([[101, 2023, 2003, 1037, 3231, 102]]),
         "input_mask": tf.ones([1, 6], tf.int32), "segment_ids": tf.zeros([1, 6], tf.int32)}


def rounded(values: dict) -> dict:
    """numpy's float16 rounding of float32 weights, widened back (the expected read)."""
    return {n: v.astype(np.float16).astype(np.float32) if v.dtype == np.float32 else v
            for n, v in values.items()}


def assert_same(expected: dict, got: dict):
    assert sorted(expected) == sorted(got)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def tinypack(tmp_path, **changes) -> presets.Release:
    hparams = dict(changes.pop("hparams", TINY))
    disc, gen = presets.parameter_counts(presets.expected_shapes(
        PretrainingConfig.from_preset("small", hparams)))
    fields = {"name": "electra_tinypack", "hparams": hparams, "discriminator_params": disc,
              "generator_params": gen, "description": "a packaged test release",
              "packaged": str(tmp_path / "package" / "electra_tinypack")}
    fields.update(changes)
    return presets.Release(**fields)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No download may happen: the URL is a closed port and the cache must stay empty."""
    monkeypatch.setenv(presets.URL_ENV, "http://127.0.0.1:9")
    monkeypatch.setenv(presets.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def packed(tiny_pretrained_run, tmp_path, offline, monkeypatch):
    """(release, manifest, float32 values) of the tiny run packed and registered."""
    release = tinypack(tmp_path)
    monkeypatch.setitem(presets.RELEASES, release.name, release)
    manifest = convert.pack(tiny_pretrained_run["model_dir"], release,
                            facts={"training": "3 steps of the tiny model"})
    return release, manifest, tf1.read(tiny_pretrained_run["tf1"]).values


# ---------------------------------------------------------------------------
# convert --dtype=float16
# ---------------------------------------------------------------------------

def test_float16_storage_halves_the_files_and_reads_back_as_the_rounded_weights(
        tiny_pretrained_run, tmp_path, capsys):
    source = tiny_pretrained_run["tf1"]
    out16, out32 = tmp_path / "f16", tmp_path / "f32"
    for out, dtype in ((out16, "float16"), (out32, "float32")):
        finished = run_in_process(capsys, convert.main, [
            "convert", f"--input={source}", f"--output={out}", "--to=tf1", f"--dtype={dtype}"])
        assert finished.returncode == 0, finished.stderr
    prefix16 = tf.train.latest_checkpoint(str(out16))
    dtypes = tf.train.load_checkpoint(prefix16).get_variable_to_dtype_map()
    assert {n: d for n, d in dtypes.items() if n != "global_step"} == \
        {n: tf.float16 for n in dtypes if n != "global_step"}
    assert dtypes["global_step"] == tf.int64

    def data_bytes(directory):
        return sum(p.stat().st_size for p in Path(directory).glob("*.data-*"))
    assert 0.45 < data_bytes(out16) / data_bytes(out32) < 0.55

    weights32, weights16 = tf1.read(str(out32)), tf1.read(str(out16))
    assert_same(rounded(weights32.values), weights16.values)
    assert weights16.global_step == weights32.global_step == 3
    assert Path(weights16.vocab_file).read_bytes() == Path(weights32.vocab_file).read_bytes()

    # The models built from each agree to float16's precision, and are not the same model
    # twice (the rounding reached the weights).
    logits = [loading.load_pretrained(str(out), require=("discriminator_head",))
              .discriminator(BATCH)["logits"].numpy() for out in (out32, out16)]
    np.testing.assert_allclose(logits[1], logits[0], rtol=0, atol=1e-2)
    assert not np.array_equal(logits[1], logits[0])


def test_float16_is_refused_where_it_cannot_be_stored(tiny_pretrained_run, tmp_path, capsys):
    source = tiny_pretrained_run["tf1"]
    finished = run_in_process(capsys, convert.main, [
        "convert", f"--input={source}", f"--output={tmp_path / 'hf'}", "--to=hf",
        "--dtype=float16"])
    one_error_line(finished.returncode, finished.stderr, "--dtype=float16", "--to=tf1")
    assert not (tmp_path / "hf").exists()
    finished = run_in_process(capsys, convert.main, [
        "convert", f"--input={source}", f"--output={tmp_path / 'x'}", "--to=tf1",
        "--dtype=int8"])
    assert finished.returncode != 0 and "--dtype" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_a_weight_beyond_float16_is_refused_not_stored_as_inf():
    with pytest.raises(convert.ConversionError, match=r"does not fit float16.*--dtype=float32"):
        convert._stored_as(np.array([1.0, 7e4], np.float32), "float16")
    kept = convert._stored_as(np.array([1.0, -6e4, np.inf], np.float32), "float16")
    assert kept.dtype == np.float16 and kept[1] == np.float16(-6e4) and np.isinf(kept[2])
    step = np.array(12, np.int64)
    assert convert._stored_as(step, "float16").dtype == np.int64


# ---------------------------------------------------------------------------
# Packaged releases
# ---------------------------------------------------------------------------

def disc_values(values):
    return {n: v for n, v in values.items()
            if n.startswith(("electra/", "discriminator_predictions/"))}


def test_a_packaged_release_answers_to_every_name_without_a_download(
        packed, offline, capsys):
    release, manifest, values = packed
    directory = Path(release.packaged)
    assert manifest["release"] == "electra_tinypack" and manifest["dtype"] == "float16"
    assert manifest["training"] == "3 steps of the tiny model"
    assert manifest["checkpoint"] == "model.ckpt-3" and manifest["vocab"] == "vocab.txt"
    assert json.loads((directory / presets.MANIFEST).read_text()) == manifest
    # Nothing but the package directory: no staged copy beside it.
    assert os.listdir(directory.parent) == ["electra_tinypack"]

    discriminator = loading.read_weights("electra_tinypack_discriminator")
    assert_same(rounded(disc_values(values)), discriminator.values)
    assert discriminator.global_step == 3
    everything = loading.read_weights("google/electra-tinypack")
    assert_same(rounded(values), everything.values)
    generator = loading.read_weights("electra_tinypack_generator_uncased_en")
    assert generator.format == "preset"
    assert all(n.startswith(("electra/", "generator_predictions/")) for n in generator.values)

    backbone = ElectraBackbone.from_preset("electra_tinypack_discriminator")
    direct = loading.load_pretrained(str(directory), require=("discriminator_head",))
    np.testing.assert_array_equal(backbone(BATCH)["sequence_output"].numpy(),
                                  direct.discriminator(BATCH)["sequence_output"].numpy())
    assert detect.main(["detect", "--checkpoint=electra_tinypack_discriminator",
                        "--mixed_precision=float32", "the quick brown fox"]) == 0
    assert "the quick brown fox" in capsys.readouterr().out
    assert not offline.exists()  # the download cache was never touched


def test_a_damaged_packaged_release_is_one_error_saying_reinstall(packed):
    release, manifest, _ = packed
    directory = Path(release.packaged)
    data = directory / next(n for n in manifest["files"] if ".data-" in n)
    original = data.read_bytes()
    middle = len(original) // 2
    data.write_bytes(original[:middle] + bytes([original[middle] ^ 1]) + original[middle + 1:])
    with pytest.raises(CheckpointError, match=r"packaged preset electra_tinypack_discriminator "
                       r".*changed after it was verified \(model\.ckpt-3\.data.*sha256.*"
                       r"reinstall electra-tf"):
        loading.read_weights("electra_tinypack_discriminator")
    data.write_bytes(original)
    loading.read_weights("electra_tinypack_discriminator")  # restored: loads again

    (directory / presets.MANIFEST).unlink()
    with pytest.raises(CheckpointError, match=f"has no {presets.MANIFEST}: reinstall"):
        loading.read_weights("electra_tinypack")
    os.rename(directory, directory.with_name("elsewhere"))
    with pytest.raises(CheckpointError, match=r"electra_tinypack is missing: reinstall"):
        loading.read_weights("electra_tinypack_generator")


def test_pack_refuses_a_checkpoint_that_is_not_the_release(tiny_pretrained_run, tmp_path,
                                                           monkeypatch):
    wider = dict(TINY, model_hparam_overrides={"hidden_size": 64, "num_hidden_layers": 2})
    release = tinypack(tmp_path, hparams=wider)
    with pytest.raises(CheckpointError, match=r"does not hold the released electra_tinypack.*"
                       r"of other shape"):
        convert.pack(tiny_pretrained_run["model_dir"], release)
    package = tmp_path / "package"
    assert not package.exists() or os.listdir(package) == []

    right = tinypack(tmp_path)
    convert.pack(tiny_pretrained_run["model_dir"], right)
    with pytest.raises(FileExistsError, match="exists: pass overwrite=True"):
        convert.pack(tiny_pretrained_run["model_dir"], right)
    convert.pack(tiny_pretrained_run["model_dir"], right, overwrite=True)
    assert os.listdir(package) == ["electra_tinypack"]
    with pytest.raises(ValueError, match="not packaged"):
        convert.pack(tiny_pretrained_run["model_dir"], tinypack(tmp_path, packaged=None))


def test_a_packaged_release_registers_itself_from_its_manifest(packed, monkeypatch):
    release, manifest, values = packed
    assert manifest["hparams"] == TINY and manifest["description"] == release.description
    monkeypatch.setattr(presets, "RELEASES", {})  # a fresh import's registry, without it
    root = Path(release.packaged).parent
    broken = root / "electra_broken"
    broken.mkdir()
    (broken / presets.MANIFEST).write_text("{not json")
    (root / ".electra_x.pack-1234").mkdir()  # a pack in progress is no release

    assert presets.register_packaged(str(root)) == ["electra_broken", "electra_tinypack"]
    registered = presets.RELEASES["electra_tinypack"]
    assert registered.hparams == TINY and registered.packaged == release.packaged
    assert (registered.discriminator_params, registered.generator_params) == \
        (release.discriminator_params, release.generator_params)
    assert_same(rounded(disc_values(values)),
                loading.read_weights("electra_tinypack_discriminator").values)
    with pytest.raises(CheckpointError, match=r"electra_broken.*unreadable.*reinstall"):
        loading.read_weights("electra_broken_discriminator")
    assert presets.register_packaged(str(root / "nowhere")) == []


def package_data_patterns() -> list:
    """setup.py's package_data patterns of the electra_tf package (read, not run)."""
    import ast
    tree = ast.parse((Path(__file__).resolve().parents[1] / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "package_data":
            return ast.literal_eval(node.value)["electra_tf"]
    raise AssertionError("setup.py has no package_data")


def test_an_installation_carries_every_file_of_a_packaged_release(
        tiny_pretrained_run, tmp_path):
    """setuptools globs package data as glob.glob does (no dotfiles): every file the
    manifest checks must be among what the patterns select, or an installed preset would
    fail its own check."""
    import glob
    package = tmp_path / "electra_tf"
    release = tinypack(tmp_path, packaged=str(package / "assets" / "presets" / "electra_tinypack"))
    manifest = convert.pack(tiny_pretrained_run["model_dir"], release)
    installed = set()
    for pattern in package_data_patterns():
        installed.update(os.path.relpath(p, release.packaged)
                         for p in glob.glob(str(package / pattern)) if os.path.isfile(p))
    shipped = set(manifest["files"]) | {presets.MANIFEST}
    assert shipped <= installed, shipped - installed
    assert not any(os.path.basename(f).startswith(".") for f in shipped)
