"""Reading the GLUE TSV files (spec 6.4): a tab delimiter and no quote character, and
where each task's columns are (:class:`Columns`)."""

from __future__ import annotations

import csv
import dataclasses
from typing import Iterator, List, Optional, Tuple

from electra_tf.finetuning.task import TaskDataError

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
