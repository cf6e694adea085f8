"""The SavedModel's text encoder: BERT tokenization and model features as TensorFlow ops.

:class:`TextEncoder` is the ``encoder`` of the SavedModels that :mod:`electra_tf.export`
writes: raw strings in, the features of the Keras models out, with no Python in the graph.
Its rules (BERT's cleanup, lower-casing and accent stripping, tensorflow-text's WordPiece,
and where the ids can differ from :class:`~electra_tf.tokenization.FullTokenizer`) are told
in :mod:`electra_tf.export`'s docstring (``python -m electra_tf.export --help``). Sentences
and pairs are packed by :func:`electra_tf.preprocessing.pack_ragged`, the rule that
fine-tuning, detection and scoring share; tagging texts as ``TaggingTask.featurize``.

Importing this module imports tensorflow and tensorflow_text (for its ops).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.preprocessing import pack_ragged, pad_ragged, ragged_features
from electra_tf.tokenization import MAX_INPUT_CHARS_PER_WORD

# Dropped by BERT's cleanup: category C* (control, format, surrogate, private use,
# unassigned) except tab/newline/CR (mapped to " " first), and U+FFFD.
_DROP_PATTERN = r"[^\p{L}\p{M}\p{N}\p{P}\p{S}\p{Z}]|\x{FFFD}"
_SPACE_PATTERN = r"[\t\n\r\p{Zs}]"
# What Python's str.split() splits on (tagging words): \t-\r, \x1c-\x1f, \x85, Z*.
_WORD_SEPARATOR_PATTERN = r"[\t-\r\x{1C}-\x{1F}\x{85}\p{Z}]+"
# BERT's punctuation: the ASCII non-alphanumeric symbols and Unicode category P*.
_PUNCTUATION_PATTERN = r"[!-/:-@\[-`{-~]|\p{P}"


class TextEncoder(tf.Module):
    """BERT tokenization and ``[CLS] a [SEP] b [SEP]`` features as TensorFlow ops.

    Args:
      vocab_tokens: the vocabulary, id = position (lines of vocab.txt, stripped).
      special_ids: ``pad``, ``unk``, ``cls``, ``sep`` ids.
      do_lower_case: lower-case and strip accents (see :mod:`electra_tf.export`).
      max_seq_length: L.
    """

    def __init__(self, vocab_tokens: Sequence[str], special_ids: dict,
                 do_lower_case: bool, max_seq_length: int):
        super().__init__(name="text_encoder")
        self.do_lower_case = bool(do_lower_case)
        self.max_seq_length = int(max_seq_length)
        self.cls_id, self.sep_id = int(special_ids["cls"]), int(special_ids["sep"])
        self.unk_id = int(special_ids["unk"])
        index = {}
        for i, token in enumerate(vocab_tokens):
            index[token] = i  # a later duplicate wins, as in BERT
        # FastWordpieceTokenizer takes ids from list positions: lines BERT can never
        # produce (empty, or the earlier copy of a duplicate) get placeholders with a
        # space, which no word matches.
        trie = [token if token and index[token] == i else f"[unreachable {i}] "
                for i, token in enumerate(vocab_tokens)]
        # max_bytes_per_word counts bytes, BERT characters: 4 bytes per character at
        # most; the character rule is applied afterwards.
        options = {"vocab": trie, "suffix_indicator": "##", "token_out_type": tf.int32,
                   "unknown_token": "[UNK]",
                   "max_bytes_per_word": 4 * MAX_INPUT_CHARS_PER_WORD}
        self._wordpiece = tf_text.FastWordpieceTokenizer(no_pretokenization=False,
                                                         **options)
        self._wordpiece_word = tf_text.FastWordpieceTokenizer(no_pretokenization=True,
                                                              **options)
        self._is_suffix = tf.constant([t.startswith("##") for t in trie])
        self._tokens = tf.constant([str(t) for t in vocab_tokens])

    def normalize(self, text, lower_case: bool | None = None):
        """BERT's cleanup and (optionally) lower-casing + accent stripping of [N] strings."""
        lower = self.do_lower_case if lower_case is None else lower_case
        text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="ignore")
        text = tf.strings.regex_replace(text, _SPACE_PATTERN, " ")
        text = tf.strings.regex_replace(text, _DROP_PATTERN, "")
        if lower:
            text = tf.strings.lower(text, encoding="utf-8")
            text = tf_text.normalize_utf8(text, "NFD")
            text = tf.strings.regex_replace(text, r"\p{Mn}", "")
        return text

    def word_pieces(self, text):
        """Word-piece ids of [B] raw strings: int32 ragged [B, (T)], BERT's rules."""
        text = self.normalize(text)
        pieces, starts, ends = self._wordpiece.tokenize_with_offsets(text)
        ids, rows = pieces.flat_values, pieces.value_rowids()
        # Words: a piece that is not a "##" suffix starts one. A word of more than
        # MAX_INPUT_CHARS_PER_WORD characters (but few enough bytes to be word-pieced)
        # is [UNK].
        is_start = tf.logical_not(tf.gather(self._is_suffix, ids))
        word = tf.cumsum(tf.cast(is_start, tf.int32)) - 1
        word_start = tf.math.segment_min(starts.flat_values, word)
        word_end = tf.math.segment_max(ends.flat_values, word)
        word_text = tf.strings.substr(tf.gather(text, tf.math.segment_min(rows, word)),
                                      word_start, word_end - word_start)
        too_long = tf.strings.length(word_text, unit="UTF8_CHAR") > MAX_INPUT_CHARS_PER_WORD
        too_long = tf.gather(too_long, word)
        keep = tf.logical_or(is_start, tf.logical_not(too_long))
        ids = tf.where(too_long, tf.constant(self.unk_id, tf.int32), ids)
        return tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(ids, keep), tf.boolean_mask(rows, keep), nrows=pieces.nrows())

    def encode(self, text_a, text_b=None):
        """``[CLS] a [SEP] (b [SEP])`` features int32 [B, L] of [B] strings, BERT's
        truncation (an empty ``text_b`` counts as absent)."""
        return pack_ragged(self.word_pieces(text_a),
                           None if text_b is None else self.word_pieces(text_b),
                           self.max_seq_length, self.cls_id, self.sep_id)

    def tokens(self, input_ids, input_mask):
        """The word-piece strings [B, L] of ids, "" at padding."""
        names = tf.gather(self._tokens, input_ids)
        return tf.where(input_mask > 0, names, tf.constant(""))

    def split_words(self, text):
        """[B] strings -> ragged [B, (W)] words, split on whitespace (str.split())."""
        text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="ignore")
        return tf.strings.split(tf.strings.regex_replace(text, _WORD_SEPARATOR_PATTERN,
                                                         " "))

    def word_pieces_of_words(self, words, lower_case: bool):
        """Flat [N] words -> ragged [N, (P)] ids, as the tagging tasks' WordAligner:
        cleanup, optional lower-casing, punctuation split (no CJK split), WordPiece."""
        text = self.normalize(words, lower_case)
        parts = tf_text.regex_split(text, _PUNCTUATION_PATTERN, _PUNCTUATION_PATTERN)
        flat = parts.flat_values
        pieces = self._wordpiece_word.tokenize(flat)                  # [N', (P)]
        # A part of more than MAX_INPUT_CHARS_PER_WORD characters is one [UNK], as in BERT.
        too_long = tf.strings.length(flat, unit="UTF8_CHAR") > MAX_INPUT_CHARS_PER_WORD
        rows = pieces.value_rowids()
        too_long = tf.gather(too_long, rows)
        first = tf.range(tf.size(rows, out_type=tf.int64)) == tf.gather(
            pieces.row_starts(), rows)
        keep = tf.logical_or(first, tf.logical_not(too_long))
        ids = tf.where(too_long, tf.constant(self.unk_id, tf.int32), pieces.flat_values)
        pieces = tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(ids, keep), tf.boolean_mask(rows, keep), nrows=pieces.nrows())
        return parts.with_flat_values(pieces).merge_dims(1, 2)

    def encode_words(self, text, lower_case: bool):
        """Tagging features of [B] texts, as ``TaggingTask.featurize`` (spec 6.6).

        Returns the features [B, L] (segment ids 1 on every real token, the original's
        quirk), ``labeled_positions`` and ``labels_mask`` [B, L], ``words`` ragged
        [B, (W)] and ``num_labeled`` [B] (the first words that got a position).
        """
        length = self.max_seq_length
        words = self.split_words(text)
        pieces = words.with_flat_values(
            self.word_pieces_of_words(words.flat_values, lower_case))  # [B, (W), (P)]
        n_pieces = pieces.row_lengths(axis=2)                            # [B, (W)]
        n_words = words.row_lengths() + 2            # with the [CLS] and [SEP] words
        batch = words.nrows()
        # Tokens before word k (k >= 1): [CLS] plus the pieces of words 1..k-1.
        before = 1 + tf.math.cumsum(n_pieces.to_tensor(), axis=1, exclusive=True)
        before = tf.RaggedTensor.from_tensor(before, lengths=words.row_lengths())
        # The original appends word k only while n_words + len(tokens) + 1 <= L.
        kept = n_words[:, None] + before + 1 <= length
        cls_kept = n_words + 1 <= length
        ones = tf.ones([batch], tf.int64)
        cls = tf.ragged.boolean_mask(
            tf.RaggedTensor.from_row_lengths(tf.fill([batch], self.cls_id), ones),
            cls_kept[:, None])
        sep = tf.RaggedTensor.from_row_lengths(tf.fill([batch], self.sep_id), ones)
        body = tf.ragged.boolean_mask(pieces, kept).merge_dims(1, 2)
        ids = tf.concat([cls, body, sep], axis=1)
        positions = tf.ragged.boolean_mask(before, kept)
        # A word of many pieces can still overflow L: cut to L - 1 tokens + [SEP].
        overflow = ids.row_lengths() > length
        ids = tf.ragged.boolean_mask(
            ids, tf.ragged.range(ids.row_lengths()) < tf.where(
                overflow, tf.constant(length - 1, tf.int64), ids.row_lengths())[:, None])
        ids = tf.concat([ids, tf.ragged.boolean_mask(sep, overflow[:, None])], axis=1)
        positions = tf.ragged.boolean_mask(positions, positions < length - 1)
        features = ragged_features(ids, tf.ones_like(ids), length)
        features["labeled_positions"] = pad_ragged(tf.cast(positions, tf.int32), length)
        features["labels_mask"] = tf.cast(
            pad_ragged(tf.ones_like(positions, tf.int32), length), tf.float32)
        features["num_labeled"] = tf.cast(positions.row_lengths(), tf.int32)
        features["words"] = words
        return features
