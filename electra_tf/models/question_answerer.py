"""Extractive question answering: answer-span logits (SQuAD-style), as QA fine-tuning."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from electra_tf.finetuning.heads import QAHead
from electra_tf.finetuning.qa.settings import QASettings
from electra_tf.models.task import ElectraTask

# The labels of a QA example, as the QA features carry them (``<task>_<name>``) or bare.
LABELS = ("start_positions", "end_positions", "is_impossible")


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraQuestionAnswerer(ElectraTask):
    """QA fine-tuning's head: start logits, end logits (jointly conditioned on the start
    with ``joint_prediction``), and the answerable classifier.

    Args:
      backbone: an :class:`ElectraBackbone`.
      task_name: the head's scope ``task_specific/<task_name>/`` (``"squad"`` shares
        checkpoints with ``run_finetuning.py``'s SQuAD).
      joint_prediction, beam_size, answerable_classifier, answerable_uses_start_logits,
        answerable_weight: the QA settings of these names; None takes them from the
        backbone size's fine-tuning preset.
      preprocessor: an :class:`ElectraPreprocessor` (a pair is question, context), or None.

    Call: features (``input_ids``, ``input_mask``, ``segment_ids`` int [B, L]; the context
    is segment 1) -> dict of ``start_logits`` [B, L] and ``end_logits`` [B, L] float32
    (positions outside the context get -1000, [CLS] stays open for "no answer"),
    ``answerable_logit`` [B] with the answerable classifier; with ``joint_prediction``,
    ``end_logits`` are zeros out of training and the beam search gives
    ``start_top_log_probs``/``start_top_index`` [B, k] and
    ``end_top_log_probs``/``end_top_index`` [B, k, k].

    Labels travel in the features, as in QA fine-tuning (the joint end logits are computed
    from the gold start during training): ``start_positions``, ``end_positions`` int [B]
    and ``is_impossible`` [B] (or the QA features' ``<task>_...`` names). With them, the
    model adds fine-tuning's loss (summed over the batch); ``compile()`` needs no loss and
    ``fit``/``evaluate`` take no ``y``.
    """

    def __init__(self, backbone, task_name: str = "squad", joint_prediction=None,
                 beam_size=None, answerable_classifier=None, answerable_uses_start_logits=None,
                 answerable_weight=None, preprocessor=None, **kwargs):
        kwargs.setdefault("name", "electra_question_answerer")
        super().__init__(backbone, task_name, preprocessor, **kwargs)
        options = dict(joint_prediction=joint_prediction, beam_size=beam_size,
                       answerable_classifier=answerable_classifier,
                       answerable_uses_start_logits=answerable_uses_start_logits,
                       answerable_weight=answerable_weight)
        defaults = QASettings.from_config(self.finetuning_config())
        self.head_options = {k: getattr(defaults, k) if v is None else v
                             for k, v in options.items()}
        self.head = QAHead(task_name, **self.head_options)

    def _task_config(self) -> dict:
        return {**super()._task_config(), **self.head_options}

    def _accepted_keys(self) -> tuple:
        return super()._accepted_keys() + LABELS

    def _features(self, x, y, sample_weight):
        """As the base class; labels given as ``y`` (a dict of :data:`LABELS`, or a tuple
        ``(start_positions, end_positions[, is_impossible])``) travel in the features."""
        x, y, sample_weight = super()._features(x, y, sample_weight)
        if y is None:
            return x, y, sample_weight
        if isinstance(x, tf.data.Dataset):
            raise ValueError("ElectraQuestionAnswerer reads QA labels from the features: put "
                             "start_positions/end_positions into the dataset's feature dict")
        if isinstance(y, (tuple, list)) and not isinstance(y, np.ndarray):
            y = dict(zip(LABELS, y))
        if not isinstance(y, dict) or not {"start_positions", "end_positions"} <= set(y):
            raise ValueError("ElectraQuestionAnswerer takes labels as y={'start_positions': "
                             "..., 'end_positions': ...[, 'is_impossible': ...]} or a tuple "
                             "(start_positions, end_positions[, is_impossible])")
        unknown = sorted(set(y) - set(LABELS))
        if unknown:
            raise ValueError(f"unknown QA label(s) {unknown}; expected {', '.join(LABELS)}")
        return {**x, **{k: np.asarray(v) for k, v in y.items()}}, None, sample_weight

    def call(self, features, training=False):
        length = features["input_ids"].shape[-1]
        if self.head_options["joint_prediction"] and length is not None and \
                length < self.head_options["beam_size"]:
            raise ValueError(f"ElectraQuestionAnswerer: beam_size {self.head_options['beam_size']}"
                             f" exceeds the sequence length {length}: pass a smaller beam_size")
        encoded = self.backbone(features, training=training)
        batch = tf.shape(features["input_ids"])[:1]
        zeros = tf.zeros(batch, tf.int32)
        out = self._run_head(encoded, features,
                             {"start_positions": zeros, "end_positions": zeros,
                              "is_impossible": zeros}, training)
        loss = out.pop("loss")
        out.pop("eid", None)
        if self._has_labels(features):
            self.add_loss(tf.reduce_sum(loss))
        return out

    def _has_labels(self, features) -> bool:
        return any(name in features or f"{self.task_name}_{name}" in features
                   for name in LABELS[:2])

    def default_loss(self):
        """None: the head's loss (added in ``call`` when the features carry labels)."""
        return None

    def answer(self, questions, contexts, *, max_answer_length=None, n_best_size=None,
               max_query_length=None, doc_stride=None, batch_size: int = 32,
               return_details: bool = False):
        """Answer texts of questions on contexts: QA fine-tuning's span decoding.

        Each context is split into words and windows (``doc_stride``), every window goes
        through the model, and the best span over the windows (joint beam search or
        start/end logits, at most ``max_answer_length`` word-pieces, as
        ``run_finetuning.py``'s SQuAD predictions) is mapped back to the context's
        characters. Features use the faithful Python tokenizer of the preprocessor's
        vocabulary (``preprocessor.tokenizer``). Unset options come from the backbone
        size's fine-tuning preset.

        Args:
          questions, contexts: a question and its context, or equal-length lists.
          return_details: also return, per question, the null odds (answerable classifier:
            above ``qa_na_threshold`` means "no answer") and the n-best list.
        Returns:
          the answer text (a list for lists); with ``return_details``, pairs
          ``(text, {"null_odds": ..., "nbest": [(text, probability), ...]})``.
        """
        from electra_tf.finetuning.qa.data import QAExample, split_context
        from electra_tf.finetuning.qa.features import featurize_example
        from electra_tf.finetuning.qa.postprocess import postprocess_example
        single = isinstance(questions, str)
        questions, contexts = ([questions], [contexts]) if single else (list(questions),
                                                                        list(contexts))
        if len(questions) != len(contexts):
            raise ValueError(f"answer() needs one context per question, got {len(questions)} "
                             f"questions and {len(contexts)} contexts")
        tokenizer = self._require_preprocessor().tokenizer
        length = self.preprocessor.sequence_length
        config = QASettings.from_config(self.finetuning_config()).replace(**{
            k: v for k, v in (("max_answer_length", max_answer_length),
                              ("n_best_size", n_best_size),
                              ("max_query_length", max_query_length),
                              ("doc_stride", doc_stride)) if v is not None},
            **self.head_options)
        examples, features = [], []
        for i, (question, context) in enumerate(zip(questions, contexts)):
            example = QAExample(eid=i, task_name=self.task_name, qas_id=str(i),
                                question_text=question, doc_tokens=split_context(context)[0])
            examples.append(example)
            features.append(featurize_example(example, tokenizer, length,
                                              config.max_query_length, config.doc_stride,
                                              is_training=False))
        flat = [f for fs in features for f in fs]
        batch = {name: np.asarray([getattr(f, name) for f in flat], np.int32)
                 for name in ("input_ids", "input_mask", "segment_ids")}
        outputs = self.predict(batch, batch_size=batch_size, verbose=0)
        results = {f.eid: {k: np.asarray(v[n]) for k, v in outputs.items()}
                   for n, f in enumerate(flat)}
        answers = []
        for example, example_features in zip(examples, features):
            text, null_odds, nbest = postprocess_example(
                example, example_features, results, config, v2=config.answerable_classifier,
                basic_tokenizer=tokenizer.basic_tokenizer)
            answers.append((text, {"null_odds": null_odds,
                                   "nbest": [(e.text, e.probability) for e in nbest]})
                           if return_details else text)
        return answers[0] if single else answers

