"""Word tagging (chunking, NER, POS) on the hidden states of each word's first word-piece."""

from __future__ import annotations

from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from electra_tf.finetuning.heads import TaggingHead
from electra_tf.models.task import ElectraTask


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraTokenTagger(ElectraTask):
    """Tagging fine-tuning's head: hidden state at each labeled position -> dense H->T.

    Args:
      backbone: an :class:`ElectraBackbone`.
      num_classes: T, the number of tags.
      task_name: the head's scope ``task_specific/<task_name>/`` (e.g. ``"chunk"`` to
        share checkpoints with ``run_finetuning.py``'s chunk task).
      preprocessor: an :class:`ElectraPreprocessor` (texts give every word-piece a
        position), or None.

    Call: features (``input_ids``, ``input_mask``, ``segment_ids`` int [B, L], optional
    ``labeled_positions`` int [B, N]: each word's first word-piece, as the tagging
    features' ``<task>_labeled_positions``; default every position, N = L) -> logits
    [B, N, T] float32. Labels (``y``): tag ids [B, N]; ``sample_weight`` [B, N]: 1 for the
    words that count (the features' ``<task>_labels_mask``), 0 for padding.
    """

    def __init__(self, backbone, num_classes: int, task_name: str = "tagger",
                 preprocessor=None, **kwargs):
        kwargs.setdefault("name", "electra_token_tagger")
        super().__init__(backbone, task_name, preprocessor, **kwargs)
        self.num_classes = int(num_classes)
        self.head = TaggingHead(task_name, self.num_classes)

    def _task_config(self) -> dict:
        return {**super()._task_config(), "num_classes": self.num_classes}

    def _accepted_keys(self) -> tuple:
        return super()._accepted_keys() + ("labeled_positions",)

    def call(self, features, training=False):
        encoded = self.backbone(features, training=training)
        every_position = tf.broadcast_to(
            tf.range(tf.shape(features["input_ids"])[1])[tf.newaxis],
            tf.shape(features["input_ids"]))
        positions = features.get("labeled_positions", features.get(
            f"{self.task_name}_labeled_positions", every_position))
        zeros = tf.zeros_like(positions)
        return self._run_head(encoded, features,
                              {"labeled_positions": positions, "labels": zeros,
                               "labels_mask": tf.cast(zeros, tf.float32)},
                              training)["logits"]

    def default_loss(self):
        """Cross-entropy summed over the weighted words and the batch (fine-tuning's)."""
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """As :meth:`ElectraTask.compile`; "auto" metrics: word ``accuracy`` weighted by
        ``sample_weight`` (padding words do not count)."""
        if isinstance(metrics, str) and metrics == "auto":
            metrics = None
            kwargs.setdefault("weighted_metrics",
                              [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        super().compile(optimizer, loss, metrics, **kwargs)

    def featurize_words(self, sentences: Sequence[Sequence[str]],
                        tags: Optional[Sequence[Sequence[int]]] = None,
                        lower_case: Optional[bool] = None):
        """Sentences given as words -> the tagging features, each word at its first
        word-piece, as tagging fine-tuning aligns them (``tagging.WordAligner`` and the
        original's conservative truncation to L).

        Args:
          sentences: B lists of words.
          tags: B lists of tag ids, one per word (training), or None.
          lower_case: lower-case the words (default: the preprocessor's casing).
        Returns:
          ``(x, y, sample_weight)`` for ``fit``/``evaluate``: ``x`` the features int32
          [B, L] with ``labeled_positions`` [B, L] (word k's first word-piece at column k),
          ``y`` the tags [B, L] (zeros without ``tags``) and ``sample_weight`` [B, L] float32,
          1 for the words that fit into L. ``predict(x)[b, k]`` are word k's logits.
        """
        from electra_tf.finetuning.tagging import WordAligner, truncate_and_position
        preprocessor = self._require_preprocessor()
        tokenizer = preprocessor.tokenizer
        aligner = WordAligner(tokenizer, preprocessor.do_lower_case if lower_case is None
                              else lower_case)
        length = preprocessor.sequence_length
        if tags is not None and len(tags) != len(sentences):
            raise ValueError(f"featurize_words needs one tag list per sentence, got "
                             f"{len(sentences)} sentences and {len(tags)} tag lists")
        special = tokenizer.special_ids
        ids = np.zeros((len(sentences), length), np.int32)
        mask = np.zeros((len(sentences), length), np.int32)
        positions = np.zeros((len(sentences), length), np.int32)
        labels = np.zeros((len(sentences), length), np.int32)
        weights = np.zeros((len(sentences), length), np.float32)
        for b, words in enumerate(sentences):
            if isinstance(words, str):
                raise ValueError("featurize_words takes sentences as lists of words; split a "
                                 "text first (e.g. text.split())")
            if tags is not None and len(tags[b]) != len(words):
                raise ValueError(f"sentence {b}: {len(words)} words but {len(tags[b])} tags")
            tokens, pos = truncate_and_position(aligner.align(list(words)), length)
            ids[b, :len(tokens)] = [special["cls"] if t == "[CLS]" else special["sep"]
                                    if t == "[SEP]" else aligner.vocab[t] for t in tokens]
            mask[b, :len(tokens)] = 1
            positions[b, :len(pos)] = pos
            weights[b, :len(pos)] = 1.0
            if tags is not None:
                labels[b, :len(pos)] = list(tags[b])[:len(pos)]
        # Segment ids 1 on every real token: the original's tagging quirk (spec 6.6).
        features = {"input_ids": ids, "input_mask": mask, "segment_ids": mask.copy(),
                    "labeled_positions": positions}
        return features, labels, weights

