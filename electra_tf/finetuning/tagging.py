"""Span tagging tasks on CoNLL-format files (spec 6.6): ``chunk`` and user ``conll:<name>``.

Two tasks share one reader, featurizer and scorer:

* :class:`ChunkingTask` (``chunk``): CoNLL-2000 chunking exactly as the original.
* :class:`ConllTaggingTask` (``conll:<name>``, see :func:`parse_conll_task_name` and
  :func:`make_conll_task`): any CoNLL-format span tagging data (NER...), with a chosen tag
  column and a type-aware span rule that reads IOB1, IOB2 and BIOES/BILOU tags alike.

Files are ``<data_dir>/<split>.txt`` (the driver passes ``data_dir =
<data-dir>/finetuning_data/<name>``). Each line is split on whitespace; the word is the
first column and the tag the last one (or ``column``); a blank line ends a sentence; a line
whose first column is ``-DOCSTART-`` is skipped. **[QUIRK, chunk only]** a last sentence
not followed by a blank line is dropped (and logged); ``conll:`` tasks keep it.

Tags are converted to spans ``(start, end, type)`` (end inclusive) and re-encoded as BIOES
(one-word span: ``S-``; else ``B-``, ``I-``..., ``E-``). Tag ids are the positions in the
sorted list of every BIOES tag found in the split files that exist (train, dev, test); the
mapping is saved as JSON (the original pickles it) to
``<label_mapping_dir>/[debug_]<name>_label_mapping.json`` and reused when present.

Features (besides ``input_ids``, ``input_mask``, ``segment_ids`` [L] and ``task_id`` []):

| name | shape | dtype | value |
| --- | --- | --- | --- |
| ``<name>_eid`` | [] | int64 | sentence index in its split file |
| ``<name>_labels`` | [L] | int64 | tag id of word i (all words, cut/padded to L) |
| ``<name>_labeled_positions`` | [L] | int64 | token index of word i's first wordpiece |
| ``<name>_labels_mask`` | [L] | float32 | 1.0 for each word that fits, then 0.0 |

The head (spec 6.6) gathers the last-layer vectors [B, L, H] at ``labeled_positions`` ->
dense H -> T tags -> per-word softmax cross-entropy x ``labels_mask``, summed over words.
Its prediction outputs, read by :class:`SpanF1Scorer`, are ``<name>_predictions`` [B, L]
(argmax over T of the logits [B, L, T]), ``<name>_labels`` [B, L], ``<name>_labels_mask``
[B, L] and optionally ``<name>_loss`` [B] and ``<name>_eid`` [B].

Where this differs from the original (only where the original crashes or corrupts labels):
the tag mapping is JSON, not a pickle; a data word spelled ``[CLS]``/``[SEP]`` is tokenized
as text (the original takes it for a boundary and shifts every later label); a word whose
wordpieces overflow L is cut (the original fails an assertion); a tag type may contain
``-``; a sentence with no word that fits scores as having no span (the original raises
IndexError); a malformed tag raises :class:`TaskDataError` naming file and line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import unicodedata
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from electra_tf import tokenization
from electra_tf.io_utils import write_text_atomic
from electra_tf.finetuning.task import (Example, FeatureSpecs, Scorer, Task, TaskDataError,
                                        log, pad_to, path_exists)

# A span: (first word, last word (inclusive), type).
Span = Tuple[int, int, str]

SPLITS = ("train", "dev", "test")
DOCSTART = "-DOCSTART-"
# Debug mode stops reading a file once it holds more than this many sentences (spec 1.5).
DEBUG_MAX_SENTENCES = 100
CONLL_PREFIX = "conll:"
SPAN_RULES = ("electra", "typed")

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# BERT's character classes, shared with the tokenizer.
_is_control = tokenization._is_control  # pylint: disable=protected-access
_is_whitespace = tokenization._is_whitespace  # pylint: disable=protected-access


# ---------------------------------------------------------------------------
# Tags and spans
# ---------------------------------------------------------------------------

def split_tag(tag: str, aliases: bool = False) -> Tuple[str, Optional[str]]:
    """``"B-NP"`` -> ``("B", "NP")``; ``"O"`` -> ``("O", None)``.

    The prefix is the part before the first ``-`` (a type may contain ``-``; the original
    could not read such tags at all). Raises ValueError unless the prefix is one of B, I, E,
    S -- plus L and U (BILOU, read as E and S) when ``aliases`` -- and the type is non-empty.
    """
    if tag == "O":
        return "O", None
    prefix, sep, kind = tag.partition("-")
    if aliases:
        prefix = {"L": "E", "U": "S"}.get(prefix, prefix)
    if not sep or not kind or prefix not in ("B", "I", "E", "S"):
        allowed = "B, I, E, S, L, U" if aliases else "B, I, E, S"
        raise ValueError(f"malformed tag {tag!r}: expected 'O' or '<P>-<type>' with P in "
                         f"{allowed}")
    return prefix, kind


def spans_electra(tags: Sequence[str]) -> List[Span]:
    """Spans of a tag sequence by the original's rule (spec 6.6), used by ``chunk``.

    A span closes when a B-, S- or O tag follows a non-O tag (an E- tag does not close it by
    itself); a span opens at B-/S- or at any non-O tag after O; its type is the type of the
    last tag inside it (so ``B-NP I-VP`` is one VP span). An empty sequence has no spans.

    Args:
      tags: [n] tag strings.
    Returns:
      spans in order of their start.
    """
    spans: List[Span] = []
    last = "O"
    last_type: Optional[str] = None
    start = -1
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        if prefix in ("B", "S", "O") and last != "O":
            spans.append((start, i - 1, last_type))
        if prefix in ("B", "S") or last == "O":
            start = i
        last, last_type = tag, kind
    if tags and last != "O":
        spans.append((start, len(tags) - 1, last_type))
    return spans


def spans_typed(tags: Sequence[str]) -> List[Span]:
    """Spans by a type-aware (conlleval-style) rule, the default of ``conll:`` tasks.

    A span ends after an E- or S- tag, before a B-, S- or O tag, and before a tag of another
    type; every other non-O tag continues the open span, and a non-O tag with no open span
    opens one. This reads IOB1 (``I-PER I-PER B-PER I-LOC``: PER, PER, LOC), IOB2 and
    BIOES/BILOU alike (L/U are read as E/S).

    Args:
      tags: [n] tag strings.
    Returns:
      spans in order of their start.
    """
    spans: List[Span] = []
    start = -1
    open_type: Optional[str] = None
    last_prefix = "O"
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag, aliases=True)
        if open_type is not None and (last_prefix in ("E", "S") or prefix in ("B", "S", "O")
                                      or kind != open_type):
            spans.append((start, i - 1, open_type))
            open_type = None
        if prefix != "O" and open_type is None:
            start, open_type = i, kind
        last_prefix = prefix
    if open_type is not None:
        spans.append((start, len(tags) - 1, open_type))
    return spans


_SPAN_FUNCTIONS: Dict[str, Callable[[Sequence[str]], List[Span]]] = {
    "electra": spans_electra, "typed": spans_typed}


def get_span_function(rule: str) -> Callable[[Sequence[str]], List[Span]]:
    """``"electra"`` -> :func:`spans_electra`, ``"typed"`` -> :func:`spans_typed`."""
    if rule not in _SPAN_FUNCTIONS:
        raise ValueError(f"unknown span rule {rule!r}; known: {list(SPAN_RULES)}")
    return _SPAN_FUNCTIONS[rule]


def spans_to_bioes(spans: Sequence[Span], length: int) -> List[str]:
    """BIOES tags [length] of non-overlapping spans: ``S-t`` for a one-word span, else
    ``B-t I-t ... E-t``; ``O`` elsewhere."""
    tags = ["O"] * length
    for start, end, kind in spans:
        for i in range(start, end + 1):
            tags[i] = "I-" + kind
        tags[end] = "E-" + kind
        tags[start] = "B-" + kind
        if start == end:
            tags[start] = "S-" + kind
    return tags


def to_bioes(tags: Sequence[str], rule: str = "electra") -> List[str]:
    """Re-encodes a tag sequence [n] as BIOES via its spans under ``rule``."""
    return spans_to_bioes(get_span_function(rule)(tags), len(tags))


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Sentence:
    """One sentence of a CoNLL file: ``words`` and ``tags`` [n]; ``line`` is the 1-based line
    number of its first word (for error messages)."""

    words: List[str]
    tags: List[str]
    line: int


def _read_text(path: str) -> str:
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
    lines = _read_text(path).split("\n")
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


# ---------------------------------------------------------------------------
# Word -> wordpiece alignment
# ---------------------------------------------------------------------------

class WordAligner:
    """Tokenizes a sentence word by word, as the original's ``tokenize_and_align``.

    Each word is cleaned (NUL, U+FFFD and control characters dropped, whitespace mapped to
    a space; no CJK spacing), lower-cased and accent-stripped when ``lower_case`` (forced
    for ``chunk`` whatever the tokenizer's ``do_lower_case``), split on punctuation and
    WordPiece-tokenized. A word may give no piece (e.g. only control characters).

    Args:
      tokenizer: a WordPiece tokenizer of ``electra_tf.tokenization`` (its ``vocab``).
      lower_case: lower-case and strip accents.
    """

    def __init__(self, tokenizer, lower_case: bool = True):
        if isinstance(tokenizer, tokenization.SentencePieceTokenizer):
            raise TypeError("tagging tasks need a WordPiece vocab (the original's word "
                            "alignment); a SentencePiece tokenizer is not supported")
        self.vocab = tokenizer.vocab
        self.lower_case = lower_case
        self._basic = tokenization.BasicTokenizer(do_lower_case=True, strip_accents=True)
        self._wordpiece = tokenization.WordpieceTokenizer(self.vocab)
        self._cache: Dict[str, List[str]] = {}

    @staticmethod
    def _clean(word: str) -> str:
        out = []
        for char in word:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            out.append(" " if _is_whitespace(char) else char)
        return "".join(out)

    def word_pieces(self, word: str) -> List[str]:
        """The wordpieces of one word (may be empty)."""
        pieces = self._cache.get(word)
        if pieces is None:
            text = self._clean(tokenization.convert_to_unicode(word))
            if self.lower_case:
                text = unicodedata.normalize("NFD", text.lower())
                text = "".join(c for c in text if unicodedata.category(c) != "Mn")
            pieces = []
            for part in self._basic._split_on_punc(text):  # pylint: disable=protected-access
                pieces.extend(self._wordpiece.tokenize(part))
            if len(self._cache) < 200000:
                self._cache[word] = pieces
        return pieces

    def align(self, words: Sequence[str]) -> List[List[str]]:
        """``[[CLS]] + pieces of each word + [[SEP]]``: n + 2 lists. Only these two added
        boundary words map to [CLS]/[SEP]; a data word spelled "[SEP]" is tokenized like any
        other word (the original would treat it as a boundary and shift the labels)."""
        return [["[CLS]"]] + [self.word_pieces(w) for w in words] + [["[SEP]"]]


def truncate_and_position(word_pieces: Sequence[Sequence[str]],
                          max_seq_length: int) -> Tuple[List[str], List[int]]:
    """The original's conservative truncation (spec 6.6 **[QUIRK]**).

    Words (including the [CLS] and [SEP] boundary words) are appended in order; before each
    one, if ``len(word_pieces) + len(tokens) + 1 > L`` a [SEP] is appended and the loop
    stops. The first piece of every real word is its labelled position (a word with no piece
    gets the position of the next token).

    A single word with more pieces than the sentence has words + 2 can still push the
    sequence past L, where the original fails an assertion; then the tokens are cut to
    L - 1 and a [SEP] appended, and the positions >= L - 1 dropped (logged).

    Args:
      word_pieces: n + 2 piece lists from :meth:`WordAligner.align`.
      max_seq_length: L.
    Returns:
      (tokens [<= L], labelled positions [<= n]).
    """
    n_words = len(word_pieces)
    tokens: List[str] = []
    positions: List[int] = []
    last = n_words - 1
    for k, pieces in enumerate(word_pieces):
        if n_words + len(tokens) + 1 > max_seq_length:
            tokens.append("[SEP]")
            break
        if 0 < k < last:
            positions.append(len(tokens))
        tokens.extend(pieces)
    if len(tokens) > max_seq_length:
        log.warning("tagging: a word of many wordpieces overflows max_seq_length=%d (the "
                    "original fails here); cutting to L - 1 tokens + [SEP]", max_seq_length)
        tokens = tokens[:max_seq_length - 1] + ["[SEP]"]
        positions = [p for p in positions if p < max_seq_length - 1]
    return tokens, positions


# ---------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class TaggingExample(Example):
    """One sentence.

    Attributes:
      words: [n] words as in the file.
      tags: [n] BIOES tags (after span conversion).
      labels: [n] tag ids.
    """

    words: List[str] = dataclasses.field(default_factory=list)
    tags: List[str] = dataclasses.field(default_factory=list)
    labels: List[int] = dataclasses.field(default_factory=list)


class TaggingTask(Task):
    """Span tagging on CoNLL-format files (spec 6.6).

    Args:
      name: task name: the feature prefix and head scope ``task_specific/<name>``; letters,
        digits and ``_``.
      data_dir: directory of ``<split>.txt`` files.
      tokenizer: a WordPiece tokenizer (``vocab``, ``special_ids``).
      max_seq_length: L (>= 3).
      debug: read at most 101 sentences per file; mapping file gets a ``debug_`` prefix.
      task_id: index of this task in the run's task list (the ``task_id`` feature).
      label_mapping_dir: where the tag mapping JSON is cached (the original's preprocessed
        data directory); None keeps it in memory only.
      column: tag column (-1 = last).
      lower_case: force lower-casing and accent stripping of the words.
      span_rule: ``"electra"`` (:func:`spans_electra`) or ``"typed"`` (:func:`spans_typed`),
        used both to convert the file tags and to score.
      keep_last_unterminated: keep a last sentence with no blank line after it.
    """

    export_kind = "tagging"

    def __init__(self, name: str, data_dir: str, tokenizer, max_seq_length: int,
                 debug: bool = False, *, task_id: int = 0,
                 label_mapping_dir: Optional[str] = None, column: int = -1,
                 lower_case: bool = True, span_rule: str = "electra",
                 keep_last_unterminated: bool = False):
        if not _NAME_RE.match(name):
            raise ValueError(f"tagging task name {name!r} must be letters, digits and '_' "
                             "(it names features and the head's variable scope)")
        if max_seq_length < 3:
            raise ValueError(f"max_seq_length {max_seq_length} < 3 cannot hold a tagged word")
        super().__init__(name, data_dir, tokenizer, max_seq_length, debug)
        self.task_id = task_id
        self.label_mapping_dir = label_mapping_dir
        self.column = column
        self.lower_case = lower_case
        self.span_rule = span_rule
        self._spans = get_span_function(span_rule)
        self.keep_last_unterminated = keep_last_unterminated
        self.aligner = WordAligner(tokenizer, lower_case=lower_case)
        self._label_mapping: Optional[Dict[str, int]] = None
        self._sentences: Dict[str, List[Sentence]] = {}

    # -- files ---------------------------------------------------------------

    def split_path(self, split: str) -> str:
        return os.path.join(self.data_dir, split + ".txt")

    @property
    def label_mapping_path(self) -> Optional[str]:
        if self.label_mapping_dir is None:
            return None
        prefix = "debug_" if self.debug else ""
        return os.path.join(self.label_mapping_dir, f"{prefix}{self.name}_label_mapping.json")

    def _read_sentences(self, split: str) -> List[Sentence]:
        if split in self._sentences:
            return self._sentences[split]
        path = self.split_path(split)
        if not path_exists(path):
            raise TaskDataError(
                f"{self.name}: the {split!r} split file {path} does not exist. Expected "
                f"layout: <data-dir>/finetuning_data/{self.name}/{{train,dev,test}}.txt in "
                "CoNLL format (word first, tag last, blank line between sentences)")
        sentences, dropped = read_conll(
            path, self.column, DEBUG_MAX_SENTENCES if self.debug else None,
            self.keep_last_unterminated)
        if dropped:
            log.warning("%s: %s ends without a blank line; its last sentence (%d words) is "
                        "dropped, as in the original", self.name, path, dropped)
        for sentence in sentences:
            for offset, tag in enumerate(sentence.tags):
                try:
                    split_tag(tag, aliases=self.span_rule == "typed")
                except ValueError as e:
                    raise TaskDataError(f"{path} line {sentence.line + offset}: {e}") from None
        self._sentences[split] = sentences
        return sentences

    def _bioes(self, tags: Sequence[str]) -> List[str]:
        return spans_to_bioes(self._spans(tags), len(tags))

    # -- tag mapping ---------------------------------------------------------

    @property
    def label_mapping(self) -> Dict[str, int]:
        """BIOES tag -> id: sorted tags of every existing split file, cached (JSON)."""
        if self._label_mapping is not None:
            return self._label_mapping
        path = self.label_mapping_path
        if path is not None and path_exists(path):
            try:
                mapping = json.loads(_read_text(path))
            except ValueError as e:
                raise TaskDataError(f"{path}: unreadable tag mapping ({e}); delete it") from e
            if (not isinstance(mapping, dict)
                    or sorted(mapping.values()) != list(range(len(mapping)))):
                raise TaskDataError(f"{path}: not a tag -> id mapping; delete it")
            self._label_mapping = {str(k): int(v) for k, v in mapping.items()}
            return self._label_mapping
        tags = set()
        found = []
        for split in SPLITS:
            if not path_exists(self.split_path(split)):
                continue
            found.append(split)
            for sentence in self._read_sentences(split):
                tags.update(self._bioes(sentence.tags))
        if not found:
            raise TaskDataError(f"{self.name}: none of {', '.join(s + '.txt' for s in SPLITS)}"
                                f" exists in {self.data_dir}")
        mapping = {tag: i for i, tag in enumerate(sorted(tags))}
        if path is not None:
            log.info("%s: writing the tag mapping (%d tags from %s) to %s", self.name,
                     len(mapping), ", ".join(found), path)
            write_text_atomic(path, json.dumps(mapping, indent=1, sort_keys=True) + "\n")
        self._label_mapping = mapping
        return mapping

    @property
    def label_list(self) -> List[str]:
        """[T] tags in id order."""
        mapping = self.label_mapping
        return sorted(mapping, key=mapping.__getitem__)

    @property
    def num_labels(self) -> int:
        """T, the width of the head's dense layer."""
        return len(self.label_mapping)

    # -- Task API ------------------------------------------------------------

    def get_examples(self, split: str) -> List[TaggingExample]:
        """Reads ``split``; example ids are sentence indices in the file."""
        sentences = self._read_sentences(split)
        mapping = self.label_mapping
        examples = []
        for eid, sentence in enumerate(sentences):
            tags = self._bioes(sentence.tags)
            try:
                labels = [mapping[t] for t in tags]
            except KeyError as e:
                where = self.label_mapping_path or "the tag mapping"
                raise TaskDataError(
                    f"{self.split_path(split)} line {sentence.line}: tag {e.args[0]!r} is not "
                    f"in {where} (stale cache from other data? delete it)") from None
            examples.append(TaggingExample(task_name=self.name, eid=eid,
                                           words=list(sentence.words), tags=tags,
                                           labels=labels))
        return examples

    def featurize(self, example: TaggingExample, is_training: bool) -> List[Dict[str, Any]]:
        """One sentence -> one feature dict (``is_training`` is unused).

        Returns:
          ``input_ids``, ``input_mask``, ``segment_ids`` (1 for every real token **[QUIRK]**)
          [L]; ``task_id``; ``<name>_eid``; ``<name>_labels`` [L] (word tag ids, cut/padded
          to L); ``<name>_labeled_positions`` [L]; ``<name>_labels_mask`` [L] float.
        """
        length = self.max_seq_length
        tokens, positions = truncate_and_position(self.aligner.align(example.words), length)
        input_ids = [self.vocab_id(t) for t in tokens]
        return [{
            "input_ids": pad_to(input_ids, length),
            "input_mask": pad_to([1] * len(input_ids), length),
            "segment_ids": pad_to([1] * len(input_ids), length),
            "task_id": self.task_id,
            self.name + "_eid": int(example.eid),
            self.name + "_labels": pad_to(example.labels[:length], length),
            self.name + "_labels_mask": ([1.0] * len(positions)
                                         + [0.0] * (length - len(positions))),
            self.name + "_labeled_positions": pad_to(positions, length),
        }]

    def vocab_id(self, token: str) -> int:
        special = self.tokenizer.special_ids
        if token == "[CLS]":
            return special["cls"]
        if token == "[SEP]":
            return special["sep"]
        return self.aligner.vocab[token]

    def feature_specs(self) -> FeatureSpecs:
        length = self.max_seq_length
        return {self.name + "_eid": ((), "int64"),
                self.name + "_labels": ((length,), "int64"),
                self.name + "_labels_mask": ((length,), "float32"),
                self.name + "_labeled_positions": ((length,), "int64")}

    def get_scorer(self, split: str = "dev") -> SpanF1Scorer:
        return SpanF1Scorer(self.name, self.label_list, span_rule=self.span_rule)

    # -- run, head, cache, serving -------------------------------------------

    @classmethod
    def options_from_run(cls, name: str, config, options) -> Dict[str, Any]:
        # The tag mapping is cached beside the features, as the original does.
        return {**super().options_from_run(name, config, options),
                "label_mapping_dir": options.preprocessed_dir}

    def build_head(self, finetuning_config=None):
        from electra_tf.finetuning.heads import TaggingHead  # TF only when modelling
        return TaggingHead(self.name, self.num_labels)

    def source_file(self, split: str) -> Optional[str]:
        return self.split_path(split)

    def cache_options(self) -> Dict[str, Any]:
        mapping = json.dumps(self.label_mapping, sort_keys=True)
        return {**super().cache_options(), "column": self.column,
                "lower_case": self.lower_case, "span_rule": self.span_rule,
                "keep_last_unterminated": self.keep_last_unterminated,
                "label_mapping_sha256": hashlib.sha256(mapping.encode()).hexdigest()}

    def serving_info(self) -> Dict[str, Any]:
        return {"task": self.name, "kind": self.export_kind, "pair": False,
                "labels": self.label_list, "lower_case": bool(self.lower_case)}


class ChunkingTask(TaggingTask):
    """CoNLL-2000 chunking (``chunk``), as the original: last column, forced lower-casing,
    the original span rule, unterminated last sentence dropped."""

    NAME = "chunk"

    def __init__(self, data_dir: str, tokenizer, max_seq_length: int, debug: bool = False,
                 *, task_id: int = 0, label_mapping_dir: Optional[str] = None):
        super().__init__(self.NAME, data_dir, tokenizer, max_seq_length, debug,
                         task_id=task_id, label_mapping_dir=label_mapping_dir, column=-1,
                         lower_case=True, span_rule="electra", keep_last_unterminated=False)


class ConllTaggingTask(TaggingTask):
    """A user span-tagging task on CoNLL-format files (``conll:<name>``).

    Defaults differ from ``chunk`` where the original's choice only suits CoNLL-2000: the
    type-aware span rule (IOB1 data and type changes read correctly) and the last sentence
    is kept even without a trailing blank line. ``column`` and ``lower_case`` (False for
    cased vocabularies) are the user's.
    """

    def __init__(self, name: str, data_dir: str, tokenizer, max_seq_length: int,
                 debug: bool = False, *, task_id: int = 0,
                 label_mapping_dir: Optional[str] = None, column: int = -1,
                 lower_case: bool = True, span_rule: str = "typed",
                 keep_last_unterminated: bool = True):
        super().__init__(name, data_dir, tokenizer, max_seq_length, debug, task_id=task_id,
                         label_mapping_dir=label_mapping_dir, column=column,
                         lower_case=lower_case, span_rule=span_rule,
                         keep_last_unterminated=keep_last_unterminated)


TaskFactory = Callable[..., TaggingTask]

_CONLL_OPTIONS = {"column": int, "lower_case": bool, "span_rule": str,
                  "keep_last_unterminated": bool}


def make_conll_task(name: str, **options) -> TaskFactory:
    """A factory ``f(data_dir, tokenizer, max_seq_length, debug=False, **kwargs)`` building
    ``ConllTaggingTask(name, ...)`` with ``options`` (column, lower_case, span_rule,
    keep_last_unterminated) -- for a registry entry such as
    ``"ner": make_conll_task("ner", column=3)``."""
    unknown = sorted(set(options) - set(_CONLL_OPTIONS))
    if unknown:
        raise ValueError(f"unknown conll task option(s) {unknown}; known: "
                         f"{sorted(_CONLL_OPTIONS)}")
    if not _NAME_RE.match(name):
        raise ValueError(f"tagging task name {name!r} must be letters, digits and '_'")

    def factory(data_dir: str, tokenizer, max_seq_length: int, debug: bool = False,
                **kwargs) -> ConllTaggingTask:
        return ConllTaggingTask(name, data_dir, tokenizer, max_seq_length, debug,
                                **{**options, **kwargs})

    factory.task_name = name  # type: ignore[attr-defined]
    return factory


def _parse_bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ValueError(f"option {key}={value!r} is not a boolean")


def parse_conll_task_name(spec: str) -> Tuple[str, Dict[str, Any]]:
    """``"conll:<name>[:key=value,...]"`` -> ``(name, options)``.

    E.g. ``conll:ner`` -> ``("ner", {})``; ``conll:ner:column=3,lower_case=false`` ->
    ``("ner", {"column": 3, "lower_case": False})``. The task name (not the spec) names the
    data directory, the features and the head.
    """
    if not spec.startswith(CONLL_PREFIX):
        raise ValueError(f"{spec!r} is not a '{CONLL_PREFIX}<name>' task")
    name, _, opts = spec[len(CONLL_PREFIX):].partition(":")
    if not _NAME_RE.match(name):
        raise ValueError(f"{spec!r}: task name {name!r} must be letters, digits and '_'")
    options: Dict[str, Any] = {}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in _CONLL_OPTIONS:
            raise ValueError(f"{spec!r}: bad option {item!r}; known keys: "
                             f"{sorted(_CONLL_OPTIONS)}")
        kind = _CONLL_OPTIONS[key]
        try:
            options[key] = _parse_bool(key, value) if kind is bool else kind(value)
        except ValueError:
            raise ValueError(f"{spec!r}: option {key}={value!r} is not a valid "
                             f"{kind.__name__}") from None
    if options.get("span_rule", "typed") not in SPAN_RULES:
        raise ValueError(f"{spec!r}: span_rule must be one of {list(SPAN_RULES)}")
    return name, options


def is_tagging_task_name(spec: str) -> bool:
    return spec == ChunkingTask.NAME or spec.startswith(CONLL_PREFIX)


def get_tagging_task(spec: str, data_dir: str, tokenizer, max_seq_length: int,
                     **kwargs) -> TaggingTask:
    """Builds ``chunk`` or ``conll:<name>[:options]`` (kwargs: debug, task_id,
    label_mapping_dir; and for conll tasks any option). ``data_dir`` must be the directory
    of the task *name* (``<data-dir>/finetuning_data/<name>``)."""
    if spec == ChunkingTask.NAME:
        return ChunkingTask(data_dir, tokenizer, max_seq_length, **kwargs)
    if spec.startswith(CONLL_PREFIX):
        name, options = parse_conll_task_name(spec)
        return make_conll_task(name, **options)(data_dir, tokenizer, max_seq_length,
                                                **kwargs)
    raise ValueError(f"unknown tagging task {spec!r}; known: 'chunk', '{CONLL_PREFIX}<name>'")


# ---------------------------------------------------------------------------
# Scorer
# ---------------------------------------------------------------------------

class SpanF1Scorer(Scorer):
    """Span-level precision, recall and F1 (x100), as the original's entity-level scorer.

    Per sentence, the first n = round(sum(labels_mask)) gold and predicted tag ids (the
    words that fit) are turned into span sets with the task's rule; a predicted span counts
    only if (start, end, type) equals a gold span. Precision, recall and F1 are all 0 when
    nothing is correct.

    ``loss`` (when every batch carries ``<task>_loss``) is the summed per-example loss over
    the number of scored words; with ``double_count_loss`` (default, **[QUIRK]** of the
    original) each loss is added twice.

    Args:
      task_name: the prefix of the output keys.
      label_list: [T] tags by id.
      span_rule: ``"electra"`` or ``"typed"``.
      double_count_loss: reproduce the original's doubled loss.
    """

    def __init__(self, task_name: str, label_list: Sequence[str], span_rule: str = "electra",
                 double_count_loss: bool = True):
        self.task_name = task_name
        self.label_list = list(label_list)
        self._spans = get_span_function(span_rule)
        self.double_count_loss = double_count_loss
        self.n_correct = 0
        self.n_predicted = 0
        self.n_gold = 0
        self.n_words = 0
        self.n_sentences = 0
        self._total_loss = 0.0
        self._loss_batches = 0
        self._batches = 0

    def _key(self, name: str) -> str:
        return f"{self.task_name}_{name}"

    def _tags(self, ids: np.ndarray) -> List[str]:
        try:
            return [self.label_list[int(i)] for i in ids]
        except IndexError:
            raise ValueError(f"{self.task_name} scorer: tag id out of range [0, "
                             f"{len(self.label_list)}) in {ids.tolist()}") from None

    def add_sentence(self, gold: Sequence[str], predicted: Sequence[str]) -> None:
        """Scores one sentence given as tag strings [n]."""
        gold_spans = set(self._spans(gold))
        pred_spans = set(self._spans(predicted))
        self.n_correct += len(gold_spans & pred_spans)
        self.n_gold += len(gold_spans)
        self.n_predicted += len(pred_spans)
        self.n_sentences += 1

    def update(self, outputs: Mapping[str, np.ndarray]) -> None:
        """Adds a batch: ``<task>_predictions`` [B, L] int, ``<task>_labels`` [B, L],
        ``<task>_labels_mask`` [B, L] and optionally ``<task>_loss`` [B]."""
        keys = [self._key(k) for k in ("predictions", "labels", "labels_mask")]
        missing = [k for k in keys if k not in outputs]
        if missing:
            raise KeyError(f"{self.task_name} scorer: outputs lack {missing}; "
                           f"got {sorted(outputs)}")
        preds, labels, mask = (np.asarray(outputs[k]) for k in keys)
        if preds.ndim != 2 or preds.shape != labels.shape or mask.shape != labels.shape:
            raise ValueError(f"{self.task_name} scorer: expected predictions, labels and "
                             f"labels_mask of one shape [B, L], got {preds.shape}, "
                             f"{labels.shape}, {mask.shape}")
        for row_pred, row_gold, row_mask in zip(preds, labels, mask):
            n = round(float(np.sum(row_mask)))
            self.add_sentence(self._tags(row_gold[:n]), self._tags(row_pred[:n]))
            self.n_words += n
        self._batches += 1
        if self._key("loss") in outputs:
            losses = np.asarray(outputs[self._key("loss")], dtype=np.float64).reshape(-1)
            if losses.shape[0] != preds.shape[0]:
                raise ValueError(f"{self.task_name} scorer: {losses.shape[0]} losses for "
                                 f"{preds.shape[0]} sentences")
            self._total_loss += (2.0 if self.double_count_loss else 1.0) * float(losses.sum())
            self._loss_batches += 1

    def get_results(self) -> Dict[str, float]:
        """``precision``, ``recall``, ``f1`` (x100) and, with losses, ``loss``."""
        if self.n_correct == 0:
            p = r = f1 = 0.0
        else:
            p = 100.0 * self.n_correct / self.n_predicted
            r = 100.0 * self.n_correct / self.n_gold
            f1 = 2.0 * p * r / (p + r)
        results = {"precision": p, "recall": r, "f1": f1}
        if self._batches and self._loss_batches == self._batches:
            results["loss"] = self._total_loss / max(1, self.n_words)
        return results
