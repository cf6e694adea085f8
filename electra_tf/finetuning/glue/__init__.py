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

The parts: ``reader`` (TSV files, column layouts), ``examples`` (the example, split kinds),
``tfds`` (``--data_source=tfds``), ``tasks`` (the tasks and the leaderboard files),
``scoring`` and ``metrics`` (the scorers), ``settings``.
"""

from electra_tf.finetuning.glue import metrics
from electra_tf.finetuning.glue.examples import GlueExample, is_test_split
from electra_tf.finetuning.glue.reader import DEBUG_MAX_LINES, Columns, read_tsv
from electra_tf.finetuning.glue.scoring import (CLASSIFICATION_METRICS, ClassificationScorer,
                                                RegressionScorer, SentenceLevelScorer)
from electra_tf.finetuning.glue.settings import GlueSettings
from electra_tf.finetuning.glue.tasks import (GLUE_TASKS, LEADERBOARD_FILE_NAMES, MNLI, MRPC,
                                              QNLI, QQP, RTE, SST, STS, WNLI,
                                              ClassificationTask, CoLA, GlueTask,
                                              RegressionTask, format_test_prediction,
                                              get_glue_task, write_test_predictions)
from electra_tf.finetuning.glue.tfds import TFDS_CONFIGS, read_tfds_examples, tfds_split

__all__ = ["CLASSIFICATION_METRICS", "ClassificationScorer", "ClassificationTask", "CoLA",
           "Columns", "DEBUG_MAX_LINES", "format_test_prediction", "get_glue_task",
           "GLUE_TASKS", "GlueExample", "GlueSettings", "GlueTask", "is_test_split",
           "LEADERBOARD_FILE_NAMES", "metrics", "MNLI", "MRPC", "QNLI", "QQP",
           "read_tfds_examples", "read_tsv", "RegressionScorer", "RegressionTask", "RTE",
           "SentenceLevelScorer", "SST", "STS", "TFDS_CONFIGS", "tfds_split", "WNLI",
           "write_test_predictions"]
