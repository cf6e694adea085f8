"""Every writer stores the model's config and vocab; readers use them, guess only what is
certain, and never load a generator as a discriminator backbone (issue 22, item 5).

A checkpoint written from Keras must reload as the same model: a 144-wide 4-head model
must not come back with the 144 // 64 = 2 heads of the released sizes' rule.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import DATA

from electra_tf import (CheckpointError, PretrainingConfig, build_pretraining_models,
                        checkpoints, infer_pretraining_config, loading,
                        save_original_checkpoint)
from electra_tf.config import TransformerConfig
from electra_tf.formats import hf
from electra_tf.formats import keras as keras_format
from electra_tf.formats import tf1
from electra_tf.models import ElectraBackbone, ElectraClassifier

V, E = 40, 16
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(20)]
FEATURES = {"input_ids": np.array([[2, 7, 9, 11, 3, 0], [2, 5, 3, 8, 3, 0]], np.int32),
            "input_mask": np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 0]], np.int32),
            "segment_ids": np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0]], np.int32)}
HEADS_4 = {"model_hparam_overrides": {"num_attention_heads": 4}}


@pytest.fixture
def vocab(tmp_path):
    path = tmp_path / "the_vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return str(path)


def transformer_config(**changes):
    """144 wide with 4 heads: not what max(1, H // 64) = 2 of the released sizes gives."""
    values = dict(vocab_size=V, hidden_size=144, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=576, hidden_act="gelu", hidden_dropout_prob=0.1,
                  attention_probs_dropout_prob=0.1, max_position_embeddings=512,
                  type_vocab_size=2, initializer_range=0.02, embedding_size=E)
    return TransformerConfig(**{**values, **changes})


def classifier(seed=3):
    tf.keras.utils.set_random_seed(seed)
    model = ElectraClassifier(ElectraBackbone(transformer_config(), model_size="base"),
                              num_classes=3, task_name="sst")
    model.build()
    return model


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


def pretraining_config(positions=512, **hparams):
    """64 wide with 4 heads (the rule would give 1); generator 32 wide (1 head, I = 128)."""
    return PretrainingConfig.from_preset("small", {
        "vocab_size": V, "embedding_size": E, "max_seq_length": min(32, positions),
        "generator_hidden_size": 0.5,
        "model_hparam_overrides": {"hidden_size": 64, "num_hidden_layers": 2,
                                   "num_attention_heads": 4, "intermediate_size": 128,
                                   "max_position_embeddings": positions}, **hparams})


def write_bare_tf1(prefix, values):
    """A TF1-name checkpoint written with TensorFlow alone: no config, no vocab beside it."""
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(values[n]) for n in names])
    return prefix


# ---------------------------------------------------------------------------
# A Keras model written by each writer reloads as the same model
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("writer", ["save_original_checkpoint", "tf1", "keras"])
def test_keras_classifier_written_by_each_writer_reloads_with_its_four_heads(
        tmp_path, writer, vocab):
    model = classifier()
    logits = model(FEATURES).numpy()
    out = tmp_path / "out"
    if writer == "save_original_checkpoint":  # the call of the report, as it was then
        save_original_checkpoint(str(out / "model.ckpt-1"), model)
    else:
        module = tf1 if writer == "tf1" else keras_format
        module.write(str(out), checkpoints.original_values(model),
                     config=checkpoints.config_of_models(model), vocab_file=vocab)
    reloaded = ElectraClassifier.from_pretrained(str(out), num_classes=3, task_name="sst",
                                                 preprocessor=False)
    assert max_diff(reloaded(FEATURES), logits) == 0.0
    assert reloaded.backbone.config == model.backbone.config
    assert reloaded.backbone.model_size == "base"  # its fine-tuning defaults
    weights = loading.read_weights(str(out))
    assert weights.hparams["model_hparam_overrides"]["num_attention_heads"] == 4


def test_keras_backbone_written_as_transformers_directory_reloads_with_its_heads(
        tmp_path, vocab):
    model = classifier()
    expected = model.backbone(FEATURES)["sequence_output"].numpy()
    with pytest.raises(CheckpointError, match=r"task_specific/sst.*model\.backbone"):
        hf.write_hf_directory(model, tmp_path / "with_head", vocab)
    written = hf.write_hf_directory(model.backbone, tmp_path / "hf", vocab)
    assert list(written.values()) == ["ElectraModel"]
    assert json.loads((tmp_path / "hf" / "config.json").read_text())[
        "num_attention_heads"] == 4
    reloaded = ElectraBackbone.from_pretrained(str(tmp_path / "hf"))
    assert reloaded.config == model.backbone.config
    assert max_diff(reloaded(FEATURES)["sequence_output"], expected) == 0.0


@pytest.mark.parametrize("hparams", [
    {}, {"untied_generator_embeddings": True},
    {"electric_objective": True, "electra_objective": False},
    {"electra_objective": False},  # MLM-only: one full-size network under electra/
    {"uniform_generator": True},   # discriminator only
    {"debug": True},               # the original's debug transformer: 144 wide, 4 heads
], ids=["electra", "untied", "electric", "mlm_only", "discriminator_only", "debug"])
def test_every_pretraining_variant_reloads_with_its_config(tmp_path, hparams):
    config = pretraining_config(**hparams)
    models = build_pretraining_models(config)
    save_original_checkpoint(str(tmp_path / "ckpt" / "model.ckpt-2"), *models.models)
    model = loading.load_pretrained(str(tmp_path / "ckpt"))
    assert model.config.discriminator_config() == config.discriminator_config()
    if models.generator is not None and models.discriminator is not None:
        assert model.config.generator_config() == config.generator_config()
        assert type(model.generator) is type(models.generator)
    assert model.weights.vocab_file is None
    expected = checkpoints.original_values(*models.models)
    got = checkpoints.original_values(*model.models)
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_config_given_to_save_original_checkpoint_is_written_and_must_fit_the_models(
        tmp_path, vocab):
    config = pretraining_config(do_lower_case=False)
    models = build_pretraining_models(config)
    save_original_checkpoint(str(tmp_path / "full" / "model.ckpt-1"), *models.models,
                             config=config, vocab_file=vocab)
    written = json.loads((tmp_path / "full" / "pretraining_config.json").read_text())
    assert written == config.to_dict()
    assert (tmp_path / "full" / "vocab.txt").read_text() == "\n".join(VOCAB) + "\n"
    weights = loading.read_weights(str(tmp_path / "full"))
    assert weights.hparams["do_lower_case"] is False

    wrong = pretraining_config(model_hparam_overrides={
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 128, "max_position_embeddings": 48})
    with pytest.raises(CheckpointError) as e:
        save_original_checkpoint(str(tmp_path / "wrong" / "model.ckpt-1"), *models.models,
                                 config=wrong)
    message = one_line_error(e)
    assert "num_attention_heads" in message and "pretraining_config.json" in message
    assert not (tmp_path / "wrong").exists() or not os.listdir(tmp_path / "wrong")

    save_original_checkpoint(str(tmp_path / "bare" / "model.ckpt-1"), *models.models,
                             config=False)
    assert sorted(os.listdir(tmp_path / "bare")) == [
        "checkpoint", "model.ckpt-1.data-00000-of-00001", "model.ckpt-1.index"]


@pytest.mark.parametrize("module", [tf1, keras_format], ids=["tf1", "keras"])
def test_format_writers_refuse_a_config_that_does_not_fit_the_weights(tmp_path, module):
    config = pretraining_config()
    values = checkpoints.original_values(*build_pretraining_models(config).models)
    other = pretraining_config(model_hparam_overrides={"hidden_size": 128,
                                                       "num_hidden_layers": 2})
    with pytest.raises(CheckpointError) as e:
        module.write(str(tmp_path / "out"), values, config=other)
    message = one_line_error(e)
    assert "hidden_size" in message and "128" in message
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------
# A checkpoint without config: only certain guesses
# ---------------------------------------------------------------------------

def test_bare_checkpoint_of_an_unreleased_shape_needs_the_head_count(tmp_path):
    config = pretraining_config(positions=48)  # < the preset's max_seq_length 128
    models = build_pretraining_models(config)
    write_bare_tf1(str(tmp_path / "bare" / "model.ckpt-5"),
                   checkpoints.original_values(*models.models))
    path = str(tmp_path / "bare")
    for load in (loading.load_pretrained, infer_pretraining_config,
                 ElectraBackbone.from_pretrained):
        with pytest.raises(CheckpointError) as e:
            load(path)
        message = one_line_error(e)
        assert "num_attention_heads" in message and "model_size" in message, message
        assert path in message

    for load in (lambda: loading.load_pretrained(path, HEADS_4).config,
                 lambda: infer_pretraining_config(path, HEADS_4)):
        got = load()
        assert got.discriminator_config() == config.discriminator_config()
        assert got.generator_config() == config.generator_config()
    backbone = ElectraBackbone.from_pretrained(path, hparams=HEADS_4)
    assert backbone.config == config.discriminator_config()
    # An explicit model_size accepts the released sizes' rule max(1, H // 64).
    assert infer_pretraining_config(path, {"model_size": "small"}) \
        .discriminator_config().num_attention_heads == 1


@pytest.mark.parametrize("size,hidden,layers,heads", [
    ("small", 256, 12, 4), ("base", 768, 12, 12), ("large", 1024, 24, 16)])
def test_released_shapes_still_give_their_head_counts(size, hidden, layers, heads):
    """Google's releases carry no config: their shapes determine the heads (and G's)."""
    shapes = {"electra/embeddings/word_embeddings": [30522, 128 if size == "small" else hidden],
              "electra/encoder/layer_0/attention/self/query/kernel": [hidden, hidden],
              "electra/encoder/layer_0/intermediate/dense/kernel": [hidden, 4 * hidden],
              f"electra/encoder/layer_{layers - 1}/output/dense/bias": [hidden],
              "generator/encoder/layer_0/attention/self/query/kernel": [256, 256],
              f"generator/encoder/layer_{layers - 1}/output/dense/bias": [256]}
    config = checkpoints.infer_pretraining_config_from_shapes(shapes, "release")
    assert config.model_size == size
    assert config.discriminator_config().num_attention_heads == heads
    assert config.generator_config().num_attention_heads == 4


def test_bare_checkpoint_of_the_released_small_shape_loads(tmp_path):
    config = PretrainingConfig.from_preset("small", {"vocab_size": V, "uniform_generator": True})
    models = build_pretraining_models(config)
    write_bare_tf1(str(tmp_path / "electra_small" / "electra_small"),
                   checkpoints.original_values(models.discriminator))
    backbone = ElectraBackbone.from_pretrained(str(tmp_path / "electra_small"))
    assert backbone.config == config.discriminator_config()
    assert backbone.config.num_attention_heads == 4


def test_hparams_merge_into_the_stored_model_overrides(tmp_path):
    config = pretraining_config()
    values = checkpoints.original_values(*build_pretraining_models(config).models)
    tf1.write(str(tmp_path / "out"), values, config=config)
    weights = loading.read_weights(str(tmp_path / "out"))
    got = loading.config_for_weights(
        weights, {"model_hparam_overrides": {"hidden_dropout_prob": 0.0}})
    assert got.discriminator_config() == config.discriminator_config().replace(
        hidden_dropout_prob=0.0)


# ---------------------------------------------------------------------------
# The vocab beside the weights
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("with_vocab", [True, False], ids=["vocab", "no_vocab"])
@pytest.mark.parametrize("writer", ["save_original_checkpoint", "tf1", "keras", "hf",
                                    "hf_pair"])
def test_vocab_file_is_set_exactly_when_a_vocab_is_beside_the_weights(
        tmp_path, vocab, writer, with_vocab):
    config = pretraining_config()
    models = build_pretraining_models(config)
    given = vocab if with_vocab else None
    out = tmp_path / "out"
    if writer == "save_original_checkpoint":
        save_original_checkpoint(str(out / "model.ckpt-1"), *models.models, vocab_file=given)
    elif writer in ("tf1", "keras"):
        module = tf1 if writer == "tf1" else keras_format
        module.write(str(out), checkpoints.original_values(*models.models), config=config,
                     vocab_file=given)
    else:
        hf.write_hf_directory(models, out, given,
                              kind="both" if writer == "hf_pair" else "discriminator")
    weights = loading.read_weights(str(out))
    if with_vocab:
        assert weights.vocab_file and os.path.isfile(weights.vocab_file)
        with open(weights.vocab_file, encoding="utf-8") as f:
            assert f.read().split() == VOCAB
    else:
        assert weights.vocab_file is None


# ---------------------------------------------------------------------------
# A generator is not a discriminator backbone
# ---------------------------------------------------------------------------

def test_transformers_generator_is_refused_as_a_backbone(tmp_path):
    generator = DATA / "hf_interop" / "pair" / "generator"
    with pytest.raises(CheckpointError) as e:
        ElectraBackbone.from_pretrained(str(generator))
    message = one_line_error(e)
    assert "ElectraForMaskedLM" in message and "generator" in message
    assert "ElectraForPreTraining" in message  # what to pass instead
    # Read as what it is, it still loads: the masked-LM network (scoring's --method=mlm).
    model = loading.load_pretrained(str(generator))
    assert model.discriminator is None and model.generator is not None
    # The pair it comes with gives the discriminator.
    backbone = ElectraBackbone.from_pretrained(str(DATA / "hf_interop" / "pair"))
    disc_config = json.loads((DATA / "hf_interop" / "pair" / "discriminator" / "config.json")
                             .read_text())
    assert backbone.config.hidden_size == disc_config["hidden_size"]


def test_generator_only_tf1_checkpoint_is_named_when_read_as_a_backbone(tmp_path):
    models = build_pretraining_models(pretraining_config())
    save_original_checkpoint(str(tmp_path / "gen_only" / "model.ckpt-1"), models.generator)
    weights = loading.read_weights(str(tmp_path / "gen_only"))
    with pytest.raises(CheckpointError) as e:
        loading.config_for_weights(weights, None)
    message = one_line_error(e)
    assert "generator/" in message and "discriminator" in message
    with pytest.raises(CheckpointError):
        ElectraBackbone.from_pretrained(str(tmp_path / "gen_only"))
