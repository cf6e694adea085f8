"""Reading QA data: SQuAD JSON and MRQA JSONL files -> QAExamples, and their gold answers."""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

from electra_tf.finetuning.task import Example, TaskDataError, log

# MRQA debug runs read only this many lines of a JSONL file (header included), spec 1.5.
MRQA_DEBUG_LINES = 11

# The context is split on exactly these characters (spec 6.5, "Example creation").
_CONTEXT_WHITESPACE = frozenset(" \t\r\n\u202f")


@dataclasses.dataclass
class QAExample(Example):
    """One question on one context.

    ``doc_tokens`` are the context's whitespace-separated words; ``start_position`` /
    ``end_position`` are word indices (inclusive) of the training answer, -1 for an
    unanswerable (SQuAD 2.0) training question and None outside the train split.
    """

    qas_id: str = ""
    question_text: str = ""
    doc_tokens: List[str] = dataclasses.field(default_factory=list)
    orig_answer_text: Optional[str] = None
    start_position: Optional[int] = None
    end_position: Optional[int] = None
    is_impossible: bool = False


def split_context(text: str) -> Tuple[List[str], List[int]]:
    """Splits a context on whitespace (space, tab, CR, LF, U+202F).

    Returns:
      doc_tokens: the words.
      char_to_word: per character of ``text``, the index of the word it belongs to; a
        whitespace character maps to the word before it (-1 before the first word).
    """
    doc_tokens: List[str] = []
    char_to_word: List[int] = []
    after_space = True
    for char in text:
        if char in _CONTEXT_WHITESPACE:
            after_space = True
        else:
            if after_space:
                doc_tokens.append(char)
            else:
                doc_tokens[-1] += char
            after_space = False
        char_to_word.append(len(doc_tokens) - 1)
    return doc_tokens, char_to_word


def _answer_word_span(doc_tokens: Sequence[str], char_to_word: Sequence[int],
                      answer_offset: int, answer_text: str) -> Optional[Tuple[int, int]]:
    """Word indices (start, end) of an answer given by character offset, or None when it
    cannot be matched (end outside the text, or the words do not contain the text)."""
    end_char = answer_offset + len(answer_text) - 1
    if answer_offset < 0 or end_char >= len(char_to_word) or end_char < answer_offset:
        return None
    start_word = char_to_word[answer_offset]
    end_word = char_to_word[end_char]
    if start_word < 0:
        return None
    actual = " ".join(doc_tokens[start_word:end_word + 1]).lower()
    wanted = " ".join(answer_text.split()).lower()
    if actual.find(wanted) == -1:
        return None
    return start_word, end_word


class _ExampleBuilder:
    """Turns paragraphs into QAExamples (eids are the running index; failures counted)."""

    def __init__(self, task_name: str, is_training: bool, v2: bool, path: str):
        self.task_name = task_name
        self.is_training = is_training
        self.v2 = v2
        self.path = path
        self.examples: List[QAExample] = []
        self.failures = 0

    def add_paragraph(self, context: str, qas: Iterable[Mapping[str, Any]], mrqa: bool,
                      where: str) -> None:
        doc_tokens, char_to_word = split_context(context)
        for qa in qas:
            try:
                qas_id = str(qa["qid"] if mrqa else qa["id"])
                question = qa["question"]
            except (KeyError, TypeError) as e:
                raise TaskDataError("%s: %s: question without %s" % (self.path, where, e))
            start = end = None
            answer_text = None
            impossible = False
            if self.is_training:
                if self.v2:
                    impossible = bool(qa.get("is_impossible", False))
                if impossible:
                    start = end = -1
                    answer_text = ""
                else:
                    try:
                        if mrqa:
                            answer = qa["detected_answers"][0]
                            offset = int(answer["char_spans"][0][0])
                        else:
                            answer = qa["answers"][0]
                            offset = int(answer["answer_start"])
                        answer_text = answer["text"]
                    except (KeyError, IndexError, TypeError, ValueError):
                        span = None
                    else:
                        span = _answer_word_span(doc_tokens, char_to_word, offset, answer_text)
                    if span is None:
                        self.failures += 1
                        log.warning("%s: %s: could not find answer of question %s; skipped",
                                    self.path, where, qas_id)
                        continue
                    start, end = span
            self.examples.append(QAExample(
                task_name=self.task_name, eid=len(self.examples), qas_id=qas_id,
                question_text=question, doc_tokens=doc_tokens, orig_answer_text=answer_text,
                start_position=start, end_position=end, is_impossible=impossible))


def read_squad_examples(path: str, task_name: str, is_training: bool,
                        v2: bool) -> Tuple[List[QAExample], int]:
    """Reads a SQuAD JSON file (``data`` → articles → ``paragraphs`` → ``context``, ``qas``).

    Only when ``is_training`` are answers located (``answers[0]``; ``is_impossible`` when
    ``v2``). Returns the examples and the number of skipped (unmatched) questions.
    """
    data = _load_json(path)
    builder = _ExampleBuilder(task_name, is_training, v2, path)
    try:
        articles = data["data"]
    except (KeyError, TypeError):
        raise TaskDataError("%s: no top-level 'data' list" % path)
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            where = "article %d paragraph %d" % (a, p)
            if "context" not in paragraph:
                raise TaskDataError("%s: %s has no context" % (path, where))
            builder.add_paragraph(paragraph["context"], paragraph.get("qas", []), False, where)
    return builder.examples, builder.failures


def read_mrqa_examples(path: str, task_name: str, is_training: bool,
                       max_lines: Optional[int] = None) -> Tuple[List[QAExample], int]:
    """Reads an MRQA JSONL file: one paragraph per line, lines with a ``header`` key skipped.

    Training answers come from ``detected_answers[0]`` (``char_spans[0][0]``, ``text``);
    question ids from ``qid``. ``max_lines``: read at most this many lines (debug).
    """
    builder = _ExampleBuilder(task_name, is_training, False, path)
    for line_no, paragraph in _jsonl_lines(path, max_lines):
        if "header" in paragraph:
            continue
        where = "line %d" % line_no
        if "context" not in paragraph:
            raise TaskDataError("%s: %s has no context" % (path, where))
        builder.add_paragraph(paragraph["context"], paragraph.get("qas", []), True, where)
    return builder.examples, builder.failures


def load_squad_gold(path: str) -> "collections.OrderedDict[str, List[str]]":
    """Question id -> list of gold answer texts (all of ``answers``, in file order)."""
    data = _load_json(path)
    gold: "collections.OrderedDict[str, List[str]]" = collections.OrderedDict()
    for article in data.get("data", []):
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                gold[str(qa["id"])] = [a["text"] for a in qa.get("answers", [])]
    return gold


def load_mrqa_gold(path: str) -> "collections.OrderedDict[str, List[str]]":
    """Question id (``qid``) -> the ``answers`` list of an MRQA JSONL file."""
    gold: "collections.OrderedDict[str, List[str]]" = collections.OrderedDict()
    for _, paragraph in _jsonl_lines(path, None):
        if "header" in paragraph:
            continue
        for qa in paragraph.get("qas", []):
            gold[str(qa["qid"])] = list(qa.get("answers", []))
    return gold


def _load_json(path: str) -> Any:
    if not os.path.isfile(path):
        raise TaskDataError("QA data file not found: %s" % path)
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise TaskDataError("%s: invalid JSON (line %d): %s" % (path, e.lineno, e.msg))


def _jsonl_lines(path: str, max_lines: Optional[int]):
    """Yields (1-based line number, parsed object) for the non-blank lines."""
    if not os.path.isfile(path):
        raise TaskDataError("QA data file not found: %s" % path)
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if max_lines is not None and i >= max_lines:
                break
            if not line.strip():
                continue
            try:
                yield i + 1, json.loads(line)
            except json.JSONDecodeError as e:
                raise TaskDataError("%s: line %d: invalid JSON: %s" % (path, i + 1, e.msg))

