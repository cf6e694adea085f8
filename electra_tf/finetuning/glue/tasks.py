"""The GLUE tasks (spec 6.4): :class:`GlueTask` (reading, featurization, head, test
outputs), its classification and regression kinds, the nine tasks with their column layouts,
and the GLUE-leaderboard files of test-set predictions (spec 6.8)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

import numpy as np

from electra_tf import preprocessing
from electra_tf.finetuning.glue.examples import GlueExample, is_test_split
from electra_tf.finetuning.glue.reader import DEBUG_MAX_LINES, Columns, read_tsv
from electra_tf.finetuning.glue.scoring import ClassificationScorer, RegressionScorer
from electra_tf.finetuning.glue.settings import GlueSettings
from electra_tf.finetuning.glue.tfds import read_tfds_examples
from electra_tf.finetuning.task import (FeatureSpecs, Scorer, Task, TaskDataError, log,
                                        path_exists)
from electra_tf.io_utils import write_text_atomic


class GlueTask(Task):
    """Shared reading and featurization of the GLUE tasks (spec 6.4).

    Args:
      data_dir: ``<data-dir>/finetuning_data/<name>`` holding ``<split>.tsv`` files.
      tokenizer: an ``electra_tf.tokenization`` tokenizer.
      max_seq_length: L (>= 3 for pair tasks, >= 2 for single-sentence ones).
      debug: read at most 100 lines of each TSV (spec 1.5).
      settings: the run's GLUE settings (:class:`GlueSettings`; None: the defaults of
        ``configs/finetuning.json``), e.g. ``double_unordered``.
      task_id: index of this task in the run's task list, written as the ``task_id`` feature.
      data_source: "tsv" (the files) or "tfds" (tensorflow-datasets' ``glue/*``, read from
        ``tfds_data_dir``).
      check_columns: check each file's first line against the task's layout; False reads
        the columns by position, as the original (``--nocheck_glue_columns``).
    """

    NAME: str = ""
    SPLITS: Tuple[str, ...] = ("train", "dev", "test")
    TEST_SPLITS: Tuple[str, ...] = ("test",)
    DOUBLE_UNORDERED: bool = False  # whether ``double_unordered`` applies to this task

    def __init__(self, data_dir: str, tokenizer, max_seq_length: int, debug: bool = False,
                 settings: Optional[GlueSettings] = None, *, task_id: int = 0,
                 data_source: str = "tsv", tfds_data_dir: Optional[str] = None,
                 check_columns: bool = True):
        super().__init__(self.NAME, data_dir, tokenizer, max_seq_length, debug)
        self.settings = settings if settings is not None else GlueSettings.defaults()
        self.check_columns = check_columns  # False: columns by position, as the original
        self.task_id = task_id
        if data_source not in ("tsv", "tfds"):
            raise ValueError(f"data_source must be 'tsv' or 'tfds', got {data_source!r}")
        self.data_source = data_source  # "tfds": glue/* of tensorflow-datasets
        self.tfds_data_dir = tfds_data_dir

    # -- layout ------------------------------------------------------------

    @classmethod
    def file_name(cls, split: str) -> str:
        """The TSV file name of ``split``."""
        return split + ".tsv"

    def split_path(self, split: str) -> str:
        return os.path.join(self.data_dir, self.file_name(split))

    def source_file(self, split: str) -> Optional[str]:
        return None if self.data_source == "tfds" else self.split_path(split)

    def get_test_splits(self) -> List[str]:
        return list(self.TEST_SPLITS)

    def columns(self, split: str) -> Columns:
        """Column layout of ``split`` (per task, spec 6.4 table)."""
        raise NotImplementedError

    # -- labels --------------------------------------------------------------

    def dummy_label(self):
        raise NotImplementedError

    def parse_label(self, raw: str):
        """A label field -> the example's label; ValueError for a malformed one."""
        raise NotImplementedError

    def check_layout(self, split: str, path: str, line_no: int, row: List[str]) -> None:
        """Checks the first line ``row`` of ``split``'s file against the task's layout:
        the header's names (:attr:`Columns.header`), or for a file without a header the
        first row's column count and label; TaskDataError naming the file, the line and
        the layout expected."""
        cols = self.columns(split)
        if cols.skip_header:
            found = [field.strip().lower() for field in row]
            ok = all(-len(found) <= column < len(found) and found[column] == name.lower()
                     for column, name in cols.header)
        else:
            ok = len(row) == cols.row_columns
            if ok and cols.label is not None and not is_test_split(split):
                try:
                    self.parse_label(row[cols.label])
                except ValueError:
                    ok = False
        if ok:
            return
        shown = ", ".join(repr(field[:20] + ("..." if len(field) > 20 else ""))
                          for field in row[:4]) + (", ..." if len(row) > 4 else "")
        raise TaskDataError(
            f"{self.name}: {path} line {line_no} does not have the layout of {self.name}'s "
            f"{split} file: expected {cols.describe()}; found {shown or 'an empty line'} "
            f"({len(row)} column{'' if len(row) == 1 else 's'}). Is it another task's file? "
            "Fix it, or pass --nocheck_glue_columns to read the columns by position as the "
            "original does")

    # -- examples ------------------------------------------------------------

    def _missing_file_error(self, split: str, path: str) -> TaskDataError:
        present = []
        if "://" not in self.data_dir and os.path.isdir(self.data_dir):
            present = sorted(n for n in os.listdir(self.data_dir) if n.endswith(".tsv"))
        expected = ", ".join(self.file_name(s) for s in self.SPLITS)
        return TaskDataError(
            f"{self.name}: the {split!r} split file {path} does not exist. Expected layout: "
            f"<data-dir>/finetuning_data/{self.name}/<split>.tsv in the original GLUE TSV "
            f"format ({expected}); found in {self.data_dir}: "
            f"{', '.join(present) if present else 'no .tsv files'}")

    def get_examples(self, split: str) -> List[GlueExample]:
        """Reads ``split``; malformed rows are skipped, logged and counted.

        Example ids: the line index, minus 1 when a header is skipped; the swapped copies of
        ``double_unordered`` get that id plus the number of data rows read.
        """
        if self.data_source == "tfds":
            return read_tfds_examples(self, split, self.tfds_data_dir)
        path = self.split_path(split)
        if not path_exists(path):
            raise self._missing_file_error(split, path)
        cols = self.columns(split)
        test = is_test_split(split)
        examples: List[GlueExample] = []
        n_rows = 0
        max_lines = DEBUG_MAX_LINES if self.debug else None
        for i, (line_no, row) in enumerate(read_tsv(path, max_lines)):
            if i == 0 and self.check_columns:
                self.check_layout(split, path, line_no, row)
            if i == 0 and cols.skip_header:
                continue
            n_rows += 1
            eid = i - 1 if cols.skip_header else i
            try:
                text_a = row[cols.text_a]
                text_b = None if cols.text_b is None else row[cols.text_b]
                label = self.dummy_label() if test else self.parse_label(row[cols.label])
            except (IndexError, ValueError, TypeError) as e:
                self.skipped_rows += 1
                log.warning("%s: skipping malformed row at %s line %d (%s: %s): %r",
                            self.name, path, line_no, type(e).__name__, e, row)
                continue
            examples.append(GlueExample(task_name=self.name, eid=eid, text_a=text_a,
                                        text_b=text_b, label=label))
        return self.with_swapped_copies(split, examples, n_rows)

    def with_swapped_copies(self, split: str, examples: List[GlueExample],
                            eid_offset: int) -> List[GlueExample]:
        """``examples`` plus, for the training split of a ``double_unordered`` task (MRPC,
        STS), a copy of each with the two texts swapped and ``eid_offset`` added to its eid."""
        if split == "train" and self.settings.double_unordered and self.DOUBLE_UNORDERED:
            examples += [dataclasses.replace(ex, eid=ex.eid + eid_offset, text_a=ex.text_b,
                                             text_b=ex.text_a) for ex in list(examples)]
        return examples

    # -- features ------------------------------------------------------------

    def tokens_to_features(self, tokens_a: Sequence[str],
                           tokens_b: Optional[Sequence[str]]) -> Dict[str, List[int]]:
        """BERT-style input of one (pair of) token list(s).

        Pairs are truncated to L - 3 tokens in total by popping the last token of the longer
        list (the second on ties); a single list is cut to L - 2. An empty ``tokens_b`` is
        treated as absent.

        Returns:
          ``input_ids``, ``input_mask``, ``segment_ids``: lists [L], zero-padded;
          ``[CLS] a [SEP]`` has segment 0 and ``b [SEP]`` segment 1.
        """
        tok = self.tokenizer
        return preprocessing.pack_pair(
            tok.convert_tokens_to_ids(tokens_a),
            tok.convert_tokens_to_ids(tokens_b) if tokens_b else None,
            self.max_seq_length, tok.special_ids["cls"], tok.special_ids["sep"]).features()

    def featurize(self, example: GlueExample, is_training: bool) -> List[Dict[str, Any]]:
        """One example -> one feature dict (``is_training`` is unused for GLUE)."""
        tokens_a = self.tokenizer.tokenize(example.text_a)
        tokens_b = self.tokenizer.tokenize(example.text_b) if example.text_b else None
        features: Dict[str, Any] = self.tokens_to_features(tokens_a, tokens_b)
        features["task_id"] = self.task_id
        features[self.name + "_eid"] = int(example.eid)
        features.update(self.label_features(example))
        return [features]

    def label_features(self, example: GlueExample) -> Dict[str, Any]:
        raise NotImplementedError

    # -- cache, test outputs, serving -------------------------------------

    def cache_options(self) -> Dict[str, Any]:
        # Unchecked columns can give other examples; checked ones leave the cache key as it
        # was, so existing caches stay valid.
        unchecked = {} if self.check_columns else {"check_columns": False}
        return {**super().cache_options(), "double_unordered": bool(self.settings.double_unordered),
                "data_source": self.data_source, "tfds_data_dir": self.tfds_data_dir,
                **unchecked}

    def write_test_outputs(self, predict, directory: str) -> List[str]:
        """GLUE-leaderboard TSVs of every test split (spec 6.8), named as the leaderboard
        wants them (``LEADERBOARD_FILE_NAMES``)."""
        written = []
        for split in self.get_test_splits():
            by_eid = {}
            for outputs in predict(split):
                # Classification: the logits (as the original's pickled test outputs).
                values = outputs.get(self.name + "_logits")
                if values is None:
                    values = outputs[self.name + "_predictions"]
                for eid, value in zip(outputs[self.name + "_eid"], values):
                    by_eid[int(eid)] = value
            name = LEADERBOARD_FILE_NAMES.get((self.name, split), f"{self.name}_{split}.tsv")
            written.append(write_test_predictions(self, by_eid, os.path.join(directory, name)))
        return written

    def serving_info(self) -> Dict[str, Any]:
        return {"task": self.name, "kind": self.export_kind,
                "pair": self.columns("train").text_b is not None}


class ClassificationTask(GlueTask):
    """A GLUE classification task; label ids follow ``LABELS`` order."""

    LABELS: Tuple[str, ...] = ("0", "1")
    METRIC: str = "accuracy"  # or "mcc"
    export_kind = "classification"

    @property
    def label_list(self) -> List[str]:
        return list(self.LABELS)

    def dummy_label(self) -> str:
        return self.LABELS[0]

    def parse_label(self, raw: str) -> str:
        if raw not in self.LABELS:
            raise ValueError(f"label {raw!r} is not one of {list(self.LABELS)}")
        return raw

    def label_features(self, example: GlueExample) -> Dict[str, Any]:
        return {self.name + "_label_ids": self.LABELS.index(example.label)}

    def feature_specs(self) -> FeatureSpecs:
        return {self.name + "_eid": ((), "int64"),
                self.name + "_label_ids": ((), "int64")}

    def get_scorer(self, split: str = "dev") -> Scorer:
        return ClassificationScorer(self.name, self.METRIC)

    def build_head(self):
        from electra_tf.finetuning.heads import ClassificationHead  # TF only when modelling
        return ClassificationHead(self.name, len(self.LABELS))

    def serving_info(self) -> Dict[str, Any]:
        return {**super().serving_info(), "labels": list(self.LABELS)}


class RegressionTask(GlueTask):
    """A GLUE regression task; targets are ``(y - MIN_VALUE) / MAX_VALUE`` (spec 6.4)."""

    MIN_VALUE: float = 0.0
    MAX_VALUE: float = 5.0
    export_kind = "regression"

    def dummy_label(self) -> float:
        return 0.0

    def parse_label(self, raw: str) -> float:
        value = float(raw)
        if not self.MIN_VALUE <= value <= self.MAX_VALUE:
            raise ValueError(f"score {value} is outside [{self.MIN_VALUE}, {self.MAX_VALUE}]")
        return value

    def normalize(self, value: float) -> float:
        # The original's (y - min) / max (not / (max - min)); identical for STS's min 0.
        return (float(value) - self.MIN_VALUE) / self.MAX_VALUE

    def label_features(self, example: GlueExample) -> Dict[str, Any]:
        return {self.name + "_targets": self.normalize(example.label)}

    def feature_specs(self) -> FeatureSpecs:
        return {self.name + "_eid": ((), "int64"),
                self.name + "_targets": ((), "float32")}

    def get_scorer(self, split: str = "dev") -> Scorer:
        return RegressionScorer(self.name)

    def build_head(self):
        from electra_tf.finetuning.heads import RegressionHead  # TF only when modelling
        return RegressionHead(self.name)

    def serving_info(self) -> Dict[str, Any]:
        return {**super().serving_info(), "scale": float(self.MAX_VALUE),
                "offset": float(self.MIN_VALUE)}


class CoLA(ClassificationTask):
    """CoLA: no header in train/dev (sentence in column 3), header in test (column 1)."""

    NAME = "cola"
    METRIC = "mcc"

    def columns(self, split):
        if split == "test":
            return Columns(1, None, 1, skip_header=True, header=((1, "sentence"),))
        return Columns(3, None, 1, skip_header=False, row_columns=4)


class SST(ClassificationTask):
    """SST-2: header ``sentence label``; test ``index sentence``."""

    NAME = "sst"

    def columns(self, split):
        if is_test_split(split):
            return Columns(1, None, None, skip_header=True, header=((1, "sentence"),))
        return Columns(0, None, 1, skip_header=True, header=((0, "sentence"), (1, "label")))


class MRPC(ClassificationTask):
    """MRPC: header ``Quality #1 ID #2 ID #1 String #2 String`` (BOM in train/dev)."""

    NAME = "mrpc"
    DOUBLE_UNORDERED = True

    def columns(self, split):
        texts = ((3, "#1 String"), (4, "#2 String"))
        if is_test_split(split):  # column 0 is "index" there
            return Columns(3, 4, 0, skip_header=True, header=texts)
        return Columns(3, 4, 0, skip_header=True, header=((0, "Quality"),) + texts)


class QQP(ClassificationTask):
    """QQP: header ``id qid1 qid2 question1 question2 is_duplicate``; test ``id question1
    question2``."""

    NAME = "qqp"

    def columns(self, split):
        if split == "test":
            return Columns(1, 2, 5, skip_header=True,
                           header=((1, "question1"), (2, "question2")))
        return Columns(3, 4, 5, skip_header=True,
                       header=((3, "question1"), (4, "question2"), (5, "is_duplicate")))


class _IndexedPairTask(ClassificationTask):
    """Header ``index text_a text_b label`` (test: no label column)."""

    TEXT_NAMES: Tuple[str, str] = ("sentence1", "sentence2")

    def columns(self, split):
        header = ((1, self.TEXT_NAMES[0]), (2, self.TEXT_NAMES[1]))
        if not is_test_split(split):
            header += ((3, "label"),)
        return Columns(1, 2, 3, skip_header=True, header=header)


class RTE(_IndexedPairTask):
    NAME = "rte"
    LABELS = ("entailment", "not_entailment")


class QNLI(_IndexedPairTask):
    NAME = "qnli"
    LABELS = ("entailment", "not_entailment")
    TEXT_NAMES = ("question", "sentence")


class WNLI(_IndexedPairTask):
    """WNLI (absent from the original): labels "0", "1", columns as RTE."""

    NAME = "wnli"
    LABELS = ("0", "1")


class MNLI(ClassificationTask):
    """MNLI: texts in columns 8, 9, label last (train 12 columns, dev 16, test 10);
    ``dev`` reads ``dev_matched.tsv``; ``diagnostic`` has texts in columns 1, 2."""

    NAME = "mnli"
    LABELS = ("contradiction", "entailment", "neutral")
    SPLITS = ("train", "dev", "dev_mismatched", "test_matched", "test_mismatched",
              "diagnostic")
    TEST_SPLITS = ("test_matched", "test_mismatched", "diagnostic")

    @classmethod
    def file_name(cls, split):
        return ("dev_matched" if split == "dev" else split) + ".tsv"

    def columns(self, split):
        if split == "diagnostic":
            return Columns(1, 2, None, skip_header=True,
                           header=((1, "sentence1"), (2, "sentence2")))
        header = ((8, "sentence1"), (9, "sentence2"))
        if not is_test_split(split):
            header += ((-1, "gold_label"),)
        return Columns(8, 9, -1, skip_header=True, header=header)


class STS(RegressionTask):
    """STS-B: 10 columns, texts third- and second-from-last, score last; test has 9 columns
    with the texts last."""

    NAME = "sts"
    DOUBLE_UNORDERED = True

    def columns(self, split):
        if split == "test":
            return Columns(-2, -1, None, skip_header=True,
                           header=((-2, "sentence1"), (-1, "sentence2")))
        return Columns(-3, -2, -1, skip_header=True,
                       header=((-3, "sentence1"), (-2, "sentence2"), (-1, "score")))


GLUE_TASKS: Dict[str, Type[GlueTask]] = {
    cls.NAME: cls for cls in (CoLA, SST, MRPC, QQP, MNLI, QNLI, RTE, WNLI, STS)}


def get_glue_task(name: str, data_dir: str, tokenizer, max_seq_length: int,
                  **kwargs) -> GlueTask:
    """Builds the GLUE task ``name`` (kwargs: debug, settings, task_id, data_source,
    tfds_data_dir, check_columns)."""
    if name not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task {name!r}; known: {sorted(GLUE_TASKS)}")
    return GLUE_TASKS[name](data_dir, tokenizer, max_seq_length, **kwargs)


# ---------------------------------------------------------------------------
# Test-set predictions (GLUE leaderboard format)
# ---------------------------------------------------------------------------

# GLUE leaderboard submission file names per (task, test split).
LEADERBOARD_FILE_NAMES = {
    ("cola", "test"): "CoLA.tsv", ("sst", "test"): "SST-2.tsv", ("mrpc", "test"): "MRPC.tsv",
    ("qqp", "test"): "QQP.tsv", ("sts", "test"): "STS-B.tsv", ("qnli", "test"): "QNLI.tsv",
    ("rte", "test"): "RTE.tsv", ("wnli", "test"): "WNLI.tsv",
    ("mnli", "test_matched"): "MNLI-m.tsv", ("mnli", "test_mismatched"): "MNLI-mm.tsv",
    ("mnli", "diagnostic"): "AX.tsv"}


def _task_class(task: Union[str, GlueTask, Type[GlueTask]]) -> Type[GlueTask]:
    if isinstance(task, GlueTask):
        return type(task)
    if isinstance(task, type) and issubclass(task, GlueTask):
        return task
    if isinstance(task, str) and task in GLUE_TASKS:
        return GLUE_TASKS[task]
    raise ValueError(f"not a GLUE task: {task!r}; known: {sorted(GLUE_TASKS)}")


def format_test_prediction(task: Union[str, GlueTask, Type[GlueTask]], value) -> str:
    """The leaderboard string of one prediction.

    Classification: ``value`` is the logits [num_labels] (argmax taken, as the original's
    pickled test outputs hold logits) or an integer label id; gives the label string.
    Regression: ``value`` is the normalised prediction (0..1 scale); gives ``y * 5`` (the
    inverse of the target normalisation) as a float string.
    """
    cls = _task_class(task)
    arr = np.asarray(value)
    if issubclass(cls, RegressionTask):
        if arr.size != 1:
            raise ValueError(f"{cls.NAME}: expected one regression value, got shape {arr.shape}")
        return repr(float(arr.reshape(()) * cls.MAX_VALUE + cls.MIN_VALUE))
    labels = cls.LABELS
    if arr.ndim == 0:
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{cls.NAME}: a scalar prediction must be an integer label id, "
                             f"got {value!r}")
        label_id = int(arr)
    else:
        if arr.shape != (len(labels),):
            raise ValueError(f"{cls.NAME}: expected logits of shape ({len(labels)},), "
                             f"got {arr.shape}")
        label_id = int(np.argmax(arr))
    if not 0 <= label_id < len(labels):
        raise ValueError(f"{cls.NAME}: label id {label_id} is out of range for {labels}")
    return labels[label_id]


def write_test_predictions(task: Union[str, GlueTask, Type[GlueTask]],
                           predictions_by_eid: Mapping[int, Any], path: str) -> str:
    """Writes GLUE-leaderboard test predictions atomically (temp file + ``os.replace``).

    The file has the header ``index<TAB>prediction`` and one row per example sorted by eid
    (the eid of a test example is its 0-based row index, i.e. the GLUE ``index`` column).

    Args:
      task: a GLUE task, task class or task name.
      predictions_by_eid: eid -> logits [num_labels] or label id (classification), or the
        normalised prediction (regression); see :func:`format_test_prediction`.
      path: output file (local); its directory is created if needed.
    Returns:
      ``path``.
    """
    cls = _task_class(task)
    lines = ["index\tprediction\n"]
    for eid in sorted(predictions_by_eid, key=int):
        lines.append(f"{int(eid)}\t{format_test_prediction(cls, predictions_by_eid[eid])}\n")
    return write_text_atomic(path, "".join(lines))
