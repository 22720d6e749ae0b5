"""Logged bandit feedback (chapter 09): what the old policy did, what it earned, and how likely it was to do it.

Array names follow the Open Bandit Pipeline (obp) so that a reader can move
between the two: ``action`` (the chosen action of each round), ``reward``,
``pscore`` (the logging policy's probability of that action, its
*propensity*), ``position`` (the slot, for slates), ``action_dist`` (the
evaluated policy's probabilities, shape (n_rounds, n_actions, n_positions))
and ``estimated_rewards_by_reg_model`` (a reward model's estimates, the same
shape). Every check raises :class:`ctrkit.errors.DataError` with one line that
names the array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ctrkit.errors import DataError


@dataclass
class LoggedFeedback:
    """One log of a policy: per round, the action it took, its propensity and the reward (a click or not).

    ``context`` holds whatever described the round (a frame, or None);
    ``position`` the slot the action was shown in (0 when there is one slot).
    """

    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    n_actions: int
    position: np.ndarray | None = None
    n_positions: int = 1
    context: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        self.action = np.asarray(self.action)
        self.reward = np.asarray(self.reward, dtype=np.float64)
        self.pscore = np.asarray(self.pscore, dtype=np.float64)
        self.position = np.zeros(len(self.action), dtype=np.int64) if self.position is None else np.asarray(self.position)

    def __len__(self) -> int:
        return len(self.action)

    @property
    def kwargs(self) -> dict:
        """The arrays the estimators take, by their obp names: ``dr(**log.kwargs, action_dist=..., ...)``."""
        return {"reward": self.reward, "action": self.action, "pscore": self.pscore, "position": self.position}

    def validate(self) -> LoggedFeedback:
        """Check lengths, action and position ids, propensities and rewards; the log itself, or a DataError."""
        check_feedback(self.reward, self.action, self.pscore, self.position, self.n_actions, self.n_positions)
        if self.context is not None and len(self.context) != len(self):
            raise DataError(f"context has {len(self.context)} rows for {len(self)} rounds")
        return self


def check_feedback(reward, action, pscore=None, position=None, n_actions: int | None = None,
                   n_positions: int | None = None) -> None:
    """The checks every estimator runs on the logged arrays; a DataError naming the first array that fails."""
    n = len(action)
    if n == 0:
        raise DataError("the log is empty: action has no rounds")
    for name, values in (("reward", reward), ("pscore", pscore), ("position", position)):
        if values is not None and len(values) != n:
            raise DataError(f"{name} has {len(values)} rounds, action has {n}")
    if not np.issubdtype(np.asarray(action).dtype, np.integer):
        raise DataError(f"action must hold integer action ids, got dtype {np.asarray(action).dtype}")
    if action.min() < 0 or (n_actions is not None and action.max() >= n_actions):
        raise DataError(f"action ids must lie in [0, {n_actions}), got {action.min()} to {action.max()}")
    if position is not None and (position.min() < 0 or (n_positions is not None and position.max() >= n_positions)):
        raise DataError(f"position ids must lie in [0, {n_positions}), got {position.min()} to {position.max()}")
    if not np.all(np.isfinite(reward)):
        raise DataError("reward has missing or infinite values")
    if pscore is not None and not np.all((pscore > 0) & (pscore <= 1)):
        bad = np.flatnonzero(~((pscore > 0) & (pscore <= 1)))
        raise DataError(f"pscore must lie in (0, 1]: round {bad[0]} has {pscore[bad[0]]} ({bad.size} such rounds)")


def check_action_array(values: np.ndarray, name: str, n_rounds: int, n_actions: int | None = None,
                       n_positions: int | None = None) -> None:
    """An (n_rounds, n_actions, n_positions) array: the right shape, finite."""
    if values.ndim != 3:
        raise DataError(f"{name} must have shape (n_rounds, n_actions, n_positions), got {values.shape}")
    expected = (n_rounds, n_actions or values.shape[1], n_positions or values.shape[2])
    if values.shape != expected:
        raise DataError(f"{name} has shape {values.shape}, expected {expected}")
    if not np.all(np.isfinite(values)):
        raise DataError(f"{name} has missing or infinite values")


def check_action_dist(action_dist: np.ndarray, n_rounds: int) -> None:
    """A policy: probabilities in [0, 1] that sum to 1 over actions in every round and position."""
    check_action_array(action_dist, "action_dist", n_rounds)
    if action_dist.min() < 0 or action_dist.max() > 1:
        raise DataError("action_dist must hold probabilities in [0, 1]")
    sums = action_dist.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        i, p = np.unravel_index(np.argmax(np.abs(sums - 1)), sums.shape)
        raise DataError(f"action_dist must sum to 1 over actions: round {i}, position {p} sums to {sums[i, p]:.6f}")
