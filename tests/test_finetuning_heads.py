"""Task heads (spec 6.3-6.6, 7.4) vs numpy, and the task registry."""

import math

import numpy as np
import pytest
import tensorflow as tf

from conftest import DATA
from electra_tf.finetuning import glue, qa, tagging
from electra_tf.finetuning.heads import ClassificationHead, RegressionHead, TaggingHead
from electra_tf.finetuning.registry import get_task, known_task_names, task_dir_name
from electra_tf.finetuning.task import TaskDataError
from electra_tf.tokenization import FullTokenizer, default_vocab_file

H = 8


def np_log_softmax(x):
    x = x.astype(np.float64) - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_classification_head_names_init_loss_and_dropout():
    head = ClassificationHead("mnli", 3)
    pooled = tf.constant(np.random.default_rng(0).normal(size=(4, H)), tf.float32)
    features = {"mnli_label_ids": tf.constant([0, 2, 1, 2]), "mnli_eid": tf.constant([5, 6, 7, 8])}
    out = head(pooled, features, training=False)
    names = head.original_variables()
    assert sorted(names) == ["task_specific/mnli/dense/bias", "task_specific/mnli/dense/kernel"]
    kernel = names["task_specific/mnli/dense/kernel"].numpy()
    assert kernel.shape == (H, 3) and np.abs(kernel).max() <= math.sqrt(6 / (H + 3))
    logits = pooled.numpy() @ kernel + names["task_specific/mnli/dense/bias"].numpy()
    np.testing.assert_allclose(out["mnli_logits"], logits, atol=1e-6)
    expected = -np_log_softmax(logits)[np.arange(4), [0, 2, 1, 2]]
    np.testing.assert_allclose(out["mnli_loss"], expected, atol=1e-6)
    np.testing.assert_array_equal(out["mnli_predictions"], logits.argmax(-1))
    np.testing.assert_array_equal(out["mnli_eid"], [5, 6, 7, 8])
    trained = head(tf.tile(pooled, [50, 1]), {"mnli_label_ids": tf.zeros(200, tf.int32)},
                   training=True)["mnli_logits"].numpy()
    assert not np.allclose(trained, np.tile(logits, (50, 1)), atol=1e-5)  # dropout 0.1 active


def test_regression_head_squared_error():
    head = RegressionHead("sts")
    pooled = tf.constant(np.random.default_rng(1).normal(size=(3, H)), tf.float32)
    out = head(pooled, {"sts_targets": tf.constant([0.0, 0.5, 1.0])})
    names = head.original_variables()
    preds = (pooled.numpy() @ names["task_specific/sts/dense/kernel"].numpy())[:, 0] + \
        names["task_specific/sts/dense/bias"].numpy()[0]
    np.testing.assert_allclose(out["sts_predictions"], preds, atol=1e-6)
    np.testing.assert_allclose(out["sts_loss"], (preds - [0.0, 0.5, 1.0]) ** 2, atol=1e-6)


def test_tagging_head_labels_first_word_pieces_and_sums_over_words():
    head = TaggingHead("chunk", 5)
    rng = np.random.default_rng(2)
    sequence = rng.normal(size=(2, 6, H)).astype(np.float32)
    features = {"chunk_labeled_positions": tf.constant([[1, 2, 4, 0, 0, 0], [1, 3, 0, 0, 0, 0]]),
                "chunk_labels": tf.constant([[1, 0, 4, 0, 0, 0], [2, 3, 0, 0, 0, 0]]),
                "chunk_labels_mask": tf.constant([[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]],
                                                 tf.float32)}
    out = head(tf.constant(sequence), features)
    names = head.original_variables()
    kernel = names["task_specific/chunk/dense/kernel"].numpy()
    bias = names["task_specific/chunk/dense/bias"].numpy()
    for row in range(2):
        positions = features["chunk_labeled_positions"].numpy()[row]
        logits = sequence[row, positions] @ kernel + bias
        nll = -np_log_softmax(logits)[np.arange(6), features["chunk_labels"].numpy()[row]]
        mask = features["chunk_labels_mask"].numpy()[row]
        assert abs(float(out["chunk_loss"][row]) - (nll * mask).sum()) < 1e-5
        np.testing.assert_array_equal(out["chunk_predictions"][row], logits.argmax(-1))


def test_registry_builds_each_family_and_rejects_unknown_names(tmp_path):
    tokenizer = FullTokenizer(default_vocab_file())
    root = str(DATA / "glue")
    assert isinstance(get_task("mnli", root, tokenizer, 32, task_id=0), glue.MNLI)
    assert isinstance(get_task("squad", str(tmp_path), tokenizer, 64, task_id=1), qa.QATask)
    chunk = get_task("chunk", str(tmp_path), tokenizer, 64, task_id=2,
                     label_mapping_dir=str(tmp_path))
    assert isinstance(chunk, tagging.TaggingTask)
    assert task_dir_name("conll:ner:column=3") == "ner" and task_dir_name("cola") == "cola"
    assert {"cola", "wnli", "squadv1", "chunk"} <= set(known_task_names())
    with pytest.raises(TaskDataError, match="unknown task 'mnlii'; did you mean mnli"):
        get_task("mnlii", root, tokenizer, 32, task_id=0)


def test_qa_head_names_masks_and_joint_beam():
    from electra_tf.finetuning.heads import QAHead
    head = QAHead("squad", beam_size=3)
    rng = np.random.default_rng(3)
    seq = tf.constant(rng.normal(size=(2, 7, H)), tf.float32)
    features = {"input_mask": tf.constant([[1] * 7, [1] * 5 + [0] * 2]),
                "segment_ids": tf.constant([[0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 0, 0]]),
                "squad_start_positions": tf.constant([3, 0]),
                "squad_end_positions": tf.constant([5, 0]),
                "squad_is_impossible": tf.constant([0, 1]), "squad_eid": tf.constant([0, 1000])}
    out = head(seq, features, training=False)
    names = head.original_variables()
    shapes = {n.split("/", 2)[2]: list(v.shape) for n, v in names.items()}
    assert shapes == {"dense/kernel": [H, 1], "dense/bias": [1], "qa_hidden/kernel": [2 * H, 512],
                      "qa_hidden/bias": [512], "dense_1/kernel": [512, 1], "dense_1/bias": [1],
                      "dense_2/kernel": [2 * H, 512], "dense_2/bias": [512],
                      "dense_3/kernel": [512, 1], "dense_3/bias": [1]}
    # Only context tokens, the final [SEP] region (segment 1) and [CLS] may start a span.
    start_index = out["squad_start_top_index"].numpy()
    allowed = [{0, 3, 4, 5, 6}, {0, 2, 3, 4}]
    for row in range(2):
        assert set(start_index[row]) <= allowed[row]
    assert out["squad_end_top_index"].shape == (2, 3, 3)
    np.testing.assert_array_equal(out["squad_end_logits"], np.zeros((2, 7)))
    # The beam's end scores for start i equal the training-mode end logits with gold start i.
    i = int(start_index[0, 0])
    trained = head(seq, dict(features, squad_start_positions=tf.constant([i, 0])),
                   training=True)
    end_lp = np_log_softmax(trained["squad_end_logits"].numpy()[0])
    best = out["squad_end_top_index"].numpy()[0, 0]
    np.testing.assert_allclose(out["squad_end_top_log_probs"].numpy()[0, 0], end_lp[best],
                               atol=1e-4)
    assert np.isfinite(out["squad_loss"].numpy()).all()
    assert out["squad_answerable_logit"].shape == (2,)
