"""Fine-tuning config: defaults, per-size and per-task rules, override order (spec 1.5-1.7)."""

import json

import pytest

from electra_tf.config import (
    ConfigError,
    FinetuningConfig,
    PretrainingConfig,
    available_presets,
    load_preset,
)


def test_defaults_of_spec_1_6():
    c = FinetuningConfig.from_preset()
    assert (c.model_size, c.task_names, c.debug, c.log_examples, c.num_trials) == \
        ("small", ["chunk"], False, False, 1)
    assert c.do_train and c.do_eval and c.keep_all_models and c.do_lower_case
    assert (c.model_hparam_overrides, c.vocab_size) == ({}, 30522)
    assert (c.learning_rate, c.weight_decay_rate, c.layerwise_lr_decay) == (1e-4, 0.01, 0.8)
    assert (c.num_train_epochs, c.warmup_proportion) == (3.0, 0.1)
    assert (c.save_checkpoints_steps, c.iterations_per_loop) == (1000000, 1000)
    assert c.use_tfrecords_if_existing and not c.write_test_outputs and c.n_writes_test == 5
    assert (c.train_batch_size, c.eval_batch_size, c.predict_batch_size) == (32, 32, 32)
    assert c.glue == {"double_unordered": True}
    q = c.qa
    assert (q["max_query_length"], q["doc_stride"], q["n_best_size"],
            q["max_answer_length"]) == (64, 128, 20, 30)
    assert q["answerable_classifier"] and q["answerable_uses_start_logits"]
    assert q["joint_prediction"]
    assert (q["answerable_weight"], q["beam_size"], q["qa_na_threshold"]) == (0.5, 20, -2.75)
    # The default task is chunk, so its rule applies (spec 1.7).
    assert c.max_seq_length == 256
    assert FinetuningConfig.from_preset(task_names="mnli").max_seq_length == 128


@pytest.mark.parametrize("size,lr,decay,embedding,width", [
    ("small", 1e-4, 0.8, 128, 128),
    ("base", 1e-4, 0.8, None, 768),   # base.json inherits small.json but not its finetuning
    ("large", 5e-5, 0.9, None, 1024),
])
def test_per_size_defaults(size, lr, decay, embedding, width):
    c = FinetuningConfig.from_preset(size)
    assert (c.model_size, c.learning_rate, c.layerwise_lr_decay) == (size, lr, decay)
    assert c.embedding_size == embedding
    assert c.discriminator_config().embedding_size == width


@pytest.mark.parametrize("task,length,epochs", [
    ("rte", 128, 10.0), ("sts", 128, 10.0),
    ("squad", 512, 2.0), ("squadv1", 512, 2.0), ("newsqa", 512, 2.0),
    ("triviaqa", 512, 2.0), ("searchqa", 512, 2.0),
    ("chunk", 256, 3.0),
    ("naturalqs", 128, 3.0),   # [QUIRK] neither "squad" nor "qa" in the name
    ("mnli", 128, 3.0), ("cola", 128, 3.0),
])
def test_per_task_rules(task, length, epochs):
    c = FinetuningConfig.from_preset("small", task, {"write_test_outputs": False})
    assert (c.task_names, c.max_seq_length, c.num_train_epochs) == ([task], length, epochs)


def test_qa_rule_turns_off_test_outputs_but_a_user_value_wins():
    assert not FinetuningConfig.from_preset(task_names="squad").write_test_outputs
    c = FinetuningConfig.from_preset(task_names="squad", write_test_outputs=True)
    assert c.write_test_outputs and c.max_seq_length == 512


def test_task_rules_need_exactly_one_task():
    c = FinetuningConfig.from_preset("small", "rte,squad")
    assert c.task_names == ["rte", "squad"]
    assert (c.max_seq_length, c.num_train_epochs) == (128, 3.0)
    c = FinetuningConfig.from_preset("small", ["rte", "sts"])
    assert c.num_train_epochs == 3.0


def test_task_names_as_list_string_or_inside_hparams():
    assert FinetuningConfig.from_preset(task_names=" rte , sts ").task_names == ["rte", "sts"]
    c = FinetuningConfig.from_preset("small", "chunk", {"task_names": "rte"})
    assert c.task_names == ["rte"] and c.num_train_epochs == 10.0
    c = FinetuningConfig.from_preset(hparams='{"task_names": ["squadv1"]}')
    assert c.max_seq_length == 512


def test_user_values_win_over_task_size_and_debug_rules():
    c = FinetuningConfig.from_preset("large", "rte", {"num_train_epochs": 4,
                                                      "learning_rate": 2e-4,
                                                      "layerwise_lr_decay": 0.7})
    assert (c.num_train_epochs, c.learning_rate, c.layerwise_lr_decay) == (4.0, 2e-4, 0.7)
    c = FinetuningConfig.from_preset("small", "squad", {"max_seq_length": 384})
    assert c.max_seq_length == 384
    c = FinetuningConfig.from_preset("small", "rte", {"debug": True, "train_batch_size": 8,
                                                      "log_examples": False})
    assert (c.train_batch_size, c.log_examples, c.num_train_epochs) == (8, False, 3.0)
    c = FinetuningConfig.from_preset("small", embedding_size=64)  # small's 128 is a default
    assert c.discriminator_config().embedding_size == 64


def test_debug_values_of_spec_1_5():
    c = FinetuningConfig.from_preset(
        "small", "rte", {"debug": True, "num_trials": 4, "iterations_per_loop": 5}, debug=True)
    assert c.num_trials == 4 and c.iterations_per_loop == 5  # user values still win
    c = FinetuningConfig.from_preset("small", "rte", debug=True, train_batch_size=64)
    assert (c.save_checkpoints_steps, c.use_tfrecords_if_existing, c.num_trials,
            c.iterations_per_loop, c.num_train_epochs, c.log_examples) == \
        (1000000, False, 1, 1, 3.0, True)     # debug's 3 epochs replace rte's 10
    assert c.train_batch_size == 64
    d = c.discriminator_config()
    assert (d.hidden_size, d.num_hidden_layers, d.num_attention_heads, d.intermediate_size,
            d.embedding_size) == (144, 3, 4, 576, 128)


def test_unknown_key_names_it_and_close_matches():
    with pytest.raises(ConfigError) as e:
        FinetuningConfig.from_preset(hparams={"layerwise_lr_decy": 0.9})
    assert "'layerwise_lr_decy'" in str(e.value)
    assert "did you mean layerwise_lr_decay" in str(e.value)


@pytest.mark.parametrize("hparams,pattern", [
    ({"train_batch_size": 0}, "train_batch_size must be positive"),
    ({"predict_batch_size": -1}, "predict_batch_size must be positive"),
    ({"max_seq_length": 1024}, "max_seq_length 1024 exceeds max_position_embeddings 512"),
    ({"task_names": []}, "at least one task"),
    ({"task_names": ""}, "at least one task"),
    ({"task_names": [3]}, "task_names.*expects str"),
    ({"num_train_epochs": "three"}, "num_train_epochs.*expects float"),
    ({"model_size": "huge"}, "unknown model size.*huge"),
    ({"model_size": "finetuning"}, "unknown model size.*finetuning"),
])
def test_bad_hparams_give_one_clear_error(hparams, pattern):
    with pytest.raises(ConfigError, match=pattern):
        FinetuningConfig.from_preset("small", hparams=hparams)


@pytest.mark.parametrize("size", ["small", "base", "large"])
@pytest.mark.parametrize("hparams", [
    {},
    {"debug": True},
    {"model_hparam_overrides": {"hidden_size": 512}},
    {"embedding_size": 96, "vocab_size": 1000},
])
def test_discriminator_config_matches_pretraining(size, hparams):
    fine = FinetuningConfig.from_preset(size, "mnli", hparams)
    pre = PretrainingConfig.from_preset(size, hparams)
    assert fine.discriminator_config() == pre.discriminator_config()


def test_preset_files_and_serialisation(tmp_path):
    assert available_presets() == ["base", "large", "small"]
    spec = load_preset("finetuning")
    assert "pretraining" not in spec
    assert set(spec["finetuning"]) == set(FinetuningConfig.hparam_names())
    c = FinetuningConfig.from_preset("base", "rte,sts")
    path = tmp_path / "c.json"
    c.to_json(path)
    data = json.loads(path.read_text())
    assert data == c.to_dict() and data["task_names"] == ["rte", "sts"]
    assert FinetuningConfig.from_preset(hparams=str(path)) == c
