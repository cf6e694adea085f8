"""GLUE through tensorflow-datasets' ``glue/*`` (``--data_source=tfds``), for users with a network.

Thin: maps our task and split names to tfds configs, splits and text fields, and tfds'
label ids to the original label strings by *name* (tfds orders MNLI's labels
entailment/neutral/contradiction; the original uses contradiction/entailment/neutral).
"""

from __future__ import annotations

from typing import List, Optional

from electra_tf.finetuning.glue.examples import GlueExample, is_test_split
from electra_tf.finetuning.task import TaskDataError
from electra_tf.io_utils import first_line

# task -> (tfds config, text_a field, text_b field)
TFDS_CONFIGS = {
    "cola": ("cola", "sentence", None), "sst": ("sst2", "sentence", None),
    "mrpc": ("mrpc", "sentence1", "sentence2"), "qqp": ("qqp", "question1", "question2"),
    "sts": ("stsb", "sentence1", "sentence2"), "mnli": ("mnli", "premise", "hypothesis"),
    "qnli": ("qnli", "question", "sentence"), "rte": ("rte", "sentence1", "sentence2"),
    "wnli": ("wnli", "sentence1", "sentence2"),
}
_SPLITS = {"train": "train", "dev": "validation", "test": "test",
           "dev_matched": "validation_matched", "dev_mismatched": "validation_mismatched",
           "test_matched": "test_matched", "test_mismatched": "test_mismatched"}


def tfds_split(task_name: str, split: str) -> str:
    if task_name == "mnli" and split in ("dev", "test"):
        split = {"dev": "dev_matched", "test": "test_matched"}[split]
    if split not in _SPLITS:
        raise TaskDataError(f"{task_name}: split {split!r} has no tensorflow-datasets "
                            f"equivalent (known: {', '.join(_SPLITS)})")
    return _SPLITS[split]


def read_tfds_examples(task, split: str, data_dir: Optional[str] = None,
                       download: bool = True) -> List:
    """The examples of ``split`` of a GLUE task from tfds (same fields as the TSV reader).

    ``download=False`` fails at once when the dataset is not prepared in ``data_dir``
    (a plain ``tfds.load`` without a network spends minutes retrying DNS).
    """
    import tensorflow_datasets as tfds

    config, field_a, field_b = TFDS_CONFIGS[task.name]
    builder = tfds.builder(f"glue/{config}", data_dir=data_dir)
    if not _prepared(builder):
        if not download:
            raise TaskDataError(
                f"tensorflow-datasets glue/{config} is not prepared in "
                f"{builder.data_dir}; run once with a network (download allowed) or use "
                "--data_source=tsv with the GLUE TSV files")
        try:
            builder.download_and_prepare()
        except Exception as e:  # network, disk: one clear message
            raise TaskDataError(f"cannot download tensorflow-datasets glue/{config}: "
                                f"{first_line(e)}; use --data_source=tsv "
                                "with the GLUE TSV files if you have no network") from e
    names = builder.info.features["label"].names if hasattr(
        builder.info.features["label"], "names") else None
    test = is_test_split(split)
    examples = []
    for record in tfds.as_numpy(builder.as_dataset(split=tfds_split(task.name, split))):
        text_b = record[field_b].decode("utf-8") if field_b else None
        if test:
            label = task.dummy_label()
        elif names is None:  # STS-B: a float score
            label = float(record["label"])
        elif task.name in ("mnli", "qnli", "rte"):
            label = names[int(record["label"])]
        else:  # binary tasks whose original labels are "0"/"1" in the same order
            label = str(int(record["label"]))
        examples.append(GlueExample(task_name=task.name, eid=int(record["idx"]),
                                    text_a=record[field_a].decode("utf-8"), text_b=text_b,
                                    label=label))
    return task.with_swapped_copies(split, examples, len(examples))


def _prepared(builder) -> bool:
    try:
        return builder.is_prepared()
    except AttributeError:  # older tfds
        import tensorflow as tf
        return tf.io.gfile.exists(builder.data_dir)
