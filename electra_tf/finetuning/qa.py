"""Extractive question answering (spec 6.5): SQuAD 1.1, SQuAD 2.0 and the MRQA tasks.

Tasks: ``squadv1`` (SQuAD 1.1 JSON), ``squad`` (SQuAD 2.0 JSON, unanswerable questions) and
the MRQA JSONL tasks ``newsqa``, ``naturalqs``, ``triviaqa``, ``searchqa``.

Data flow::

    <split>.json / <split>.jsonl ──► QAExample (whitespace words, word-level answer)
        ──► QAFeature per doc span (sliding window, [CLS] q [SEP] span [SEP], labels)
        ──► feature dict (input_ids, input_mask, segment_ids, <task>_eid, <task>_start_positions,
            <task>_end_positions, <task>_is_impossible)
    model outputs per feature ──► QAScorer.update ──► postprocess (n-best spans, null score)
        ──► predictions / null-odds JSON ──► official-style EM / F1 (v1, v2, MRQA)

What the model's QA head must return for each feature (prefix ``<task>_`` optional; B = batch,
L = max_seq_length, k = ``beam_size``)::

    eid                   int   [B]        the feature's ``<task>_eid``
    joint prediction (default):
      start_top_log_probs float [B, k]     top-k start log-probs (log-softmax of masked logits)
      start_top_index     int   [B, k]     their positions
      end_top_log_probs   float [B, k, k]  per start candidate, top-k end log-probs
      end_top_index       int   [B, k, k]  their positions
    non-joint:
      start_logits        float [B, L]     masked start logits
      end_logits          float [B, L]     masked end logits
    SQuAD 2.0 only:
      answerable_logit    float [B]        with ``answerable_classifier`` (logit of "unanswerable")
      start_logits, end_logits [B, L]      without it (joint: end_logits may be zeros)

Everything here is pure Python / NumPy: no TensorFlow import.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import re
import string
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from electra_tf import tokenization
from electra_tf.io_utils import write_text_atomic
from electra_tf.finetuning.task import (Example, FeatureSpecs, Scorer, Task, TaskDataError,
                                        log, pad_to)

SQUAD_TASKS = ("squadv1", "squad")
MRQA_TASKS = ("newsqa", "naturalqs", "triviaqa", "searchqa")
QA_TASKS = SQUAD_TASKS + MRQA_TASKS

# Feature eid = EID_MULTIPLIER * example eid + span index (spec 6.5 step 7).
EID_MULTIPLIER = 1000
# Initial null score: any real answerable logit is smaller (the minimum over spans is kept).
_NULL_SCORE_INIT = 1000000.0
# MRQA debug runs read only this many lines of a JSONL file (header included), spec 1.5.
MRQA_DEBUG_LINES = 11

# The context is split on exactly these characters (spec 6.5, "Example creation").
_CONTEXT_WHITESPACE = frozenset(" \t\r\n\u202f")


@dataclasses.dataclass
class QAConfig:
    """The fine-tuning config fields the QA tasks read (spec 1.6 defaults).

    ``results_dir``: where the scorer writes ``<task>_preds.json``, ``<task>_null_odds.json``
    (SQuAD 2.0) and ``<task>_eval.json``; the original uses
    ``<pretrained dir>/results/<tasks>_qa``. None: nothing is written.
    """

    max_query_length: int = 64
    doc_stride: int = 128
    n_best_size: int = 20
    max_answer_length: int = 30
    answerable_classifier: bool = True
    joint_prediction: bool = True
    beam_size: int = 20
    qa_na_threshold: float = -2.75
    do_lower_case: bool = True
    results_dir: Optional[str] = None

    @classmethod
    def from_config(cls, config: Any, **overrides) -> "QAConfig":
        """Takes every field of this class that ``config`` (any object) has as an attribute."""
        values = {}
        for field in dataclasses.fields(cls):
            if hasattr(config, field.name):
                values[field.name] = getattr(config, field.name)
        values.update(overrides)
        return cls(**values)


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


@dataclasses.dataclass
class QAFeature:
    """One doc span of one example (several per example when the context is long).

    Lists indexed by position refer to the unpadded ``tokens``:
    ``[CLS] question [SEP] span [SEP]``.

    Attributes:
      eid: ``1000 * example_eid + span_index``.
      tokens: word-pieces, length n <= L.
      input_ids, input_mask, segment_ids: int lists of length L (zero-padded).
      token_to_orig: per position, the index of the context word it came from, -1 for
        [CLS], question, [SEP] positions.
      token_is_max_context: per position, whether this span is the token's max-context span
        (False outside the context).
      doc_span_start, doc_span_length: the span in the example's context word-pieces.
      start_position, end_position: training labels (positions in ``tokens``; 0 = [CLS] for
        unanswerable or out-of-span answers; 0 when not training).
      is_impossible: training label, the example's flag (0 when not training).
    """

    eid: int
    example_eid: int
    span_index: int
    tokens: List[str]
    input_ids: List[int]
    input_mask: List[int]
    segment_ids: List[int]
    token_to_orig: List[int]
    token_is_max_context: List[bool]
    doc_span_start: int
    doc_span_length: int
    start_position: int = 0
    end_position: int = 0
    is_impossible: int = 0

    def to_dict(self, task_name: str) -> Dict[str, Any]:
        """The serialisable features (spec 6.5 step 7), without ``task_id``."""
        return {
            "input_ids": list(self.input_ids),
            "input_mask": list(self.input_mask),
            "segment_ids": list(self.segment_ids),
            task_name + "_eid": self.eid,
            task_name + "_start_positions": self.start_position,
            task_name + "_end_positions": self.end_position,
            task_name + "_is_impossible": self.is_impossible,
        }


# ---------------------------------------------------------------------------
# Reading.
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Featurization.
# ---------------------------------------------------------------------------


def compute_doc_spans(num_tokens: int, max_tokens: int, stride: int) -> List[Tuple[int, int]]:
    """(start, length) windows over ``num_tokens`` context word-pieces.

    Windows start at 0 and advance by ``min(length, stride)`` until the last one reaches the
    end; an empty context gives no window.
    """
    spans = []
    start = 0
    while start < num_tokens:
        length = min(num_tokens - start, max_tokens)
        spans.append((start, length))
        if start + length == num_tokens:
            break
        start += min(length, stride)
    return spans


def is_max_context(spans: Sequence[Tuple[int, int]], span_index: int, position: int) -> bool:
    """Whether ``spans[span_index]`` gives context word-piece ``position`` its best context.

    Score of a span containing the position = min(left, right context) + 0.01 * span length;
    the first span with the highest score wins.
    """
    best_score = None
    best_index = None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score = score
            best_index = index
    return best_index == span_index


def improve_answer_span(doc_pieces: Sequence[str], start: int, end: int,
                        answer_pieces: Sequence[str]) -> Tuple[int, int]:
    """The first sub-span of [start, end] whose pieces equal the answer's tokenization.

    Outer loop: start ascending; inner loop: end descending. No match: (start, end).
    """
    wanted = " ".join(answer_pieces)
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if " ".join(doc_pieces[new_start:new_end + 1]) == wanted:
                return new_start, new_end
    return start, end


def _wordpieces(tokenizer, texts: Sequence[str]) -> List[List[str]]:
    """Word-pieces of each text (one batched call; same pieces as ``tokenize``)."""
    if not texts:
        return []
    ids = tokenizer.encode_batch(list(texts))
    return [tokenizer.convert_ids_to_tokens(row) for row in ids]


def featurize_example(example: QAExample, tokenizer, max_seq_length: int,
                      max_query_length: int, doc_stride: int,
                      is_training: bool) -> List[QAFeature]:
    """One example -> one QAFeature per doc span (spec 6.5 "Featurization").

    Args:
      example: a QAExample (with word-level answer positions when ``is_training``).
      tokenizer: an ``electra_tf.tokenization`` tokenizer.
      max_seq_length: L.
      max_query_length: question word-pieces kept (the rest is cut).
      doc_stride: the largest step between window starts.
      is_training: compute labels; otherwise all labels are 0.
    """
    specials = tokenizer.special_ids
    cls_token = tokenizer.inv_vocab[specials["cls"]]
    sep_token = tokenizer.inv_vocab[specials["sep"]]
    pieces = _wordpieces(tokenizer, [example.question_text] + list(example.doc_tokens))
    query = pieces[0][:max_query_length]

    piece_to_word: List[int] = []
    word_to_piece: List[int] = []
    doc_pieces: List[str] = []
    for word_index, word_pieces in enumerate(pieces[1:]):
        word_to_piece.append(len(doc_pieces))
        for piece in word_pieces:
            piece_to_word.append(word_index)
            doc_pieces.append(piece)

    tok_start = tok_end = -1
    if is_training and not example.is_impossible:
        if example.start_position is None or example.end_position is None:
            raise ValueError("training example %d has no answer positions" % example.eid)
        tok_start = word_to_piece[example.start_position]
        if example.end_position < len(example.doc_tokens) - 1:
            tok_end = word_to_piece[example.end_position + 1] - 1
        else:
            tok_end = len(doc_pieces) - 1
        answer_pieces = _wordpieces(tokenizer, [example.orig_answer_text or ""])[0]
        tok_start, tok_end = improve_answer_span(doc_pieces, tok_start, tok_end, answer_pieces)

    max_doc_tokens = max_seq_length - len(query) - 3
    if max_doc_tokens <= 0:
        raise ValueError("max_seq_length %d leaves no room for the context after a %d-piece "
                         "question" % (max_seq_length, len(query)))
    spans = compute_doc_spans(len(doc_pieces), max_doc_tokens, doc_stride)
    if len(spans) > EID_MULTIPLIER:
        raise ValueError("example %d has %d doc spans; feature eids (1000 * example + span) "
                         "would collide" % (example.eid, len(spans)))

    features = []
    query_offset = len(query) + 2
    for span_index, (span_start, span_length) in enumerate(spans):
        tokens = [cls_token] + query + [sep_token]
        segment_ids = [0] * len(tokens)
        token_to_orig = [-1] * len(tokens)
        max_context = [False] * len(tokens)
        for i in range(span_start, span_start + span_length):
            tokens.append(doc_pieces[i])
            segment_ids.append(1)
            token_to_orig.append(piece_to_word[i])
            max_context.append(is_max_context(spans, span_index, i))
        tokens.append(sep_token)
        segment_ids.append(1)
        token_to_orig.append(-1)
        max_context.append(False)

        input_ids = tokenizer.convert_tokens_to_ids(tokens)
        start_label = end_label = 0
        if is_training and not example.is_impossible:
            span_end = span_start + span_length - 1
            if span_start <= tok_start and tok_end <= span_end:
                start_label = tok_start - span_start + query_offset
                end_label = tok_end - span_start + query_offset
        features.append(QAFeature(
            eid=EID_MULTIPLIER * example.eid + span_index, example_eid=example.eid,
            span_index=span_index, tokens=tokens,
            input_ids=pad_to(input_ids, max_seq_length),
            input_mask=pad_to([1] * len(input_ids), max_seq_length),
            segment_ids=pad_to(segment_ids, max_seq_length),
            token_to_orig=token_to_orig, token_is_max_context=max_context,
            doc_span_start=span_start, doc_span_length=span_length,
            start_position=start_label, end_position=end_label,
            is_impossible=int(bool(is_training and example.is_impossible))))
    return features


# ---------------------------------------------------------------------------
# Post-processing.
# ---------------------------------------------------------------------------


def _without_spaces(text: str) -> Tuple[str, List[int]]:
    """``text`` without " " characters and, per kept character, its index in ``text``."""
    kept = [(i, c) for i, c in enumerate(text) if c != " "]
    return "".join(c for _, c in kept), [i for i, _ in kept]


def get_final_text(pred_text: str, orig_text: str, basic_tokenizer) -> str:
    """Maps a normalised predicted text back onto the original words ``orig_text``.

    ``orig_text`` is basic-tokenized (lower-casing as configured) and ``pred_text`` located
    in it; characters are aligned ignoring spaces, and the matching slice of ``orig_text``
    is returned. Any failure (not found, different lengths without spaces) returns
    ``orig_text``. Example: ("steve smith", "Steve Smith's") -> "Steve Smith".
    """
    tok_text = " ".join(basic_tokenizer.tokenize(orig_text))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_chars, orig_index = _without_spaces(orig_text)
    tok_chars, tok_index = _without_spaces(tok_text)
    if len(orig_chars) != len(tok_chars):
        return orig_text
    tok_to_stripped = {pos: i for i, pos in enumerate(tok_index)}
    if start not in tok_to_stripped or end not in tok_to_stripped:
        return orig_text
    return orig_text[orig_index[tok_to_stripped[start]]:orig_index[tok_to_stripped[end]] + 1]


def _best_indexes(logits: np.ndarray, n: int) -> List[int]:
    """Indices of the ``n`` largest values, descending (ties: lower index first)."""
    order = np.argsort(-np.asarray(logits, dtype=np.float64), kind="stable")
    return [int(i) for i in order[:n]]


@dataclasses.dataclass
class NbestEntry:
    """One n-best answer of an example (in memory only, as in the original)."""

    text: str
    start_logit: float
    end_logit: float
    probability: float = 0.0


def postprocess_example(example: QAExample, features: Sequence[QAFeature],
                        results: Mapping[int, Mapping[str, np.ndarray]], config: QAConfig,
                        v2: bool, basic_tokenizer) -> Tuple[str, Optional[float],
                                                            List[NbestEntry]]:
    """The prediction of one example from its features' model outputs (spec 6.5).

    Args:
      example: the example.
      features: its doc-span features (eval featurization).
      results: feature eid -> that feature's outputs (keys as in the module docstring,
        without the batch dimension). Features without a result are ignored.
      config: n_best_size, max_answer_length, joint_prediction, answerable_classifier.
      v2: SQuAD 2.0 (compute the null odds).
      basic_tokenizer: for ``get_final_text``.

    Returns:
      (prediction text, null odds or None when not ``v2``, n-best list).
    """
    candidates = []  # (score, feature index, start, end, start score, end score)
    score_null = _NULL_SCORE_INIT
    for f_index, feature in enumerate(features):
        result = results.get(feature.eid)
        if result is None:
            continue
        if config.joint_prediction:
            start_indexes = [int(i) for i in np.asarray(result["start_top_index"]).reshape(-1)]
            end_index_rows = np.asarray(result["end_top_index"])
            start_scores = np.asarray(result["start_top_log_probs"], dtype=np.float64)
            end_scores = np.asarray(result["end_top_log_probs"], dtype=np.float64)
        else:
            start_logits = np.asarray(result["start_logits"], dtype=np.float64)
            end_logits = np.asarray(result["end_logits"], dtype=np.float64)
            start_indexes = _best_indexes(start_logits, config.n_best_size)
            end_indexes = _best_indexes(end_logits, config.n_best_size)
        if v2:
            if config.answerable_classifier:
                feature_null = float(np.asarray(result["answerable_logit"]).reshape(()))
            else:
                feature_null = (float(result["start_logits"][0]) +
                                float(result["end_logits"][0]))
            score_null = min(score_null, feature_null)
        n_tokens = len(feature.tokens)
        for i, start in enumerate(start_indexes):
            ends = ([int(e) for e in end_index_rows[i]] if config.joint_prediction
                    else end_indexes)
            for j, end in enumerate(ends):
                if start >= n_tokens or end >= n_tokens or start == 0:
                    continue
                if feature.token_to_orig[start] < 0 or feature.token_to_orig[end] < 0:
                    continue
                if not feature.token_is_max_context[start]:
                    continue
                if end < start or end - start + 1 > config.max_answer_length:
                    continue
                if config.joint_prediction:
                    s_score, e_score = float(start_scores[i]), float(end_scores[i, j])
                else:
                    s_score, e_score = float(start_logits[start]), float(end_logits[end])
                candidates.append((s_score + e_score, f_index, start, end, s_score, e_score))

    candidates.sort(key=lambda c: c[0], reverse=True)  # stable: ties keep generation order
    nbest: List[NbestEntry] = []
    seen = set()
    for _, f_index, start, end, s_score, e_score in candidates:
        if len(nbest) >= config.n_best_size:
            break
        feature = features[f_index]
        piece_text = " ".join(feature.tokens[start:end + 1])
        piece_text = " ".join(piece_text.replace(" ##", "").replace("##", "").strip().split())
        words = example.doc_tokens[feature.token_to_orig[start]:feature.token_to_orig[end] + 1]
        text = get_final_text(piece_text, " ".join(words), basic_tokenizer)
        if text in seen:
            continue
        seen.add(text)
        nbest.append(NbestEntry(text, s_score, e_score))
    if not nbest:
        nbest.append(NbestEntry("empty", 0.0, 0.0))

    totals = np.array([e.start_logit + e.end_logit for e in nbest], dtype=np.float64)
    probs = np.exp(totals - totals.max())
    probs /= probs.sum()
    for entry, p in zip(nbest, probs):
        entry.probability = float(p)

    best = next((e for e in nbest if e.text), None)
    if not v2:
        return nbest[0].text, None, nbest
    text = best.text if best is not None else ""
    if config.answerable_classifier or best is None:
        null_odds = score_null
    else:
        null_odds = score_null - best.start_logit - best.end_logit
    return text, float(null_odds), nbest


def postprocess(examples: Sequence[QAExample],
                features_by_example: Mapping[int, Sequence[QAFeature]],
                results: Mapping[int, Mapping[str, np.ndarray]], config: QAConfig, v2: bool,
                basic_tokenizer, id_key: str = "qas_id"
                ) -> Tuple["collections.OrderedDict[str, str]",
                           "collections.OrderedDict[str, float]", Dict[str, List[NbestEntry]]]:
    """Predictions for every example that has at least one feature result.

    Returns:
      predictions: question id -> answer text.
      null_odds: question id -> null odds (empty unless ``v2``).
      nbest: question id -> n-best entries.
    """
    predictions: "collections.OrderedDict[str, str]" = collections.OrderedDict()
    null_odds: "collections.OrderedDict[str, float]" = collections.OrderedDict()
    nbest_all: Dict[str, List[NbestEntry]] = {}
    missing = 0
    for example in examples:
        features = features_by_example.get(example.eid, [])
        if features and not any(f.eid in results for f in features):
            missing += 1
            continue
        text, odds, nbest = postprocess_example(example, features, results, config, v2,
                                                basic_tokenizer)
        qid = getattr(example, id_key)
        predictions[qid] = text
        nbest_all[qid] = nbest
        if v2:
            null_odds[qid] = odds
    if missing:
        log.warning("%d examples had no model outputs and get no prediction", missing)
    return predictions, null_odds, nbest_all


def blank_null_predictions(predictions: Mapping[str, str], null_odds: Mapping[str, float],
                           threshold: float) -> "collections.OrderedDict[str, str]":
    """SQuAD 2.0 test output (spec 6.8): the text, or "" where null odds > ``threshold``."""
    return collections.OrderedDict(
        (qid, "" if null_odds.get(qid, -math.inf) > threshold else text)
        for qid, text in predictions.items())


def write_json_atomic(path: str, obj: Any) -> None:
    """Writes JSON to ``path`` atomically (see ``electra_tf.io_utils.write_text_atomic``)."""
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------
# Metrics (behaviour of the official SQuAD v1.1 / v2.0 and MRQA evaluation scripts).
# ---------------------------------------------------------------------------

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, drop the words a/an/the, collapse whitespace."""
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    text = _ARTICLES_RE.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> int:
    """1 if both normalise to the same string, else 0."""
    return int(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str, v2: bool = False) -> float:
    """F1 of the bags of normalised tokens.

    v1 / MRQA: no common token (including both empty) gives 0. v2: when either side is
    empty, 1 if both are empty else 0.
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if v2 and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _max_over_gold(fn, prediction: str, golds: Sequence[str]) -> float:
    return max(fn(prediction, g) for g in golds) if golds else 0.0


def _em_f1(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str],
           count_missing: bool) -> Dict[str, float]:
    """``exact_match``, ``f1`` (x100) summed over the gold questions that have a prediction
    and averaged over those (or over every gold question when ``count_missing``)."""
    em = f1 = 0.0
    answered = 0
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        answered += 1
        em += _max_over_gold(exact_match, predictions[qid], answers)
        f1 += _max_over_gold(token_f1, predictions[qid], answers)
    total = len(gold) if count_missing else answered
    return {"exact_match": 100.0 * em / total if total else 0.0,
            "f1": 100.0 * f1 / total if total else 0.0}


def squad_v1_metrics(gold: Mapping[str, Sequence[str]],
                     predictions: Mapping[str, str]) -> Dict[str, float]:
    """SQuAD 1.1: ``exact_match``, ``f1`` (x100) over every gold question; a missing
    prediction scores 0."""
    return _em_f1(gold, predictions, count_missing=True)


def mrqa_metrics(gold: Mapping[str, Sequence[str]],
                 predictions: Mapping[str, str]) -> Dict[str, float]:
    """MRQA: ``exact_match``, ``f1`` (x100) over the questions that have a prediction."""
    return _em_f1(gold, predictions, count_missing=False)


def _best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float],
                    na_probs: Mapping[str, float],
                    has_answer: Mapping[str, bool]) -> Tuple[float, float]:
    """Best score (x100) over thresholds on the null odds, and that threshold.

    Starts from "everything unanswerable" (score = number of unanswerable questions,
    threshold 0.0) and lowers the null-odds cut one question at a time (ascending odds),
    keeping the first strict improvement.
    """
    current = float(sum(1 for v in has_answer.values() if not v))
    best, best_thresh = current, 0.0
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_thresh = current, na_probs[qid]
    return (100.0 * best / len(scores) if scores else 0.0), float(best_thresh)


def squad_v2_metrics(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str],
                     na_probs: Mapping[str, float], na_prob_thresh: float) -> Dict[str, float]:
    """SQuAD 2.0 metrics (official v2 script behaviour).

    Gold answers that normalise to "" are dropped; none left means "no answer" (gold [""]).
    A question is predicted unanswerable when its null odds > ``na_prob_thresh``; questions
    without a prediction are left out. Keys: exact, f1, total, HasAns_*, NoAns_*,
    best_exact, best_exact_thresh, best_f1, best_f1_thresh (scores x100).
    """
    has_answer = {qid: bool(answers) for qid, answers in gold.items()}
    raw_exact: Dict[str, float] = {}
    raw_f1: Dict[str, float] = {}
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        golds = [a for a in answers if normalize_answer(a)] or [""]
        pred = predictions[qid]
        raw_exact[qid] = float(max(exact_match(pred, g) for g in golds))
        raw_f1[qid] = max(token_f1(pred, g, v2=True) for g in golds)

    def thresholded(raw):
        out = {}
        for qid, score in raw.items():
            predicted_null = na_probs.get(qid, 0.0) > na_prob_thresh
            out[qid] = float(not has_answer[qid]) if predicted_null else score
        return out

    exact = thresholded(raw_exact)
    f1 = thresholded(raw_f1)

    def summary(qids):
        n = len(qids)
        return {"exact": 100.0 * sum(exact[q] for q in qids) / n if n else 0.0,
                "f1": 100.0 * sum(f1[q] for q in qids) / n if n else 0.0,
                "total": float(n)}

    metrics = summary(list(exact))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [q for q in exact if has_answer[q] == wanted]
        if any(v == wanted for v in has_answer.values()):
            for key, value in summary(qids).items():
                metrics["%s_%s" % (prefix, key)] = value
    probs = {q: na_probs.get(q, 0.0) for q in predictions if q in gold}
    metrics["best_exact"], metrics["best_exact_thresh"] = _best_threshold(
        predictions, raw_exact, probs, has_answer)
    metrics["best_f1"], metrics["best_f1_thresh"] = _best_threshold(
        predictions, raw_f1, probs, has_answer)
    return metrics


# ---------------------------------------------------------------------------
# Task and scorer.
# ---------------------------------------------------------------------------

_OUTPUT_KEYS = ("eid", "start_logits", "end_logits", "answerable_logit", "start_top_log_probs",
                "start_top_index", "end_top_log_probs", "end_top_index")


class QATask(Task):
    """A span-extraction QA task (``squadv1``, ``squad``, or an MRQA task).

    Args (besides the Task ones):
      qa_config: a QAConfig (spec 1.6 defaults when None).
      task_id: index of this task in the run's task list, written as the ``task_id`` feature.
    """

    def __init__(self, name: str, data_dir: str, tokenizer, max_seq_length: int,
                 debug: bool = False, qa_config: Optional[QAConfig] = None, *,
                 task_id: int = 0):
        if name not in QA_TASKS:
            raise ValueError("unknown QA task %r (expected one of %s)" % (name, QA_TASKS))
        super().__init__(name, data_dir, tokenizer, max_seq_length, debug)
        self.config = qa_config if qa_config is not None else QAConfig()
        self.task_id = task_id
        self.v2 = name == "squad"
        self.is_mrqa = name in MRQA_TASKS
        self._eval_cache: Dict[str, Tuple[List[QAExample], Dict[int, List[QAFeature]]]] = {}
        basic = getattr(tokenizer, "basic_tokenizer", None)
        if basic is None:
            basic = tokenization.BasicTokenizer(
                getattr(tokenizer, "do_lower_case", self.config.do_lower_case),
                getattr(tokenizer, "strip_accents", True))
        self.basic_tokenizer = basic

    def data_file(self, split: str) -> str:
        """``<split>.json`` (SQuAD; ``<split>-debug.json`` in debug) or ``<split>.jsonl``."""
        if self.is_mrqa:
            return os.path.join(self.data_dir, split + ".jsonl")
        return os.path.join(self.data_dir, split + ("-debug" if self.debug else "") + ".json")

    def get_examples(self, split: str) -> List[QAExample]:
        path = self.data_file(split)
        is_training = split == "train"
        if self.is_mrqa:
            examples, failures = read_mrqa_examples(
                path, self.name, is_training, MRQA_DEBUG_LINES if self.debug else None)
        else:
            examples, failures = read_squad_examples(path, self.name, is_training, self.v2)
        self.skipped_rows += failures
        if failures:
            log.warning("%s %s: skipped %d questions whose answer could not be located",
                        self.name, split, failures)
        return examples

    def featurize_spans(self, example: QAExample, is_training: bool) -> List[QAFeature]:
        """The doc-span features of one example, with the bookkeeping post-processing needs."""
        return featurize_example(example, self.tokenizer, self.max_seq_length,
                                 self.config.max_query_length, self.config.doc_stride,
                                 is_training)

    def featurize(self, example: QAExample, is_training: bool) -> List[Dict[str, Any]]:
        """One dict per doc span: input_ids, input_mask, segment_ids [L], task_id and the
        ``feature_specs`` scalars."""
        out = []
        for feature in self.featurize_spans(example, is_training):
            d = feature.to_dict(self.name)
            d["task_id"] = self.task_id
            out.append(d)
        return out

    def feature_specs(self) -> FeatureSpecs:
        return {self.name + "_eid": ((), "int64"),
                self.name + "_start_positions": ((), "int64"),
                self.name + "_end_positions": ((), "int64"),
                self.name + "_is_impossible": ((), "int64")}

    def eval_data(self, split: str) -> Tuple[List[QAExample], Dict[int, List[QAFeature]]]:
        """Examples of ``split`` and their eval features by example eid (cached)."""
        if split not in self._eval_cache:
            examples = self.get_examples(split)
            by_example = {e.eid: self.featurize_spans(e, False) for e in examples}
            self._eval_cache[split] = (examples, by_example)
        return self._eval_cache[split]

    def load_gold(self, split: str) -> "collections.OrderedDict[str, List[str]]":
        """Question id -> gold answer texts, from the same file the examples come from."""
        path = self.data_file(split)
        return load_mrqa_gold(path) if self.is_mrqa else load_squad_gold(path)

    def output_file(self, kind: str) -> Optional[str]:
        """``<results_dir>/<task>_<kind>.json`` (kind: preds, null_odds, eval) or None."""
        if not self.config.results_dir:
            return None
        return os.path.join(self.config.results_dir, "%s_%s.json" % (self.name, kind))

    def get_scorer(self, split: str = "dev") -> "QAScorer":
        return QAScorer(self, split)


def get_qa_task(name: str, data_dir: str, tokenizer, max_seq_length: int,
                **kwargs) -> QATask:
    """Builds the QA task ``name`` (kwargs: debug, qa_config, task_id)."""
    return QATask(name, data_dir, tokenizer, max_seq_length, **kwargs)


class QAScorer(Scorer):
    """Collects per-feature QA outputs, post-processes them and computes the metrics.

    After ``get_results`` (or ``get_predictions``) the attributes ``predictions``,
    ``null_odds`` (SQuAD 2.0) and ``nbest`` hold the post-processed output.
    """

    def __init__(self, task: QATask, split: str = "dev"):
        self._task = task
        self._split = split
        self._results: Dict[int, Dict[str, np.ndarray]] = {}
        self.predictions: "collections.OrderedDict[str, str]" = collections.OrderedDict()
        self.null_odds: "collections.OrderedDict[str, float]" = collections.OrderedDict()
        self.nbest: Dict[str, List[NbestEntry]] = {}

    def _needed_keys(self) -> List[str]:
        cfg = self._task.config
        keys = (["start_top_log_probs", "start_top_index", "end_top_log_probs", "end_top_index"]
                if cfg.joint_prediction else ["start_logits", "end_logits"])
        if self._task.v2:
            if cfg.answerable_classifier:
                keys.append("answerable_logit")
            else:
                keys.extend(k for k in ("start_logits", "end_logits") if k not in keys)
        return keys

    def update(self, outputs: Mapping[str, np.ndarray]) -> None:
        """Adds a batch: ``eid`` [B] plus the head outputs listed in the module docstring
        (keys with or without the ``<task>_`` prefix; the prefixed one wins)."""
        prefix = self._task.name + "_"
        batch: Dict[str, np.ndarray] = {}
        for key in _OUTPUT_KEYS:
            if prefix + key in outputs:
                batch[key] = np.asarray(outputs[prefix + key])
            elif key in outputs:
                batch[key] = np.asarray(outputs[key])
        if "eid" not in batch:
            raise KeyError("QA outputs need %seid (or eid)" % prefix)
        needed = self._needed_keys()
        missing = [k for k in needed if k not in batch]
        if missing:
            raise KeyError("QA outputs for %s lack %s" % (self._task.name, ", ".join(missing)))
        for b, eid in enumerate(batch["eid"].reshape(-1)):
            self._results[int(eid)] = {k: np.array(batch[k][b]) for k in needed}

    def get_predictions(self) -> Tuple[Dict[str, str], Dict[str, float]]:
        """Post-processes the collected outputs; returns (predictions, null odds)."""
        examples, features = self._task.eval_data(self._split)
        self.predictions, self.null_odds, self.nbest = postprocess(
            examples, features, self._results, self._task.config, self._task.v2,
            self._task.basic_tokenizer)
        return self.predictions, self.null_odds

    def get_results(self) -> Dict[str, float]:
        """Writes the prediction files (when ``results_dir`` is set) and returns the metrics:
        squad: exact, f1, total, HasAns_*, NoAns_*, best_*; others: exact_match, f1."""
        task = self._task
        predictions, null_odds = self.get_predictions()
        preds_file = task.output_file("preds")
        if preds_file:
            write_json_atomic(preds_file, predictions)
            if task.v2:
                write_json_atomic(task.output_file("null_odds"), null_odds)
        gold = task.load_gold(self._split)
        if task.v2:
            metrics = squad_v2_metrics(gold, predictions, null_odds, task.config.qa_na_threshold)
        elif task.is_mrqa:
            metrics = mrqa_metrics(gold, predictions)
        else:
            metrics = squad_v1_metrics(gold, predictions)
        if preds_file:
            write_json_atomic(task.output_file("eval"), metrics)
        return metrics
