"""Strings (or string pairs) to the encoder's features, in Python and inside tf.data."""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from electra_tf import preprocessing
from electra_tf.tokenization import FullTokenizer, default_vocab_file

# Feature names of the fine-tuning path (what FinetuningModel and the task models read).
FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")
# max_seq_length of configs/finetuning.json.
DEFAULT_SEQUENCE_LENGTH = 128


class ElectraPreprocessor:
    """Texts -> ``input_ids``, ``input_mask``, ``segment_ids`` int32, as fine-tuning makes them.

    Word-pieces of the project's tokenizer, packed ``[CLS] a [SEP] (b [SEP])`` with
    longest-first truncation and zero-padded to ``sequence_length`` (L): the features GLUE
    fine-tuning writes for the same texts.

    Inputs (``x``):
      * one text ``str`` -> features [L]; a batch (list, numpy array) -> [B, L];
      * a pair is a *tuple* ``(text_a, text_b)`` of two texts or two equal-length batches;
        an empty ``text_b`` counts as absent;
      * ``tf.Tensor`` strings, scalar or [B] (or a tuple of two): eagerly, or inside
        ``tf.data`` (``dataset.map(preprocessor)``; the tokenizer runs in Python there).

    Called as ``preprocessor(x, y=None, sample_weight=None)``: returns the features, or
    ``(features, y[, sample_weight])`` when labels are given (so a dataset of
    ``(texts, labels)`` maps straight into ``fit``).

    Args:
      tokenizer: an ``electra_tf.tokenization`` tokenizer (``tokenize``,
        ``convert_tokens_to_ids``, ``special_ids``).
      sequence_length: L, the length of every feature.
    """

    def __init__(self, tokenizer, sequence_length: int = DEFAULT_SEQUENCE_LENGTH):
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        preprocessing.check_max_seq_length(self.sequence_length)

    @classmethod
    def from_pretrained(cls, path, sequence_length: int = DEFAULT_SEQUENCE_LENGTH,
                        do_lower_case: Optional[bool] = None) -> "ElectraPreprocessor":
        """The preprocessor of a checkpoint: the ``vocab.txt`` beside it (else the bundled
        BERT vocab, as ``run_finetuning.py``) and its casing (``do_lower_case`` of its
        config, else True).

        ``path``: anything ``loading.read_weights`` reads, or weights it returned.
        """
        from electra_tf.models.backbone import read_pretrained
        weights = read_pretrained(path)
        if do_lower_case is None:
            do_lower_case = bool(weights.hparams.get("do_lower_case", True))
        tokenizer = FullTokenizer(weights.vocab_file or default_vocab_file(),
                                  do_lower_case=do_lower_case)
        return cls(tokenizer, sequence_length)

    # -- the packing (one place: re-point here when the packing moves) -------------

    def pack(self, text_a: str, text_b: Optional[str] = None) -> dict:
        """One text (pair) -> ``input_ids``, ``input_mask``, ``segment_ids``: int lists [L]."""
        ids_a = self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(text_a))
        ids_b = (self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(text_b))
                 if text_b else None)
        special = self.tokenizer.special_ids
        return preprocessing.pack_pair(ids_a, ids_b, self.sequence_length, special["cls"],
                                       special["sep"]).features()

    # -- batches --------------------------------------------------------------------

    def featurize(self, texts_a, texts_b=None) -> dict:
        """Batches of texts (and second texts) -> features, int32 numpy [B, L]."""
        texts_a = [_text(t) for t in texts_a]
        texts_b = [None] * len(texts_a) if texts_b is None else [_text(t) for t in texts_b]
        if len(texts_a) != len(texts_b):
            raise ValueError(f"a batch of text pairs needs as many second texts as first ones, "
                             f"got {len(texts_a)} and {len(texts_b)}")
        packed = [self.pack(a, b) for a, b in zip(texts_a, texts_b)]
        return {name: np.asarray([p[name] for p in packed], np.int32).reshape(
                    len(packed), self.sequence_length) for name in FEATURE_NAMES}

    def __call__(self, x, y=None, sample_weight=None):
        segments = list(x) if isinstance(x, tuple) else [x]
        if not 1 <= len(segments) <= 2:
            raise ValueError(f"ElectraPreprocessor takes one text or a pair (a tuple of two), "
                             f"got a tuple of {len(segments)}")
        if any(tf.is_tensor(s) and not _is_eager(s) for s in segments):
            features = self._in_graph(segments)
        else:
            features = self._in_python(segments)
        if y is None and sample_weight is None:
            return features
        return (features, y) if sample_weight is None else (features, y, sample_weight)

    def _in_python(self, segments) -> dict:
        arrays = [np.asarray(s.numpy() if tf.is_tensor(s) else s, dtype=object)
                  for s in segments]
        if any(a.ndim > 1 for a in arrays):
            raise ValueError("ElectraPreprocessor takes a batch of texts as a list; text pairs "
                             "as a tuple of two lists (texts_a, texts_b), not a list of pairs")
        single = arrays[0].ndim == 0
        batches = [a.reshape(-1) for a in arrays]
        features = self.featurize(*batches)
        return {k: v[0] for k, v in features.items()} if single else features

    def _in_graph(self, segments) -> dict:
        single = segments[0].shape.rank == 0
        flat = [tf.reshape(tf.convert_to_tensor(s, tf.string), [-1]) for s in segments]

        def run(*batches):
            features = self.featurize(*(b.numpy() for b in batches))
            return [features[name] for name in FEATURE_NAMES]

        outputs = tf.py_function(run, flat, [tf.int32] * len(FEATURE_NAMES))
        features = {}
        for name, value in zip(FEATURE_NAMES, outputs):
            value.set_shape([None, self.sequence_length])
            features[name] = value[0] if single else value
        return features


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _is_eager(tensor) -> bool:
    return tf.executing_eagerly() and hasattr(tensor, "numpy")
