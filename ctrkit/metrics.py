"""Metrics for CTR models (chapter 06): ranking, probability quality and what they mean in money.

Every function takes ``(y_true, p)`` in scikit-learn's order, is vectorised
(numpy; torch tensors are accepted), and raises ``ValueError`` when a metric is
undefined rather than returning ``nan``.

- Ranking: :func:`auc`, :func:`pr_auc`, :func:`gauc` (AUC per user, weighted by
  impressions), :func:`ndcg_at_k`, :func:`precision_recall_f1` at a threshold or at top-k.
- Probability quality: :func:`logloss`, :func:`normalized_entropy` and
  :func:`relative_information_gain` (He et al. 2014; Yi et al. 2013),
  :func:`brier`, :func:`ece` / :func:`mce` with equal-width or equal-mass bins
  (Naeini et al. 2015), :func:`calibration_ratio` (predicted / observed CTR),
  :func:`calibration_slope_intercept` (Cox 1958), :func:`calibration_by_segment`, and on synthetic data
  :func:`true_calibration_error` and :func:`true_logloss` against the true probability.
- Money: :func:`ecpm`, :func:`expected_revenue`, :func:`roas`, :func:`top_k_ctr`.
- The funnel (chapter 08): :func:`funnel_report`, click, post-click conversion and
  click-and-conversion scored each on its own rows.
- Comparing two models on the same rows: :func:`paired_bootstrap` (a confidence
  interval and a p-value for the difference of any metric).

:func:`report` gathers the ones ``ctrkit evaluate`` writes to ``metrics.json``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import rankdata

from ctrkit.errors import DataError  # a metric undefined on the data given is the data's problem

SCHEMES = ("width", "mass")


def _arrays(y_true, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and p have different lengths: {y.size} and {p.size}")
    if y.size == 0:
        raise DataError("no rows to score")
    return y, p


def _group_ids(groups, n: int) -> tuple[np.ndarray, int]:
    """Group labels (any values) as integer ids 0..G-1."""
    groups = np.asarray(groups).ravel()
    if groups.size != n:
        raise ValueError(f"groups has {groups.size} values for {n} rows")
    _, ids = np.unique(groups, return_inverse=True)
    return ids.ravel(), int(ids.max()) + 1


# ---------------------------------------------------------------------------------------------- ranking

def auc(y_true, p) -> float:
    """ROC-AUC: the probability that a random click is scored above a random non-click (ties count half)."""
    y, p = _arrays(y_true, p)
    y = y.astype(bool)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError("AUC is undefined when only one class is present")
    ranks = rankdata(p)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(y_true, p) -> float:
    """Area under the precision-recall curve as average precision: Σ (R_k − R_{k−1}) P_k over thresholds.

    Unlike ROC-AUC it moves with the base rate: a random model scores the CTR, not 0.5.
    """
    y, s = _arrays(y_true, p)
    y = y.astype(bool)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise DataError("PR-AUC is undefined without positives")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # the last row of each tied score
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall_step = np.diff(np.r_[0, tp]) / n_pos
    return float((recall_step * precision).sum())


def gauc(y_true, p, groups, return_counts: bool = False):
    """Group AUC: the AUC within each group (user), averaged with the group's impressions as weights.

    Ads are ranked per request, so what matters is the order *within* a user,
    not across users (Zhou et al. 2018, DIN). Groups with only clicks or only
    non-clicks have no AUC and are skipped; ``return_counts=True`` returns
    ``(gauc, groups_used, groups_skipped)``.
    """
    y, p = _arrays(y_true, p)
    ids, n_groups = _group_ids(groups, y.size)
    order = np.lexsort((p, ids))  # by group, then by score
    g, s, yy = ids[order], p[order], y[order]
    start = np.searchsorted(g, np.arange(n_groups))  # first row of each group
    position = np.arange(y.size) - start[g] + 1  # 1-based rank within the group
    # Tied scores within a group share their average rank.
    new_block = np.r_[True, (g[1:] != g[:-1]) | (s[1:] != s[:-1])]
    block = np.cumsum(new_block) - 1
    first = position[new_block]
    last = np.r_[position[np.flatnonzero(new_block)[1:] - 1], position[-1]]
    rank = ((first + last) / 2)[block]
    n = np.bincount(g, minlength=n_groups).astype(np.float64)
    n_pos = np.bincount(g, weights=yy, minlength=n_groups)
    rank_pos = np.bincount(g, weights=rank * yy, minlength=n_groups)
    both = (n_pos > 0) & (n_pos < n)
    if not both.any():
        raise DataError("GAUC is undefined: no group has both a click and a non-click")
    auc_g = (rank_pos[both] - n_pos[both] * (n_pos[both] + 1) / 2) / (n_pos[both] * (n[both] - n_pos[both]))
    value = float(np.average(auc_g, weights=n[both]))
    return (value, int(both.sum()), int((~both).sum())) if return_counts else value


def _positions(score: np.ndarray, ids: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ordered by group, best score first, earlier rows first among ties; and each one's 0-based position."""
    order = np.lexsort((np.arange(score.size), -score, ids))
    g = ids[order]
    return order, np.arange(score.size) - np.searchsorted(g, np.arange(n_groups))[g]


def top_k_mask(score, k: int, groups=None) -> np.ndarray:
    """True for the ``k`` highest-scored rows (per group when ``groups`` is given; earlier rows win ties)."""
    s = np.asarray(score, dtype=np.float64).ravel()
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    ids, n_groups = _group_ids(np.zeros(s.size, int) if groups is None else groups, s.size)
    order, position = _positions(s, ids, n_groups)
    mask = np.zeros(s.size, bool)
    mask[order[position < k]] = True
    return mask


def ndcg_at_k(y_true, p, groups, k: int = 10) -> float:
    """Mean NDCG@k over groups (e.g. a user's impressions) that have at least one click.

    Within a group, rows are ordered by ``p``; the gain of a click at position
    i (0-based) is 1/log2(i + 2); the ideal order puts every click first.
    """
    y, p = _arrays(y_true, p)
    ids, n_groups = _group_ids(groups, y.size)
    discount = 1.0 / np.log2(np.arange(y.size) + 2.0)

    def dcg(score):
        order, position = _positions(score, ids, n_groups)
        gain = np.where(position < k, y[order] * discount[position], 0.0)
        return np.bincount(ids[order], weights=gain, minlength=n_groups)

    ideal = dcg(y)
    has_click = ideal > 0
    if not has_click.any():
        raise DataError("NDCG is undefined: no group has a click")
    return float((dcg(p)[has_click] / ideal[has_click]).mean())


def precision_recall_f1(y_true, p, threshold: float | None = None, top_k: int | None = None,
                        groups=None) -> dict[str, float]:
    """Precision, recall and F1 of the rows selected by ``p >= threshold`` or by the top ``top_k`` scores.

    With ``groups``, ``top_k`` selects the top-k of each group (the ads served per request).
    """
    y, p = _arrays(y_true, p)
    if (threshold is None) == (top_k is None):
        raise ValueError("give exactly one of threshold= or top_k=")
    selected = p >= threshold if threshold is not None else top_k_mask(p, top_k, groups)
    hits = float(y[selected].sum())
    precision = hits / float(selected.sum()) if selected.any() else 0.0
    recall = hits / float(y.sum()) if y.sum() > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "selected": int(selected.sum())}


# ---------------------------------------------------------------------------------- probability quality

def logloss(y_true, p, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities ``p`` (clipped to [eps, 1 - eps])."""
    y, p = _arrays(y_true, p)
    q = np.clip(p, eps, 1 - eps)
    return float(-(y * np.log(q) + (1 - y) * np.log1p(-q)).mean())


def _entropy(rate: float) -> float:
    if not 0 < rate < 1:
        raise DataError("normalized entropy is undefined when only one class is present")
    return float(-(rate * np.log(rate) + (1 - rate) * np.log1p(-rate)))


def normalized_entropy(y_true, p) -> float:
    """Logloss divided by the entropy of the base rate (He et al. 2014): 1.0 is "always predict the CTR".

    Lower is better; unlike logloss it can be compared across data sets with different CTRs.
    """
    y, p = _arrays(y_true, p)
    return logloss(y, p) / _entropy(y.mean())


def relative_information_gain(y_true, p) -> float:
    """RIG = 1 − normalized entropy: the share of the label's uncertainty the model removes (Yi et al. 2013)."""
    return 1.0 - normalized_entropy(y_true, p)


def brier(y_true, p) -> float:
    """Brier score: the mean squared error of the probabilities."""
    y, p = _arrays(y_true, p)
    return float(((p - y) ** 2).mean())


def calibration_bins(y_true, p, n_bins: int = 15, scheme: str = "mass") -> dict[str, np.ndarray]:
    """The non-empty bins of a reliability diagram: ``mean_p``, ``mean_y``, ``count`` and the ``edges``.

    ``scheme="width"``: ``n_bins`` equal-width bins on [0, 1]; ``"mass"``: edges
    at quantiles of ``p``, so each bin holds about the same number of rows. A
    value on an edge goes to the lower bin (as scikit-learn's ``calibration_curve``).
    """
    y, p = _arrays(y_true, p)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be 'width' or 'mass', got {scheme!r}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if p.min() < 0 or p.max() > 1:
        raise ValueError("p must be probabilities in [0, 1] (apply a sigmoid to logits first)")
    edges = np.linspace(0.0, 1.0, n_bins + 1) if scheme == "width" else np.percentile(p, np.linspace(0, 100, n_bins + 1))
    ids = np.searchsorted(edges[1:-1], p)
    count = np.bincount(ids, minlength=n_bins)
    sum_p = np.bincount(ids, weights=p, minlength=n_bins)
    sum_y = np.bincount(ids, weights=y, minlength=n_bins)
    keep = count > 0
    return {"mean_p": sum_p[keep] / count[keep], "mean_y": sum_y[keep] / count[keep], "count": count[keep],
            "edges": edges}


def ece(y_true, p, n_bins: int = 15, scheme: str = "mass") -> float:
    """Expected calibration error: Σ_b (n_b / N) |mean y_b − mean p_b| over the bins of :func:`calibration_bins`.

    An estimate with two biases: label noise in small bins inflates it, and wide
    bins average miscalibration away. At a low CTR equal-width bins put nearly
    every row in the first bin, so ``"mass"`` is the default (chapter 06).
    """
    b = calibration_bins(y_true, p, n_bins, scheme)
    return float(np.sum(b["count"] * np.abs(b["mean_y"] - b["mean_p"])) / b["count"].sum())


def mce(y_true, p, n_bins: int = 15, scheme: str = "mass") -> float:
    """Maximum calibration error: the largest |mean y_b − mean p_b| over the non-empty bins."""
    b = calibration_bins(y_true, p, n_bins, scheme)
    return float(np.max(np.abs(b["mean_y"] - b["mean_p"])))


def true_calibration_error(p_true, p, n_bins: int = 100, scheme: str = "mass") -> float:
    """ECE against the true click probability instead of the labels (only synthetic data has it).

    The bins are the same, but each bin's truth is the mean of ``p_true``, which
    carries no label noise: a perfectly calibrated ``p`` scores 0 for any bins,
    and finer bins only sharpen the estimate.
    """
    return ece(p_true, p, n_bins, scheme)


def true_logloss(p_true, p, eps: float = 1e-7) -> float:
    """The logloss ``p`` would score in expectation over the labels the truth draws: ``-E[q log p + (1-q) log(1-p)]``
    for true probabilities ``q`` (synthetic data only). Label noise averages out; the truth itself scores lowest."""
    q, p = _arrays(p_true, p)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(q * np.log(p) + (1 - q) * np.log1p(-p)))


def calibration_ratio(y_true, p) -> float:
    """Predicted CTR / observed CTR (Σp / Σy): 1.0 is calibrated on average, 1.5 overpredicts by half."""
    y, p = _arrays(y_true, p)
    if y.sum() == 0:
        raise DataError("the calibration ratio is undefined without clicks")
    return float(p.sum() / y.sum())


def calibration_by_segment(y_true, p, segments, p_true=None) -> pd.DataFrame:
    """Rows, observed and predicted CTR and their ratio per segment (campaign, hour, ...), largest first.

    A model can be calibrated overall and off by tens of percent inside a
    segment it cannot tell apart. With ``p_true`` (synthetic data) the table
    also has the true CTR and the true ratio, free of label noise.
    """
    y, p = _arrays(y_true, p)
    ids, n = _group_ids(segments, y.size)
    rows = np.bincount(ids, minlength=n)
    table = pd.DataFrame({"segment": np.unique(np.asarray(segments).ravel()), "rows": rows,
                          "observed_ctr": np.bincount(ids, weights=y, minlength=n) / rows,
                          "predicted_ctr": np.bincount(ids, weights=p, minlength=n) / rows})
    table["ratio"] = table["predicted_ctr"] / table["observed_ctr"]
    if p_true is not None:
        table["true_ctr"] = np.bincount(ids, weights=np.asarray(p_true, dtype=np.float64).ravel(), minlength=n) / rows
        table["true_ratio"] = table["predicted_ctr"] / table["true_ctr"]
    return table.sort_values("rows", ascending=False, kind="stable").reset_index(drop=True)


def sigmoid(z) -> np.ndarray:
    """Probabilities from logits, the inverse of :func:`logit` (float32 logits give float32 probabilities)."""
    return expit(np.asarray(z))


def logit(p, eps: float = 1e-7) -> np.ndarray:
    """log(p / (1 − p)) of probabilities clipped to [eps, 1 − eps]."""
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(q) - np.log1p(-q)


def logistic_fit(z, y, iterations: int = 100) -> tuple[float, float]:
    """The ``(a, b)`` that minimise the logloss of σ(a·z + b) for targets ``y`` in [0, 1], by Newton's method.

    One piece of code for two ideas: the calibration slope and intercept (the
    fit on test data) and Platt scaling (the fit on validation data, used to map
    scores). Steps are halved until the loss falls, so it converges from the
    identity (a = 1, b = 0) even for badly scaled scores.
    """
    z, y = np.asarray(z, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    X = np.stack([z, np.ones_like(z)], axis=1)  # (N, 2)

    def loss(w):
        s = X @ w
        return np.mean(np.logaddexp(0.0, s) - y * s)

    w = np.array([1.0, 0.0])
    current = loss(w)
    for _ in range(iterations):
        q = expit(X @ w)
        grad = X.T @ (q - y) / len(y)
        hess = (X * (q * (1 - q))[:, None]).T @ X / len(y) + 1e-12 * np.eye(2)
        step, t = np.linalg.solve(hess, grad), 1.0
        while (new := loss(w - t * step)) > current and t > 1e-8:
            t /= 2
        w, current = w - t * step, min(new, current)
        if np.abs(t * step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def calibration_slope_intercept(y_true, p) -> tuple[float, float]:
    """Slope and intercept of the logistic regression of y on logit(p) (Cox 1958).

    A calibrated model has slope 1 and intercept 0; slope < 1 means
    over-confident predictions (too extreme), slope > 1 under-confident ones.
    """
    y, p = _arrays(y_true, p)
    z = logit(p)
    if np.ptp(z) == 0:
        raise DataError("the calibration slope is undefined for a constant prediction")
    return logistic_fit(z, y)


# ---------------------------------------------------------------------------------------------- money

def ecpm(p, bids) -> np.ndarray:
    """Expected revenue per thousand impressions of cost-per-click ads: 1000 × bid × pCTR.

    An auction ranks CPC ads by it, so an overpredicted CTR wins auctions it should lose.
    """
    return 1000.0 * np.asarray(p, dtype=np.float64) * np.asarray(bids, dtype=np.float64)


def expected_revenue(p, bids) -> float:
    """Σ bid × pCTR: the revenue the model expects from showing these CPC ads (compare Σ bid × y)."""
    return float(np.sum(np.asarray(p, dtype=np.float64) * np.asarray(bids, dtype=np.float64)))


def roas(y_true, spend, value_per_click) -> float:
    """Return on ad spend: the value of the clicks bought (Σ value × y) over what they cost (Σ spend)."""
    y = np.asarray(y_true, dtype=np.float64)
    total = float(np.sum(spend))
    if total <= 0:
        raise DataError("ROAS is undefined without spend")
    return float(np.sum(y * np.asarray(value_per_click, dtype=np.float64)) / total)


def top_k_ctr(y_true, score, groups, k: int = 1) -> float:
    """The CTR of the ads served: the top ``k`` rows of each request (group) by ``score`` (e.g. eCPM)."""
    y, score = _arrays(y_true, score)
    return float(y[top_k_mask(score, k, groups)].mean())


# --------------------------------------------------------------------------------------------- comparing models

def paired_bootstrap(y_true, p_a, p_b, metric=auc, n_resamples: int = 1000, level: float = 0.95,
                     seed: int = 0) -> dict[str, float]:
    """``metric(y, p_a) - metric(y, p_b)`` on the same rows, with a paired percentile bootstrap interval.

    Each resample draws rows with replacement and scores both models on the
    same rows, so the luck of which rows the test set holds, shared by the two
    models, cancels in the difference. Returns the difference, the interval
    (``low``, ``high``) at ``level``, and ``p_value``: twice the share of
    resamples on the far side of 0 (two-sided, at least ``1 / n_resamples``).
    """
    y, a = _arrays(y_true, p_a)
    _, b = _arrays(y_true, p_b)
    if not 0 < level < 1 or n_resamples < 1:
        raise ValueError("level must be in (0, 1) and n_resamples positive")
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_resamples)
    for i in range(n_resamples):
        rows = rng.integers(0, y.size, y.size)
        diffs[i] = metric(y[rows], a[rows]) - metric(y[rows], b[rows])
    low, high = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    far_side = min((diffs <= 0).mean(), (diffs >= 0).mean())
    return {"difference": metric(y, a) - metric(y, b), "low": float(low), "high": float(high),
            "p_value": float(max(2 * far_side, 1 / n_resamples))}


# --------------------------------------------------------------------------------------------- report

def report(y_true, p, n_bins: int = 15) -> dict[str, float]:
    """The metrics ``ctrkit evaluate`` writes: ranking, probability quality and calibration of one label.

    A constant prediction has no calibration slope; its ``calibration_slope``
    and ``calibration_intercept`` are ``nan``.
    """
    y, p = _arrays(y_true, p)
    try:
        slope, intercept = calibration_slope_intercept(y, p)
    except ValueError:  # a constant prediction
        slope = intercept = np.nan
    return {
        "auc": auc(y, p), "pr_auc": pr_auc(y, p), "logloss": logloss(y, p), "ne": normalized_entropy(y, p),
        "rig": relative_information_gain(y, p), "brier": brier(y, p),
        "ece": ece(y, p, n_bins, "mass"), "mce": mce(y, p, n_bins, "mass"), "ece_width": ece(y, p, n_bins, "width"),
        "calibration_ratio": calibration_ratio(y, p), "calibration_slope": slope, "calibration_intercept": intercept,
        "mean_p": float(p.mean()), "ctr": float(y.mean()), "rows": int(y.size),
    }


def funnel_report(click, conversion, p_click=None, p_cvr=None, p_ctcvr=None, p_cvr_true=None) -> dict[str, float]:
    """Per-task metrics of a click → conversion model on impressions (chapter 08); leave out what a model lacks.

    ``click`` and ``conversion`` are the impression's labels (a conversion only
    follows a click). ``ctr_*``: pCTR on every impression; ``cvr_*``: the
    post-click pCVR on the clicked impressions (where its label exists), and its
    AUC over every impression (``cvr_auc_all``); ``ctcvr_*``: pCTR·pCVR on every
    impression. With the truth (``p_cvr_true``, synthetic data) ``cvr_true_*`` score
    pCVR against it on every impression, where it is served: the selection bias
    of a model that only saw clicks shows there.
    """
    click, conversion = np.asarray(click).ravel(), np.asarray(conversion).ravel()
    clicked, out = click == 1, {}
    if p_click is not None:
        out |= {"ctr_auc": auc(click, p_click), "ctr_logloss": logloss(click, p_click), "ctr_ece": ece(click, p_click)}
    if p_cvr is not None:
        p_cvr = np.asarray(p_cvr).ravel()
        out |= {"cvr_auc": auc(conversion[clicked], p_cvr[clicked]), "cvr_auc_all": auc(conversion, p_cvr),
                "cvr_logloss": logloss(conversion[clicked], p_cvr[clicked]),
                "cvr_ece": ece(conversion[clicked], p_cvr[clicked])}
        if p_cvr_true is not None:
            out |= {"cvr_true_logloss": true_logloss(p_cvr_true, p_cvr),
                    "cvr_true_ce": true_calibration_error(p_cvr_true, p_cvr),
                    "cvr_mean_ratio": float(p_cvr.mean() / np.mean(p_cvr_true))}
    if p_ctcvr is not None:
        out |= {"ctcvr_auc": auc(conversion, p_ctcvr), "ctcvr_logloss": logloss(conversion, p_ctcvr),
                "ctcvr_ece": ece(conversion, p_ctcvr)}
    return out
