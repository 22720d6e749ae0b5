"""Reward models for DM and DR, fitted with K-fold cross-fitting (chapter 09).

A reward model estimates q̂(x, a), the click probability of every action in
every round, from the logged rounds alone. Fitted and evaluated on the same
rounds it would share their noise with the IPS correction of DR; cross-fitting
estimates each round with a model that never saw it.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ctrkit.errors import DataError


def cross_fit(fit: Callable[[np.ndarray], Any], predict: Callable[[Any, np.ndarray], np.ndarray], n_rounds: int,
              n_folds: int = 3, random_state: int | None = 0) -> np.ndarray:
    """Out-of-fold reward estimates, one per round: ``fit(train_rounds)`` returns a model and
    ``predict(model, rounds)`` its estimates for those rounds, shape (len(rounds), n_actions, n_positions).

    ``fit`` and ``predict`` take arrays of round indices, so any model fits: a
    ctrkit CTR model, scikit-learn, a lookup table. Rounds are assigned to
    ``n_folds`` folds at random (``random_state``).
    """
    if not 2 <= n_folds <= n_rounds:
        raise DataError(f"n_folds must lie between 2 and the number of rounds ({n_rounds}), got {n_folds}")
    folds = np.random.default_rng(random_state).permutation(n_rounds) % n_folds
    out = None
    for k in range(n_folds):
        held = np.flatnonzero(folds == k)
        estimates = np.asarray(predict(fit(np.flatnonzero(folds != k)), held), dtype=np.float64)
        if estimates.shape[0] != held.size:
            raise DataError(f"predict returned {estimates.shape[0]} rows for {held.size} rounds")
        if out is None:
            out = np.empty((n_rounds, *estimates.shape[1:]))
        out[held] = estimates
    return out
