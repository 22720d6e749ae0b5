"""Train / validation / test splits: random, or by time (chapter 01).

A random split assigns each row by a hash of its position, so streaming a file
chunk by chunk gives exactly the same split as reading it whole. A time split
trains on the past and tests on the future, as a model in production is used;
without a timestamp column it uses file order (Criteo's ``train.txt`` is in time
order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


def _check_fractions(fractions: tuple[float, float, float]) -> np.ndarray:
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or (f < 0).any() or not np.isclose(f.sum(), 1.0) or f[0] == 0:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1 with a non-empty train part, got {fractions}")
    return np.cumsum(f)[:2]


def row_uniform(index: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) for each row index: the splitmix64 hash of (index, seed)."""
    with np.errstate(over="ignore"):
        z = np.asarray(index, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def split_codes(
    positions: np.ndarray,
    how: str = "random",
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    n_total: int | None = None,
) -> np.ndarray:
    """0 (train), 1 (val) or 2 (test) for rows at these positions (in time order for ``how="time"``).

    ``n_total`` (the number of rows in all) is needed for a time split.
    """
    bounds = _check_fractions(fractions)
    positions = np.asarray(positions)
    if how == "random":
        u = row_uniform(positions, seed)
    elif how == "time":
        if n_total is None:
            raise ValueError("a time split needs n_total, the number of rows in all")
        u = (positions + 0.5) / n_total
    else:
        raise ValueError(f"unknown split {how!r}; use 'random' or 'time'")
    return np.searchsorted(bounds, u, side="right").astype(np.int8)


def split(
    df: pd.DataFrame,
    how: str = "random",
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    time_col: str = "ts",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split a frame into (train, val, test). Chapter 01.

    ``how="time"`` orders rows by ``time_col`` when the frame has it (file
    order otherwise) and cuts the sequence, so validation and test lie in the
    future of training. The index is reset in each part.
    """
    n = len(df)
    if how == "time" and time_col in df.columns:
        order = np.argsort(df[time_col].to_numpy(), kind="stable")
        positions = np.empty(n, dtype=np.int64)
        positions[order] = np.arange(n)
    else:
        positions = np.arange(n)
    codes = split_codes(positions, how, fractions, seed, n_total=n)
    parts = []
    for i in range(3):
        rows = np.flatnonzero(codes == i)
        if how == "time":
            rows = rows[np.argsort(positions[rows], kind="stable")]
        parts.append(df.iloc[rows].reset_index(drop=True))
    return tuple(parts)
