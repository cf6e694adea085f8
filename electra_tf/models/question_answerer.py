"""Extractive question answering: answer-span logits (SQuAD-style), as QA fine-tuning."""

from __future__ import annotations

import tensorflow as tf

from electra_tf.finetuning.heads import QAHead
from electra_tf.models.task import ElectraTask

# The labels of a QA example, as the QA features carry them (``<task>_<name>``) or bare.
LABELS = ("start_positions", "end_positions", "is_impossible")


class ElectraQuestionAnswerer(ElectraTask):
    """QA fine-tuning's head: start logits, end logits (jointly conditioned on the start
    with ``joint_prediction``), and the answerable classifier.

    Args:
      backbone: an :class:`ElectraBackbone`.
      task_name: the head's scope ``task_specific/<task_name>/`` (``"squad"`` shares
        checkpoints with ``run_finetuning.py``'s SQuAD).
      joint_prediction, beam_size, answerable_classifier, answerable_uses_start_logits,
        answerable_weight: the FinetuningConfig fields of these names; None takes them
        from the backbone size's fine-tuning preset.
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
        defaults = self.finetuning_config()
        self.head_options = {k: getattr(defaults, k) if v is None else v
                             for k, v in options.items()}
        self.head = QAHead(task_name, **self.head_options)

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
