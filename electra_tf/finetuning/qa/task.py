"""The QA tasks and their scorer: reading, featurization, post-processing and metrics together."""

from __future__ import annotations

import collections
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from electra_tf import tokenization
from electra_tf.finetuning.qa.data import (MRQA_DEBUG_LINES, QAExample, load_mrqa_gold,
                                           load_squad_gold, read_mrqa_examples,
                                           read_squad_examples)
from electra_tf.finetuning.qa.features import QAFeature, featurize_example
from electra_tf.finetuning.qa.metrics import mrqa_metrics, squad_v1_metrics, squad_v2_metrics
from electra_tf.finetuning.qa.postprocess import (NbestEntry, blank_null_predictions,
                                                  postprocess, write_json_atomic)
from electra_tf.finetuning.qa.settings import QASettings
from electra_tf.finetuning.task import FeatureSpecs, Scorer, Task, log

SQUAD_TASKS = ("squadv1", "squad")
MRQA_TASKS = ("newsqa", "naturalqs", "triviaqa", "searchqa")
QA_TASKS = SQUAD_TASKS + MRQA_TASKS

_OUTPUT_KEYS = ("eid", "start_logits", "end_logits", "answerable_logit", "start_top_log_probs",
                "start_top_index", "end_top_log_probs", "end_top_index")


class QATask(Task):
    """A span-extraction QA task (``squadv1``, ``squad``, or an MRQA task).

    Args (besides the Task ones):
      settings: the run's QA settings (:class:`QASettings`; None: the defaults of
        ``configs/finetuning.json``): windows, head, post-processing.
      task_id: index of this task in the run's task list, written as the ``task_id`` feature.
      results_dir: where the scorer writes ``<task>_preds.json``, ``<task>_null_odds.json``
        (SQuAD 2.0) and ``<task>_eval.json``; the original uses
        ``<pretrained dir>/results/<tasks>_qa``. None: nothing is written.
    """

    no_export_reason = ("question answering heads are not exported (span decoding over "
                        "document windows runs outside the graph)")

    def __init__(self, name: str, data_dir: str, tokenizer, max_seq_length: int,
                 debug: bool = False, settings: Optional[QASettings] = None, *,
                 task_id: int = 0, results_dir: Optional[str] = None):
        if name not in QA_TASKS:
            raise ValueError("unknown QA task %r (expected one of %s)" % (name, QA_TASKS))
        super().__init__(name, data_dir, tokenizer, max_seq_length, debug)
        self.settings = settings if settings is not None else QASettings.defaults()
        self.task_id = task_id
        self.results_dir = results_dir
        self.v2 = name == "squad"
        self.is_mrqa = name in MRQA_TASKS
        self._eval_cache: Dict[str, Tuple[List[QAExample], Dict[int, List[QAFeature]]]] = {}
        basic = getattr(tokenizer, "basic_tokenizer", None)
        if basic is None:
            basic = tokenization.BasicTokenizer(
                getattr(tokenizer, "do_lower_case", True),
                getattr(tokenizer, "strip_accents", True))
        self.basic_tokenizer = basic

    def data_file(self, split: str) -> str:
        """``<split>.json`` (SQuAD; ``<split>-debug.json`` in debug) or ``<split>.jsonl``."""
        if self.is_mrqa:
            return os.path.join(self.data_dir, split + ".jsonl")
        return os.path.join(self.data_dir, split + ("-debug" if self.debug else "") + ".json")

    def get_examples(self, split: str) -> List[QAExample]:
        path = self.data_file(split)
        is_training = split == "train"
        if self.is_mrqa:
            examples, failures = read_mrqa_examples(
                path, self.name, is_training, MRQA_DEBUG_LINES if self.debug else None)
        else:
            examples, failures = read_squad_examples(path, self.name, is_training, self.v2)
        self.skipped_rows += failures
        if failures:
            log.warning("%s %s: skipped %d questions whose answer could not be located",
                        self.name, split, failures)
        return examples

    def featurize_spans(self, example: QAExample, is_training: bool) -> List[QAFeature]:
        """The doc-span features of one example, with the bookkeeping post-processing needs."""
        return featurize_example(example, self.tokenizer, self.max_seq_length,
                                 self.settings.max_query_length, self.settings.doc_stride,
                                 is_training)

    def featurize(self, example: QAExample, is_training: bool) -> List[Dict[str, Any]]:
        """One dict per doc span: input_ids, input_mask, segment_ids [L], task_id and the
        ``feature_specs`` scalars."""
        out = []
        for feature in self.featurize_spans(example, is_training):
            d = feature.to_dict(self.name)
            d["task_id"] = self.task_id
            out.append(d)
        return out

    def feature_specs(self) -> FeatureSpecs:
        return {self.name + "_eid": ((), "int64"),
                self.name + "_start_positions": ((), "int64"),
                self.name + "_end_positions": ((), "int64"),
                self.name + "_is_impossible": ((), "int64")}

    def eval_data(self, split: str) -> Tuple[List[QAExample], Dict[int, List[QAFeature]]]:
        """Examples of ``split`` and their eval features by example eid (cached)."""
        if split not in self._eval_cache:
            examples = self.get_examples(split)
            by_example = {e.eid: self.featurize_spans(e, False) for e in examples}
            self._eval_cache[split] = (examples, by_example)
        return self._eval_cache[split]

    def load_gold(self, split: str) -> "collections.OrderedDict[str, List[str]]":
        """Question id -> gold answer texts, from the same file the examples come from."""
        path = self.data_file(split)
        return load_mrqa_gold(path) if self.is_mrqa else load_squad_gold(path)

    def output_file(self, kind: str) -> Optional[str]:
        """``<results_dir>/<task>_<kind>.json`` (kind: preds, null_odds, eval) or None."""
        if not self.results_dir:
            return None
        return os.path.join(self.results_dir, "%s_%s.json" % (self.name, kind))

    def get_scorer(self, split: str = "dev") -> "QAScorer":
        return QAScorer(self, split)

    # -- head, cache, test outputs ----------------------------------------------

    def build_head(self):
        from electra_tf.finetuning.heads import QAHead  # keeps this package free of TF
        c = self.settings
        return QAHead(self.name, joint_prediction=c.joint_prediction, beam_size=c.beam_size,
                      answerable_classifier=c.answerable_classifier,
                      answerable_uses_start_logits=c.answerable_uses_start_logits,
                      answerable_weight=c.answerable_weight)

    def source_file(self, split: str) -> Optional[str]:
        return self.data_file(split)

    def cache_options(self) -> Dict[str, Any]:
        return {**super().cache_options(), "max_query_length": self.settings.max_query_length,
                "doc_stride": self.settings.doc_stride}

    def write_test_outputs(self, predict, directory: str) -> List[str]:
        """SQuAD 2.0 only (as the original): ``squad_test_predictions.json`` of the "test"
        split, the answer text or "" where the null odds exceed ``qa_na_threshold``
        (spec 6.8). The original scored test features against the dev examples (its
        [QUIRK/BUG]); this pairs them with the test examples."""
        if not self.v2:
            return []
        scorer = self.get_scorer("test")
        for outputs in predict("test"):
            scorer.update(outputs)
        predictions, null_odds = scorer.get_predictions()
        out = os.path.join(directory, f"{self.name}_test_predictions.json")
        write_json_atomic(out, blank_null_predictions(predictions, null_odds,
                                                      self.settings.qa_na_threshold))
        return [out]


def get_qa_task(name: str, data_dir: str, tokenizer, max_seq_length: int,
                **kwargs) -> QATask:
    """Builds the QA task ``name`` (kwargs: debug, settings, task_id, results_dir)."""
    return QATask(name, data_dir, tokenizer, max_seq_length, **kwargs)


class QAScorer(Scorer):
    """Collects per-feature QA outputs, post-processes them and computes the metrics.

    After ``get_results`` (or ``get_predictions``) the attributes ``predictions``,
    ``null_odds`` (SQuAD 2.0) and ``nbest`` hold the post-processed output.
    """

    def __init__(self, task: QATask, split: str = "dev"):
        self._task = task
        self._split = split
        self._results: Dict[int, Dict[str, np.ndarray]] = {}
        self.predictions: "collections.OrderedDict[str, str]" = collections.OrderedDict()
        self.null_odds: "collections.OrderedDict[str, float]" = collections.OrderedDict()
        self.nbest: Dict[str, List[NbestEntry]] = {}

    def _needed_keys(self) -> List[str]:
        cfg = self._task.settings
        keys = (["start_top_log_probs", "start_top_index", "end_top_log_probs", "end_top_index"]
                if cfg.joint_prediction else ["start_logits", "end_logits"])
        if self._task.v2:
            if cfg.answerable_classifier:
                keys.append("answerable_logit")
            else:
                keys.extend(k for k in ("start_logits", "end_logits") if k not in keys)
        return keys

    def update(self, outputs: Mapping[str, np.ndarray]) -> None:
        """Adds a batch: ``eid`` [B] plus the head outputs listed in the docstring of
        ``electra_tf.finetuning.qa`` (keys with or without the ``<task>_`` prefix; the
        prefixed one wins)."""
        prefix = self._task.name + "_"
        batch: Dict[str, np.ndarray] = {}
        for key in _OUTPUT_KEYS:
            if prefix + key in outputs:
                batch[key] = np.asarray(outputs[prefix + key])
            elif key in outputs:
                batch[key] = np.asarray(outputs[key])
        if "eid" not in batch:
            raise KeyError("QA outputs need %seid (or eid)" % prefix)
        needed = self._needed_keys()
        missing = [k for k in needed if k not in batch]
        if missing:
            raise KeyError("QA outputs for %s lack %s" % (self._task.name, ", ".join(missing)))
        for b, eid in enumerate(batch["eid"].reshape(-1)):
            self._results[int(eid)] = {k: np.array(batch[k][b]) for k in needed}

    def get_predictions(self) -> Tuple[Dict[str, str], Dict[str, float]]:
        """Post-processes the collected outputs; returns (predictions, null odds)."""
        examples, features = self._task.eval_data(self._split)
        self.predictions, self.null_odds, self.nbest = postprocess(
            examples, features, self._results, self._task.settings, self._task.v2,
            self._task.basic_tokenizer)
        return self.predictions, self.null_odds

    def get_results(self) -> Dict[str, float]:
        """Writes the prediction files (when ``results_dir`` is set) and returns the metrics:
        squad: exact, f1, total, HasAns_*, NoAns_*, best_*; others: exact_match, f1."""
        task = self._task
        predictions, null_odds = self.get_predictions()
        preds_file = task.output_file("preds")
        if preds_file:
            write_json_atomic(preds_file, predictions)
            if task.v2:
                write_json_atomic(task.output_file("null_odds"), null_odds)
        gold = task.load_gold(self._split)
        if task.v2:
            metrics = squad_v2_metrics(gold, predictions, null_odds,
                                       task.settings.qa_na_threshold)
        elif task.is_mrqa:
            metrics = mrqa_metrics(gold, predictions)
        else:
            metrics = squad_v1_metrics(gold, predictions)
        if preds_file:
            write_json_atomic(task.output_file("eval"), metrics)
        return metrics
