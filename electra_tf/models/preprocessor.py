"""Strings (or string pairs) to the encoder's features: a Keras layer of TensorFlow ops."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Optional, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from electra_tf import preprocessing
from electra_tf.tokenization import FullTokenizer, load_vocab_tokens, special_ids_of_tokens

# Feature names of the fine-tuning path (what FinetuningNetwork and the task models read).
FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")
# max_seq_length of configs/finetuning.json.
DEFAULT_SEQUENCE_LENGTH = 128


class MissingVocabularyError(FileNotFoundError):
    """A checkpoint without ``vocab.txt`` beside it, and no vocabulary given."""


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraPreprocessor(keras.layers.Layer):
    """Texts -> ``input_ids``, ``input_mask``, ``segment_ids`` int32, as fine-tuning makes them.

    BERT's rules as TensorFlow ops (``electra_tf.serving_text.TextEncoder``: cleanup,
    lower-casing and accent stripping, tensorflow-text's WordPiece), packed
    ``[CLS] a [SEP] (b [SEP])`` with longest-first truncation and zero-padded to
    ``sequence_length`` (L): the features GLUE fine-tuning writes for the same texts.
    No Python runs in the graph, so the layer works inside ``tf.data``, ``tf.function``,
    ``model.export()`` and SavedModels served in another process. Where the ids can
    differ from the pure-Python ``FullTokenizer`` (characters of Unicode versions newer
    than Python's tables) is told in ``electra_tf.export``'s docstring.

    Inputs (``x``):
      * one text ``str`` -> features [L]; a batch (list, numpy array, string tensor [B])
        -> [B, L] (numpy arrays for Python inputs, tensors for tensors);
      * a pair is a *tuple* ``(text_a, text_b)`` of two texts or two equal-length batches;
        an empty ``text_b`` counts as absent.

    Called as ``preprocessor(x, y=None, sample_weight=None)``: returns the features, or
    ``(features, y[, sample_weight])`` when labels are given (so a dataset of
    ``(texts, labels)`` maps straight into ``fit``).

    Args:
      vocabulary: the WordPiece vocabulary: a ``vocab.txt`` path or its tokens (id = index).
      sequence_length: L, the length of every feature.
      do_lower_case: lower-case and strip accents (uncased vocabularies).
    """

    def __init__(self, vocabulary: Union[str, os.PathLike, Sequence[str]],
                 sequence_length: int = DEFAULT_SEQUENCE_LENGTH, do_lower_case: bool = True,
                 **kwargs):
        kwargs.setdefault("name", "electra_preprocessor")
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        # Strings and Python lists go to call() as they are (as keras-hub's preprocessors).
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if isinstance(vocabulary, (str, os.PathLike)):
            tokens = load_vocab_tokens(vocabulary)
            source = os.fspath(vocabulary)
        else:
            tokens = [str(t) for t in vocabulary]
            source = "the vocabulary given"
        self.vocabulary = tokens
        self.special_ids = special_ids_of_tokens(tokens, source)
        self.sequence_length = int(sequence_length)
        preprocessing.check_max_seq_length(self.sequence_length)
        self.do_lower_case = bool(do_lower_case)
        from electra_tf.serving_text import TextEncoder  # imports tensorflow_text's ops
        self._encoder = TextEncoder(tokens, self.special_ids, self.do_lower_case,
                                    self.sequence_length)
        self._tokenizer = None
        self.built = True

    @classmethod
    def from_pretrained(cls, path, sequence_length: int = DEFAULT_SEQUENCE_LENGTH,
                        do_lower_case: Optional[bool] = None,
                        vocabulary=None) -> "ElectraPreprocessor":
        """The preprocessor of a checkpoint: the ``vocab.txt`` stored beside it and its
        casing (``do_lower_case`` of its config, else True).

        ``path``: anything ``loading.read_weights`` reads, or weights it returned.
        ``vocabulary``: a vocab path or tokens, for a checkpoint stored without one
        (a bare released checkpoint); without either, one error says so.
        """
        from electra_tf.models.backbone import read_pretrained
        weights = read_pretrained(path)
        if do_lower_case is None:
            do_lower_case = bool(weights.hparams.get("do_lower_case", True))
        if vocabulary is None:
            vocabulary = weights.vocab_file
        if vocabulary is None:
            raise MissingVocabularyError(
                f"{weights.source} has no vocab.txt beside it: pass vocabulary=<vocab.txt> "
                "(the vocabulary the model was pre-trained with; Google's English releases use "
                "electra_tf.tokenization.default_vocab_file())")
        return cls(vocabulary, sequence_length, do_lower_case)

    @property
    def tokenizer(self) -> FullTokenizer:
        """The faithful pure-Python tokenizer of the same vocabulary and casing."""
        if self._tokenizer is None:
            self._tokenizer = FullTokenizer.from_tokens(self.vocabulary,
                                                        do_lower_case=self.do_lower_case)
        return self._tokenizer

    def get_config(self):
        return {**super().get_config(), "vocabulary": list(self.vocabulary),
                "sequence_length": self.sequence_length, "do_lower_case": self.do_lower_case}

    # -- the layer ------------------------------------------------------------------

    def call(self, x, y=None, sample_weight=None):
        features = self.featurize(x)
        if y is None and sample_weight is None:
            return features
        return (features, y) if sample_weight is None else (features, y, sample_weight)

    def featurize(self, x) -> dict:
        """Texts (one, a batch, or a pair as a tuple) -> the int32 features [B, L] or [L]."""
        if isinstance(x, Mapping):
            raise ValueError(f"ElectraPreprocessor takes texts (a string, a list of strings, "
                             f"or a tuple of two for pairs), not a dict with keys "
                             f"{sorted(map(str, x))}; features go to the model directly")
        segments = list(x) if isinstance(x, tuple) else [x]
        if not 1 <= len(segments) <= 2:
            raise ValueError(f"ElectraPreprocessor takes one text or a pair (a tuple of two), "
                             f"got a tuple of {len(segments)}")
        tensors = [_string_tensor(s) for s in segments]
        ranks = {t.shape.rank for t in tensors}
        if len(ranks) != 1 or ranks - {0, 1}:
            raise ValueError("ElectraPreprocessor takes a batch of texts as a list; text pairs "
                             "as a tuple of two lists (texts_a, texts_b), not a list of pairs")
        single = tensors[0].shape.rank == 0
        flat = [tf.reshape(t, [-1]) for t in tensors]
        if len(flat) == 2 and tf.executing_eagerly() and flat[0].shape != flat[1].shape:
            raise ValueError(f"a batch of text pairs needs as many second texts as first ones, "
                             f"got {flat[0].shape[0]} and {flat[1].shape[0]}")
        features = self._encoder.encode(*flat)
        features = {name: tf.ensure_shape(features[name], [None, self.sequence_length])
                    for name in FEATURE_NAMES}
        if single:
            features = {k: v[0] for k, v in features.items()}
        if tf.executing_eagerly() and not any(tf.is_tensor(s) for s in segments):
            return {k: v.numpy() for k, v in features.items()}  # Python in, numpy out
        return features

    def compute_output_spec(self, x, y=None, sample_weight=None):
        spec = {name: keras.KerasTensor((None, self.sequence_length), "int32")
                for name in FEATURE_NAMES}
        return spec if y is None and sample_weight is None else (spec, y)


def _string_tensor(value) -> tf.Tensor:
    """A text or batch of texts (str, bytes, list, numpy, tensor) as a string tensor."""
    if tf.is_tensor(value):
        if value.dtype != tf.string:
            raise ValueError(f"ElectraPreprocessor takes strings, got a {value.dtype.name} "
                             "tensor (token ids go to the model directly, as features)")
        return value
    if isinstance(value, (str, bytes)):
        return tf.constant(value)
    array = np.asarray(value, dtype=object)
    if array.size and not all(isinstance(v, (str, bytes)) for v in array.reshape(-1)):
        kinds = sorted({type(v).__name__ for v in array.reshape(-1)} - {"str", "bytes"})
        raise ValueError(f"ElectraPreprocessor takes strings, got {', '.join(kinds)} values")
    return tf.constant(array.tolist() if array.ndim else array.item(), dtype=tf.string)
