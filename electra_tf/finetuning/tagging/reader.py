"""Reading CoNLL-format files (spec 6.6): one word per line, the tag in a column, a blank
line between sentences."""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

from electra_tf import tokenization
from electra_tf.finetuning.task import TaskDataError

SPLITS = ("train", "dev", "test")
DOCSTART = "-DOCSTART-"
# Debug mode stops reading a file once it holds more than this many sentences (spec 1.5).
DEBUG_MAX_SENTENCES = 100


@dataclasses.dataclass
class Sentence:
    """One sentence of a CoNLL file: ``words`` and ``tags`` [n]; ``line`` is the 1-based line
    number of its first word (for error messages)."""

    words: List[str]
    tags: List[str]
    line: int


def read_text(path: str) -> str:
    data = tokenization._read_bytes(path, "tagging data file")  # pylint: disable=protected-access
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TaskDataError(f"{path}: not valid UTF-8 ({e})") from e


def read_conll(path: str, column: int = -1, max_sentences: Optional[int] = None,
               keep_last_unterminated: bool = False) -> Tuple[List[Sentence], int]:
    """Reads a CoNLL-format file.

    Lines are split on ``"\\n"`` (a final newline ends the last line, it does not add a
    blank one) and then on whitespace (``str.split()``). Word = column 0, tag = ``column``;
    a blank line ends a sentence; a line whose first column is ``-DOCSTART-`` is skipped (it
    does not end a sentence). Tags are not validated here.

    Args:
      path: the file (local or a ``tf.io.gfile`` URL).
      column: the tag column (negative counts from the end; -1 = last, as the original).
      max_sentences: stop as soon as more than this many sentences are read (the original's
        debug rule, so ``max_sentences + 1`` are returned).
      keep_last_unterminated: keep a last sentence that no blank line follows (the original
        drops it).
    Returns:
      (sentences, number of words in a dropped unterminated last sentence, else 0).
    Raises:
      TaskDataError: a line lacks the tag column (names the file and line).
    """
    sentences: List[Sentence] = []
    words: List[str] = []
    tags: List[str] = []
    first_line = 0
    lines = read_text(path).split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline that ends the last line is no blank line
    for line_no, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            if words:
                sentences.append(Sentence(words, tags, first_line))
                words, tags = [], []
                if max_sentences is not None and len(sentences) > max_sentences:
                    return sentences, 0
            continue
        if fields[0] == DOCSTART:
            continue
        try:
            tag = fields[column]
        except IndexError:
            raise TaskDataError(f"{path} line {line_no}: no tag column {column} in "
                                f"{line.strip()!r}") from None
        if not words:
            first_line = line_no
        words.append(fields[0])
        tags.append(tag)
    if words and keep_last_unterminated:
        sentences.append(Sentence(words, tags, first_line))
        return sentences, 0
    return sentences, len(words)
