"""Bandit simulations with a known truth (chapter 10): problems, one run of a policy, and regret over seeds.

A problem is ``contexts`` (T, dim), or (T, n_actions, dim) with features per
arm, and ``mean_rewards`` (T, n_actions), the true click probability of
every arm in every round. :func:`simulate` lets a policy play it; the
pseudo-regret of round t is max_a q[t, a] − q[t, a_t], the expected clicks
lost to not playing the best arm (Lattimore & Szepesvári 2020, ch. 4).

Common random numbers: the reward of every arm in round t is
u[t, a] < q[t, a] for one matrix of uniforms u drawn from the seed alone
(:func:`common_random_numbers`), so two policies run with the same seed
meet the same clicks, and their difference in regret is theirs, not the
noise's. Every random piece has its own stream of the seed: the problem,
the clicks, and the policy (``default_rng(seed)``), so a policy seeded with
the same number does not reuse the clicks' draws.

- :func:`logistic_problem`: contexts ~ N(0, I) and a logistic CTR per arm whose best arm depends on the context;
- :func:`bernoulli_problem`: context-free arms with fixed click probabilities;
- :func:`compare` runs policies × seeds into a tidy frame, :func:`regret_table` summarises it at given horizons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit
from tqdm import tqdm

from ctrkit.bandits.policies import Policy
from ctrkit.errors import DataError

_PROBLEM, _CLICKS = 1, 2  # the seed's streams: default_rng([seed, stream]); policies use default_rng(seed)


def _stream(seed: int, stream: int) -> np.random.Generator:
    if int(seed) != seed or seed < 0:
        raise DataError(f"seed must be an integer >= 0, got {seed}")
    return np.random.default_rng([int(seed), stream])


@dataclass
class BanditProblem:
    """``contexts`` (T, dim) or (T, n_actions, dim), ``mean_rewards`` (T, n_actions): the true click probabilities."""

    contexts: np.ndarray
    mean_rewards: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        self.contexts, self.mean_rewards = _checked_problem(self.contexts, self.mean_rewards)

    @property
    def n_rounds(self) -> int:
        return self.mean_rewards.shape[0]

    @property
    def n_actions(self) -> int:
        return self.mean_rewards.shape[1]

    @property
    def dim(self) -> int:
        return self.contexts.shape[-1]


def _checked_means(mean_rewards) -> np.ndarray:
    q = np.asarray(mean_rewards, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] < 1 or q.shape[1] < 1:
        raise DataError(f"mean_rewards must have shape (n_rounds, n_actions), got {q.shape}")
    if not (np.isfinite(q).all() and q.min() >= 0 and q.max() <= 1):
        raise DataError("mean_rewards must hold click probabilities in [0, 1]")
    return q


def _checked_problem(contexts, mean_rewards) -> tuple[np.ndarray, np.ndarray]:
    q = _checked_means(mean_rewards)
    x = np.asarray(contexts, dtype=np.float64)
    if x.ndim not in (2, 3) or len(x) != len(q) or (x.ndim == 3 and x.shape[1] != q.shape[1]):
        raise DataError(f"contexts must have shape ({len(q)}, dim) or {q.shape + ('dim',)}, got {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("contexts must be finite")
    return x, q


def _intercept_for(base_rate: float, logits: np.ndarray) -> float:
    """The shift c with mean(sigmoid(c + logits)) = base_rate."""
    if not 0 < base_rate < 1:
        raise DataError(f"base_rate must lie in (0, 1), got {base_rate}")
    return brentq(lambda c: expit(c + logits).mean() - base_rate, -30.0, 30.0)


def logistic_problem(n_rounds: int, n_actions: int = 10, dim: int = 6, base_rate: float = 0.05, scale: float = 1.0,
                     per_arm: bool = False, seed: int = 0) -> BanditProblem:
    """A contextual problem with a logistic truth: q[t, a] = sigmoid(c + b_a + xₜᵀθ_a), CTRs of a few percent.

    ``contexts`` (T, dim): dim − 1 standard normal features and a constant 1
    last (an intercept for linear policies). θ_a ~ N(0, scale²/(dim − 1) · I),
    so each arm's logit varies with sd ``scale`` over contexts and, the arms'
    θ being independent, the best arm changes with the context: a
    context-free policy, even the best single arm, loses clicks every round.
    The arm offsets b_a ~ N(0, 0.25²) and c is set so that the mean of q over
    rounds and arms is ``base_rate``.

    ``per_arm=True`` gives the display-ad form instead: contexts
    (T, n_actions, dim), one feature vector per (round, arm), and one θ for
    all arms, q[t, a] = sigmoid(c + x_{t,a}ᵀθ), for policies with ``shared=True``.
    """
    if int(n_rounds) < 1 or int(n_actions) < 1 or int(dim) < 2 or not scale >= 0:
        raise DataError(f"need n_rounds, n_actions >= 1, dim >= 2 and scale >= 0, got {n_rounds}, {n_actions}, "
                        f"{dim}, {scale}")
    rng = _stream(seed, _PROBLEM)
    T, K, d = int(n_rounds), int(n_actions), int(dim) - 1
    if per_arm:
        x = rng.standard_normal((T, K, d))
        logits = x @ rng.normal(0.0, scale / np.sqrt(d), d)  # (T, K)
        contexts = np.concatenate([x, np.ones((T, K, 1))], axis=2)
    else:
        x = rng.standard_normal((T, d))
        theta = rng.normal(0.0, scale / np.sqrt(d), (K, d))
        logits = x @ theta.T + rng.normal(0.0, 0.25, K)  # (T, K)
        contexts = np.concatenate([x, np.ones((T, 1))], axis=1)
    q = expit(_intercept_for(base_rate, logits) + logits)
    return BanditProblem(contexts, q, f"logistic (T={T:,}, K={K}, dim={dim})")


def bernoulli_problem(n_rounds: int, n_actions: int = 10, base_rate: float = 0.05, spread: float = 1.0,
                      seed: int = 0) -> BanditProblem:
    """A context-free problem: arm a clicks with the same probability p_a in every round.

    logit p_a = c + N(0, ``spread``²), c set so that the arms' mean is
    ``base_rate``. ``contexts`` is a column of ones (T, 1), so contextual
    policies can play it too (their models reduce to one mean per arm).
    """
    if int(n_rounds) < 1 or int(n_actions) < 1 or not spread >= 0:
        raise DataError(f"need n_rounds, n_actions >= 1 and spread >= 0, got {n_rounds}, {n_actions}, {spread}")
    offsets = _stream(seed, _PROBLEM).normal(0.0, spread, int(n_actions))
    p = expit(_intercept_for(base_rate, offsets) + offsets)  # (K,)
    return BanditProblem(np.ones((int(n_rounds), 1)), np.tile(p, (int(n_rounds), 1)),
                         f"Bernoulli (T={int(n_rounds):,}, K={int(n_actions)})")


def common_random_numbers(n_rounds: int, n_actions: int, seed: int) -> np.ndarray:
    """(T, K) uniforms u from ``seed`` alone: arm a clicks in round t when u[t, a] < q[t, a], whoever plays."""
    return _stream(seed, _CLICKS).random((int(n_rounds), int(n_actions)))


@dataclass
class BanditRun:
    """One run of a policy: per round the arm played, its reward, the pseudo-regret and its running sum."""

    actions: np.ndarray
    rewards: np.ndarray
    regret: np.ndarray
    cumulative_regret: np.ndarray


def simulate(policy: Policy, contexts, mean_rewards, seed: int = 0, progress: bool = False) -> BanditRun:
    """Let ``policy`` play T rounds: select on context t, receive u[t, a] < q[t, a], update.

    ``contexts`` (T, dim) or (T, n_actions, dim), ``mean_rewards`` (T,
    n_actions); the clicks come from :func:`common_random_numbers` of
    ``seed``, and the policy's own randomness from its seed.
    """
    x, q = _checked_problem(contexts, mean_rewards)
    T, K = q.shape
    if policy.n_actions != K:
        raise DataError(f"the policy has {policy.n_actions} arms and mean_rewards {K}")
    if policy.contextual and x.shape[-1] != policy.dim:
        raise DataError(f"the policy reads dim {policy.dim} and the contexts have {x.shape[-1]} features")
    clicks = common_random_numbers(T, K, seed) < q  # (T, K): every arm's reward in every round
    actions = np.empty(T, dtype=np.int64)
    for t in tqdm(range(T), disable=not progress, desc=type(policy).__name__):
        a = policy.select(x[t])
        actions[t] = a
        policy.update(x[t], a, float(clicks[t, a]))
    rows = np.arange(T)
    regret = q.max(axis=1) - q[rows, actions]
    return BanditRun(actions, clicks[rows, actions].astype(np.float64), regret, np.cumsum(regret))


def best_arm_regret(mean_rewards) -> np.ndarray:
    """(T,) cumulative pseudo-regret of the best single arm in hindsight: the floor of any context-free policy."""
    q = _checked_means(mean_rewards)
    best = int(q.sum(axis=0).argmax())
    return np.cumsum(q.max(axis=1) - q[:, best])


def compare(policies: dict[str, Callable[..., Policy]], problem: BanditProblem | Callable[..., BanditProblem],
            seeds: Iterable[int] = (0, 1, 2, 3, 4), progress: bool = False) -> pd.DataFrame:
    """Every policy on the problem for every seed: one row per (policy, seed, round).

    ``policies`` maps a label to a factory called as ``make(n_actions, dim,
    seed=seed)``: a class, or ``functools.partial(LinUCB, alpha=0.2)``.
    ``problem`` is one :class:`BanditProblem`, or a function called as
    ``problem(seed=seed)`` for a fresh problem per seed (e.g.
    ``functools.partial(logistic_problem, 10_000)``). Within a seed all
    policies meet the same clicks. Columns: policy, seed, t (1…T), action,
    reward, regret, cumulative_regret.
    """
    seeds = list(seeds)
    frames = []
    with tqdm(total=len(seeds) * len(policies), disable=not progress, desc="runs") as bar:
        for seed in seeds:
            p = problem(seed=seed) if callable(problem) else problem
            for label, make in policies.items():
                run = simulate(make(p.n_actions, p.dim, seed=seed), p.contexts, p.mean_rewards, seed)
                frames.append(pd.DataFrame({"policy": label, "seed": seed, "t": np.arange(1, p.n_rounds + 1),
                                            "action": run.actions, "reward": run.rewards, "regret": run.regret,
                                            "cumulative_regret": run.cumulative_regret}))
                bar.update()
    return pd.concat(frames, ignore_index=True)


def regret_table(runs: pd.DataFrame, horizons: Iterable[int] = (1_000, 10_000)) -> pd.DataFrame:
    """Cumulative regret at each horizon, mean and sample std (ddof 1) over seeds: rows policy, columns (T, stat)."""
    horizons = [int(h) for h in horizons]
    missing = sorted(set(horizons) - set(runs["t"].unique()))
    if missing:
        raise DataError(f"the runs do not reach the horizons {missing}")
    at = runs[runs["t"].isin(horizons)]
    grouped = at.groupby(["policy", "t"], sort=False)["cumulative_regret"]
    table = grouped.agg(["mean", "std"]).unstack("t").swaplevel(axis=1)
    return table[[(h, s) for h in horizons for s in ("mean", "std")]].rename_axis(columns=["T", None])
