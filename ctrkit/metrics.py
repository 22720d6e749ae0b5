"""Metrics for CTR models (chapter 06 builds on these): ranking quality and probability quality.

All functions take ``(y_true, p)`` in scikit-learn's order and are vectorised.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auc(y_true, p) -> float:
    """ROC-AUC: the probability that a random click is scored above a random non-click (ties count half)."""
    y = np.asarray(y_true).ravel().astype(bool)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC is undefined when only one class is present")
    ranks = rankdata(np.asarray(p, dtype=np.float64).ravel())
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def logloss(y_true, p, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities ``p`` (clipped to [eps, 1 - eps])."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    q = np.clip(np.asarray(p, dtype=np.float64).ravel(), eps, 1 - eps)
    return float(-(y * np.log(q) + (1 - y) * np.log1p(-q)).mean())


def pr_auc(y_true, p) -> float:
    """Area under the precision-recall curve as average precision: Σ (R_k − R_{k−1}) P_k over thresholds.

    Unlike ROC-AUC it moves with the base rate: a random model scores the CTR, not 0.5.
    """
    y = np.asarray(y_true).ravel().astype(bool)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("PR-AUC is undefined without positives")
    s = np.asarray(p, dtype=np.float64).ravel()
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # the last row of each tied score
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall_step = np.diff(np.r_[0, tp]) / n_pos
    return float((recall_step * precision).sum())
