"""Checkpoints in the original TF1 name scheme (spec 7).

Round trip, independent TF1 files, errors.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import (CheckpointError, PretrainingConfig, build_pretraining_models,
                        infer_pretraining_config, load_original_checkpoint,
                        save_original_checkpoint)
from electra_tf.formats.files import latest_complete_checkpoint, read_checkpoint_shapes, run_checkpoints, write_state_file

V, E, H, LAYERS, G = 40, 16, 32, 2, 32  # G == H: the released small's generator fraction 1.0


def spec_names(v, e, h, layers, g, gen_layers, intermediate=None, gen_intermediate=None):
    """{name: shape} of a default (tied) ELECTRA pre-training checkpoint, from spec 7.1/7.2."""
    i, gi = intermediate or 4 * h, gen_intermediate or 4 * g
    names = {"electra/embeddings/word_embeddings": [v, e],
             "electra/embeddings/position_embeddings": [512, e],
             "electra/embeddings/token_type_embeddings": [2, e],
             "electra/embeddings/LayerNorm/gamma": [e], "electra/embeddings/LayerNorm/beta": [e]}

    def encoder(scope, width, inner, depth):
        if e != width:
            names[f"{scope}/embeddings_project/kernel"] = [e, width]
            names[f"{scope}/embeddings_project/bias"] = [width]
        for k in range(depth):
            p = f"{scope}/encoder/layer_{k}"
            for part in ("query", "key", "value"):
                names[f"{p}/attention/self/{part}/kernel"] = [width, width]
                names[f"{p}/attention/self/{part}/bias"] = [width]
            names[f"{p}/attention/output/dense/kernel"] = [width, width]
            names[f"{p}/attention/output/dense/bias"] = [width]
            names[f"{p}/intermediate/dense/kernel"] = [width, inner]
            names[f"{p}/intermediate/dense/bias"] = [inner]
            names[f"{p}/output/dense/kernel"] = [inner, width]
            names[f"{p}/output/dense/bias"] = [width]
            for ln in ("attention/output/LayerNorm", "output/LayerNorm"):
                names[f"{p}/{ln}/gamma"] = [width]
                names[f"{p}/{ln}/beta"] = [width]

    encoder("electra", h, i, layers)
    encoder("generator", g, gi, gen_layers)
    names.update({
        "generator_predictions/dense/kernel": [g, e], "generator_predictions/dense/bias": [e],
        "generator_predictions/LayerNorm/gamma": [e], "generator_predictions/LayerNorm/beta": [e],
        "generator_predictions/output_bias": [v],
        "discriminator_predictions/dense/kernel": [h, h],
        "discriminator_predictions/dense/bias": [h],
        "discriminator_predictions/dense_1/kernel": [h, 1],
        "discriminator_predictions/dense_1/bias": [1]})
    return names


def write_tf1_checkpoint(prefix, values, extras=True):
    """Writes a checkpoint the TF1 way (graph-mode variables + Saver), independent of electra_tf."""
    with tf.Graph().as_default():
        variables = [tf.compat.v1.get_variable(n, initializer=tf.constant(a))
                     for n, a in values.items()]
        if extras:  # what released/original checkpoints also hold (spec 7.2)
            for n, a in list(values.items())[:5]:
                tf.compat.v1.get_variable(n + "/adam_m", initializer=tf.zeros_like(a))
                tf.compat.v1.get_variable(n + "/adam_v", initializer=tf.zeros_like(a))
            tf.compat.v1.get_variable("generator_predictions/temperature", initializer=1.0)
            tf.compat.v1.get_variable("some/unrelated_variable", initializer=[1.0, 2.0])
            tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, prefix, global_step=1000)
    del variables


def random_values(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {n: rng.normal(0, 0.05, s).astype(np.float32) for n, s in shapes.items()}


def released_like_config(**hparams):
    """A small-shaped config (V, E, H, LAYERS above) with the released generator fraction 1.0."""
    return PretrainingConfig.from_preset("small", {
        "vocab_size": V, "embedding_size": E, "generator_hidden_size": G / H,
        "model_hparam_overrides": {"hidden_size": H, "num_hidden_layers": LAYERS}, **hparams})


def inputs():
    return {"input_ids": tf.constant([[2, 5, 7, 9, 3, 0]]),
            "input_mask": tf.constant([[1, 1, 1, 1, 1, 0]]),
            "segment_ids": tf.constant([[0, 0, 0, 1, 1, 0]])}


def outputs(models):
    x = inputs()
    return (models.discriminator(x)["logits"].numpy(),
            models.generator({**x, "masked_lm_positions": tf.constant([[1, 3]])})["logits"].numpy())


def test_round_trip_gives_identical_outputs(tmp_path):
    config = released_like_config()
    source = build_pretraining_models(config)
    prefix = save_original_checkpoint(str(tmp_path / "ckpt" / "model.ckpt-7"), *source.models,
                                      global_step=7)
    shapes = read_checkpoint_shapes(str(tmp_path / "ckpt"))
    assert shapes["global_step"] == []
    assert {n: s for n, s in shapes.items() if n != "global_step"} == \
        spec_names(V, E, H, LAYERS, G, LAYERS)
    assert tf.train.latest_checkpoint(str(tmp_path / "ckpt")) == prefix
    assert not [f for f in os.listdir(tmp_path / "ckpt") if f.startswith(".tmp")]

    target = build_pretraining_models(config)  # fresh random init
    assert not np.allclose(outputs(source)[0], outputs(target)[0])
    report = load_original_checkpoint(str(tmp_path / "ckpt"), *target.models)
    assert len(report.loaded) == len(shapes) - 1 and report.unused == []
    for ours, theirs in zip(outputs(source), outputs(target)):
        np.testing.assert_array_equal(ours, theirs)


def test_independent_tf1_checkpoint_loads_by_name(tmp_path):
    shapes = spec_names(V, E, H, LAYERS, G, LAYERS)
    values = random_values(shapes)
    prefix = write_tf1_checkpoint(str(tmp_path / "electra_small"), values)
    models = build_pretraining_models(released_like_config())
    report = load_original_checkpoint(prefix, *models.models)
    assert sorted(report.loaded) == sorted(shapes)
    assert report.unused == ["some/unrelated_variable"]  # slots, step, temperature: ignored
    disc, gen = models.discriminator, models.generator
    checks = {
        "electra/embeddings/word_embeddings": gen.encoder.embeddings.word_embeddings,
        "electra/embeddings/LayerNorm/gamma": disc.encoder.embeddings.layer_norm.gamma,
        "electra/encoder/layer_1/attention/self/key/kernel":
            disc.encoder.transformer_layers[1].key.kernel,
        "electra/encoder/layer_0/output/dense/bias":
            disc.encoder.transformer_layers[0].output_dense.bias,
        "generator/encoder/layer_1/intermediate/dense/kernel":
            gen.encoder.transformer_layers[1].intermediate.kernel,
        "discriminator_predictions/dense_1/kernel": disc.head.dense_1.kernel,
        "generator_predictions/output_bias": gen.head.output_bias,
    }
    for name, variable in checks.items():
        np.testing.assert_array_equal(variable.numpy(), values[name], err_msg=name)


# A bare checkpoint of no released size does not tell its head count: hparams give it.
ONE_HEAD = {"model_hparam_overrides": {"num_attention_heads": 1}}


def test_generator_size_is_inferred_from_shapes(tmp_path):
    prefix = write_tf1_checkpoint(str(tmp_path / "m"),
                                  random_values(spec_names(V, E, H, LAYERS, G, LAYERS)))
    with pytest.raises(CheckpointError, match="num_attention_heads"):
        infer_pretraining_config(prefix)
    config = infer_pretraining_config(prefix, ONE_HEAD)
    assert config.generator_hidden_size == 1.0 and config.generator_layers == 1.0
    assert config.generator_config().hidden_size == G
    assert config.discriminator_config().hidden_size == H
    assert (config.vocab_size, config.embedding_size) == (V, E)
    load_original_checkpoint(prefix, *build_pretraining_models(config).models)

    # A base-like generator (fraction 1/3 of 48 = 16) with half the depth.
    prefix = write_tf1_checkpoint(str(tmp_path / "b"),
                                  random_values(spec_names(V, E, 48, 2, 16, 1)), extras=False)
    config = infer_pretraining_config(prefix, ONE_HEAD)
    assert config.generator_config().hidden_size == 16
    assert config.generator_config().num_hidden_layers == 1
    load_original_checkpoint(prefix, *build_pretraining_models(config).models)


def test_shape_mismatch_names_the_variable_and_both_shapes(tmp_path):
    prefix = write_tf1_checkpoint(str(tmp_path / "m"),
                                  random_values(spec_names(V, E, H, LAYERS, G, LAYERS)))
    models = build_pretraining_models(released_like_config(generator_hidden_size=0.5))
    before = models.discriminator.encoder.embeddings.word_embeddings.numpy()
    with pytest.raises(CheckpointError) as e:
        load_original_checkpoint(prefix, *models.models)
    assert ("shape mismatch for generator/encoder/layer_0/attention/self/query/kernel: "
            "checkpoint has [32, 32], model expects [16, 16]") in str(e.value)
    # nothing was assigned
    np.testing.assert_array_equal(models.discriminator.encoder.embeddings.word_embeddings, before)


def test_missing_variable_is_named_unless_allowed(tmp_path):
    shapes = spec_names(V, E, H, LAYERS, G, LAYERS)
    disc_only = {n: s for n, s in shapes.items() if n.startswith(("electra/", "discriminator"))}
    prefix = write_tf1_checkpoint(str(tmp_path / "d"), random_values(disc_only), extras=False)
    models = build_pretraining_models(released_like_config())
    with pytest.raises(CheckpointError,
                       match="missing from checkpoint: generator/encoder/layer_0/.*model expects"):
        load_original_checkpoint(prefix, *models.models)
    report = load_original_checkpoint(prefix, models.discriminator)
    assert len(report.loaded) == len(disc_only)
    report = load_original_checkpoint(prefix, *models.models,
                                      allow_missing=[r"^generator(_predictions)?/"])
    assert report.missing_allowed and all(n.startswith("generator") for n in report.missing_allowed)


@pytest.mark.parametrize("make,pattern", [
    (lambda d: str(d / "nope"), "checkpoint not found"),
    (lambda d: str(d), "no checkpoint in directory"),
])
def test_missing_checkpoint_errors(tmp_path, make, pattern):
    models = build_pretraining_models(released_like_config())
    with pytest.raises(CheckpointError, match=pattern):
        load_original_checkpoint(make(tmp_path), *models.models)


def test_corrupt_checkpoint_is_one_clear_error(tmp_path):
    (tmp_path / "bad.index").write_bytes(b"this is not a checkpoint index")
    (tmp_path / "bad.data-00000-of-00001").write_bytes(b"\0" * 10)
    models = build_pretraining_models(released_like_config())
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*bad"):
        load_original_checkpoint(str(tmp_path / "bad"), *models.models)


def test_release_directory_without_state_file(tmp_path):
    """Release archives unzip to a directory; a lone <name>.index is found without `checkpoint`."""
    values = random_values(spec_names(V, E, H, LAYERS, G, LAYERS))
    write_tf1_checkpoint(str(tmp_path / "electra_small" / "electra_small"), values, extras=False)
    os.remove(tmp_path / "electra_small" / "checkpoint")
    models = build_pretraining_models(released_like_config())
    load_original_checkpoint(str(tmp_path / "electra_small"), *models.models)
    np.testing.assert_array_equal(models.generator.head.output_bias.numpy(),
                                  values["generator_predictions/output_bias"])


def test_run_checkpoints_and_latest_complete_checkpoint_agree(tmp_path):
    values = {"w": np.arange(3, dtype=np.float32)}
    for step in (10, 2, 7):
        save_original_checkpoint(str(tmp_path / f"ckpt-{step}"), variables=values)
    (tmp_path / "ckpt-7.data-00000-of-00001").unlink()  # an interrupted save
    (tmp_path / "ckpt-x.index").write_text("")           # not a step: ignored
    found = run_checkpoints(str(tmp_path), complete_only=False)
    assert found == [(2, str(tmp_path / "ckpt-2")), (7, str(tmp_path / "ckpt-7")),
                     (10, str(tmp_path / "ckpt-10"))]
    assert run_checkpoints(str(tmp_path)) == [found[0], found[2]]
    assert latest_complete_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-10")
    (tmp_path / "ckpt-10.index").unlink()
    assert latest_complete_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-2")
    assert run_checkpoints(str(tmp_path)) == [found[0]]
    assert run_checkpoints(str(tmp_path / "missing")) == []


def test_state_file_lists_what_it_keeps_as_tensorflow_reads_it(tmp_path):
    values = {"w": np.arange(3, dtype=np.float32)}
    prefixes = [save_original_checkpoint(str(tmp_path / f"ckpt-{step}"), variables=values)
                for step in (1, 2, 3)]
    write_state_file(str(tmp_path), prefixes[2], kept=prefixes[1:], timestamps=True)
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert state.model_checkpoint_path == prefixes[2]
    assert list(state.all_model_checkpoint_paths) == prefixes[1:]
    stamps = list(state.all_model_checkpoint_timestamps)  # TF's stat: whole seconds here
    assert len(stamps) == 2 and all(
        abs(t - os.stat(p + ".index").st_mtime) < 1.0 for t, p in zip(stamps, prefixes[1:]))
    write_state_file(str(tmp_path), prefixes[0])  # the default: the one checkpoint
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert list(state.all_model_checkpoint_paths) == [prefixes[0]]
    assert not state.all_model_checkpoint_timestamps
