"""keras-hub ElectraBackbone presets both ways (issue 24): electra_tf.formats.keras_hub.

keras-hub is a test extra (``pip install -e ".[test]"`` installs it). Its ElectraBackbone
runs GELU in the tanh form, ELECTRA (and we) the exact erf form: outputs are compared
twice, against our model as it is (the GELU difference, bounded by GELU_TOLERANCE) and
against our model switched to tanh GELU (the mapping itself: float rounding,
MAPPING_TOLERANCE). Weights are compared for exact equality.
"""

import json
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import CheckpointError, PretrainingConfig, build_pretraining_models, convert
from electra_tf import loading
from electra_tf.formats import detect_format, hf
from electra_tf.formats import keras_hub as kh_format
from electra_tf.models import ElectraBackbone, ElectraClassifier
from electra_tf.tokenization import FullTokenizer

keras_hub = pytest.importorskip("keras_hub")  # in the test extra: present wherever tests run

VOCAB = Path(__file__).resolve().parent / "data" / "detect" / "vocab.txt"  # 64 word-pieces
TANH = {"model_hparam_overrides": {"hidden_act": "gelu_approximate"}}
# Measured on these tiny random models (weights ~ N(0, 0.2)): exact vs tanh GELU 5e-5;
# ours with tanh GELU vs keras-hub 2e-7.
GELU_TOLERANCE = 2e-4
MAPPING_TOLERANCE = 2e-6
IDS = np.array([[2, 10, 20, 30, 40, 3, 0, 0], [2, 11, 12, 3, 50, 60, 3, 0]], np.int32)
MASK = (IDS != 0).astype(np.int32)
SEGMENTS = np.array([[0] * 8, [0, 0, 0, 0, 1, 1, 1, 0]], np.int32)
REAL = MASK.astype(bool)


def random_models(embedding_size=16, **hparams):
    config = PretrainingConfig.from_preset("small", {
        "vocab_size": 64, "embedding_size": embedding_size, "max_seq_length": 16,
        "generator_hidden_size": 0.5,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2,
                                   "num_attention_heads": 4, "intermediate_size": 64,
                                   "max_position_embeddings": 32}, **hparams})
    models = build_pretraining_models(config)
    rng = np.random.default_rng(11)
    for variable in models.original_variables().values():
        variable.assign(rng.normal(0, 0.2, variable.shape).astype(np.float32))
    return config, models


def ours(network):
    return network({"input_ids": tf.constant(IDS), "input_mask": tf.constant(MASK),
                    "segment_ids": tf.constant(SEGMENTS)})["sequence_output"].numpy()


def theirs(backbone):
    return backbone({"token_ids": IDS, "padding_mask": MASK,
                     "segment_ids": SEGMENTS})["sequence_output"].numpy()


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))[REAL]))


def encoder(values):
    return {n: v for n, v in values.items() if n.startswith("electra/")}


def assert_same(expected: dict, got: dict):
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert got[name].dtype == np.float32, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def assert_gelu_and_mapping(path, expected_exact, expected_tanh):
    """keras-hub's outputs from ``path`` against ours with exact and with tanh GELU."""
    outputs = theirs(keras_hub.models.ElectraBackbone.from_preset(str(path)))
    mapping, gelu = max_diff(expected_tanh, outputs), max_diff(expected_exact, outputs)
    assert mapping <= MAPPING_TOLERANCE, mapping
    assert mapping < gelu <= GELU_TOLERANCE, (mapping, gelu)


@pytest.mark.parametrize("embedding_size", [16, 32], ids=["projected", "no_projection"])
def test_ours_to_keras_hub_and_back(tmp_path, embedding_size):
    config, models = random_models(embedding_size)
    values = {n: v.numpy() for n, v in models.original_variables().items()}
    out = kh_format.write(tmp_path / "kh", values, config=config, vocab_file=str(VOCAB))
    files = sorted(p.relative_to(out).as_posix() for p in Path(out).rglob("*") if p.is_file())
    assert files == ["assets/tokenizer/vocabulary.txt", "config.json", "metadata.json",
                     "model.weights.h5", "pretraining_config.json", "tokenizer.json"]
    written = json.loads((Path(out) / "config.json").read_text())
    assert written["registered_name"] == "keras_hub>ElectraBackbone"
    assert {k: written["config"][k] for k in ("vocab_size", "num_layers", "num_heads",
                                              "hidden_dim", "embedding_dim",
                                              "intermediate_dim", "max_sequence_length")} == \
        {"vocab_size": 64, "num_layers": 2, "num_heads": 4, "hidden_dim": 32,
         "embedding_dim": embedding_size, "intermediate_dim": 64, "max_sequence_length": 32}
    assert detect_format(out) == "keras_hub"

    tanh = loading.build_from_weights(loading.read_weights(out), TANH)
    assert_gelu_and_mapping(out, ours(models.discriminator), ours(tanh.discriminator))

    back = loading.read_weights(out)  # electra-tf -> keras-hub -> electra-tf: bit for bit
    assert back.format == "keras_hub"
    assert_same(encoder(values), back.values)
    assert back.hparams["model_hparam_overrides"]["num_attention_heads"] == 4
    assert back.hparams["model_hparam_overrides"]["hidden_act"] == "gelu"
    model = loading.build_from_weights(back)
    assert not model.has_discriminator_head and model.generator is None
    np.testing.assert_array_equal(ours(model.discriminator), ours(models.discriminator))

    # keras-hub's tokenizer of the written preset tokenizes as ours (lower case, accents).
    text = "The QUICK brown fox, naïve dog!"
    tokenizer = keras_hub.models.ElectraTokenizer.from_preset(str(out))
    ids = FullTokenizer(str(VOCAB), do_lower_case=True)
    assert np.asarray(tokenizer(text)).tolist() == ids.convert_tokens_to_ids(ids.tokenize(text))

    # The generator of the same models, as keras-hub's generator presets are.
    gen = kh_format.write(tmp_path / "kh_gen", values, config=config, network="generator")
    gen_values = loading.read_weights(gen).values
    assert gen_values["electra/encoder/layer_0/attention/self/query/kernel"].shape == (16, 16)
    np.testing.assert_array_equal(
        gen_values["electra/encoder/layer_1/output/dense/kernel"],
        values["generator/encoder/layer_1/output/dense/kernel"])
    np.testing.assert_array_equal(gen_values["electra/embeddings/word_embeddings"],
                                  values["electra/embeddings/word_embeddings"])


def test_a_preset_keras_hub_wrote_reads_exactly(tmp_path):
    backbone = keras_hub.models.ElectraBackbone(
        vocab_size=64, num_layers=2, num_heads=2, hidden_dim=32, embedding_dim=16,
        intermediate_dim=48, max_sequence_length=40)
    rng = np.random.default_rng(5)
    for weight in backbone.weights:
        weight.assign(rng.normal(0, 0.2, weight.shape).astype(np.float32))
    backbone.save_to_preset(str(tmp_path / "kh"))
    keras_hub.models.ElectraTokenizer(vocabulary=str(VOCAB), lowercase=True).save_to_preset(
        str(tmp_path / "kh"))
    assert detect_format(tmp_path / "kh") == "keras_hub"
    assert hf.matches(str(tmp_path / "kh"))  # why keras_hub is detected first

    weights = loading.read_weights(tmp_path / "kh")
    by_path = {w.path: w.numpy() for w in backbone.weights}
    config = loading.config_for_weights(weights, None).discriminator_config()
    assert (config.num_attention_heads, config.intermediate_size,
            config.max_position_embeddings) == (2, 48, 40)
    mapped = kh_format.weight_map(config)
    assert sorted(set(by_path) - set(mapped)) == ["pooled_dense/bias", "pooled_dense/kernel"]
    for path, (original, _, shape) in mapped.items():  # weights equal after the reshape
        np.testing.assert_array_equal(weights.values[original], by_path[path].reshape(shape))
    assert weights.vocab_file.endswith("assets/tokenizer/vocabulary.txt")
    assert weights.hparams["do_lower_case"] is True

    exact = loading.build_from_weights(weights)
    tanh = loading.build_from_weights(loading.read_weights(tmp_path / "kh"), TANH)
    assert exact.discriminator.config.hidden_act == "gelu"
    assert_gelu_and_mapping(tmp_path / "kh", ours(exact.discriminator), ours(tanh.discriminator))

    # Older files whose groups carry no layer names map by keras' automatic names.
    shutil.copytree(tmp_path / "kh", tmp_path / "unnamed")
    with h5py.File(tmp_path / "unnamed" / "model.weights.h5", "a") as f:
        f.visititems(lambda _, obj: obj.attrs.pop("name", None)
                     if isinstance(obj, h5py.Group) else None)
    assert_same(weights.values, loading.read_weights(tmp_path / "unnamed").values)

    # keras-hub users' spelling on our Keras models, from a keras-hub directory.
    np.testing.assert_array_equal(
        ElectraBackbone.from_preset(str(tmp_path / "kh"))({
            "input_ids": IDS, "input_mask": MASK, "segment_ids": SEGMENTS})["sequence_output"],
        ours(exact.discriminator))
    classifier = ElectraClassifier.from_preset(str(tmp_path / "kh"), num_classes=2,
                                               sequence_length=16)
    assert classifier.predict(["the quick brown fox"], verbose=0).shape == (1, 2)


def test_hf_to_ours_to_keras_hub(tmp_path):
    config, models = random_models()
    hf.write_hf_directory(models, tmp_path / "hf", str(VOCAB))
    from_hf = loading.load_pretrained(tmp_path / "hf")
    written = convert.convert(tmp_path / "hf", tmp_path / "kh", "keras_hub")
    assert list(written.values()) == [
        "keras-hub ElectraBackbone preset of the hf discriminator + generator; the "
        "replaced-token detection head and the generator not written (a keras-hub "
        "ElectraBackbone is one encoder)"]
    hf_values = hf.read(tmp_path / "hf").values
    assert_same(encoder(hf_values), loading.read_weights(tmp_path / "kh").values)
    tanh = loading.build_from_weights(loading.read_weights(tmp_path / "kh"), TANH)
    assert_gelu_and_mapping(tmp_path / "kh", ours(from_hf.discriminator),
                            ours(tanh.discriminator))
    # keras-hub -> tf1 names the source as a keras-hub preset.
    back = convert.convert(tmp_path / "kh", tmp_path / "tf1", "tf1")
    assert list(back.values()) == ["TF1 checkpoint of the keras-hub preset discriminator "
                                   "(no head)"]
    assert_same(encoder(hf_values), loading.read_weights(tmp_path / "tf1").values)


def test_convert_command_line_knows_keras_hub(tmp_path, capsys):
    _, models = random_models()
    hf.write_hf_directory(models, tmp_path / "hf", str(VOCAB), kind="discriminator")
    assert convert.main(["convert", f"--input={tmp_path / 'hf'}",
                         f"--output={tmp_path / 'kh'}", "--to=keras_hub"]) == 0
    assert "keras-hub ElectraBackbone preset of the hf discriminator" in capsys.readouterr().out
    assert convert.main(["convert", f"--input={tmp_path / 'hf'}",
                         f"--output={tmp_path / 'x'}", "--to=onnx"]) == 1
    assert "--to must be one of tf1, hf, keras, keras_hub" in capsys.readouterr().err


def edit(path: Path, **changes):
    data = json.loads((path / "config.json").read_text())
    data["config"].update(changes)
    (path / "config.json").write_text(json.dumps(data))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    config, models = random_models()
    path = tmp_path_factory.mktemp("kh") / "kh"
    kh_format.write(path, {n: v.numpy() for n, v in models.original_variables().items()},
                    config=config, vocab_file=str(VOCAB))
    return path


@pytest.mark.parametrize("changes,pattern", [
    ({"hidden_dim": 48}, r"model\.weights\.h5 does not match .*config\.json \(vocab_size=64, "
     r".*hidden_dim=48.*\): embeddings_projection/kernel has shape \[16, 32\], config\.json "
     r"implies \[16, 48\];.*transformer_layer_0/self_attention_layer/query/kernel has shape "
     r"\[32, 4, 8\], config\.json implies \[48, 4, 12\] \(and \d+ more\)\. The weights "
     r"were saved with another config"),
    ({"intermediate_dim": 65}, r"feedforward_intermediate_dense/kernel has shape \[32, 64\], "
     r"config\.json implies \[32, 65\]"),
    ({"num_layers": 3}, r"it lacks 16 weight\(s\) \(transformer_layer_2/"),
    ({"num_heads": 5}, r"config\.json: hidden_size 32 is not divisible by num_attention_heads 5"),
    ({"num_heads": "4"}, r"num_heads must be a positive integer, got '4'"),
])
def test_a_tampered_config_is_one_line(tmp_path, written, changes, pattern):
    path = tmp_path / "kh"
    shutil.copytree(written, path)
    edit(path, **changes)
    with pytest.raises(CheckpointError, match=pattern) as e:
        loading.read_weights(path)
    assert "\n" not in str(e.value)


def test_other_broken_presets_are_one_line(tmp_path, written):
    other = tmp_path / "bert"
    shutil.copytree(written, other)
    data = json.loads((other / "config.json").read_text())
    data["registered_name"] = "keras_hub>BertBackbone"
    (other / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"is a keras-hub BertBackbone preset, not an "
                       r"ElectraBackbone"):
        loading.read_weights(other)
    bare = tmp_path / "bare"
    shutil.copytree(written, bare)
    (bare / "model.weights.h5").unlink()
    with pytest.raises(CheckpointError, match=r"no model\.weights\.h5 in .*bare: not a complete"):
        loading.read_weights(bare)


def test_writer_errors_are_one_line(tmp_path, monkeypatch):
    config, models = random_models(model_hparam_overrides={
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 64, "max_position_embeddings": 32, "hidden_act": "relu"})
    values = {n: v.numpy() for n, v in models.original_variables().items()}
    with pytest.raises(CheckpointError, match="hidden_act 'relu' cannot be written"):
        kh_format.write(tmp_path / "relu", values, config=config)
    config, models = random_models()
    values = {n: v.numpy() for n, v in models.original_variables().items()}
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # not installed
    with pytest.raises(CheckpointError) as e:
        kh_format.write(tmp_path / "none", values, config=config)
    assert str(e.value) == (f"writing a keras-hub preset ({tmp_path / 'none'}) needs "
                            'keras-hub: pip install "electra-tf[keras-hub]"')
    assert not (tmp_path / "none").exists()
