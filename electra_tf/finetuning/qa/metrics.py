"""QA metrics, as the official SQuAD v1.1 / v2.0 and MRQA evaluation scripts compute them."""

from __future__ import annotations

import collections
import re
import string
from typing import Dict, Mapping, Sequence, Tuple

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, drop the words a/an/the, collapse whitespace."""
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    text = _ARTICLES_RE.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> int:
    """1 if both normalise to the same string, else 0."""
    return int(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str, v2: bool = False) -> float:
    """F1 of the bags of normalised tokens.

    v1 / MRQA: no common token (including both empty) gives 0. v2: when either side is
    empty, 1 if both are empty else 0.
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if v2 and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _max_over_gold(fn, prediction: str, golds: Sequence[str]) -> float:
    return max(fn(prediction, g) for g in golds) if golds else 0.0


def _em_f1(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str],
           count_missing: bool) -> Dict[str, float]:
    """``exact_match``, ``f1`` (x100) summed over the gold questions that have a prediction
    and averaged over those (or over every gold question when ``count_missing``)."""
    em = f1 = 0.0
    answered = 0
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        answered += 1
        em += _max_over_gold(exact_match, predictions[qid], answers)
        f1 += _max_over_gold(token_f1, predictions[qid], answers)
    total = len(gold) if count_missing else answered
    return {"exact_match": 100.0 * em / total if total else 0.0,
            "f1": 100.0 * f1 / total if total else 0.0}


def squad_v1_metrics(gold: Mapping[str, Sequence[str]],
                     predictions: Mapping[str, str]) -> Dict[str, float]:
    """SQuAD 1.1: ``exact_match``, ``f1`` (x100) over every gold question; a missing
    prediction scores 0."""
    return _em_f1(gold, predictions, count_missing=True)


def mrqa_metrics(gold: Mapping[str, Sequence[str]],
                 predictions: Mapping[str, str]) -> Dict[str, float]:
    """MRQA: ``exact_match``, ``f1`` (x100) over the questions that have a prediction."""
    return _em_f1(gold, predictions, count_missing=False)


def _best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float],
                    na_probs: Mapping[str, float],
                    has_answer: Mapping[str, bool]) -> Tuple[float, float]:
    """Best score (x100) over thresholds on the null odds, and that threshold.

    Starts from "everything unanswerable" (score = number of unanswerable questions,
    threshold 0.0) and lowers the null-odds cut one question at a time (ascending odds),
    keeping the first strict improvement.
    """
    current = float(sum(1 for v in has_answer.values() if not v))
    best, best_thresh = current, 0.0
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_thresh = current, na_probs[qid]
    return (100.0 * best / len(scores) if scores else 0.0), float(best_thresh)


def squad_v2_metrics(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str],
                     na_probs: Mapping[str, float], na_prob_thresh: float) -> Dict[str, float]:
    """SQuAD 2.0 metrics (official v2 script behaviour).

    Gold answers that normalise to "" are dropped; none left means "no answer" (gold [""]).
    A question is predicted unanswerable when its null odds > ``na_prob_thresh``; questions
    without a prediction are left out. Keys: exact, f1, total, HasAns_*, NoAns_*,
    best_exact, best_exact_thresh, best_f1, best_f1_thresh (scores x100).
    """
    has_answer = {qid: bool(answers) for qid, answers in gold.items()}
    raw_exact: Dict[str, float] = {}
    raw_f1: Dict[str, float] = {}
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        golds = [a for a in answers if normalize_answer(a)] or [""]
        pred = predictions[qid]
        raw_exact[qid] = float(max(exact_match(pred, g) for g in golds))
        raw_f1[qid] = max(token_f1(pred, g, v2=True) for g in golds)

    def thresholded(raw):
        out = {}
        for qid, score in raw.items():
            predicted_null = na_probs.get(qid, 0.0) > na_prob_thresh
            out[qid] = float(not has_answer[qid]) if predicted_null else score
        return out

    exact = thresholded(raw_exact)
    f1 = thresholded(raw_f1)

    def summary(qids):
        n = len(qids)
        return {"exact": 100.0 * sum(exact[q] for q in qids) / n if n else 0.0,
                "f1": 100.0 * sum(f1[q] for q in qids) / n if n else 0.0,
                "total": float(n)}

    metrics = summary(list(exact))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [q for q in exact if has_answer[q] == wanted]
        if any(v == wanted for v in has_answer.values()):
            for key, value in summary(qids).items():
                metrics["%s_%s" % (prefix, key)] = value
    probs = {q: na_probs.get(q, 0.0) for q in predictions if q in gold}
    metrics["best_exact"], metrics["best_exact_thresh"] = _best_threshold(
        predictions, raw_exact, probs, has_answer)
    metrics["best_f1"], metrics["best_f1_thresh"] = _best_threshold(
        predictions, raw_f1, probs, has_answer)
    return metrics

