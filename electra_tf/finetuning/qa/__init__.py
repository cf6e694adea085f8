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

Everything here is pure Python / NumPy: no TensorFlow import. The parts: ``data``
(reading), ``features`` (windows, doc stride, labels), ``postprocess`` (n-best, null odds),
``metrics`` (EM / F1), ``task`` (QATask and QAScorer), ``settings``.
"""

from electra_tf.finetuning.qa.data import (MRQA_DEBUG_LINES, QAExample, load_mrqa_gold,
                                           load_squad_gold, read_mrqa_examples,
                                           read_squad_examples, split_context)
from electra_tf.finetuning.qa.features import (EID_MULTIPLIER, QAFeature, compute_doc_spans,
                                               featurize_example, improve_answer_span,
                                               is_max_context)
from electra_tf.finetuning.qa.metrics import (exact_match, mrqa_metrics, normalize_answer,
                                              squad_v1_metrics, squad_v2_metrics, token_f1)
from electra_tf.finetuning.qa.postprocess import (NbestEntry, blank_null_predictions,
                                                  get_final_text, postprocess,
                                                  postprocess_example, write_json_atomic)
from electra_tf.finetuning.qa.settings import QASettings
from electra_tf.finetuning.qa.task import (MRQA_TASKS, QA_TASKS, SQUAD_TASKS, QAScorer, QATask,
                                           get_qa_task)

__all__ = ["blank_null_predictions", "compute_doc_spans", "EID_MULTIPLIER", "exact_match",
           "featurize_example", "get_final_text", "get_qa_task", "improve_answer_span",
           "is_max_context", "load_mrqa_gold", "load_squad_gold", "MRQA_DEBUG_LINES",
           "mrqa_metrics", "MRQA_TASKS", "NbestEntry", "normalize_answer", "postprocess",
           "postprocess_example", "QA_TASKS", "QAExample", "QAFeature", "QAScorer",
           "QASettings", "QATask", "read_mrqa_examples", "read_squad_examples",
           "split_context", "SQUAD_TASKS", "squad_v1_metrics", "squad_v2_metrics", "token_f1",
           "write_json_atomic"]
