"""electra_tf.formats: detection, the sidecar files, and write -> read round trips per format.

Values are compared with numpy (bit for bit, dtype included); the files written are also
read with TensorFlow's own checkpoint reader and safetensors, not only by our readers.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import DATA, ROOT
from safetensors.numpy import load_file

from electra_tf import CheckpointError, PretrainingConfig, build_pretraining_models, checkpoints
from electra_tf.config import ConfigError
from electra_tf.formats import (CONFIG_FILE, VOCAB_FILE, detect_format, hf, keras,
                                read_sidecar_files, tf1, write_sidecar_files)

GOLDEN = DATA / "hf_interop"


def small_config(**hparams):
    return PretrainingConfig.from_preset("small", {
        "vocab_size": 30, "embedding_size": 8, "max_seq_length": 16,
        "model_hparam_overrides": {"hidden_size": 16, "num_hidden_layers": 1,
                                   "max_position_embeddings": 16}, **hparams})


def random_values(seed=0) -> dict:
    """Arrays under original-style names, one with a '.' (escaped by tf.train.Checkpoint)."""
    rng = np.random.default_rng(seed)
    return {
        "electra/embeddings/word_embeddings": rng.normal(size=(30, 8)).astype(np.float32),
        "electra/encoder/layer_0/attention/self/query/kernel":
            rng.normal(size=(16, 16)).astype(np.float32),
        "electra/embeddings/LayerNorm/gamma": rng.normal(size=(8,)).astype(np.float32),
        "generator_predictions/output_bias": rng.normal(size=(30,)).astype(np.float32),
        "scope.with.dots/bias": rng.normal(size=(3,)).astype(np.float32),
    }


def assert_same_values(expected: dict, got: dict):
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)


@pytest.fixture
def vocab(tmp_path):
    path = tmp_path / "source_vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n")
    return str(path)


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["tf1", "keras"])
@pytest.mark.parametrize("step", [None, 12])
def test_write_then_read_gives_the_same_arrays_step_config_and_vocab(tmp_path, vocab, fmt, step):
    module = {"tf1": tf1, "keras": keras}[fmt]
    values, config = random_values(), small_config(learning_rate=3e-4)
    prefix = module.write(tmp_path / "out", values, config=config, vocab_file=vocab,
                          global_step=step)
    expected_name = {"tf1": "model.ckpt" if step is None else f"model.ckpt-{step}",
                     "keras": f"ckpt-{step or 0}"}[fmt]
    assert prefix == os.path.join(str(tmp_path / "out"), expected_name)
    assert detect_format(tmp_path / "out") == fmt
    weights = module.read(tmp_path / "out")
    assert (weights.format, weights.source, weights.global_step) == (fmt, prefix, step)
    assert_same_values(values, weights.values)
    assert weights.hparams["learning_rate"] == 3e-4
    assert PretrainingConfig.from_preset("small", weights.hparams) == config
    with open(weights.vocab_file) as ours, open(vocab) as theirs:
        assert ours.read() == theirs.read()
    assert tf.train.latest_checkpoint(str(tmp_path / "out")) == prefix  # the state file


def test_tf1_files_hold_the_original_names_as_tensorflow_reads_them(tmp_path):
    values = random_values(1)
    prefix = tf1.write(tmp_path / "out", values, config=small_config(), global_step=3)
    reader = tf.train.load_checkpoint(prefix)
    assert set(reader.get_variable_to_shape_map()) == set(values) | {"global_step"}
    for name, value in values.items():
        np.testing.assert_array_equal(reader.get_tensor(name), value)
    assert int(reader.get_tensor("global_step")) == 3


def test_tf1_read_leaves_out_optimizer_slots_and_the_step(tmp_path):
    values = random_values(2)
    slots = {f"{n}/{s}": np.ones_like(v) for n, v in values.items()
             for s in checkpoints.SLOT_SUFFIXES}
    tf1.save_original_checkpoint(str(tmp_path / "model.ckpt-5"),
                                         variables={**values, **slots}, global_step=5)
    weights = tf1.read(tmp_path)
    assert_same_values(values, weights.values)
    assert weights.global_step == 5 and weights.hparams == {} and weights.vocab_file is None


def test_keras_directory_restores_into_variables_with_tf_train_checkpoint(tmp_path):
    values = random_values(3)
    prefix = keras.write(tmp_path / "out", values, config=small_config())
    targets = {name: tf.Variable(tf.zeros_like(value)) for name, value in values.items()}
    tf.train.Checkpoint(weights=targets).read(prefix).assert_consumed()
    for name, value in values.items():
        np.testing.assert_array_equal(targets[name].numpy(), value)


def test_keras_read_needs_the_config_and_refuses_other_checkpoints(tmp_path):
    prefix = keras.write(tmp_path / "out", random_values(), config=small_config())
    os.remove(os.path.join(os.path.dirname(prefix), CONFIG_FILE))
    with pytest.raises(CheckpointError, match=f"no {CONFIG_FILE} beside"):
        keras.read(tmp_path / "out")
    tf1.write(tmp_path / "tf1", random_values(), config=small_config())
    with pytest.raises(CheckpointError, match="not an electra_tf keras-format checkpoint"):
        keras.read(tmp_path / "tf1")


def test_writers_refuse_a_non_empty_output_unless_overwrite(tmp_path):
    first, second = random_values(4), random_values(5)
    tf1.write(tmp_path / "out", first, config=small_config())
    with pytest.raises(FileExistsError, match="not empty"):
        tf1.write(tmp_path / "out", second, config=small_config())
    assert_same_values(first, tf1.read(tmp_path / "out").values)
    tf1.write(tmp_path / "out", second, config=small_config(), overwrite=True)
    assert_same_values(second, tf1.read(tmp_path / "out").values)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporaries left


def test_hf_write_then_read_is_exact_and_matches_safetensors_on_disk(tmp_path, vocab):
    config = small_config(generator_hidden_size=0.5)
    models = build_pretraining_models(config)
    rng = np.random.default_rng(6)
    for variable in models.original_variables().values():
        variable.assign(rng.normal(0, 0.1, variable.shape).astype(np.float32))
    written = hf.write_hf_directory(models, tmp_path / "hf", vocab)
    assert sorted(written.values()) == ["ElectraForMaskedLM", "ElectraForPreTraining"]
    assert detect_format(tmp_path / "hf") == "hf"
    weights = hf.read(tmp_path / "hf")
    assert_same_values(checkpoints.original_values(*models.models), weights.values)
    # The file itself: transformers' key and [out, in] layout of a linear weight.
    tensors = load_file(str(tmp_path / "hf" / "discriminator" / "model.safetensors"))
    np.testing.assert_array_equal(
        tensors["electra.encoder.layer.0.attention.self.query.weight"],
        weights.values["electra/encoder/layer_0/attention/self/query/kernel"].T)
    assert weights.vocab_file is not None


# ---------------------------------------------------------------------------
# Detection and the sidecar files
# ---------------------------------------------------------------------------

def test_detect_format_of_each_kind_of_path(tmp_path):
    assert detect_format(GOLDEN / "pair") == "hf"            # a discriminator/generator pair
    assert detect_format(GOLDEN / "pair" / "generator") == "hf"
    assert detect_format(GOLDEN / "bare") == "hf"
    prefix = tf1.write(tmp_path / "tf1", random_values(), config=small_config(), global_step=2)
    assert [detect_format(p) for p in (tmp_path / "tf1", prefix, prefix + ".index")] == \
        ["tf1"] * 3
    prefix = keras.write(tmp_path / "keras", random_values(), config=small_config())
    assert detect_format(tmp_path / "keras") == detect_format(prefix) == "keras"
    # An object-based checkpoint that is not ours (a training run's ckpt-N is read by
    # building its models, see loading): not keras.
    tf.train.Checkpoint(step=tf.Variable(3)).write(str(tmp_path / "run" / "ckpt-3"))
    assert detect_format(tmp_path / "run") == "training"
    # A TF checkpoint directory that happens to hold a config.json is not transformers'.
    (tmp_path / "tf1" / "config.json").write_text("{}")
    assert detect_format(tmp_path / "tf1") == "tf1"


def test_sidecar_files_round_trip(tmp_path, vocab):
    config = small_config(learning_rate=1e-3)
    write_sidecar_files(str(tmp_path), config, vocab)
    assert sorted(os.listdir(tmp_path)) == sorted([CONFIG_FILE, VOCAB_FILE, "source_vocab.txt"])
    hparams, vocab_path = read_sidecar_files(str(tmp_path / "model.ckpt"))
    assert vocab_path == str(tmp_path / VOCAB_FILE)
    assert "max_predictions_per_seq" not in hparams  # derived, so not settable
    assert PretrainingConfig.from_preset("small", hparams) == config
    assert read_sidecar_files(str(tmp_path / "elsewhere" / "model.ckpt")) == ({}, None)


def test_sidecar_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match=f"no {CONFIG_FILE} beside .*x/model.ckpt"):
        read_sidecar_files(str(tmp_path / "x" / "model.ckpt"), require_config=True)
    (tmp_path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match=rf"{CONFIG_FILE}: not valid JSON"):
        read_sidecar_files(str(tmp_path / "model.ckpt"))


def test_importing_the_package_and_the_converter_does_not_import_tensorflow():
    code = ("import sys, electra_tf.formats, electra_tf.convert; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120).stdout
    assert out.strip() == "False"



# ---------------------------------------------------------------------------
# One interface, one dispatch table
# ---------------------------------------------------------------------------

def test_every_format_has_the_same_interface_and_convert_writes_from_the_same_table():
    import inspect

    from electra_tf import convert, formats
    assert list(formats.FORMATS)[-1] == "tf1"  # the fallback is tried last
    for name in formats.FORMATS:
        module = formats.format_module(name)
        assert module.NAME == name
        assert [p.name for p in list(inspect.signature(module.matches).parameters.values())] \
            == ["path"]
        read_params = list(inspect.signature(module.read).parameters)
        assert read_params[0] == "path"
        write = inspect.signature(module.write).parameters
        assert list(write)[:2] == ["output_dir", "values"], name
        if name in formats.OUTPUT_FORMATS:
            for keyword in ("config", "vocab_file", "global_step", "overwrite"):
                assert write[keyword].kind is inspect.Parameter.KEYWORD_ONLY, (name, keyword)
    assert set(formats.OUTPUT_FORMATS) == set(formats.FORMATS) - {"training"}
    with pytest.raises(convert.ConversionError, match="--to must be one of tf1, hf, keras"):
        convert.check_arguments(str(DATA), "/tmp/never", "training")


@pytest.mark.parametrize("fmt", ["tf1", "keras", "hf"])
def test_the_table_writes_and_reads_each_format_with_the_same_call(tmp_path, vocab, fmt):
    from electra_tf import formats
    config = small_config()
    models = build_pretraining_models(config)
    values = checkpoints.original_values(*models.models)
    path = formats.write(fmt, tmp_path / fmt, values, config=config, vocab_file=vocab,
                         global_step=4)
    assert formats.detect_format(path) == fmt
    weights = formats.read(path)
    assert weights.format == fmt
    if fmt == "hf":  # a pair: the discriminator and the generator as a masked LM
        expected = {**checkpoints.network_values(values, "discriminator"),
                    **{("generator/" + n[len("electra/"):]) if n.startswith("electra/") and
                       not n.startswith("electra/embeddings/") else n: v
                       for n, v in checkpoints.network_values(values, "generator").items()
                       if not n.startswith("electra/embeddings/")}}
        assert sorted(weights.values) == sorted(expected)
        for name, value in expected.items():
            np.testing.assert_array_equal(weights.values[name], value, err_msg=name)
    else:
        assert weights.global_step == 4
        assert_same_values(values, weights.values)


def test_a_run_checkpoint_is_not_written_by_the_table(tmp_path):
    from electra_tf import formats
    with pytest.raises(CheckpointError, match="written by pre-training only"):
        formats.write("training", tmp_path / "x", {}, config=None)


def test_detecting_and_reading_a_checkpoint_opens_it_once(tmp_path, monkeypatch):
    from electra_tf import formats, loading
    prefix = tf1.write(tmp_path / "tf1", random_values(), config=small_config(), global_step=2)
    opened = []
    real = tf.train.load_checkpoint
    monkeypatch.setattr(tf.train, "load_checkpoint", lambda p: opened.append(p) or real(p))
    assert loading.read_weights(str(tmp_path / "tf1")).global_step == 2
    assert opened == [prefix]
    # Each read opens anew: a checkpoint written again under the same prefix is not stale.
    tf1.write(tmp_path / "tf1", random_values(seed=1), config=small_config(), global_step=2,
              overwrite=True)
    assert_same_values(random_values(seed=1), formats.read(str(tmp_path / "tf1")).values)
    assert opened == [prefix, prefix]
