"""What every fine-tuning task provides (spec 6): examples, features, specs, a scorer, and
the parts a generic driver asks it for: its head, what its cached features depend on, its
test outputs and how it is served.

A task family is a package (``glue/``, ``qa/``, ``tagging/``) with its tasks and its settings
(``settings.py``: its section of the fine-tuning config), registered in ``registry.py``; a
task is built once, with its family's settings, and asks nothing of the run afterwards.
Adding a task is a class plus one registry entry.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

log = logging.getLogger("electra_tf")

# Feature specs: name -> (shape, dtype) with dtype "int64" or "float32"; shapes exclude batch.
FeatureSpecs = Dict[str, Tuple[Tuple[int, ...], str]]


class TaskDataError(ValueError):
    """Missing or malformed task data (names the file and, where known, the line)."""


@dataclasses.dataclass
class Example:
    """One raw example; families subclass it with their fields."""

    task_name: str
    eid: int


class Scorer(abc.ABC):
    """Accumulates prediction outputs of one task and computes its metrics."""

    @abc.abstractmethod
    def update(self, outputs: Mapping[str, np.ndarray]) -> None:
        """Adds one batch of ``<task>_<output>: array [B, ...]`` (dummy features excluded)."""

    @abc.abstractmethod
    def get_results(self) -> Dict[str, float]:
        """Metric name -> value (accuracy, MCC, F1... as the original, x100 where it scales)."""


class Task(abc.ABC):
    """A fine-tuning task.

    Args:
      name: registry name ("mnli", "squad", "chunk", ...).
      data_dir: ``<data-dir>/finetuning_data/<name>`` holding the split files.
      tokenizer: an ``electra_tf.tokenization`` tokenizer (``tokenize``,
        ``convert_tokens_to_ids``, ``special_ids``).
      max_seq_length: L.
      debug: read only the first lines of each file (spec 1.5).
    """

    # The task's index in the run's task list (the ``task_id`` feature); families set it.
    task_id: Optional[int] = None
    # Where the examples come from; GLUE tasks may read "tfds" (tensorflow-datasets).
    data_source: str = "files"
    # The serving function an export writes for this task ("classification", "regression",
    # "tagging"; see ``serving_info``), or None when it is not exported, for this reason:
    export_kind: Optional[str] = None
    no_export_reason: str = "no export for this kind of task"

    def __init__(self, name: str, data_dir: str, tokenizer, max_seq_length: int,
                 debug: bool = False):
        self.name = name
        self.data_dir = data_dir
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.debug = debug
        # Malformed rows skipped and logged (the original's behaviour), summed over reads.
        self.skipped_rows = 0

    @abc.abstractmethod
    def get_examples(self, split: str) -> List[Example]:
        """Reads ``split`` ("train", "dev", "test"...); raises TaskDataError on a missing file."""

    @abc.abstractmethod
    def featurize(self, example: Example, is_training: bool) -> List[Dict[str, Any]]:
        """One example -> one or more feature dicts (``input_ids``, ``input_mask``,
        ``segment_ids`` of length L, ``task_id`` (the task's index in the run, so
        multi-task batches route each feature to its head), plus the ``<task>_...``
        features of ``feature_specs``)."""

    @abc.abstractmethod
    def feature_specs(self) -> FeatureSpecs:
        """The task's own features (``<task>_...``), without the shared ones."""

    @abc.abstractmethod
    def get_scorer(self, split: str = "dev") -> Scorer:
        """A fresh scorer for predictions on ``split``."""

    # -- what a generic driver asks ------------------------------------------

    def build_head(self):
        """The Keras head layer this task needs (under ``task_specific/<task>/``), with the
        options of the task's settings (e.g. QA's).

        Its ``encoder_output`` names the encoder output it reads (``pooled_output`` [B, H]
        or ``sequence_output`` [B, L, H])."""
        raise NotImplementedError(f"fine-tuning task {self.name!r}: its head is not "
                                  "available yet")

    def source_file(self, split: str) -> Optional[str]:
        """The file ``split`` is read from (None when not read from a file, e.g. tfds)."""
        return None

    def cache_options(self) -> Dict[str, Any]:
        """The settings of this task that change its features (besides the run-wide ones):
        part of the feature cache's fingerprint. Families add their own."""
        return {"class": type(self).__name__, "debug": bool(self.debug),
                "task_id": self.task_id}

    def write_test_outputs(self, predict: Callable[[str], Iterable[Dict[str, Any]]],
                           directory: str) -> List[str]:
        """Writes this task's test-set predictions under ``directory``; returns the files.

        Args:
          predict: split -> batches of this task's prediction outputs
            (``<task>_<output>``: array [B, ...], padding and other tasks' rows removed).
        The original writes test outputs for GLUE and SQuAD 2.0 only: the default writes none.
        """
        del predict, directory
        return []

    def serving_info(self) -> Dict[str, Any]:
        """What an in-graph serving function of this task needs: ``task``, ``kind`` (the
        ``export_kind``), ``pair`` (two texts) and the kind's own fields (labels...).
        Only for tasks whose ``export_kind`` is set."""
        raise NotImplementedError(f"task {self.name!r}: {self.no_export_reason}")


def shared_feature_specs(max_seq_length: int) -> FeatureSpecs:
    """Features every task writes (spec 6.2)."""
    return {"input_ids": ((max_seq_length,), "int64"),
            "input_mask": ((max_seq_length,), "int64"),
            "segment_ids": ((max_seq_length,), "int64"),
            "task_id": ((), "int64")}


def path_exists(path: str) -> bool:
    """Whether the file ``path`` exists (local, or a ``tf.io.gfile`` URL such as ``gs://``)."""
    if "://" in path:
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        return bool(tf.io.gfile.exists(path))
    return os.path.isfile(path)


def pad_to(ids: Sequence[int], length: int) -> List[int]:
    """Right-pads with zeros to ``length``."""
    return list(ids) + [0] * (length - len(ids))
