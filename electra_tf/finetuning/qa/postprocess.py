"""QA post-processing: model outputs per window -> n-best answer texts, null odds, predictions."""

from __future__ import annotations

import collections
import dataclasses
import json
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from electra_tf.finetuning.qa.data import QAExample
from electra_tf.finetuning.qa.features import QAFeature
from electra_tf.finetuning.qa.settings import QASettings
from electra_tf.finetuning.task import log
from electra_tf.io_utils import write_text_atomic

# Initial null score: any real answerable logit is smaller (the minimum over spans is kept).
_NULL_SCORE_INIT = 1000000.0


def _without_spaces(text: str) -> Tuple[str, List[int]]:
    """``text`` without " " characters and, per kept character, its index in ``text``."""
    kept = [(i, c) for i, c in enumerate(text) if c != " "]
    return "".join(c for _, c in kept), [i for i, _ in kept]


def get_final_text(pred_text: str, orig_text: str, basic_tokenizer) -> str:
    """Maps a normalised predicted text back onto the original words ``orig_text``.

    ``orig_text`` is basic-tokenized (lower-casing as configured) and ``pred_text`` located
    in it; characters are aligned ignoring spaces, and the matching slice of ``orig_text``
    is returned. Any failure (not found, different lengths without spaces) returns
    ``orig_text``. Example: ("steve smith", "Steve Smith's") -> "Steve Smith".
    """
    tok_text = " ".join(basic_tokenizer.tokenize(orig_text))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_chars, orig_index = _without_spaces(orig_text)
    tok_chars, tok_index = _without_spaces(tok_text)
    if len(orig_chars) != len(tok_chars):
        return orig_text
    tok_to_stripped = {pos: i for i, pos in enumerate(tok_index)}
    if start not in tok_to_stripped or end not in tok_to_stripped:
        return orig_text
    return orig_text[orig_index[tok_to_stripped[start]]:orig_index[tok_to_stripped[end]] + 1]


def _best_indexes(logits: np.ndarray, n: int) -> List[int]:
    """Indices of the ``n`` largest values, descending (ties: lower index first)."""
    order = np.argsort(-np.asarray(logits, dtype=np.float64), kind="stable")
    return [int(i) for i in order[:n]]


@dataclasses.dataclass
class NbestEntry:
    """One n-best answer of an example (in memory only, as in the original)."""

    text: str
    start_logit: float
    end_logit: float
    probability: float = 0.0


def postprocess_example(example: QAExample, features: Sequence[QAFeature],
                        results: Mapping[int, Mapping[str, np.ndarray]], settings: QASettings,
                        v2: bool, basic_tokenizer) -> Tuple[str, Optional[float],
                                                            List[NbestEntry]]:
    """The prediction of one example from its features' model outputs (spec 6.5).

    Args:
      example: the example.
      features: its doc-span features (eval featurization).
      results: feature eid -> that feature's outputs (keys as in the docstring of
        ``electra_tf.finetuning.qa``, without the batch dimension). Features without a
        result are ignored.
      settings: n_best_size, max_answer_length, joint_prediction, answerable_classifier.
      v2: SQuAD 2.0 (compute the null odds).
      basic_tokenizer: for ``get_final_text``.

    Returns:
      (prediction text, null odds or None when not ``v2``, n-best list).
    """
    candidates = []  # (score, feature index, start, end, start score, end score)
    score_null = _NULL_SCORE_INIT
    for f_index, feature in enumerate(features):
        result = results.get(feature.eid)
        if result is None:
            continue
        if settings.joint_prediction:
            start_indexes = [int(i) for i in np.asarray(result["start_top_index"]).reshape(-1)]
            end_index_rows = np.asarray(result["end_top_index"])
            start_scores = np.asarray(result["start_top_log_probs"], dtype=np.float64)
            end_scores = np.asarray(result["end_top_log_probs"], dtype=np.float64)
        else:
            start_logits = np.asarray(result["start_logits"], dtype=np.float64)
            end_logits = np.asarray(result["end_logits"], dtype=np.float64)
            start_indexes = _best_indexes(start_logits, settings.n_best_size)
            end_indexes = _best_indexes(end_logits, settings.n_best_size)
        if v2:
            if settings.answerable_classifier:
                feature_null = float(np.asarray(result["answerable_logit"]).reshape(()))
            else:
                feature_null = (float(result["start_logits"][0]) +
                                float(result["end_logits"][0]))
            score_null = min(score_null, feature_null)
        n_tokens = len(feature.tokens)
        for i, start in enumerate(start_indexes):
            ends = ([int(e) for e in end_index_rows[i]] if settings.joint_prediction
                    else end_indexes)
            for j, end in enumerate(ends):
                if start >= n_tokens or end >= n_tokens or start == 0:
                    continue
                if feature.token_to_orig[start] < 0 or feature.token_to_orig[end] < 0:
                    continue
                if not feature.token_is_max_context[start]:
                    continue
                if end < start or end - start + 1 > settings.max_answer_length:
                    continue
                if settings.joint_prediction:
                    s_score, e_score = float(start_scores[i]), float(end_scores[i, j])
                else:
                    s_score, e_score = float(start_logits[start]), float(end_logits[end])
                candidates.append((s_score + e_score, f_index, start, end, s_score, e_score))

    candidates.sort(key=lambda c: c[0], reverse=True)  # stable: ties keep generation order
    nbest: List[NbestEntry] = []
    seen = set()
    for _, f_index, start, end, s_score, e_score in candidates:
        if len(nbest) >= settings.n_best_size:
            break
        feature = features[f_index]
        piece_text = " ".join(feature.tokens[start:end + 1])
        piece_text = " ".join(piece_text.replace(" ##", "").replace("##", "").strip().split())
        words = example.doc_tokens[feature.token_to_orig[start]:feature.token_to_orig[end] + 1]
        text = get_final_text(piece_text, " ".join(words), basic_tokenizer)
        if text in seen:
            continue
        seen.add(text)
        nbest.append(NbestEntry(text, s_score, e_score))
    if not nbest:
        nbest.append(NbestEntry("empty", 0.0, 0.0))

    totals = np.array([e.start_logit + e.end_logit for e in nbest], dtype=np.float64)
    probs = np.exp(totals - totals.max())
    probs /= probs.sum()
    for entry, p in zip(nbest, probs):
        entry.probability = float(p)

    best = next((e for e in nbest if e.text), None)
    if not v2:
        return nbest[0].text, None, nbest
    text = best.text if best is not None else ""
    if settings.answerable_classifier or best is None:
        null_odds = score_null
    else:
        null_odds = score_null - best.start_logit - best.end_logit
    return text, float(null_odds), nbest


def postprocess(examples: Sequence[QAExample],
                features_by_example: Mapping[int, Sequence[QAFeature]],
                results: Mapping[int, Mapping[str, np.ndarray]], settings: QASettings, v2: bool,
                basic_tokenizer, id_key: str = "qas_id"
                ) -> Tuple["collections.OrderedDict[str, str]",
                           "collections.OrderedDict[str, float]", Dict[str, List[NbestEntry]]]:
    """Predictions for every example that has at least one feature result.

    Returns:
      predictions: question id -> answer text.
      null_odds: question id -> null odds (empty unless ``v2``).
      nbest: question id -> n-best entries.
    """
    predictions: "collections.OrderedDict[str, str]" = collections.OrderedDict()
    null_odds: "collections.OrderedDict[str, float]" = collections.OrderedDict()
    nbest_all: Dict[str, List[NbestEntry]] = {}
    missing = 0
    for example in examples:
        features = features_by_example.get(example.eid, [])
        if features and not any(f.eid in results for f in features):
            missing += 1
            continue
        text, odds, nbest = postprocess_example(example, features, results, settings, v2,
                                                basic_tokenizer)
        qid = getattr(example, id_key)
        predictions[qid] = text
        nbest_all[qid] = nbest
        if v2:
            null_odds[qid] = odds
    if missing:
        log.warning("%d examples had no model outputs and get no prediction", missing)
    return predictions, null_odds, nbest_all


def blank_null_predictions(predictions: Mapping[str, str], null_odds: Mapping[str, float],
                           threshold: float) -> "collections.OrderedDict[str, str]":
    """SQuAD 2.0 test output (spec 6.8): the text, or "" where null odds > ``threshold``."""
    return collections.OrderedDict(
        (qid, "" if null_odds.get(qid, -math.inf) > threshold else text)
        for qid, text in predictions.items())


def write_json_atomic(path: str, obj: Any) -> None:
    """Writes JSON to ``path`` atomically (see ``electra_tf.io_utils.write_text_atomic``)."""
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")

