"""The Keras-native task models (electra_tf.models) against the fine-tuning path: the same
features, logits, losses and, trained with compile/fit, the same dev scores as
run_finetuning for the same settings."""

import random
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import DATA
from electra_tf import checkpoints, loading
from electra_tf.config import FinetuningConfig
from electra_tf.finetuning.glue import MRPC, SST
from electra_tf.finetuning.heads import QAHead, RegressionHead, TaggingHead
from electra_tf.finetuning.network import FinetuningNetwork
from electra_tf.formats import hf, tf1
from electra_tf.models import (ElectraBackbone, ElectraClassifier, ElectraPreprocessor,
                               ElectraQuestionAnswerer, ElectraTokenTagger)
from electra_tf.optimization import AdamWeightDecay
from electra_tf.tokenization import FullTokenizer
from electra_tf.training.finetune import run_finetuning
from test_finetuning_driver import TINY_MODEL, tiny_options, write_sst_task

L = 16


@pytest.fixture(scope="module")
def run(tiny_pretrained_run):
    """A tiny pre-training run (the session's, conftest.py): its directory and exports
    (tf1/, discriminator/)."""
    return tiny_pretrained_run


def finetuning_model(model, task_name, head):
    """fine-tuning's multi-task model with one task whose head is ``head``, holding the
    weights of ``model`` copied by original name (checkpoint interop)."""
    task = types.SimpleNamespace(name=task_name, build_head=lambda: head)
    reference = FinetuningNetwork(model.backbone.config, [task])
    reference.build()
    values = {name: v.numpy() for name, v in model.original_variables().items()}
    report = checkpoints.assign_original_weights(values, reference, source="keras model")
    assert not report.unused and not report.missing_allowed
    return reference


def random_features(batch, seed=0, pair_at=6):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(pair_at + 2, L + 1, batch)
    ids = rng.integers(1000, 2000, (batch, L)).astype(np.int32)
    mask = (np.arange(L)[None] < lengths[:, None]).astype(np.int32)
    segments = ((np.arange(L)[None] >= pair_at) & (mask == 1)).astype(np.int32)
    return {"input_ids": ids * mask, "input_mask": mask, "segment_ids": segments}


def test_preprocessor_gives_the_glue_features_for_texts_pairs_and_in_tf_data(run):
    preprocessor = ElectraPreprocessor.from_pretrained(run["discriminator"], sequence_length=L)
    tokenizer = FullTokenizer(loading.read_weights(run["discriminator"]).vocab_file)
    for cls, name in ((SST, "sst"), (MRPC, "mrpc")):
        task = cls(str(DATA / "glue" / name), tokenizer, L)
        examples = task.get_examples("dev")
        expected = [task.featurize(e, False)[0] for e in examples]
        texts = [e.text_a for e in examples]
        x = tuple((texts, [e.text_b for e in examples])) if cls is MRPC else texts
        got = preprocessor(x)
        mapped = next(iter(tf.data.Dataset.from_tensor_slices(x).batch(len(texts))
                           .map(lambda *s: preprocessor(s if len(s) == 2 else s[0]))))
        one_by_one = next(iter(tf.data.Dataset.from_tensor_slices(x)
                               .map(lambda *s: preprocessor(s if len(s) == 2 else s[0]))
                               .batch(len(texts))))
        for key in ("input_ids", "input_mask", "segment_ids"):
            want = np.array([f[key] for f in expected])
            assert got[key].dtype == np.int32 and got[key].shape == (len(texts), L)
            np.testing.assert_array_equal(got[key], want)
            np.testing.assert_array_equal(mapped[key].numpy(), want)
            np.testing.assert_array_equal(one_by_one[key].numpy(), want)
        one = preprocessor((x[0][0], x[1][0]) if cls is MRPC else texts[0])  # unbatched
        assert one["input_ids"].shape == (L,)
        np.testing.assert_array_equal(one["input_ids"], expected[0]["input_ids"])
    assert got["segment_ids"].max() == 1  # the MRPC pairs have a second segment
    with pytest.raises(ValueError, match="tuple of two lists"):
        preprocessor([("a text", "its pair")])


def test_backbone_from_a_run_directory_equals_its_exports_and_checkpoint(run, tmp_path):
    hf.write_hf_directory(loading.load_pretrained(run["tf1"]), tmp_path / "hf", kind="model")
    features = random_features(3)
    outputs = {}
    for name, path in (("run", run["model_dir"]), ("tf1", run["tf1"]),
                       ("discriminator", run["discriminator"]),
                       ("ckpt", run["model_dir"] + "/ckpt-3"), ("hf", str(tmp_path / "hf"))):
        backbone = ElectraBackbone.from_pretrained(path)
        outputs[name] = backbone(features)
    assert outputs["run"]["sequence_output"].shape == (3, L, 32)
    assert outputs["run"]["pooled_output"].shape == (3, 32)
    for name in ("tf1", "discriminator", "ckpt", "hf"):
        for key in ("sequence_output", "pooled_output"):
            np.testing.assert_allclose(outputs[name][key].numpy(), outputs["run"][key].numpy(),
                                       rtol=0, atol=1e-6 if name == "hf" else 0)
    # Classifiers from both: same weights, so the same logits (texts in).
    a = ElectraClassifier.from_pretrained(run["model_dir"], num_classes=3, sequence_length=L)
    b = ElectraClassifier.from_pretrained(run["tf1"], num_classes=3, sequence_length=L)
    b.head.set_weights(a.head.get_weights())
    texts = ["the movie was good", "a bad film"]
    np.testing.assert_array_equal(a.predict(texts, verbose=0), b.predict(texts, verbose=0))


def test_predict_on_texts_equals_the_finetuning_model_on_glue_features(run):
    model = ElectraClassifier.from_pretrained(run["discriminator"], num_classes=2,
                                              task_name="sst", sequence_length=L)
    task = SST(str(DATA / "glue" / "sst"), model.preprocessor.tokenizer, L)
    examples = task.get_examples("dev")
    features = [task.featurize(e, False)[0] for e in examples]
    batch = {k: np.array([f[k] for f in features], np.int32)
             for k in ("input_ids", "input_mask", "segment_ids")}
    on_texts = model.predict([e.text_a for e in examples], verbose=0)
    on_features = model.predict(batch, verbose=0)
    assert on_texts.shape == (len(examples), 2)
    np.testing.assert_array_equal(on_texts, on_features)
    reference = finetuning_model(model, "sst", task.build_head())
    out = reference({**batch, "task_id": np.zeros(len(examples), np.int32),
                     "sst_label_ids": np.zeros(len(examples), np.int32)})
    np.testing.assert_allclose(on_texts, out["sst_logits"].numpy(), rtol=1e-6, atol=1e-6)


def test_compile_fit_evaluate_gives_run_finetunings_dev_scores(tmp_path, run):
    """Same init (seed + trial 1), data order (the driver's seeded shuffles), optimizer and
    steps; dropout stays on (its draws follow the seed too)."""
    write_sst_task(tmp_path / "data", 64, 32)
    config = FinetuningConfig.from_preset("small", ["sst"], {
        "max_seq_length": L, "train_batch_size": 16, "eval_batch_size": 16,
        "learning_rate": 1e-3, "num_train_epochs": 2, **TINY_MODEL})
    options = tiny_options(tmp_path, run["discriminator"])
    expected = run_finetuning(config, options)[0]["sst"]

    task = SST(str(tmp_path / "data" / "finetuning_data" / "sst"), None, L)
    train_examples = task.get_examples("train")
    random.Random(options.seed).shuffle(train_examples)   # the driver's example order
    dev = task.get_examples("dev")
    keras.utils.set_random_seed(options.seed + 1)            # the driver's trial 1
    model = ElectraClassifier.from_pretrained(run["discriminator"], num_classes=2,
                                              task_name="sst", sequence_length=L)
    model.compile(finetuning_config=config)
    batches = (tf.data.Dataset.from_tensor_slices(
        ([e.text_a for e in train_examples], [int(e.label) for e in train_examples]))
        .repeat().shuffle(100, seed=options.seed + 1).batch(16, drop_remainder=True))
    epochs_seen = []
    model.fit(batches, epochs=2, steps_per_epoch=4, verbose=0, callbacks=[
        keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: epochs_seen.append(e))])
    assert epochs_seen == [0, 1] and int(model.optimizer.iterations) == 8
    scores = model.evaluate([e.text_a for e in dev], np.array([int(e.label) for e in dev]),
                            batch_size=16, return_dict=True, verbose=0)
    assert 100 * scores["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)
    assert scores["cross_entropy"] == pytest.approx(expected["loss"], rel=1e-5)
    # Shown per example (Keras' mean), while the updates stay the driver's batch sums:
    # the weights below equal run_finetuning's.
    assert scores["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    # The driver's fine-tuned checkpoint holds the same weights under the same names.
    trained = loading.read_weights(str(tmp_path / "ft" / "model_1"))
    ours = model.original_variables()
    assert set(ours) == {n for n in trained.values if not n.endswith(("adam_m", "adam_v"))}
    for name, variable in ours.items():
        np.testing.assert_allclose(variable.numpy(), trained.values[name], atol=2e-5,
                                   err_msg=name)


def test_compile_defaults_are_the_finetuning_optimizer_counted_at_fit(run, tmp_path):
    model = ElectraClassifier.from_pretrained(run["discriminator"], num_classes=2,
                                              task_name="sst", sequence_length=L)
    model.compile()
    assert isinstance(model.optimizer, AdamWeightDecay)
    texts = ["good film", "bad film", "a good movie", "a bad movie", "the plot", "an actor"]
    labels = np.array([1, 0, 1, 0, 1, 0])
    model.fit(texts, labels, batch_size=4, epochs=2, verbose=0, callbacks=[
        keras.callbacks.ModelCheckpoint(str(tmp_path / "k.weights.h5"), save_weights_only=True)])
    schedule = model.optimizer._learning_rate
    small = FinetuningConfig.from_preset("small", ["sst"])
    assert schedule.num_train_steps == 4 and int(model.optimizer.iterations) == 4
    assert schedule.learning_rate == small.learning_rate
    assert schedule.warmup_proportion == small.warmup_proportion
    d, n = small.layerwise_lr_decay, 2
    multipliers = model.optimizer.lr_multipliers
    assert multipliers["electra/encoder/layer_1/output/dense/kernel"] == pytest.approx(d ** 2)
    assert multipliers["electra/encoder/layer_0/output/dense/kernel"] == pytest.approx(d ** 3)
    assert multipliers["electra/embeddings/word_embeddings"] == pytest.approx(d ** (n + 2))
    assert multipliers["task_specific/sst/dense/kernel"] == 1.0
    # The trained weights come back from Keras' weights file and from an original-name
    # checkpoint (the head too: its task name matches).
    predictions = model.predict(texts, verbose=0)
    prefix = tf1.save_original_checkpoint(str(tmp_path / "tf1" / "model.ckpt-4"), model)
    from_checkpoint = ElectraClassifier.from_pretrained(prefix, task_name="sst",
                                                       sequence_length=L)
    from_keras_file = ElectraClassifier.from_pretrained(run["discriminator"], task_name="sst",
                                                        sequence_length=L)
    from_keras_file.load_weights(str(tmp_path / "k.weights.h5"))
    for restored in (from_checkpoint, from_keras_file):
        np.testing.assert_allclose(restored.predict(texts, verbose=0), predictions, atol=1e-6)
    # Any Keras optimizer and loss work too.
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(texts, labels, batch_size=6, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_texts_without_a_preprocessor_is_one_clear_error(run):
    model = ElectraClassifier.from_pretrained(run["discriminator"], preprocessor=False)
    with pytest.raises(ValueError, match="has no preprocessor"):
        model.predict(["a text"], verbose=0)


def test_token_tagger_matches_the_tagging_head_and_fits_a_step(run):
    model = ElectraTokenTagger.from_pretrained(run["discriminator"], num_classes=5,
                                               task_name="chunk", sequence_length=L)
    features = random_features(4)
    positions = np.tile(np.arange(1, L + 1) % L, (4, 1)).astype(np.int32)
    labels = np.random.default_rng(1).integers(0, 5, (4, L)).astype(np.int32)
    mask = (features["input_mask"] * (positions > 0)).astype(np.float32)
    x = {**features, "labeled_positions": positions}
    logits = model.predict(x, verbose=0)
    assert logits.shape == (4, L, 5)
    reference = finetuning_model(model, "chunk", TaggingHead("chunk", 5))
    out = reference({**features, "task_id": np.zeros(4, np.int32),
                     "chunk_labeled_positions": positions, "chunk_labels": labels,
                     "chunk_labels_mask": mask})
    np.testing.assert_allclose(logits, out["chunk_logits"].numpy(), rtol=1e-6, atol=1e-6)
    assert model.predict(features, verbose=0).shape == (4, L, 5)  # default: every position
    model.compile()
    scores = model.evaluate(x, labels, sample_weight=mask, batch_size=4, return_dict=True,
                            verbose=0)
    # The head's masked sum over the batch, shown per example.
    assert scores["loss"] == pytest.approx(float(out["loss"]) / 4, rel=1e-5)
    before = model.head.dense.kernel.numpy().copy()
    # Two updates: the warm-up gives the first one learning rate 0, as the original.
    history = model.fit(x, labels, sample_weight=mask, batch_size=4, epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == 2 and np.isfinite(history.history["loss"]).all()
    assert not np.allclose(before, model.head.dense.kernel.numpy())


def test_question_answerer_matches_the_qa_head_and_fits_a_step(run):
    # No dropout: the training-mode outputs of two models are then comparable.
    no_dropout = {"model_hparam_overrides": {**TINY_MODEL["model_hparam_overrides"],
                                             "hidden_dropout_prob": 0.0,
                                             "attention_probs_dropout_prob": 0.0}}
    model = ElectraQuestionAnswerer.from_pretrained(run["discriminator"], beam_size=4,
                                                    sequence_length=L, hparams=no_dropout)
    assert model.backbone.config.hidden_dropout_prob == 0.0
    assert model.head_options["joint_prediction"] and model.head_options["answerable_classifier"]
    features = random_features(4)
    labels = {"start_positions": np.array([7, 0, 8, 9], np.int32),
              "end_positions": np.array([9, 0, 8, 11], np.int32),
              "is_impossible": np.array([0, 1, 0, 0], np.int32)}
    out = model.predict(features, verbose=0)
    shapes = {k: v.shape for k, v in out.items()}
    assert shapes == {"start_logits": (4, L), "end_logits": (4, L), "answerable_logit": (4,),
                      "start_top_log_probs": (4, 4), "start_top_index": (4, 4),
                      "end_top_log_probs": (4, 4, 4), "end_top_index": (4, 4, 4)}
    head = QAHead("squad", beam_size=4)
    reference = finetuning_model(model, "squad", head)
    ref_features = {**features, "task_id": np.zeros(4, np.int32),
                    **{f"squad_{k}": v for k, v in labels.items()}}
    for training in (False, True):
        want = reference(ref_features, training=training)
        got = model({**features, **labels}, training=training)
        for key in ("start_logits", "end_logits", "answerable_logit"):
            np.testing.assert_allclose(got[key].numpy(), want[f"squad_{key}"].numpy(),
                                       rtol=1e-5, atol=1e-5, err_msg=f"{key} {training}")
    model.compile()
    scores = model.evaluate({**features, **labels}, batch_size=4, return_dict=True, verbose=0)
    want = reference(ref_features, training=False)
    assert scores["loss"] == pytest.approx(float(want["loss"]) / 4, rel=1e-5)  # per example
    history = model.fit({**features, **labels}, batch_size=4, verbose=0)
    assert int(model.optimizer.iterations) == 1 and np.isfinite(history.history["loss"][0])


def test_regression_classifier_matches_the_sts_head(run):
    model = ElectraClassifier.from_pretrained(run["discriminator"], regression=True,
                                              num_classes=1, task_name="sts", sequence_length=L)
    pairs = (["a man plays a guitar", "the cat sleeps", "it rains"],
             ["a man plays music", "a dog runs", "it is raining"])
    targets = np.array([0.8, 0.1, 0.9], np.float32)
    predictions = model.predict(pairs, verbose=0)
    assert predictions.shape == (3, 1)
    features = model.preprocessor(pairs)
    reference = finetuning_model(model, "sts", RegressionHead("sts"))
    out = reference({**features, "task_id": np.zeros(3, np.int32), "sts_targets": targets})
    np.testing.assert_allclose(predictions[:, 0], out["sts_predictions"].numpy(), rtol=1e-6,
                               atol=1e-6)
    model.compile()
    scores = model.evaluate(pairs, targets, return_dict=True, verbose=0)
    assert scores["mse"] == pytest.approx(float(np.mean(out["sts_loss"])), rel=1e-5)
    assert scores["loss"] == pytest.approx(float(out["loss"]) / 3, rel=1e-5)  # per example
    with pytest.raises(ValueError, match="num_classes must be 1"):
        ElectraClassifier(model.backbone, num_classes=3, regression=True)


def test_bfloat16_compile_defaults_to_xla_on_one_cpu_and_fits(run):
    """compile()'s jit_compile follows the drivers' rule: on a CPU, XLA in half precision
    only (oneDNN's bfloat16 matmuls without AMX are slower than XLA's)."""
    texts, labels = ["good film", "bad film", "a good movie", "a bad movie"], np.array([1, 0, 1, 0])
    gpu = bool(tf.config.list_logical_devices("GPU"))
    for policy, expected in (("float32", gpu), ("mixed_bfloat16", True)):
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = ElectraClassifier.from_pretrained(run["discriminator"], num_classes=2,
                                                      task_name="sst", sequence_length=L)
            model.compile()
            assert model.jit_compile is expected, policy
            history = model.fit(texts, labels, batch_size=4, verbose=0)
            assert np.isfinite(history.history["loss"][0])
        finally:
            keras.mixed_precision.set_global_policy("float32")
