"""Config presets, override order and derivations (spec 1.1, 1.3, 1.4, 1.5)."""

import json

import pytest

from electra_tf.config import ConfigError, PretrainingConfig, TransformerConfig, load_preset


def dims(c: TransformerConfig):
    return (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size,
            c.embedding_size)


@pytest.mark.parametrize("size,expected", [
    ("small", (256, 12, 4, 1024, 128)),   # spec 1.3 table
    ("base", (768, 12, 12, 3072, 768)),
    ("large", (1024, 24, 16, 4096, 1024)),
])
def test_size_presets(size, expected):
    c = PretrainingConfig.from_preset(size).discriminator_config()
    assert dims(c) == expected
    assert (c.hidden_act, c.hidden_dropout_prob, c.attention_probs_dropout_prob,
            c.max_position_embeddings, c.type_vocab_size, c.initializer_range,
            c.vocab_size) == ("gelu", 0.1, 0.1, 512, 2, 0.02, 30522)


def test_pretraining_defaults_of_spec_1_1():
    c = PretrainingConfig.from_preset("small")
    assert (c.learning_rate, c.disc_weight, c.gen_weight, c.mask_prob) == (5e-4, 50.0, 1.0, 0.15)
    assert (c.num_warmup_steps, c.num_train_steps, c.save_checkpoints_steps) == (
        10000, 1000000, 1000)
    assert (c.train_batch_size, c.max_seq_length, c.weight_decay_rate) == (128, 128, 0.01)
    assert (c.generator_hidden_size, c.generator_layers, c.temperature) == (0.25, 1.0, 1.0)
    assert c.electra_objective and not c.electric_objective and c.untied_generator
    assert not c.untied_generator_embeddings and not c.disallow_correct
    assert c.keep_checkpoint_max == 5 and c.num_eval_steps == 100
    # base/large keep the small optimisation defaults in the original code (spec 1.2).
    base = PretrainingConfig.from_preset("base")
    assert (base.learning_rate, base.train_batch_size, base.embedding_size) == (5e-4, 128, None)


@pytest.mark.parametrize("mask_prob,length,expected", [(0.15, 128, 19), (0.15, 512, 79),
                                                        (0.25, 512, 130)])
def test_max_predictions_per_seq_is_derived(mask_prob, length, expected):
    c = PretrainingConfig.from_preset("small", {"mask_prob": mask_prob, "max_seq_length": length})
    assert c.max_predictions_per_seq == expected


def test_max_predictions_per_seq_cannot_be_set():
    with pytest.raises(ConfigError, match="max_predictions_per_seq.*derived"):
        PretrainingConfig.from_preset("small", {"max_predictions_per_seq": 20})


def test_user_hparams_win_over_debug_and_implied_values():
    c = PretrainingConfig.from_preset("small", {"debug": True, "train_batch_size": 16})
    assert c.train_batch_size == 16 and c.num_train_steps == 20 and c.eval_batch_size == 4
    c = PretrainingConfig.from_preset("small", {"embedding_size": 64})
    assert c.discriminator_config().embedding_size == 64
    c = PretrainingConfig.from_preset("small", {"electric_objective": True,
                                                "electra_objective": False})
    assert c.two_tower_generator
    c = PretrainingConfig.from_preset("small", {"electric_objective": True,
                                                "two_tower_generator": False})
    assert not c.two_tower_generator  # the second user pass wins (spec 1.1 step 7)


def test_flag_overrides_apply_after_hparams():
    c = PretrainingConfig.from_preset("small", {"learning_rate": 1e-3}, learning_rate=2e-3)
    assert c.learning_rate == 2e-3


def test_model_hparam_overrides_are_applied_before_and_after_derivation():
    c = PretrainingConfig.from_preset("small", {"model_hparam_overrides": {"hidden_size": 512}})
    assert dims(c.discriminator_config())[:4] == (512, 12, 8, 2048)
    c = PretrainingConfig.from_preset(
        "small", {"model_hparam_overrides": {"hidden_size": 512, "num_attention_heads": 2,
                                             "intermediate_size": 100}})
    assert dims(c.discriminator_config())[:4] == (512, 12, 2, 100)
    with pytest.raises(ConfigError, match="hidden_sise.*did you mean hidden_size"):
        PretrainingConfig.from_preset("small", {"model_hparam_overrides": {"hidden_sise": 8}})


def test_debug_preset_overrides_the_transformer():
    c = PretrainingConfig.from_preset(
        "small", {"debug": True, "model_hparam_overrides": {"hidden_size": 512}})
    assert dims(c.discriminator_config()) == (144, 3, 4, 576, 128)
    g = c.generator_config()
    assert (g.hidden_size, g.num_attention_heads, g.intermediate_size, g.num_hidden_layers) == \
        (36, 1, 144, 3)
    assert (c.train_batch_size, c.num_train_steps, c.eval_batch_size, c.iterations_per_loop,
            c.num_eval_steps) == (8, 20, 4, 1, 2)


@pytest.mark.parametrize("size,fraction,layers_fraction,expected", [
    ("small", 0.25, 1.0, (64, 12, 1, 256, 128)),     # spec 1.4 examples
    ("small", 1.0, 1.0, (256, 12, 4, 1024, 128)),
    ("base", 1 / 3, 1.0, (256, 12, 4, 1024, 768)),
    ("large", 0.25, 1.0, (256, 24, 4, 1024, 1024)),
    ("small", 0.25, 0.5, (64, 6, 1, 256, 128)),
])
def test_generator_derivation(size, fraction, layers_fraction, expected):
    c = PretrainingConfig.from_preset(size, {"generator_hidden_size": fraction,
                                             "generator_layers": layers_fraction})
    assert dims(c.generator_config()) == expected


def test_untied_generator_embeddings_use_generator_width():
    c = PretrainingConfig.from_preset("small", {"untied_generator_embeddings": True})
    assert c.generator_config().embedding_size == 64


def test_unknown_key_names_it_and_close_matches():
    with pytest.raises(ConfigError) as e:
        PretrainingConfig.from_preset("small", {"mask_porb": 0.2})
    assert "'mask_porb'" in str(e.value) and "did you mean mask_prob" in str(e.value)


def test_hparams_from_json_file_and_string(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"learning_rate": 3e-4, "model_size": "base"}))
    c = PretrainingConfig.from_preset("small", str(path))
    assert c.learning_rate == 3e-4 and c.model_size == "base"
    assert c.discriminator_config().hidden_size == 768  # model_size in hparams picks the preset
    assert PretrainingConfig.from_preset("small", '{"temperature": 2}').temperature == 2.0


@pytest.mark.parametrize("hparams,pattern", [
    ('{"mask_prob": "a lot"}', "mask_prob.*expects float"),
    ('{"num_train_steps": 1.5}', "num_train_steps.*expects int"),
    ('{"debug": 1}', "debug.*expects bool"),
    ("{not json", "neither a path ending in .json nor valid JSON"),
    ("missing.json", "config file not found: missing.json"),
    ('{"do_eval": true}', "exactly one of do_train and do_eval"),
    ('{"model_size": "huge"}', "unknown model size.*huge.*base, large, small"),
    ('{"max_seq_length": 600}', "max_seq_length 600 exceeds max_position_embeddings 512"),
])
def test_bad_hparams_give_one_clear_error(hparams, pattern):
    with pytest.raises(ConfigError, match=pattern):
        PretrainingConfig.from_preset("small", hparams)


def test_presets_inherit_every_pretraining_key():
    small = load_preset("small")
    for size in ("base", "large"):
        preset = load_preset(size)
        assert set(preset["pretraining"]) == set(small["pretraining"])
        assert set(preset["transformer"]) == set(small["transformer"])
        assert preset["pretraining"]["model_size"] == size
    assert set(PretrainingConfig.hparam_names()) == set(small["pretraining"])
