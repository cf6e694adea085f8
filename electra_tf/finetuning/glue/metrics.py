"""Sentence-level evaluation metrics in plain numpy (spec 6.4 scorers).

Every function takes two 1-D array-likes of the same length N and returns a Python float
on the natural scale (accuracy 0..1, correlations -1..1); the scorers in ``scoring.py`` apply
the x100 convention. The semantics follow the libraries the original calls:

* :func:`matthews_corrcoef` -- ``sklearn.metrics.matthews_corrcoef`` (multi-class form,
  0.0 when undefined, e.g. a constant prediction).
* :func:`binary_f1` -- ``sklearn.metrics.f1_score(average="binary")`` (0.0 when there is
  no positive in either the labels or the predictions).
* :func:`pearson` / :func:`spearman` -- ``scipy.stats.pearsonr`` / ``spearmanr`` (NaN
  when an input is constant; Spearman ranks ties by their average rank).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def _pair(y_true, y_pred, min_size: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """Validates two 1-D inputs [N] of equal length with at least ``min_size`` entries."""
    a = np.asarray(y_true)
    b = np.asarray(y_pred)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"expected 1-D inputs, got shapes {a.shape} and {b.shape}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"inputs differ in length: {a.shape[0]} vs {b.shape[0]}")
    if a.shape[0] < min_size:
        raise ValueError(f"need at least {min_size} value(s), got {a.shape[0]}")
    return a, b


def accuracy(y_true, y_pred) -> float:
    """Fraction of positions where ``y_true == y_pred``.

    Args:
      y_true, y_pred: [N] labels (any comparable dtype), N >= 1.
    """
    a, b = _pair(y_true, y_pred)
    return float(np.mean(a == b))


def confusion_matrix(y_true, y_pred) -> Tuple[np.ndarray, np.ndarray]:
    """Confusion matrix over the sorted union of the labels seen in either input.

    Args:
      y_true, y_pred: [N] labels.
    Returns:
      (labels [K], counts [K, K] int64) with ``counts[i, j]`` = #(true = labels[i],
      predicted = labels[j]).
    """
    a, b = _pair(y_true, y_pred)
    labels, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    inverse = inverse.reshape(-1)
    k = labels.shape[0]
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (inverse[:a.shape[0]], inverse[a.shape[0]:]), 1)
    return labels, counts


def matthews_corrcoef(y_true, y_pred) -> float:
    """Matthews correlation coefficient with sklearn's semantics.

    Uses the multi-class (Gorodkin) form on the confusion matrix C [K, K]:
    ``(c*s - t.p) / sqrt((s^2 - p.p) (s^2 - t.t))`` with t = true counts, p = predicted
    counts, c = trace(C), s = N; returns 0.0 when the denominator is 0 (a constant
    prediction or a single true class), as sklearn does.

    Args:
      y_true, y_pred: [N] labels, N >= 1.
    """
    _, cm = confusion_matrix(y_true, y_pred)
    cm = cm.astype(np.float64)
    t_sum = cm.sum(axis=1)
    p_sum = cm.sum(axis=0)
    n_correct = np.trace(cm)
    n = cm.sum()
    cov_ytyp = n_correct * n - np.dot(t_sum, p_sum)
    cov_ypyp = n * n - np.dot(p_sum, p_sum)
    cov_ytyt = n * n - np.dot(t_sum, t_sum)
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return float(cov_ytyp / np.sqrt(cov_ytyt * cov_ypyp))


def binary_f1(y_true, y_pred, pos_label=1) -> float:
    """F1 of the ``pos_label`` class: ``2 tp / (2 tp + fp + fn)``; 0.0 when that is 0/0.

    Args:
      y_true, y_pred: [N] labels, N >= 1.
      pos_label: the positive class.
    """
    a, b = _pair(y_true, y_pred)
    true_pos = a == pos_label
    pred_pos = b == pos_label
    tp = float(np.sum(true_pos & pred_pos))
    fp = float(np.sum(~true_pos & pred_pos))
    fn = float(np.sum(true_pos & ~pred_pos))
    denom = 2.0 * tp + fp + fn
    return 0.0 if denom == 0 else 2.0 * tp / denom


def pearson(x, y) -> float:
    """Pearson correlation r of two [N] real vectors (N >= 2); NaN if either is constant."""
    a, b = _pair(x, y, min_size=2)
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    am = a - a.mean()
    bm = b - b.mean()
    denom = np.sqrt(np.dot(am, am) * np.dot(bm, bm))
    if denom == 0 or not np.isfinite(denom):
        return float("nan")
    r = float(np.dot(am, bm) / denom)
    return max(-1.0, min(1.0, r))  # scipy clips rounding overshoot the same way


def average_ranks(x) -> np.ndarray:
    """1-based ranks of a [N] vector, tied values sharing their average rank.

    Returns:
      [N] float64 (``scipy.stats.rankdata(x, method="average")``).
    """
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"expected a 1-D input, got shape {a.shape}")
    n = a.shape[0]
    if n == 0:
        return np.zeros((0,), dtype=np.float64)
    order = np.argsort(a, kind="mergesort")
    sorted_vals = a[order]
    # Start index of each run of equal values in sorted order.
    new_run = np.concatenate([[True], sorted_vals[1:] != sorted_vals[:-1]])
    starts = np.flatnonzero(new_run)
    ends = np.concatenate([starts[1:], [n]])  # exclusive
    run_rank = (starts + 1 + ends) / 2.0  # mean of 1-based positions starts+1 .. ends
    run_id = np.cumsum(new_run) - 1
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = run_rank[run_id]
    return ranks


def spearman(x, y) -> float:
    """Spearman rank correlation rho: Pearson r of the average ranks (N >= 2)."""
    a, b = _pair(x, y, min_size=2)
    return pearson(average_ranks(a), average_ranks(b))


def mse(y_true, y_pred) -> float:
    """Mean squared error of two [N] real vectors (N >= 1)."""
    a, b = _pair(y_true, y_pred)
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(diff * diff))
