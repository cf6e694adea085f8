"""Packing token ids into pre-training examples, as the original ELECTRA builder (spec 5.2).

:class:`ExampleBuilder` takes the wordpiece ids of consecutive lines (``None`` at a
document boundary) and emits examples of exactly L = ``max_seq_length`` tokens:
``[CLS] first [SEP] (second [SEP])``, zero-padded, with the original's random
choices (single-segment examples, the segment split, short targets). The random
draws come from the ``rng`` given, so the examples are a function of the ids and
that stream alone.
"""

import dataclasses

# Probabilities of the original builder.
SINGLE_SEGMENT_PROB = 0.1
SHORT_TARGET_PROB = 0.05
SEGMENT_SPLIT_PROB = 0.5
_SINGLE_SEGMENT_TARGET = 100000
# The shortest short target, and so the smallest max_seq_length accepted.
MIN_TARGET_LENGTH = 5


@dataclasses.dataclass(frozen=True)
class PackedExample:
    """One pre-training example; every field has length max_seq_length."""

    input_ids: list
    input_mask: list
    segment_ids: list


def assign_segments(sentences, first_target_length, rng):
    """Splits buffered sentences into two segments (the original's rule).

    A sentence goes to the first segment when (a) the first segment is empty,
    or (b) it fits below ``first_target_length``, or (c) the second segment is
    still empty, the first is below the target and ``rng.random() < 0.5``.
    Otherwise it goes to the second segment. The conditions are evaluated in
    that order with short-circuiting, so ``rng.random()`` is only drawn when (a)
    and (b) fail and the rest of (c) holds. A later short sentence may still
    satisfy (b) after an earlier one went to the second segment (the
    original's behaviour, kept).

    Returns:
      (first, second): two lists of token ids.
    """
    first, second = [], []
    for sentence in sentences:
        if (
            not first
            or len(first) + len(sentence) < first_target_length
            or (
                not second
                and len(first) < first_target_length
                and rng.random() < SEGMENT_SPLIT_PROB
            )
        ):
            first.extend(sentence)
        else:
            second.extend(sentence)
    return first, second


def make_example(first, second, max_seq_length, cls_id, sep_id):
    """[CLS] first [SEP] (second [SEP]), zero-padded to max_seq_length.

    Segments must already be truncated so that the result fits.
    """
    input_ids = [cls_id] + list(first) + [sep_id]
    segment_ids = [0] * len(input_ids)
    if second:
        input_ids += list(second) + [sep_id]
        segment_ids += [1] * (len(second) + 1)
    length = len(input_ids)
    if length > max_seq_length:
        raise ValueError(
            "example of %d tokens exceeds max_seq_length %d" % (length, max_seq_length)
        )
    pad = max_seq_length - length
    return PackedExample(
        input_ids=input_ids + [0] * pad,
        input_mask=[1] * length + [0] * pad,
        segment_ids=segment_ids + [0] * pad,
    )


class ExampleBuilder(object):
    """Packs lines of token ids into examples of length ``max_seq_length``.

    Feed it one line at a time with :meth:`add_line`: a list of token ids for a
    non-blank line, or ``None`` for a blank line (a document boundary). It
    returns a :class:`PackedExample` when one is completed, else ``None``.
    Call :meth:`add_line(None)` at the end of an input (as the original feeds
    an empty line at the end of every file) to flush the buffer.

    Args:
      max_seq_length: L, the length of every example (>= 5).
      cls_id, sep_id: ids of [CLS] and [SEP].
      rng: a ``random.Random``-like object (``random()`` and ``randint()``);
        the draws are, per emitted example: ``random()`` for the
        single-segment choice, ``random()`` per sentence when the segment rule
        needs it, ``random()`` for the short-target choice and, if it fires,
        ``randint(5, L)``.
    """

    def __init__(self, max_seq_length, cls_id, sep_id, rng):
        if max_seq_length < MIN_TARGET_LENGTH:
            raise ValueError(
                "max_seq_length must be at least %d, got %d" % (MIN_TARGET_LENGTH, max_seq_length)
            )
        self.max_seq_length = max_seq_length
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.rng = rng
        self.target_length = max_seq_length
        self._sentences = []
        self._length = 0

    def add_line(self, token_ids):
        """Adds one line; returns a finished example or None."""
        if token_ids is None:  # a blank line
            if self._length:
                return self._emit()
            token_ids = []  # as the original: an empty sentence (harmless)
        self._sentences.append(token_ids)
        self._length += len(token_ids)
        if self._length >= self.target_length:
            return self._emit()
        return None

    def _emit(self):
        rng = self.rng
        max_len = self.max_seq_length
        if rng.random() < SINGLE_SEGMENT_PROB:
            first_target = _SINGLE_SEGMENT_TARGET
        else:
            first_target = (self.target_length - 3) // 2
        first, second = assign_segments(self._sentences, first_target, rng)
        first = first[: max_len - 2]
        second = second[: max(0, max_len - len(first) - 3)]
        self._sentences = []
        self._length = 0
        if rng.random() < SHORT_TARGET_PROB:
            self.target_length = rng.randint(MIN_TARGET_LENGTH, max_len)
        else:
            self.target_length = max_len
        return make_example(first, second, max_len, self.cls_id, self.sep_id)
