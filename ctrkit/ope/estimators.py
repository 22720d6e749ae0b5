"""Off-policy estimators (chapter 09): the value of a policy that never ran, from the logs of one that did.

Each estimator is a plain function over arrays that returns the estimate, a
float: the mean reward per round the evaluated policy would have earned on
the logged rounds. Names and arguments follow the Open Bandit Pipeline (obp,
``obp.ope``), and each one computes what obp's class of the same estimator
computes, so their figures agree to rounding:

- :func:`dm` (direct method): a reward model's estimates averaged over the
  evaluated policy's actions. Biased when the model is wrong.
- :func:`ips` (inverse propensity scoring): the logged reward times the
  importance weight w = π_e(a|x) / π_b(a|x). Unbiased with true propensities;
  its variance grows with the weights. ``clip`` caps them (a bias for less variance).
- :func:`snips`: IPS divided by the mean weight (self-normalised).
- :func:`dr` (doubly robust): DM plus IPS applied to the reward model's error.
  Unbiased when either the propensities or the reward model are right.
- :func:`sndr`, :func:`switch_dr` (IPS correction only where w ≤ ``tau``),
  :func:`dr_os` (weights shrunk to λw / (w² + λ): ``lambda_`` 0 is DM, ∞ is DR).

Arrays: ``reward``, ``action``, ``pscore``, ``position`` (n_rounds,);
``action_dist`` and ``estimated_rewards_by_reg_model`` (n_rounds, n_actions,
n_positions). ``position`` None means one slot.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ctrkit.errors import DataError
from ctrkit.ope.feedback import check_action_array, check_action_dist, check_feedback


def _rounds(reward, action, pscore, action_dist, position, reward_model=None):
    """Checked arrays and the pieces every estimator uses: (iw, q̂ under π_e, q̂ of the logged action)."""
    action, reward = np.asarray(action), np.asarray(reward, dtype=np.float64)
    action_dist = np.asarray(action_dist, dtype=np.float64)
    position = np.zeros(len(action), dtype=np.int64) if position is None else np.asarray(position)
    pscore = None if pscore is None else np.asarray(pscore, dtype=np.float64)
    check_action_dist(action_dist, len(action))
    check_feedback(reward, action, pscore, position, action_dist.shape[1], action_dist.shape[2])
    rows = np.arange(len(action))
    iw = None if pscore is None else action_dist[rows, action, position] / pscore
    if reward_model is None:
        return reward, iw, None, None
    q = np.asarray(reward_model, dtype=np.float64)
    check_action_array(q, "estimated_rewards_by_reg_model", len(action), action_dist.shape[1], action_dist.shape[2])
    q_policy = (q[rows, :, position] * action_dist[rows, :, position]).sum(1)  # E_{a~π_e}[q̂(x, a)]
    return reward, iw, q_policy, q[rows, action, position]


def importance_weights(action, pscore, action_dist, position=None) -> np.ndarray:
    """w = π_e(a_t | x_t) / π_b(a_t | x_t) for every logged round."""
    action = np.asarray(action)
    return _rounds(np.zeros(len(action)), action, pscore, action_dist, position)[1]


def dm(action_dist, estimated_rewards_by_reg_model, position=None, **_) -> float:
    """Direct method: the mean over rounds of Σ_a π_e(a|x) q̂(x, a)."""
    action_dist = np.asarray(action_dist, dtype=np.float64)
    n = action_dist.shape[0]
    _, _, q_policy, _ = _rounds(np.zeros(n), np.zeros(n, dtype=np.int64), None, action_dist, position,
                                estimated_rewards_by_reg_model)
    return float(q_policy.mean())


def ips(reward, action, pscore, action_dist, position=None, clip: float = np.inf, **_) -> float:
    """Inverse propensity scoring: mean of min(w, clip) · r."""
    if not clip > 0:
        raise DataError(f"clip must be positive, got {clip}")
    reward, iw, _, _ = _rounds(reward, action, pscore, action_dist, position)
    return float((np.minimum(iw, clip) * reward).mean())


def snips(reward, action, pscore, action_dist, position=None, **_) -> float:
    """Self-normalised IPS: Σ w r / Σ w."""
    reward, iw, _, _ = _rounds(reward, action, pscore, action_dist, position)
    if iw.sum() == 0:
        raise DataError("every importance weight is 0: the evaluated policy never takes a logged action")
    return float((iw * reward).mean() / iw.mean())


def dr(reward, action, pscore, action_dist, estimated_rewards_by_reg_model, position=None, clip: float = np.inf,
       **_) -> float:
    """Doubly robust: mean of Σ_a π_e q̂(x, a) + min(w, clip) (r − q̂(x, a_t))."""
    reward, iw, q_policy, q_logged = _rounds(reward, action, pscore, action_dist, position, estimated_rewards_by_reg_model)
    return float((q_policy + np.minimum(iw, clip) * (reward - q_logged)).mean())


def sndr(reward, action, pscore, action_dist, estimated_rewards_by_reg_model, position=None, **_) -> float:
    """Self-normalised DR: the IPS correction divided by the mean weight."""
    reward, iw, q_policy, q_logged = _rounds(reward, action, pscore, action_dist, position, estimated_rewards_by_reg_model)
    return float((q_policy + iw * (reward - q_logged) / iw.mean()).mean())


def switch_dr(reward, action, pscore, action_dist, estimated_rewards_by_reg_model, position=None, tau: float = 1.0,
              **_) -> float:
    """Switch-DR: DR's correction only on rounds whose weight is at most ``tau`` (DM alone elsewhere)."""
    if not tau >= 0:
        raise DataError(f"tau must be >= 0, got {tau}")
    reward, iw, q_policy, q_logged = _rounds(reward, action, pscore, action_dist, position, estimated_rewards_by_reg_model)
    return float((q_policy + (iw <= tau) * iw * (reward - q_logged)).mean())


def dr_os(reward, action, pscore, action_dist, estimated_rewards_by_reg_model, position=None, lambda_: float = 0.0,
          **_) -> float:
    """DR with optimistic shrinkage: weights λw / (w² + λ); ``lambda_`` 0 gives DM, ∞ gives DR."""
    if not lambda_ >= 0:
        raise DataError(f"lambda_ must be >= 0, got {lambda_}")
    reward, iw, q_policy, q_logged = _rounds(reward, action, pscore, action_dist, position, estimated_rewards_by_reg_model)
    shrunk = iw if np.isinf(lambda_) else lambda_ * iw / (iw**2 + lambda_) if lambda_ > 0 else np.zeros_like(iw)
    return float((q_policy + shrunk * (reward - q_logged)).mean())


ESTIMATORS: dict[str, Callable[..., float]] = {"dm": dm, "ips": ips, "snips": snips, "dr": dr, "sndr": sndr,
                                               "switch_dr": switch_dr, "dr_os": dr_os}


def effective_sample_size(weights) -> float:
    """(Σ w)² / Σ w²: how many rounds of the evaluated policy's own log the weighted log is worth."""
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / (w**2).sum()) if (w**2).sum() > 0 else 0.0


def weight_diagnostics(action, pscore, action_dist, position=None) -> dict:
    """The importance weights in four numbers: mean (1 in expectation), max, effective sample size and its share."""
    w = importance_weights(action, pscore, action_dist, position)
    ess = effective_sample_size(w)
    return {"mean_weight": float(w.mean()), "max_weight": float(w.max()), "ess": ess, "ess_share": ess / len(w)}


def bootstrap_ci(estimator: Callable[..., float], alpha: float = 0.05, n_bootstrap_samples: int = 1000,
                 random_state: int | None = None, **arrays) -> dict:
    """A percentile bootstrap interval of ``estimator(**arrays)``, resampling rounds with replacement.

    The estimator runs again on every resample (so SNIPS renormalises and a
    reward model's estimates travel with their rounds); ``arrays`` are the
    estimator's keyword arguments, and every array with one entry per round is
    resampled. Returns ``{"estimate", "mean", "low", "high"}`` (the estimate on
    all rounds, the resamples' mean and the interval's bounds).
    """
    if not 0 < alpha < 1 or n_bootstrap_samples < 2:
        raise DataError("alpha must lie in (0, 1) and n_bootstrap_samples be at least 2")
    n = len(arrays["action_dist"])
    per_round = {k: np.asarray(v) for k, v in arrays.items() if isinstance(v, (np.ndarray, list)) and len(v) == n}
    rng = np.random.default_rng(random_state)
    values = np.empty(n_bootstrap_samples)
    for b in range(n_bootstrap_samples):
        rows = rng.integers(0, n, n)
        values[b] = estimator(**(arrays | {k: v[rows] for k, v in per_round.items()}))
    low, high = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return {"estimate": estimator(**arrays), "mean": float(values.mean()), "low": float(low), "high": float(high)}
