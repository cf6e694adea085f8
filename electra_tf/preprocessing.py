"""Text to model features: ``[CLS] a [SEP] b [SEP]`` packing, in Python and in the graph.

The one place of the sentence(-pair) input rule that GLUE fine-tuning, replaced-token
detection, scoring and the SavedModel's in-graph encoder share; it is the original
BERT/ELECTRA ``convert_single_example`` with ``_truncate_seq_pair``:

* A pair keeps at most L - 3 word-pieces (L = ``max_seq_length``): while it is too long, the
  last word-piece of the longer text is dropped, of the second text on ties. A single text
  keeps its first L - 2. An empty second text counts as absent (a single text).
* ``[CLS] a [SEP]`` has segment id 0, ``b [SEP]`` segment id 1; ``input_mask`` is 1 on
  them; the features are zero-padded to L. A second text truncated to nothing (L = 3, or
  L = 4 with a non-empty first text) leaves no ``b [SEP]``.

:func:`kept_lengths` is that truncation in closed form, written once for numpy and
TensorFlow; :func:`pack_pair` packs one example (Python lists of ids) and
:func:`pack_ragged` a batch of ragged ids as TensorFlow ops (the SavedModel's encoder,
:mod:`electra_tf.serving_text`). tests/test_preprocessing.py checks both against each other
and against the truncation loop written out from the rule.

Callers with word-piece *tokens* (GLUE's ``tokens_to_features``) convert them to ids first;
the ids are per token, so converting before or after truncation gives the same features::

    packed = pack_pair(tokenizer.convert_tokens_to_ids(tokens_a),
                       tokenizer.convert_tokens_to_ids(tokens_b) if tokens_b else None,
                       max_seq_length, tokenizer.cls_id, tokenizer.sep_id)
    features = packed.features()   # input_ids, input_mask, segment_ids: lists [L]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

def kept_lengths(len_a, len_b, max_seq_length: int, ops=np):
    """How many word-pieces of each text survive truncation (the rule in the docstring).

    Args:
      len_a, len_b: word-pieces of the first and second text, integer scalars or arrays
        [B] (numpy, or int64 tensors with ``ops=tf``); ``len_b`` 0 for a single text.
      max_seq_length: L, >= 3 where ``len_b`` > 0, else >= 2.
      ops: the array module, ``numpy`` or ``tensorflow`` (its minimum and maximum).

    Returns:
      ``(keep_a, keep_b)`` of the shape and type of the lengths.
    """
    # L - 3 with a second text, L - 2 without (len_b >= 0).
    budget = max_seq_length - 2 - ops.minimum(len_b, 1)
    # _truncate_seq_pair's loop in closed form: the longer text loses pieces until both are
    # equal, then they alternate, the second text first, so the first one keeps the odd one.
    keep_a = ops.minimum(len_a, ops.maximum(budget - len_b, (budget + 1) // 2))
    keep_b = ops.minimum(len_b, ops.maximum(budget - len_a, budget // 2))
    return keep_a, keep_b


def check_max_seq_length(max_seq_length: int, max_position_embeddings: int | None = None, *,
                         pair: bool = False, error: type = ValueError,
                         name: str = "max_seq_length") -> int:
    """L, checked once for every text-to-features path.

    Args:
      max_seq_length: L.
      max_position_embeddings: the model's position table size, the upper bound (None:
        no model at hand, only the lower bound is checked).
      pair: the texts may be pairs, which need a second ``[SEP]``.
      error: the exception type raised (each command's user-error type).
      name: how the message names L (a flag, e.g. ``--max_seq_length``).
    Returns:
      ``int(max_seq_length)`` when L holds ``[CLS] [SEP]`` (and a pair's second
      ``[SEP]``) and fits the position table; otherwise raises ``error``.
    """
    low = 3 if pair else 2
    if max_position_embeddings is not None and not (
            low <= max_seq_length <= max_position_embeddings):
        raise error(f"{name} must be in [{low}, {max_position_embeddings}] "
                    f"(max_position_embeddings), got {max_seq_length}")
    if max_seq_length < low:
        raise error(f"{name} {max_seq_length} < {low} cannot hold "
                    + ("a sentence pair" if pair else "[CLS] [SEP]"))
    return int(max_seq_length)


@dataclasses.dataclass(frozen=True)
class PackedPair:
    """One example packed as ``[CLS] a [SEP] (b [SEP])``, before padding.

    Attributes:
      input_ids, segment_ids: lists [n], n <= ``max_seq_length``.
      max_seq_length: L, the length of :meth:`features`.
      kept_a, kept_b: word-pieces of each text that fit (``kept_b`` 0 without a pair).
      truncated: word-pieces of the texts that did not fit.
    """

    input_ids: list
    segment_ids: list
    max_seq_length: int
    kept_a: int
    kept_b: int
    truncated: int

    @property
    def text_positions(self) -> list:
        """Sequence positions of the texts' word-pieces (all but [CLS] and [SEP]) [kept]."""
        start_b = self.kept_a + 2
        return (list(range(1, 1 + self.kept_a))
                + list(range(start_b, start_b + self.kept_b)))

    def features(self) -> dict:
        """``input_ids``, ``input_mask``, ``segment_ids``: int lists [L], zero-padded."""
        padding = [0] * (self.max_seq_length - len(self.input_ids))
        return {"input_ids": self.input_ids + padding,
                "input_mask": [1] * len(self.input_ids) + padding,
                "segment_ids": self.segment_ids + padding}


def pack_pair(ids_a: Sequence[int], ids_b: Sequence[int] | None, max_seq_length: int,
              cls_id: int, sep_id: int) -> PackedPair:
    """Truncates and packs one text or pair of word-piece ids (the rule in the docstring).

    Args:
      ids_a: ids of the first (or only) text [Ta].
      ids_b: ids of the second text [Tb]; None or empty for a single text.
      max_seq_length: L.
      cls_id, sep_id: the ids of [CLS] and [SEP].

    Raises:
      ValueError: L too small for [CLS] [SEP] (and the pair's second [SEP]).
    """
    ids_a, ids_b = list(ids_a), list(ids_b or ())
    check_max_seq_length(max_seq_length, pair=bool(ids_b))
    keep_a, keep_b = (int(n) for n in kept_lengths(len(ids_a), len(ids_b), max_seq_length))
    input_ids = [cls_id, *ids_a[:keep_a], sep_id]
    segment_ids = [0] * len(input_ids)
    if keep_b:  # as BERT: a second text cut to nothing leaves no second [SEP]
        input_ids += [*ids_b[:keep_b], sep_id]
        segment_ids += [1] * (keep_b + 1)
    return PackedPair(input_ids=input_ids, segment_ids=segment_ids,
                      max_seq_length=max_seq_length, kept_a=keep_a, kept_b=keep_b,
                      truncated=len(ids_a) + len(ids_b) - keep_a - keep_b)


# ---------------------------------------------------------------------------
# In the graph (TensorFlow ops; tensorflow is imported on first use)
# ---------------------------------------------------------------------------


def pad_ragged(ragged, max_seq_length: int):
    """A ragged [B, (n)] tensor (n <= L) zero-padded to a dense [B, L] one."""
    return ragged.to_tensor(default_value=0, shape=[None, max_seq_length])


def ragged_features(ids, segment_ids, max_seq_length: int) -> dict:
    """``input_ids``, ``input_mask``, ``segment_ids`` int32 [B, L] of int32 ragged ids and
    segment ids [B, (n)] (n <= L), zero-padded."""
    import tensorflow as tf
    return {"input_ids": pad_ragged(ids, max_seq_length),
            "input_mask": pad_ragged(tf.ones_like(ids), max_seq_length),
            "segment_ids": pad_ragged(segment_ids, max_seq_length)}


def pack_ragged(ids_a, ids_b, max_seq_length: int, cls_id: int, sep_id: int) -> dict:
    """:func:`pack_pair` of a batch as TensorFlow ops (graph-safe, for the SavedModel).

    Args:
      ids_a: int32 tf.RaggedTensor [B, (Ta)], the first texts' word-piece ids.
      ids_b: int32 tf.RaggedTensor [B, (Tb)] of the second texts, or None (single texts);
        an empty row is a single text, as in :func:`pack_pair`.
      max_seq_length: L (>= 3 when ``ids_b`` is given, else >= 2).
      cls_id, sep_id: the ids of [CLS] and [SEP].

    Returns:
      ``input_ids``, ``input_mask``, ``segment_ids``: int32 [B, L].
    """
    import tensorflow as tf
    check_max_seq_length(max_seq_length, pair=ids_b is not None)
    batch = ids_a.nrows()
    if ids_b is None:
        ids_b = tf.RaggedTensor.from_row_lengths(tf.zeros([0], ids_a.dtype),
                                                 tf.zeros([batch], tf.int64))
    len_a, len_b = ids_a.row_lengths(), ids_b.row_lengths()
    keep_a, keep_b = kept_lengths(len_a, len_b, max_seq_length, ops=tf)
    ids_a = tf.ragged.boolean_mask(ids_a, tf.ragged.range(len_a) < keep_a[:, None])
    ids_b = tf.ragged.boolean_mask(ids_b, tf.ragged.range(len_b) < keep_b[:, None])
    ones = tf.ones([batch], tf.int64)
    cls = tf.RaggedTensor.from_row_lengths(tf.fill([batch], tf.cast(cls_id, ids_a.dtype)),
                                           ones)
    sep = tf.RaggedTensor.from_row_lengths(tf.fill([batch], tf.cast(sep_id, ids_a.dtype)),
                                           ones)
    sep_b = tf.ragged.boolean_mask(sep, (keep_b > 0)[:, None])
    ids = tf.concat([cls, ids_a, sep, ids_b, sep_b], axis=1)
    segment_ids = tf.concat([tf.zeros_like(cls), tf.zeros_like(ids_a), tf.zeros_like(sep),
                             tf.ones_like(ids_b), tf.ones_like(sep_b)], axis=1)
    return ragged_features(ids, segment_ids, max_seq_length)
