"""GLUE sentence(-pair) classification and regression tasks (spec 6.4, 6.8).

Each task reads ``<data_dir>/<split>.tsv`` in the original GLUE TSV format (the driver passes
``data_dir = <data-dir>/finetuning_data/<task>``) with the csv module, a tab delimiter and no
quote character, picks its columns as the original does, featurizes BERT style and scores
with the original's metrics:

| task | class | labels | metric(s) |
| --- | --- | --- | --- |
| cola | :class:`CoLA` | "0", "1" | mcc |
| sst | :class:`SST` | "0", "1" | accuracy |
| mrpc | :class:`MRPC` | "0", "1" | accuracy |
| qqp | :class:`QQP` | "0", "1" | accuracy |
| mnli | :class:`MNLI` | "contradiction", "entailment", "neutral" | accuracy |
| qnli | :class:`QNLI` | "entailment", "not_entailment" | accuracy |
| rte | :class:`RTE` | "entailment", "not_entailment" | accuracy |
| wnli | :class:`WNLI` | "0", "1" (not in the original) | accuracy |
| sts | :class:`STS` | regression, y in [0, 5] -> y / 5 | pearson, spearman, mse |

Every scorer also reports the mean per-example ``loss`` when the outputs carry it.

Features (besides the shared ``input_ids``/``input_mask``/``segment_ids`` [L] and
``task_id`` []): ``<task>_eid`` [] int64 and either ``<task>_label_ids`` [] int64
(classification) or ``<task>_targets`` [] float32 (regression, on the 0..1 scale).
Scorers read the prediction outputs ``<task>_predictions`` [B], ``<task>_label_ids`` or
``<task>_targets`` [B], and optionally ``<task>_loss`` [B] and ``<task>_eid`` [B].

Rows that cannot be turned into an example (too few columns, a label outside the label set,
an unparsable or out-of-range STS score) are skipped, logged with file and line number and
counted in ``task.skipped_rows``, like the original's skip-and-log.

Before that, each file's first line is checked against the task's layout (the header's names
of the columns read, e.g. SST-2's ``sentence``/``label``; for CoLA's header-less train and
dev files the column count and label of the first row): a file in another task's layout is a
TaskDataError naming the file, the line and the layout expected, where the original would
drop a data row as the header and train on the wrong columns. ``check_columns=False``
(``--nocheck_glue_columns``) reads the columns by position as the original does.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import (Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Type,
                    Union)

import numpy as np

from electra_tf import preprocessing
from electra_tf.finetuning import metrics
from electra_tf.finetuning.glue_examples import GlueExample, is_test_split
from electra_tf.io_utils import write_text_atomic
from electra_tf.finetuning.task import (FeatureSpecs, Scorer, Task, TaskDataError,
                                        log, path_exists)

# Lines read per TSV in debug mode (spec 1.5); the header line counts as one.
DEBUG_MAX_LINES = 100


@dataclasses.dataclass(frozen=True)
class Columns:
    """Where a split's fields are (negative indices count from the end, as in the original).

    Attributes:
      text_a, text_b, label: column indices; None for an absent field (no second text, or no
        label column in a test split).
      skip_header: the first line is a header.
      header: ``(column, name)`` pairs the header must show (names compared in lower case),
        so that a file in another layout is found (:meth:`GlueTask.check_layout`).
      row_columns: for a file without a header: the number of columns of its rows (the
        first row is checked).
    """

    text_a: int
    text_b: Optional[int]
    label: Optional[int]
    skip_header: bool
    header: Tuple[Tuple[int, str], ...] = ()
    row_columns: Optional[int] = None

    def describe(self) -> str:
        """The layout in words, e.g. "a header with 'sentence' in column 1 and 'label' in
        column 2"."""
        if not self.skip_header:
            return f"{self.row_columns} tab-separated columns and no header line"
        return "a header with " + " and ".join(
            f"{name!r} in {_column_name(column)}" for column, name in self.header)


def _column_name(index: int) -> str:
    if index >= 0:
        return f"column {index + 1}"
    return {-1: "the last column", -2: "the second-to-last column"}.get(
        index, f"column {index} from the end")


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

def _open_text(path: str):
    if "://" in path:
        import io  # pylint: disable=g-import-not-at-top
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
        return io.StringIO(data.decode("utf-8-sig"), newline="")
    return open(path, encoding="utf-8-sig", newline="")


def read_tsv(path: str, max_lines: Optional[int] = None) -> Iterator[Tuple[int, List[str]]]:
    """Yields ``(line number (1-based), fields)`` of a TSV read with a tab delimiter and no
    quote character (``csv.QUOTE_NONE``), so a leading ``"`` stays part of its field.

    A UTF-8 byte-order mark at the start of the file (MRPC's header) is dropped. A blank line
    gives an empty field list. Reading stops after ``max_lines`` lines when it is given.
    """
    try:
        with _open_text(path) as f:
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None)
            for i, row in enumerate(reader):
                if max_lines is not None and i >= max_lines:
                    break
                yield reader.line_num, row
    except UnicodeDecodeError as e:
        raise TaskDataError(f"{path}: not valid UTF-8 ({e})") from e


# ---------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------

class GlueTask(Task):
    """Shared reading and featurization of the GLUE tasks (spec 6.4).

    Args:
      data_dir: ``<data-dir>/finetuning_data/<name>`` holding ``<split>.tsv`` files.
      tokenizer: an ``electra_tf.tokenization`` tokenizer.
      max_seq_length: L (>= 3 for pair tasks, >= 2 for single-sentence ones).
      debug: read at most 100 lines of each TSV (spec 1.5).
      double_unordered: for the training split of MRPC and STS only, append a copy of every
        example with the two texts swapped (config ``double_unordered``, default True).
      task_id: index of this task in the run's task list, written as the ``task_id`` feature.
    """

    NAME: str = ""
    SPLITS: Tuple[str, ...] = ("train", "dev", "test")
    TEST_SPLITS: Tuple[str, ...] = ("test",)
    DOUBLE_UNORDERED: bool = False  # whether ``double_unordered`` applies to this task

    def __init__(self, data_dir: str, tokenizer, max_seq_length: int, debug: bool = False,
                 double_unordered: bool = True, task_id: int = 0, data_source: str = "tsv",
                 tfds_data_dir: Optional[str] = None, check_columns: bool = True):
        super().__init__(self.NAME, data_dir, tokenizer, max_seq_length, debug)
        self.double_unordered = double_unordered
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
            from electra_tf.finetuning.glue_tfds import read_tfds_examples
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
        if split == "train" and self.double_unordered and self.DOUBLE_UNORDERED:
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

    # -- run, cache, test outputs, serving -------------------------------------

    @classmethod
    def options_from_run(cls, name: str, config, options) -> Dict[str, Any]:
        # The column check is on unless the run turns it off (--nocheck_glue_columns).
        unchecked = ({} if getattr(options, "check_glue_columns", True)
                     else {"check_columns": False})
        return {"double_unordered": config.double_unordered,
                "data_source": options.data_source, "tfds_data_dir": options.tfds_data_dir,
                **unchecked}

    def cache_options(self) -> Dict[str, Any]:
        # Unchecked columns can give other examples; checked ones leave the cache key as it
        # was, so existing caches stay valid.
        unchecked = {} if self.check_columns else {"check_columns": False}
        return {**super().cache_options(), "double_unordered": bool(self.double_unordered),
                "data_source": self.data_source, "tfds_data_dir": self.tfds_data_dir,
                **unchecked}

    def write_test_outputs(self, predict, directory: str, config) -> List[str]:
        """GLUE-leaderboard TSVs of every test split (spec 6.8), named as the leaderboard
        wants them (``LEADERBOARD_FILE_NAMES``)."""
        del config
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

    def build_head(self, finetuning_config=None):
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

    def denormalize(self, value: float) -> float:
        return float(value) * self.MAX_VALUE + self.MIN_VALUE

    def label_features(self, example: GlueExample) -> Dict[str, Any]:
        return {self.name + "_targets": self.normalize(example.label)}

    def feature_specs(self) -> FeatureSpecs:
        return {self.name + "_eid": ((), "int64"),
                self.name + "_targets": ((), "float32")}

    def get_scorer(self, split: str = "dev") -> Scorer:
        return RegressionScorer(self.name)

    def build_head(self, finetuning_config=None):
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
    """Builds the GLUE task ``name`` (kwargs: debug, double_unordered, task_id)."""
    if name not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task {name!r}; known: {sorted(GLUE_TASKS)}")
    return GLUE_TASKS[name](data_dir, tokenizer, max_seq_length, **kwargs)


# ---------------------------------------------------------------------------
# Scorers
# ---------------------------------------------------------------------------

class SentenceLevelScorer(Scorer):
    """Collects per-example predictions, labels (or targets) and losses of one task.

    Args:
      task_name: the prefix of the output keys.
      label_key: ``"label_ids"`` (classification) or ``"targets"`` (regression).
    """

    def __init__(self, task_name: str, label_key: str):
        self.task_name = task_name
        self._pred_key = f"{task_name}_predictions"
        self._label_key = f"{task_name}_{label_key}"
        self._loss_key = f"{task_name}_loss"
        self._eid_key = f"{task_name}_eid"
        self._preds: List[np.ndarray] = []
        self._labels: List[np.ndarray] = []
        self._losses: List[np.ndarray] = []
        self._eids: List[np.ndarray] = []
        self._count = 0

    def update(self, outputs: Mapping[str, np.ndarray]) -> None:
        """Adds a batch: ``<task>_predictions`` [B], ``<task>_label_ids``/``_targets`` [B],
        optional ``<task>_loss`` [B] and ``<task>_eid`` [B]."""
        missing = [k for k in (self._pred_key, self._label_key) if k not in outputs]
        if missing:
            raise KeyError(f"{self.task_name} scorer: outputs lack {missing}; "
                           f"got {sorted(outputs)}")
        preds = np.asarray(outputs[self._pred_key]).reshape(-1)
        labels = np.asarray(outputs[self._label_key]).reshape(-1)
        n = preds.shape[0]
        if labels.shape[0] != n:
            raise ValueError(f"{self.task_name} scorer: {n} predictions but "
                             f"{labels.shape[0]} labels")
        self._preds.append(preds)
        self._labels.append(labels)
        for key, store in ((self._loss_key, self._losses), (self._eid_key, self._eids)):
            if key in outputs:
                values = np.asarray(outputs[key]).reshape(-1)
                if values.shape[0] != n:
                    raise ValueError(f"{self.task_name} scorer: {key} has "
                                     f"{values.shape[0]} values for {n} predictions")
                store.append(values)
        self._count += n

    def _arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        if self._count == 0:
            raise ValueError(f"{self.task_name} scorer: no predictions were given")
        return np.concatenate(self._labels), np.concatenate(self._preds)

    def _with_loss(self, results: Dict[str, float]) -> Dict[str, float]:
        losses = np.concatenate(self._losses) if self._losses else np.zeros((0,))
        if losses.shape[0] == self._count:  # every batch carried a loss
            results["loss"] = float(np.mean(losses.astype(np.float64)))
        return results

    @property
    def eids(self) -> np.ndarray:
        """[N] example ids seen so far (when the outputs carried ``<task>_eid``)."""
        return np.concatenate(self._eids) if self._eids else np.zeros((0,), np.int64)


# Metric name (``ClassificationTask.METRIC``) -> metric function of (labels, predictions).
CLASSIFICATION_METRICS = {"accuracy": metrics.accuracy, "mcc": metrics.matthews_corrcoef}


class ClassificationScorer(SentenceLevelScorer):
    """``metric`` (``accuracy`` or ``mcc``, x100) and ``loss`` (MRPC and QQP report accuracy
    only: the original reports no F1)."""

    def __init__(self, task_name: str, metric: str = "accuracy"):
        super().__init__(task_name, "label_ids")
        self.metric = metric
        self._metric_fn = CLASSIFICATION_METRICS[metric]

    def get_results(self) -> Dict[str, float]:
        labels, preds = self._arrays()
        return self._with_loss({self.metric: 100.0 * self._metric_fn(labels, preds)})


class RegressionScorer(SentenceLevelScorer):
    """``pearson``, ``spearman`` (x100), ``mse`` (unscaled, 0..1 target scale) and ``loss``."""

    def __init__(self, task_name: str):
        super().__init__(task_name, "targets")

    def get_results(self) -> Dict[str, float]:
        targets, preds = self._arrays()
        return self._with_loss({
            "pearson": 100.0 * metrics.pearson(preds, targets),
            "spearman": 100.0 * metrics.spearman(preds, targets),
            "mse": metrics.mse(targets, preds)})


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
