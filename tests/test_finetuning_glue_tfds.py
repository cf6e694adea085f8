"""--data_source=tfds: GLUE from tensorflow-datasets, checked offline with tfds' mock data."""

import pytest
import tensorflow_datasets as tfds

from electra_tf.finetuning import glue
from electra_tf.finetuning.glue.tfds import read_tfds_examples
from electra_tf.finetuning.task import TaskDataError
from electra_tf.tokenization import FullTokenizer, default_vocab_file


def make(name, **kwargs):
    return glue.get_glue_task(name, "/nonexistent", FullTokenizer(default_vocab_file()), 32,
                              data_source="tfds", **kwargs)


@pytest.mark.parametrize("name,labels", [("mnli", {"contradiction", "entailment", "neutral"}),
                                         ("sst", {"0", "1"}), ("rte", {"entailment",
                                                                      "not_entailment"})])
def test_tfds_examples_have_original_labels(name, labels):
    task = make(name, settings=glue.GlueSettings(double_unordered=False))
    with tfds.testing.mock_data(num_examples=12):
        examples = task.get_examples("dev")
    assert len(examples) == 12
    assert {ex.label for ex in examples} <= labels
    assert all(isinstance(ex.text_a, str) and ex.text_a for ex in examples)
    assert (examples[0].text_b is None) == (name == "sst")


def test_mnli_label_ids_are_mapped_by_name():
    """tfds orders MNLI labels entailment/neutral/contradiction; we keep the original's."""
    builder = tfds.builder("glue/mnli")
    names = builder.info.features["label"].names
    assert names == ["entailment", "neutral", "contradiction"]
    assert list(glue.MNLI.LABELS) == ["contradiction", "entailment", "neutral"]
    # Each example's label is tfds' label *name*, not LABELS[tfds id] (mock data repeats).
    with tfds.testing.mock_data(num_examples=12):
        examples = make("mnli").get_examples("dev")
        records = tfds.as_numpy(builder.as_dataset(split="validation_matched"))
        expected = {int(r["idx"]): names[int(r["label"])] for r in records}
    assert {ex.eid: ex.label for ex in examples} == expected
    assert len(set(expected.values())) > 1  # the ids were not all one label


def test_mrpc_train_is_doubled_and_test_labels_are_dummies():
    task = make("mrpc")
    with tfds.testing.mock_data(num_examples=6):
        train = task.get_examples("train")
        test = task.get_examples("test")
    assert len(train) == 12 and train[6].text_a == train[0].text_b
    assert {ex.label for ex in test} == {task.dummy_label()}


def test_unprepared_dataset_without_download_fails_fast(tmp_path):
    with pytest.raises(TaskDataError, match="glue/cola is not prepared"):
        read_tfds_examples(make("cola"), "train", data_dir=str(tmp_path), download=False)
