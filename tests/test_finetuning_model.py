"""The multi-task fine-tuning model's loss (spec 6.3) vs numpy from each head's outputs.

Loss = sum over the batch of each example's loss under ITS task's head (one_hot(task_id));
dummy padding features (task_id == number of tasks) contribute nothing.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import DATA
from electra_tf.config import FinetuningConfig
from electra_tf.finetuning.network import FinetuningNetwork
from electra_tf.finetuning.registry import get_task
from electra_tf.tokenization import FullTokenizer, default_vocab_file

L = 10
TINY = {"vocab_size": 64, "embedding_size": 16, "max_seq_length": L,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "intermediate_size": 64}}


def np_log_softmax(x):
    x = x.astype(np.float64) - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.fixture(scope="module")
def two_task_model():
    tokenizer = FullTokenizer(default_vocab_file())
    tasks = [get_task(name, str(DATA / "glue"), tokenizer, L, task_id=index)
             for index, name in enumerate(["sst", "sts"])]
    config = FinetuningConfig.from_preset("small", ["sst", "sts"], TINY)
    keras.utils.set_random_seed(0)
    model = FinetuningNetwork(config.discriminator_config(), tasks)
    model.build()
    for head in model.heads:  # non-zero biases: a head is never accidentally neutral
        head.dense.bias.assign(np.full(head.dense.bias.shape, 0.3, np.float32))
    return model


def mixed_batch():
    """Rows of task 0 (sst), task 1 (sts) and 2 padding rows (task_id 2), interleaved.

    Every row carries both tasks' label features (as the cached records do); padding rows
    have non-trivial ids, so any head would give them a non-zero loss if they counted.
    """
    rng = np.random.default_rng(5)
    task_id = np.array([0, 1, 2, 1, 0, 0, 2, 1])
    b = len(task_id)
    lengths = np.array([10, 7, 6, 9, 4, 10, 8, 5])
    mask = (np.arange(L)[None] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(5, 64, (b, L)) * mask
    ids[:, 0] = 1
    return {"input_ids": tf.constant(ids, tf.int32), "input_mask": tf.constant(mask),
            "segment_ids": tf.zeros((b, L), tf.int32), "task_id": tf.constant(task_id),
            "sst_label_ids": tf.constant([1, 0, 0, 0, 0, 1, 1, 1]),
            "sst_eid": tf.range(b), "sts_eid": tf.range(b),
            "sts_targets": tf.constant([0.0, 0.8, 0.0, 0.1, 0.0, 0.0, 0.9, 0.4], tf.float32)}


@pytest.mark.parametrize("training", [False, True])
def test_each_example_counts_under_its_own_task_and_padding_not_at_all(two_task_model,
                                                                       training):
    batch = mixed_batch()
    out = two_task_model(batch, training=training)  # with dropout too: same call's outputs
    task_id = batch["task_id"].numpy()
    logits = out["sst_logits"].numpy()
    labels = batch["sst_label_ids"].numpy()
    ce = -np_log_softmax(logits)[np.arange(len(labels)), labels]
    sq = (out["sts_predictions"].numpy().astype(np.float64)
          - batch["sts_targets"].numpy()) ** 2
    expected = ce[task_id == 0].sum() + sq[task_id == 1].sum()  # a SUM, not a mean
    assert float(out["loss"]) == pytest.approx(expected, rel=1e-5)
    # Padding rows would change the total noticeably if they were counted.
    assert min(ce[task_id == 2].min(), sq[task_id == 2].min()) > 1e-3
    np.testing.assert_array_equal(out["task_id"], task_id)


def test_single_task_batches_reduce_to_that_heads_sum(two_task_model):
    """All rows of task 1 (the second head): the loss is that head's squared errors only."""
    batch = dict(mixed_batch(), task_id=tf.fill([8], 1))
    out = two_task_model(batch, training=False)
    sq = (out["sts_predictions"].numpy().astype(np.float64)
          - batch["sts_targets"].numpy()) ** 2
    assert float(out["loss"]) == pytest.approx(sq.sum(), rel=1e-5)
    padding_only = two_task_model(dict(batch, task_id=tf.fill([8], 2)), training=False)
    assert float(padding_only["loss"]) == 0.0
