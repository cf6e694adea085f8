"""Span tagging tasks on CoNLL-format files (spec 6.6): ``chunk`` and user ``conll:<name>``.

Two tasks share one reader, featurizer and scorer:

* :class:`ChunkingTask` (``chunk``): CoNLL-2000 chunking exactly as the original.
* :class:`ConllTaggingTask` (``conll:<name>``, see :func:`parse_conll_task_name` and
  :func:`make_conll_task`): any CoNLL-format span tagging data (NER...), with a chosen tag
  column and a type-aware span rule that reads IOB1, IOB2 and BIOES/BILOU tags alike
  (their defaults: :class:`TaggingSettings`, the ``tagging`` section of the run's config).

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

The parts: ``names`` (task names and their options), ``reader`` (CoNLL files), ``spans``
(tags, span rules, BIOES), ``aligner`` (word -> wordpieces, truncation), ``task`` (the
tasks), ``scoring`` (span F1), ``settings``.
"""

from electra_tf.finetuning.tagging.aligner import WordAligner, truncate_and_position
from electra_tf.finetuning.tagging.names import (CHUNK, CONLL_OPTIONS, CONLL_PREFIX,
                                                 TASK_NAME_RE, is_tagging_task_name,
                                                 parse_conll_task_name)
from electra_tf.finetuning.tagging.reader import (DEBUG_MAX_SENTENCES, DOCSTART, SPLITS,
                                                  Sentence, read_conll)
from electra_tf.finetuning.tagging.scoring import SpanF1Scorer
from electra_tf.finetuning.tagging.settings import TaggingSettings
from electra_tf.finetuning.tagging.spans import (SPAN_RULES, Span, get_span_function,
                                                 spans_electra, spans_to_bioes, spans_typed,
                                                 split_tag, to_bioes)
from electra_tf.finetuning.tagging.task import (ChunkingTask, ConllTaggingTask,
                                                TaggingExample, TaggingTask, TaskFactory,
                                                get_tagging_task, make_conll_task)

__all__ = ["CHUNK", "ChunkingTask", "CONLL_OPTIONS", "CONLL_PREFIX", "ConllTaggingTask",
           "DEBUG_MAX_SENTENCES", "DOCSTART", "get_span_function", "get_tagging_task",
           "is_tagging_task_name", "make_conll_task", "parse_conll_task_name", "read_conll",
           "Sentence", "Span", "SPAN_RULES", "SpanF1Scorer", "spans_electra",
           "spans_to_bioes", "spans_typed", "split_tag", "SPLITS", "TaggingExample",
           "TaggingSettings", "TaggingTask", "TASK_NAME_RE", "TaskFactory", "to_bioes",
           "truncate_and_position", "WordAligner"]
