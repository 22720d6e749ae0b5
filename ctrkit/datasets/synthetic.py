"""The synthetic Criteo twin: Criteo's columns and marginals, plus the ground truth.

Real logs never say how likely a click really was. This generator does: every
row carries ``p_click``, the true click probability, so chapters can measure
the Bayes-optimal AUC and logloss, the true calibration error, and whether an
attribution method recovers the real feature effects. Chapter 01 documents the
model; in short, the true log-odds of a click is

    logit = b0                                   (solved so the mean CTR is ``base_rate``)
          + sum_f  a_f[C_f]                      (main effects of 12 categorical fields)
          + sum_k  g_k(z_k)                      (7 count fields: w_k * tanh(z_k), z = scaled log count,
                                                  and -0.1 when the count is missing)
          + sum_(f,g) <u_f[C_f], v_g[C_g]>       (4 categorical x categorical interactions, rank 4)
          + sum_(f,k) s_f[C_f] * z_k             (3 categorical x numeric interactions)
          + 0.35 * sin(2 pi (hour - 14) / 24)    (time of day: clicks peak at 20:00)
          + u[user_id]                           (a per-user intercept, unobserved)

and ``p_click = sigmoid(logit)``. Conversions happen only after a click, with
their own true probability ``p_conversion``. The structure below (which fields
matter, which pairs interact) is fixed; the effect values are drawn from the seed.
:func:`synthetic_truth` gives each field's share of the true logit, row by row
(chapter 07 checks attribution methods against it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from ctrkit.datasets.criteo import DENSE, LABEL, SPARSE
from ctrkit.metrics import auc, logloss

SYNTHETIC_LABELS = (LABEL, "conversion")  # the twin's label columns; ``ctrkit prepare`` keeps both

# Cardinality of each categorical field (C1..C26): Criteo's, capped to 10..100k.
CARDINALITY = dict(zip(SPARSE, [
    1000, 500, 100_000, 50_000, 300, 24, 10_000, 600, 10, 30_000, 5_000, 100_000, 3_000,
    27, 10_000, 80_000, 10, 5_000, 2_000, 10, 100_000, 18, 15, 20_000, 100, 20_000,
]))
# Missing rate of each field, close to the real data's.
MISSING = dict(zip(DENSE + SPARSE, [
    0.45, 0.0, 0.21, 0.22, 0.03, 0.22, 0.04, 0.001, 0.04, 0.45, 0.04, 0.77, 0.22,
    0.0, 0.0, 0.03, 0.03, 0.0, 0.12, 0.0, 0.0, 0.0, 0.0, 0.0, 0.03, 0.0, 0.0, 0.0, 0.03, 0.0, 0.0,
    0.44, 0.44, 0.03, 0.76, 0.0, 0.03, 0.44, 0.44,
]))
# Log-normal count model per dense field: (mean of log(1 + count), spread).
COUNT_LOGNORMAL = dict(zip(DENSE, [
    (0.8, 1.2), (2.0, 1.6), (2.3, 1.2), (1.9, 0.9), (7.5, 2.0), (3.5, 1.8), (1.8, 1.3),
    (2.6, 1.0), (3.9, 1.3), (0.4, 0.6), (1.4, 1.0), (0.3, 0.8), (2.0, 1.0),
]))
# Standard deviation (in log-odds) of each categorical main effect.
MAIN_CAT = {"C1": 0.35, "C2": 0.3, "C3": 0.25, "C5": 0.3, "C6": 0.4, "C8": 0.2,
            "C11": 0.25, "C14": 0.45, "C17": 0.5, "C20": 0.3, "C23": 0.35, "C26": 0.2}
# Slope (in log-odds per standard deviation of z) of each dense main effect.
MAIN_DENSE = {"I1": 0.3, "I3": -0.2, "I5": -0.35, "I6": 0.25, "I7": 0.3, "I11": 0.35, "I13": -0.2}
# Categorical x categorical interactions: (field, field, scale); rank-4 factors.
CAT_CAT = [("C1", "C9", 0.3), ("C6", "C14", 0.33), ("C17", "C20", 0.36), ("C3", "C23", 0.24)]
# Categorical x numeric interactions: the slope of z_k depends on the category.
CAT_NUM = [("C9", "I3", 0.28), ("C22", "I7", 0.25), ("C25", "I11", 0.21)]
USER_EFFECT_SD = 0.3
HOURLY_AMPLITUDE = 0.35
_RANK = 4
_MAX_USERS = 1_000_000
_ZIPF_EXPONENT = 1.1
START = pd.Timestamp("2026-01-05")  # a Monday


@dataclass
class _World:
    """Everything drawn from the seed that does not depend on the number of rows."""

    vocab: dict[str, np.ndarray]                 # field -> hex strings, most frequent first
    zipf_p: dict[str, np.ndarray]                 # field -> value probabilities
    main: dict[str, np.ndarray]                   # field -> effect per value
    factors: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]
    slopes: dict[tuple[str, str], np.ndarray]
    user: np.ndarray
    conv: dict[str, np.ndarray] = field(default_factory=dict)


def _make_world(seed: int) -> _World:
    rng = np.random.default_rng([seed, 0])
    vocab, zipf_p, main, factors, slopes = {}, {}, {}, {}, {}
    for f in SPARSE:
        k = CARDINALITY[f]
        codes = np.unique(rng.integers(0, 2**32, size=2 * k, dtype=np.uint64))
        codes = rng.permutation(codes)[:k]
        vocab[f] = np.array([f"{c:08x}" for c in codes.tolist()], dtype=object)
        p = 1.0 / (np.arange(1, k + 1) + 2.0) ** _ZIPF_EXPONENT
        zipf_p[f] = p / p.sum()
    for f, sd in MAIN_CAT.items():
        main[f] = rng.normal(0, sd, CARDINALITY[f])
    for a, b, scale in CAT_CAT:
        u = rng.normal(0, 1, (CARDINALITY[a], _RANK))
        v = rng.normal(0, 1, (CARDINALITY[b], _RANK))
        factors[(a, b)] = (u * np.sqrt(scale / np.sqrt(_RANK)), v * np.sqrt(scale / np.sqrt(_RANK)))
    for f, k, scale in CAT_NUM:
        slopes[(f, k)] = rng.normal(0, scale, CARDINALITY[f])
    user = rng.normal(0, USER_EFFECT_SD, _MAX_USERS)
    conv = {"C5": rng.normal(0, 0.6, CARDINALITY["C5"]), "C23": rng.normal(0, 0.4, CARDINALITY["C23"])}
    return _World(vocab, zipf_p, main, factors, slopes, user, conv)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _solve_intercept(logit: np.ndarray, target: float, weight: np.ndarray | None = None) -> float:
    """The b0 with a (weighted) mean of sigmoid(logit + b0) equal to ``target``, by Newton's method."""
    b0 = np.log(target / (1 - target)) - np.average(logit, weights=weight)
    for _ in range(50):
        p = _sigmoid(logit + b0)
        step = (np.average(p, weights=weight) - target) / np.average(p * (1 - p), weights=weight)
        b0 -= step
        if abs(step) < 1e-10:
            break
    return float(b0)


def _scaled_log(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """Standardised signed log count; the scale the true effects are written in (0 if missing)."""
    z = (np.sign(x) * np.log1p(np.abs(x)) - mu) / sigma
    return np.nan_to_num(z, nan=0.0)


def _components(world: _World, codes: dict[str, np.ndarray], dense: dict[str, np.ndarray],
                hour: np.ndarray, user_id: np.ndarray) -> dict[str, np.ndarray]:
    """Each term of the true logit, by name; codes are value ranks (-1 = missing)."""
    def lookup(table, f):
        c = codes[f]
        return np.where(c >= 0, table[np.maximum(c, 0)], 0.0)

    z = {k: _scaled_log(dense[k], *COUNT_LOGNORMAL[k]) for k in DENSE}
    parts = {f: lookup(world.main[f], f) for f in MAIN_CAT}
    for k, w in MAIN_DENSE.items():
        parts[k] = w * np.tanh(z[k]) + np.where(np.isnan(dense[k]), -0.1, 0.0)
    for (a, b), (u, v) in world.factors.items():
        ua = np.where(codes[a][:, None] >= 0, u[np.maximum(codes[a], 0)], 0.0)
        vb = np.where(codes[b][:, None] >= 0, v[np.maximum(codes[b], 0)], 0.0)
        parts[f"{a}x{b}"] = (ua * vb).sum(axis=1)
    for (f, k), s in world.slopes.items():
        parts[f"{f}x{k}"] = lookup(s, f) * z[k]
    parts["hour"] = HOURLY_AMPLITUDE * np.sin(2 * np.pi * (hour - 14) / 24)
    parts["user"] = world.user[user_id]
    return parts


def synthetic_criteo(
    n_rows: int,
    seed: int = 0,
    *,
    base_rate: float = 0.25,
    n_days: int = 7,
    conversion_rate: float = 0.1,
) -> pd.DataFrame:
    """Generate a Criteo-like click log with its ground truth. Chapter 01.

    Columns: ``click, I1..I13, C1..C26`` as in a Criteo file, plus ``p_click``
    (true click probability), ``user_id``, ``ts`` (timestamp; rows are in time
    order), ``conversion`` and ``p_conversion`` (the true probability of a
    conversion given a click; conversions only follow clicks). ``base_rate`` is
    the mean CTR (Criteo's training set: about 0.256); ``conversion_rate`` the
    mean post-click conversion rate. Deterministic for a given seed.
    """
    if n_rows < 1:
        raise ValueError(f"n_rows must be positive, got {n_rows}")
    if not 0 < base_rate < 1 or not 0 < conversion_rate < 1:
        raise ValueError("base_rate and conversion_rate must lie strictly between 0 and 1")
    world = _make_world(seed)
    rng = np.random.default_rng([seed, 1])

    # Time: a daily traffic cycle (busiest in the evening), rows in time order.
    hour_weight = 1 + 0.6 * np.sin(2 * np.pi * (np.arange(24) - 14) / 24)
    day = rng.integers(0, n_days, n_rows)
    hour = rng.choice(24, n_rows, p=hour_weight / hour_weight.sum())
    seconds = np.sort(day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, n_rows))
    hour = (seconds // 3_600) % 24
    ts = START + pd.to_timedelta(seconds, unit="s")
    n_users = min(_MAX_USERS, max(100, n_rows // 8))
    user_p = 1.0 / np.arange(1, n_users + 1) ** 0.9
    user_id = rng.choice(n_users, n_rows, p=user_p / user_p.sum())

    # Counts: log-normal, correlated through a per-row activity level; I2 also goes negative.
    activity = rng.normal(0, 1, n_rows)
    dense = {}
    for k, (mu, sigma) in COUNT_LOGNORMAL.items():
        log_count = mu + sigma * (0.5 * activity + np.sqrt(0.75) * rng.normal(0, 1, n_rows))
        x = np.floor(np.expm1(np.maximum(log_count, 0.0)))
        if k == "I2":
            x = np.where(rng.random(n_rows) < 0.1, -rng.geometric(0.7, n_rows), x)
        x[rng.random(n_rows) < MISSING[k]] = np.nan
        dense[k] = x

    codes = {}
    for f in SPARSE:
        c = rng.choice(CARDINALITY[f], n_rows, p=world.zipf_p[f])
        c[rng.random(n_rows) < MISSING[f]] = -1
        codes[f] = c

    logit = sum(_components(world, codes, dense, hour, user_id).values())
    logit = logit + _solve_intercept(logit, base_rate)
    p_click = _sigmoid(logit)
    label = (rng.random(n_rows) < p_click).astype(np.int8)

    conv_logit = (0.4 * np.tanh(_scaled_log(dense["I5"], *COUNT_LOGNORMAL["I5"]))
                  + np.where(codes["C5"] >= 0, world.conv["C5"][np.maximum(codes["C5"], 0)], 0)
                  + np.where(codes["C23"] >= 0, world.conv["C23"][np.maximum(codes["C23"], 0)], 0)
                  + 0.5 * logit)  # users who are likelier to click are likelier to buy
    p_conversion = _sigmoid(conv_logit + _solve_intercept(conv_logit, conversion_rate, weight=p_click))
    conversion = (label == 1) & (rng.random(n_rows) < p_conversion)

    columns = {LABEL: label, **dense}
    for f in SPARSE:
        strings = pa.array(world.vocab[f], type=pa.string()).take(pa.array(codes[f], mask=codes[f] < 0))
        columns[f] = pd.Series(pd.arrays.ArrowStringArray(strings), dtype=pd.StringDtype("pyarrow"))
    columns.update(p_click=p_click, user_id=user_id.astype(np.int64), ts=ts,
                   conversion=conversion.astype(np.int8), p_conversion=p_conversion)
    return pd.DataFrame(columns)


def bayes_optimal_metrics(df: pd.DataFrame, label: str = LABEL, p: str = "p_click") -> dict[str, float]:
    """The best any model could do on these rows: metrics of the true probability. Chapter 01.

    ``auc`` and ``logloss`` score ``p_click`` against the realised labels;
    ``expected_logloss`` is the mean binary entropy of ``p_click`` (the logloss
    the truth scores on average over label draws, without their noise).
    """
    y = df[label].to_numpy()
    q = df[p].to_numpy(dtype=np.float64)
    qc = np.clip(q, 1e-12, 1 - 1e-12)
    return {
        "auc": auc(y, q),
        "logloss": logloss(y, q),
        "expected_logloss": float(-(qc * np.log(qc) + (1 - qc) * np.log(1 - qc)).mean()),
        "base_rate": float(y.mean()),
    }


@dataclass
class SyntheticTruth:
    """The true effect of each field on rows of the twin (:func:`synthetic_truth`). Chapter 07."""

    contributions: pd.DataFrame  # (N, 39): each field's share of the true logit, centred over the rows
    effects: pd.Series  # mean |contribution| per field, largest first; 0 for fields without an effect
    pairs: list[tuple[str, str]]  # the truly interacting pairs: categorical x categorical, then categorical x numeric
    unobserved: pd.DataFrame  # the hour-of-day and per-user terms: in the logit, but in no field


def synthetic_truth(seed: int = 0, rows: pd.DataFrame | None = None, n_rows: int = 100_000) -> SyntheticTruth:
    """Each field's share of the true click logit on ``rows`` of ``synthetic_criteo(..., seed=seed)``. Chapter 07.

    A field's share is its main effect plus half of each interaction it takes
    part in (how Shapley values split a product of two fields), centred so that
    it averages 0 over ``rows``. The shares plus the unobserved terms add up to
    the true logit minus a constant: a ground truth for per-field attributions.
    Without ``rows``, the truth is measured on ``n_rows`` fresh rows of the seed's world.
    """
    if rows is None:
        rows = synthetic_criteo(n_rows, seed=seed)
    world = _make_world(seed)
    codes = {f: pd.Index(world.vocab[f]).get_indexer(rows[f].astype(object).where(rows[f].notna(), None))
             for f in SPARSE}  # value ranks, -1 where missing
    dense = {k: rows[k].to_numpy(dtype=np.float64, na_value=np.nan) for k in DENSE}
    hour = rows["ts"].dt.hour.to_numpy()
    parts = _components(world, codes, dense, hour, rows["user_id"].to_numpy())
    share = {f: np.zeros(len(rows)) for f in DENSE + SPARSE}
    for name, values in parts.items():
        if name in share:
            share[name] += values
        elif "x" in name:
            a, b = name.split("x")
            share[a] += values / 2
            share[b] += values / 2
    contributions = pd.DataFrame(share, index=rows.index)
    contributions -= contributions.mean()
    effects = contributions.abs().mean().sort_values(ascending=False, kind="stable")
    pairs = [(a, b) for a, b, _ in CAT_CAT] + [(f, k) for f, k, _ in CAT_NUM]
    unobserved = pd.DataFrame({"hour": parts["hour"], "user": parts["user"]}, index=rows.index)
    return SyntheticTruth(contributions, effects, pairs, unobserved)
