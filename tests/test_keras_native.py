"""The Keras task models in the ordinary Keras cycle (issue 22): save / reload in a fresh
process / serve raw strings / keep training, and keras-hub-like pipeline behaviour."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.formats import tf1
from electra_tf.config import TransformerConfig
from electra_tf.models import (ElectraBackbone, ElectraClassifier, ElectraPreprocessor,
                               ElectraQuestionAnswerer, ElectraTokenTagger)
from electra_tf.models.preprocessor import MissingVocabularyError
from electra_tf.models.task import ScheduleEndedError
from electra_tf.tokenization import FullTokenizer, default_vocab_file

L = 16
TEXTS = ["a good movie", "a bad film", "great acting", "terrible plot",
         "the best film of the year", "boring and long", "lovely", "awful"]
LABELS = [1, 0, 1, 0, 1, 0, 1, 0]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(dropout=0.1):
    return TransformerConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, hidden_act="gelu", hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout, max_position_embeddings=512, type_vocab_size=2,
        initializer_range=0.02, embedding_size=16)


def tiny_backbone(seed=0, dropout=0.1):
    keras.utils.set_random_seed(seed)
    return ElectraBackbone(tiny_config(dropout))


def tiny_classifier(seed=0, dropout=0.1, **kwargs):
    model = ElectraClassifier(tiny_backbone(seed, dropout), num_classes=2, task_name="sst",
                              preprocessor=ElectraPreprocessor(default_vocab_file(), L),
                              **kwargs)
    model.build()
    return model


def run_fresh_python(code: str, cwd) -> str:
    """``code`` in a new interpreter (nothing of this process carried over); its stdout."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# 1. Full-model save ---------------------------------------------------------------------

def test_keras_file_and_savedmodel_reload_in_a_fresh_process_predict_identically(tmp_path):
    model = tiny_classifier()
    # The SavedModel runs without XLA; predict under XLA would differ by float rounding.
    model.compile(jit_compile=False)
    checkpoint = tmp_path / "best.keras"
    model.fit(TEXTS, LABELS, batch_size=4, epochs=2, verbose=0, validation_data=(
        TEXTS, LABELS), callbacks=[keras.callbacks.ModelCheckpoint(
            str(checkpoint), monitor="val_loss", save_best_only=False)])
    assert checkpoint.stat().st_size > 0
    model.save(tmp_path / "x.keras")
    model.export(str(tmp_path / "served"), verbose=False)
    pairs = (["a good movie", "bad"], ["it was fun", ""])
    np.save(tmp_path / "want.npy", model.predict(TEXTS, verbose=0))
    np.save(tmp_path / "want_pairs.npy", model.predict(pairs, verbose=0))
    out = run_fresh_python(f"""
        import json, numpy as np, keras, tensorflow as tf
        import electra_tf.models  # registers the classes, as importing keras_hub does
        texts = {TEXTS!r}
        pairs = {pairs!r}
        diffs = {{}}
        for name in ("x.keras", "best.keras"):
            model = keras.models.load_model(name)
            diffs[name] = float(np.abs(model.predict(texts, verbose=0)
                                       - np.load("want.npy")).max())
        diffs["pairs"] = float(np.abs(model.predict(pairs, verbose=0)
                                      - np.load("want_pairs.npy")).max())
        diffs["optimizer"] = type(model.optimizer).__name__
        diffs["iterations"] = int(model.optimizer.iterations.numpy())
        diffs["jit_compile"] = model.jit_compile
        import tensorflow_text  # the tokenizer's ops; electra_tf is not needed to serve
        served = tf.saved_model.load("served")
        diffs["served"] = float(np.abs(served.serve(tf.constant(texts))["outputs"].numpy()
                                       - np.load("want.npy")).max())
        diffs["served_pair"] = float(np.abs(served.serve_pair(
            tf.constant(pairs[0]), tf.constant(pairs[1]))["outputs"].numpy()
            - np.load("want_pairs.npy")).max())
        print(json.dumps(diffs))
        """, tmp_path)
    diffs = json.loads(out.strip().splitlines()[-1])
    assert diffs == {"x.keras": 0.0, "best.keras": 0.0, "pairs": 0.0,
                     "optimizer": "AdamWeightDecay", "iterations": 4, "jit_compile": False,
                     "served": 0.0,
                     "served_pair": 0.0}


def test_a_users_savedmodel_of_preprocessor_and_model_serves_strings_without_python(tmp_path):
    model = tiny_classifier(seed=1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def classify(text):
        return model(model.preprocessor(text))

    module = tf.Module()
    module.model, module.classify = model, classify
    tf.saved_model.save(module, str(tmp_path / "user"))
    np.save(tmp_path / "want.npy", model.predict(TEXTS, verbose=0))
    out = run_fresh_python(f"""
        import numpy as np, tensorflow as tf, tensorflow_text
        loaded = tf.saved_model.load("user")
        got = loaded.classify(tf.constant({TEXTS!r})).numpy()
        print(float(np.abs(got - np.load("want.npy")).max()))
        """, tmp_path)
    assert float(out.strip().splitlines()[-1]) == 0.0


def test_task_models_round_trip_through_get_config_clone_and_json(tmp_path):
    backbone = tiny_backbone()
    preprocessor = ElectraPreprocessor(default_vocab_file(), L)
    models = [ElectraClassifier(backbone, num_classes=3, task_name="mnli",
                                preprocessor=preprocessor),
              ElectraTokenTagger(tiny_backbone(), num_classes=5, task_name="chunk",
                                 preprocessor=preprocessor),
              ElectraQuestionAnswerer(tiny_backbone(), beam_size=4,
                                      preprocessor=preprocessor)]
    features = preprocessor((["what is it", "who"], ["it is a test of the model", "me"]))
    for model in models:
        model.build()
        want = model.predict(features, verbose=0)
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        for restored in (keras.models.load_model(path),
                         keras.models.model_from_json(model.to_json())):
            assert type(restored) is type(model)
            assert restored.get_config() == model.get_config()
        restored = keras.models.load_model(path)
        got = restored.predict(features, verbose=0)
        for key in (want if isinstance(want, dict) else {"logits": want}):
            np.testing.assert_array_equal(got[key] if isinstance(got, dict) else got,
                                          want[key] if isinstance(want, dict) else want)
        clone = keras.models.clone_model(model)
        assert type(clone) is type(model) and clone.task_name == model.task_name


def test_keyword_backbone_equals_the_config_one():
    by_keywords = ElectraBackbone(vocabulary_size=30522, num_layers=2, num_heads=4,
                                  hidden_dim=32, intermediate_dim=64, embedding_dim=16)
    assert by_keywords.config == tiny_config()
    assert by_keywords.get_config()["config"] == tiny_backbone().get_config()["config"]
    with pytest.raises(ValueError, match="missing: num_heads"):
        ElectraBackbone(vocabulary_size=10, num_layers=1, hidden_dim=8, intermediate_dim=8)


# 2. Repeated fit ----------------------------------------------------------------------------

def test_a_fit_after_the_schedule_ended_is_refused_and_a_spanning_schedule_trains_every_fit():
    model = tiny_classifier()
    model.compile()  # the schedule is sized by the first fit: 2 updates
    model.fit(TEXTS, LABELS, batch_size=4, epochs=1, verbose=0)
    before = [v.numpy().copy() for v in model.trainable_variables]
    with pytest.raises(ScheduleEndedError, match="learning rate 0"):
        model.fit(TEXTS, LABELS, batch_size=4, epochs=1, verbose=0)
    # A scheduler callback sets the rate (it replaces the schedule) and the fit trains.
    model.fit(TEXTS, LABELS, batch_size=4, epochs=1, verbose=0, callbacks=[
        keras.callbacks.LearningRateScheduler(lambda epoch, lr: 1e-3)])
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert any(np.abs(a - v.numpy()).max() > 0 for a, v in zip(before,
                                                               model.trainable_variables))
    # A schedule that spans every fit: each fit moves the weights; past its end, a warning.
    model = tiny_classifier()
    model.compile(num_train_steps=6)
    for _ in range(3):
        before = [v.numpy().copy() for v in model.trainable_variables]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.fit(TEXTS, LABELS, batch_size=4, epochs=1, verbose=0)
        assert max(np.abs(a - v.numpy()).max()
                   for a, v in zip(before, model.trainable_variables)) > 0
    with pytest.raises(ScheduleEndedError):
        model.fit(TEXTS, LABELS, batch_size=4, epochs=1, verbose=0)
    model = tiny_classifier()
    model.compile(num_train_steps=3)
    with pytest.warns(UserWarning, match="the last 1 of this fit's 4 updates"):
        model.fit(TEXTS, LABELS, batch_size=4, epochs=2, verbose=0)


# 3. Losses per example, updates the original's sums --------------------------------------

def test_loss_is_shown_per_example_and_the_update_is_the_batch_sums():
    model = tiny_classifier()
    model.compile()
    shown = {batch: model.evaluate(TEXTS, LABELS, batch_size=batch, verbose=0)[0]
             for batch in (2, 4, 8)}
    assert shown[2] == pytest.approx(shown[8], rel=1e-5)
    assert shown[4] == pytest.approx(shown[8], rel=1e-5)
    logits = model.predict(TEXTS, verbose=0)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    assert shown[8] == pytest.approx(-log_probs[np.arange(8), LABELS].mean(), rel=1e-5)
    # The update follows the gradient of the batch *sum* (the original's loss), not of the
    # mean shown: one SGD step of fit moves every weight by lr x that gradient.
    model = tiny_classifier(dropout=0.0)
    model.head.dropout.rate = 0.0  # the head's own dropout (0.1) would draw other masks
    model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=False)
    features = model.preprocessor(TEXTS)
    before = [v.numpy().copy() for v in model.trainable_variables]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    with tf.GradientTape() as tape:
        loss = loss_fn(np.array(LABELS), model(features, training=True))
    gradients = tape.gradient(loss, model.trainable_variables)
    model.fit(features, np.array(LABELS), batch_size=8, epochs=1, verbose=0, shuffle=False)
    for w0, variable, gradient in zip(before, model.trainable_variables, gradients):
        np.testing.assert_allclose((w0 - variable.numpy()) / 0.01,
                                   tf.convert_to_tensor(gradient).numpy(),
                                   rtol=1e-3, atol=1e-6, err_msg=variable.path)


# 4/6. Pipeline behaviour ----------------------------------------------------------------

def test_strings_work_in_on_batch_calls_and_label_lists_in_fit():
    model = tiny_classifier()
    model.compile(num_train_steps=10)
    assert model.predict_on_batch(TEXTS[:2]).shape == (2, 2)
    assert np.isfinite(model.train_on_batch(TEXTS[:4], LABELS[:4])).all()
    assert np.isfinite(model.test_on_batch(TEXTS[:4], LABELS[:4])).all()
    history = model.fit(TEXTS, LABELS, batch_size=4, verbose=0)  # a list of labels
    assert np.isfinite(history.history["loss"][0])


def test_calling_on_texts_or_unknown_keys_is_one_clear_error():
    model = tiny_classifier()
    with pytest.raises(ValueError, match=r"use model\.predict\(texts\)"):
        model(TEXTS)
    with pytest.raises(ValueError, match=r"use model\.predict\(texts\)"):
        model(tf.constant(TEXTS))
    ids = np.zeros((1, L), np.int32)
    with pytest.raises(ValueError, match="unknown key.*padding_mask, token_ids.*keras-hub"):
        model({"token_ids": ids, "padding_mask": ids})
    with pytest.raises(ValueError, match="input_ids, input_mask, segment_ids"):
        model.predict({"text": np.array(["a"])}, verbose=0)
    with pytest.raises(ValueError, match="takes texts.*not a dict"):
        model.preprocessor({"text": ["a"]})


def test_logits_are_float32_under_a_mixed_policy():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny_classifier()
        qa = ElectraQuestionAnswerer(tiny_backbone(), beam_size=4,
                                     preprocessor=model.preprocessor)
        qa.build()
        tagger = ElectraTokenTagger(tiny_backbone(), num_classes=3,
                                    preprocessor=model.preprocessor)
        tagger.build()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    features = model.preprocessor(TEXTS[:2])
    assert model(features).dtype == tf.float32
    assert tagger(features).dtype == tf.float32
    out = qa(features)
    assert {k for k, v in out.items() if v.dtype.is_floating and v.dtype != tf.float32} == set()


def test_question_answerer_takes_labels_as_y_and_decodes_answer_text():
    backbone = tiny_backbone()
    qa = ElectraQuestionAnswerer(backbone, beam_size=4, joint_prediction=False,
                                 preprocessor=ElectraPreprocessor(default_vocab_file(), 32))
    qa.build()
    qa.compile(num_train_steps=10)
    features = qa.preprocessor((["who won", "where"], ["the red team won the cup", "in paris"]))
    history = qa.fit(features, {"start_positions": np.array([4, 4]),
                                "end_positions": np.array([6, 5]),
                                "is_impossible": np.array([0, 0])}, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match="start_positions"):
        qa.fit(features, np.array([1, 2]), verbose=0)
    # Decoding: the best span of made-up logits maps back to the context's words.
    context = "The Red Team won the Cup in 1998."
    tokens = qa.preprocessor.tokenizer.tokenize("who won")
    start = len(tokens) + 2  # [CLS] question [SEP], then the context's word-pieces

    def fixed_logits(features, **kwargs):
        logits = np.full((features["input_ids"].shape[0], 32), -20.0, np.float32)
        start_logits, end_logits = logits.copy(), logits.copy()
        start_logits[:, start + 1] = 10.0  # "red"
        end_logits[:, start + 2] = 10.0    # "team"
        return {"start_logits": start_logits, "end_logits": end_logits,
                "answerable_logit": np.full(len(logits), -5.0, np.float32)}

    qa.predict = fixed_logits
    text, details = qa.answer("who won", context, return_details=True)
    assert text == "Red Team"
    assert details["nbest"][0][0] == "Red Team"


def test_token_tagger_aligns_words_to_their_first_word_piece():
    tagger = ElectraTokenTagger(tiny_backbone(), num_classes=3,
                                preprocessor=ElectraPreprocessor(default_vocab_file(), L))
    tagger.build()
    sentences = [["Unbelievably", "long", "words", "."], ["ok"]]
    x, y, weights = tagger.featurize_words(sentences, [[1, 2, 0, 1], [2]])
    tokenizer = FullTokenizer(default_vocab_file())
    pieces = [tokenizer.tokenize(w) for w in sentences[0]]
    firsts = np.cumsum([1] + [len(p) for p in pieces[:-1]])  # after [CLS]
    np.testing.assert_array_equal(x["labeled_positions"][0, :4], firsts)
    for position, word_pieces in zip(firsts, pieces):
        assert x["input_ids"][0, position] == tokenizer.vocab[word_pieces[0]]
    np.testing.assert_array_equal(y[0, :4], [1, 2, 0, 1])
    np.testing.assert_array_equal(weights.sum(1), [4, 1])
    tagger.compile(num_train_steps=4)
    history = tagger.fit(x, y, sample_weight=weights, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert tagger.predict(x, verbose=0).shape == (2, L, 3)


# 5. Vocabularies --------------------------------------------------------------------------

def test_a_checkpoint_without_a_vocabulary_is_an_error_not_the_bundled_vocab(tmp_path):
    model = tiny_classifier()
    prefix = str(tmp_path / "bare" / "model.ckpt-1")
    tf1.save_original_checkpoint(prefix, model.backbone)
    for leftover in ("vocab.txt",):
        if (tmp_path / "bare" / leftover).exists():
            (tmp_path / "bare" / leftover).unlink()
    with pytest.raises(MissingVocabularyError, match="no vocab.txt beside it"):
        ElectraPreprocessor.from_pretrained(prefix, L)
    preprocessor = ElectraPreprocessor.from_pretrained(prefix, L,
                                                       vocabulary=default_vocab_file())
    assert preprocessor.sequence_length == L


# The README's Keras cycle ---------------------------------------------------------------

def readme_keras_block() -> str:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text.split("## Using the models in Keras", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_keras_cycle_runs_from_a_checkpoint_to_a_served_string(tmp_path):
    import shutil
    model = tiny_classifier(seed=3)
    checkpoint = tmp_path / "pretrained"
    tf1.save_original_checkpoint(str(checkpoint / "model.ckpt-1"), model.backbone)
    shutil.copy(default_vocab_file(), checkpoint / "vocab.txt")
    block = readme_keras_block()
    assert 'checkpoint = "data/models/electra_small"' in block and "sequence_length=128" in block
    block = (block.replace('"data/models/electra_small"', repr(str(checkpoint)))
             .replace("sequence_length=128", f"sequence_length={L}"))
    # The README's claim: the reloaded model and the served SavedModel give the same logits.
    block += textwrap.dedent("""
        got = served.serve(tf.constant(["what a film"]))["outputs"].numpy()
        want = reloaded.predict(["what a film"], verbose=0)
        assert want.shape == (1, 2) and want.dtype == np.float32
        print("max_diff", float(np.abs(got - want).max()))
        """)
    out = run_fresh_python(block, tmp_path)
    max_diff = out.strip().splitlines()[-1]
    assert max_diff.startswith("max_diff ") and float(max_diff.split()[1]) < 1e-5  # XLA or not
    for name in ("best.keras", "sst.keras", "sst_served/saved_model.pb"):
        assert (tmp_path / name).exists(), name
