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


# ---------------------------------------------------------------------------
# QA head loss vs numpy (spec 6.5): every logit recomputed from the head's weights
# ---------------------------------------------------------------------------

_ERF = np.vectorize(math.erf)


def np_gelu(x):
    return 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0)))


def np_sigmoid_ce(logit, label):
    return max(logit, 0.0) - logit * label + math.log1p(math.exp(-abs(logit)))


def _qa_batch():
    """3 features of L = 7: a span answer, an out-of-span/impossible one pointing at [CLS]
    (start = end = 0) and one whose answer sits at the final [SEP]-side context; padding in
    row 1. start != end wherever possible, so swapping them changes the loss."""
    rng = np.random.default_rng(7)
    seq = rng.normal(size=(3, 7, H)).astype(np.float32)
    features = {"input_mask": np.array([[1] * 7, [1] * 5 + [0] * 2, [1] * 7]),
                "segment_ids": np.array([[0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 0, 0],
                                         [0, 0, 1, 1, 1, 1, 1]]),
                "squad_start_positions": np.array([3, 0, 2]),
                "squad_end_positions": np.array([5, 0, 6]),
                "squad_is_impossible": np.array([0, 1, 0]),
                "squad_eid": np.array([0, 1000, 2000])}
    return seq, features


def np_qa_loss(head, seq, features, joint, uses_start, weight):
    """Spec 6.5 'Head': span loss (CE start + CE end) / 2 plus answerable_weight times the
    sigmoid CE of the answerable logit with label is_impossible; all in float64."""
    w = {n.split("/", 2)[2]: v.numpy().astype(np.float64)
         for n, v in head.original_variables().items()}
    seq = seq.astype(np.float64)
    allowed = (features["input_mask"] * features["segment_ids"]).astype(np.float64)
    allowed[:, 0] = 1.0
    penalty = 1000.0 * (allowed - 1.0)
    start_logits = (seq @ w["dense/kernel"])[..., 0] + w["dense/bias"][0] + penalty
    starts, ends = features["squad_start_positions"], features["squad_end_positions"]
    rows = np.arange(len(seq))
    if joint:  # training: the gold start's vector tiled against every position
        gold = seq[rows, starts]                                           # [B, H]
        tiled = np.concatenate([np.broadcast_to(gold[:, None], seq.shape), seq], -1)
        hidden = np_gelu(tiled @ w["qa_hidden/kernel"] + w["qa_hidden/bias"])
        end_logits = (hidden @ w["dense_1/kernel"])[..., 0] + w["dense_1/bias"][0] + penalty
    else:
        end_logits = (seq @ w["dense_1/kernel"])[..., 0] + w["dense_1/bias"][0] + penalty
    ce_start = -np_log_softmax(start_logits)[rows, starts]
    ce_end = -np_log_softmax(end_logits)[rows, ends]
    loss = (ce_start + ce_end) / 2.0
    cls = seq[:, 0]
    if uses_start:
        probs = np.exp(np_log_softmax(start_logits))                       # masked logits
        hidden = np_gelu(np.concatenate([cls, (probs[..., None] * seq).sum(1)], -1)
                         @ w["dense_2/kernel"] + w["dense_2/bias"])
        answerable = (hidden @ w["dense_3/kernel"])[:, 0] + w["dense_3/bias"][0]
    else:
        answerable = (cls @ w["dense_2/kernel"])[:, 0] + w["dense_2/bias"][0]
    impossible = features["squad_is_impossible"].astype(np.float64)
    loss += weight * np.array([np_sigmoid_ce(a, y) for a, y in zip(answerable, impossible)])
    return loss, start_logits, end_logits, answerable


@pytest.mark.parametrize("joint,uses_start,weight", [
    (True, True, 0.5),     # the defaults
    (False, True, 0.3),    # separate end logits; a non-default answerable_weight
    (False, False, 0.5),   # the answerable logit from the [CLS] vector alone (dense_2 H->1)
])
def test_qa_head_loss_matches_numpy(joint, uses_start, weight):
    from electra_tf.finetuning.heads import QAHead
    head = QAHead("squad", joint_prediction=joint, beam_size=3,
                  answerable_uses_start_logits=uses_start, answerable_weight=weight)
    seq, features = _qa_batch()
    head.build((None, None, H))
    # Glorot-initialised zero biases hide bias mistakes: give every bias a value.
    rng = np.random.default_rng(11)
    for name, variable in head.original_variables().items():
        if name.endswith("/bias"):
            variable.assign(rng.normal(size=variable.shape).astype(np.float32))
    out = head(tf.constant(seq), {k: tf.constant(v) for k, v in features.items()},
               training=True)
    loss, start_logits, end_logits, answerable = np_qa_loss(head, seq, features, joint,
                                                            uses_start, weight)
    np.testing.assert_allclose(out["squad_start_logits"], start_logits, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["squad_end_logits"], end_logits, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["squad_answerable_logit"], answerable, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["squad_loss"], loss, rtol=1e-5)
    # The answerable term is really in there: without it the loss is the span loss only.
    span_only = QAHead("squad", joint_prediction=joint, beam_size=3,
                       answerable_classifier=False)
    span_only.build((None, None, H))
    for name, variable in span_only.original_variables().items():
        variable.assign(head.original_variables()[name])
    plain = span_only(tf.constant(seq), {k: tf.constant(v) for k, v in features.items()},
                      training=True)["squad_loss"].numpy()
    ans_term = loss - plain
    impossible = features["squad_is_impossible"]
    np.testing.assert_allclose(ans_term, [weight * np_sigmoid_ce(a, y)
                                          for a, y in zip(answerable, impossible)], rtol=1e-4)


def test_head_losses_are_float32_under_mixed_bfloat16():
    """Under the mixed_bfloat16 policy the dense layers compute in bfloat16, but every loss
    is taken in float32 from the (cast) logits: equal to numpy on those logits to float32
    precision, not bfloat16's ~3 significant digits."""
    import keras
    rng = np.random.default_rng(4)
    pooled = tf.constant(rng.normal(size=(6, H)) * 3, tf.float32)
    sequence = tf.constant(rng.normal(size=(2, 7, H)) * 3, tf.float32)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        classification = ClassificationHead("mnli", 3)
        labels = np.array([0, 2, 1, 2, 0, 1])
        out = classification(pooled, {"mnli_label_ids": tf.constant(labels)})
        regression = RegressionHead("sts")
        targets = np.linspace(0.0, 1.0, 5)[[0, 1, 2, 3, 4, 2]]  # exact in bfloat16 (see below)
        reg = regression(pooled, {"sts_targets": tf.constant(targets, tf.float32)})
        tagging_head = TaggingHead("chunk", 5)
        tag_labels = [1, 0, 4, 0, 0, 0, 0]
        tag = tagging_head(sequence, {
            "chunk_labeled_positions": tf.constant([[1, 2, 4, 0, 0, 0, 0]] * 2),
            "chunk_labels": tf.constant([tag_labels] * 2),
            "chunk_labels_mask": tf.constant([[1.0] * 3 + [0.0] * 4] * 2)})
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out["mnli_logits"].dtype == tf.bfloat16  # the compute really was bfloat16
    for loss in (out["mnli_loss"], reg["sts_loss"], tag["chunk_loss"]):
        assert loss.dtype == tf.float32
    logits = out["mnli_logits"].numpy().astype(np.float32)
    expected = -np_log_softmax(logits)[np.arange(6), labels]
    np.testing.assert_allclose(out["mnli_loss"], expected, rtol=1e-6, atol=1e-6)
    preds = reg["sts_predictions"].numpy().astype(np.float64)
    np.testing.assert_allclose(reg["sts_loss"], (preds - targets) ** 2, rtol=1e-6, atol=1e-7)
    tag_logits = tag["chunk_logits"].numpy().astype(np.float32)
    nll = -np_log_softmax(tag_logits)[:, np.arange(7), tag_labels]
    np.testing.assert_allclose(tag["chunk_loss"], nll[:, :3].sum(-1), rtol=1e-6)


def test_qa_head_loss_is_float32_under_mixed_bfloat16():
    import keras
    from electra_tf.finetuning.heads import QAHead
    seq, features = _qa_batch()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        head = QAHead("squad", beam_size=3)
        out = head(tf.constant(seq), {k: tf.constant(v) for k, v in features.items()},
                   training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out["squad_loss"].dtype == tf.float32
    rows = np.arange(3)
    ce = [-np_log_softmax(out[f"squad_{kind}_logits"].numpy().astype(np.float64))[
        rows, features[f"squad_{kind}_positions"]] for kind in ("start", "end")]
    answerable = out["squad_answerable_logit"].numpy().astype(np.float64)
    expected = (ce[0] + ce[1]) / 2 + 0.5 * np.array(
        [np_sigmoid_ce(a, y) for a, y in zip(answerable, features["squad_is_impossible"])])
    np.testing.assert_allclose(out["squad_loss"], expected, rtol=1e-5)


def test_regression_targets_keep_float32_precision_under_mixed_bfloat16():
    import keras
    pooled = tf.constant(np.random.default_rng(4).normal(size=(3, H)), tf.float32)
    targets = tf.constant([0.123456, 0.2, 0.777777], tf.float32)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        out = RegressionHead("sts")(pooled, {"sts_targets": targets})
    finally:
        keras.mixed_precision.set_global_policy("float32")
    np.testing.assert_array_equal(out["sts_targets"], targets)
    preds = out["sts_predictions"].numpy().astype(np.float64)
    np.testing.assert_allclose(out["sts_loss"], (preds - targets.numpy()) ** 2, rtol=1e-6)
