"""Bandit policies that learn while they serve (chapter 10): the interface and the context-free policies.

Every policy has one small interface: ``policy = Cls(n_actions, dim, seed=…)``,
``policy.select(x) -> int`` picks an arm for the context ``x`` and
``policy.update(x, action, reward)`` learns from the reward it got. A
policy's own randomness (exploration, posterior samples, ties) comes from
its ``seed`` only, so the same seed and the same rewards give the same
actions.

- :class:`UniformRandom`: an arm uniformly at random; the baseline, and what a randomised log is;
- :class:`EpsilonGreedy`: the arm with the best mean reward so far, a random one with probability ε
  (Sutton & Barto 2018, §2.2; the decaying ε_t = min(ε, cK/t) is Auer, Cesa-Bianchi & Fischer 2002's ε_n-greedy);
- :class:`BetaBernoulliThompson`: Thompson sampling (Thompson 1933) with a Beta prior per arm and click rewards:
  draw each arm's click probability from its Beta posterior and play the largest (Agrawal & Goyal 2012;
  Russo et al. 2018's tutorial).

Context-free policies take ``x`` and ignore it. The contextual policies
(:mod:`~ctrkit.bandits.linear`, :mod:`~ctrkit.bandits.neural`) share
:class:`ContextualPolicy`'s reading of ``x``: either one context vector
(dim,) for every arm, or one feature vector per arm (n_actions, dim).
"""

from __future__ import annotations

import numpy as np

from ctrkit.errors import DataError


def argmax_random_ties(values: np.ndarray, rng: np.random.Generator) -> int:
    """The index of the largest value, a tie broken uniformly at random (no draw when there is no tie)."""
    best = np.flatnonzero(values == values.max())
    return int(best[0]) if len(best) == 1 else int(rng.choice(best))


class Policy:
    """The interface every bandit policy follows: ``select(x) -> int`` and ``update(x, action, reward)``.

    ``n_actions`` arms, contexts of length ``dim`` (ignored by a context-free
    policy), and ``seed`` for the policy's own random draws. ``t`` counts the
    updates so far.
    """

    contextual = False  # whether select() reads x

    def __init__(self, n_actions: int, dim: int = 0, seed: int | None = None):
        if int(n_actions) < 1:
            raise DataError(f"n_actions must be at least 1, got {n_actions}")
        if int(dim) < 0:
            raise DataError(f"dim must be >= 0, got {dim}")
        self.n_actions, self.dim = int(n_actions), int(dim)
        self.rng = np.random.default_rng(seed)
        self.t = 0

    def select(self, x=None) -> int:
        raise NotImplementedError

    def update(self, x, action: int, reward: float) -> None:
        raise NotImplementedError

    def _checked(self, action, reward, low: float = -np.inf, high: float = np.inf) -> tuple[int, float]:
        """(action, reward) as (int, float), or a DataError; counts the update."""
        if not 0 <= int(action) < self.n_actions or int(action) != action:
            raise DataError(f"action must be an arm id in [0, {self.n_actions}), got {action}")
        reward = float(reward)
        if not (np.isfinite(reward) and low <= reward <= high):
            raise DataError(f"reward must lie in [{low}, {high}], got {reward}")
        self.t += 1
        return int(action), reward

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_actions={self.n_actions}, dim={self.dim})"


class UniformRandom(Policy):
    """Every arm with probability 1 / n_actions, whatever happened before: the baseline to beat."""

    def select(self, x=None) -> int:
        return int(self.rng.integers(self.n_actions))

    def update(self, x, action: int, reward: float) -> None:
        self._checked(action, reward)


class EpsilonGreedy(Policy):
    """Context-free ε-greedy: the arm with the highest mean reward so far; with probability ε_t a uniform arm.

    Each arm is played once first (an unplayed arm's mean counts as +∞, in
    random order). ``epsilon`` is constant by default (0.1: 10% of the rounds
    explore forever, so its regret grows linearly); with ``decay`` c > 0 it
    falls as ε_t = min(ε, c · n_actions / t) after t rounds (Auer et al.
    2002's ε_n-greedy min(1, c'K / (d²t)), with c = c'/d² for the smallest gap
    d). Ties between means are broken at random.
    """

    def __init__(self, n_actions: int, dim: int = 0, seed: int | None = None, epsilon: float = 0.1,
                 decay: float = 0.0):
        super().__init__(n_actions, dim, seed)
        if not 0 <= epsilon <= 1 or not decay >= 0:
            raise DataError(f"epsilon must lie in [0, 1] and decay be >= 0, got {epsilon} and {decay}")
        self.epsilon, self.decay = float(epsilon), float(decay)
        self.counts = np.zeros(self.n_actions)  # (K,) plays per arm
        self.sums = np.zeros(self.n_actions)  # (K,) rewards per arm

    def current_epsilon(self) -> float:
        """ε_t for the next round."""
        if self.decay == 0:
            return self.epsilon
        return min(self.epsilon, self.decay * self.n_actions / max(self.t, 1))

    def means(self) -> np.ndarray:
        """(K,) mean reward per arm so far; +∞ for an arm never played."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.counts > 0, self.sums / self.counts, np.inf)

    def select(self, x=None) -> int:
        if self.rng.random() < self.current_epsilon():
            return int(self.rng.integers(self.n_actions))
        return argmax_random_ties(self.means(), self.rng)

    def update(self, x, action: int, reward: float) -> None:
        action, reward = self._checked(action, reward)
        self.counts[action] += 1
        self.sums[action] += reward


class BetaBernoulliThompson(Policy):
    """Thompson sampling for clicks: a Beta(a0, b0) prior per arm, one posterior draw per arm, play the largest.

    After s clicks and f non-clicks an arm's posterior is Beta(a0 + s, b0 + f)
    (``alpha``, ``beta``). A reward in [0, 1] that is not 0 or 1 adds r to
    alpha and 1 − r to beta (the usual fractional update). Context-free: on a
    contextual problem it converges to the best single arm, not to the best
    arm for each context.
    """

    def __init__(self, n_actions: int, dim: int = 0, seed: int | None = None, a0: float = 1.0, b0: float = 1.0):
        super().__init__(n_actions, dim, seed)
        if not (a0 > 0 and b0 > 0):
            raise DataError(f"the Beta prior needs a0 > 0 and b0 > 0, got {a0} and {b0}")
        self.alpha = np.full(self.n_actions, float(a0))  # (K,) prior + clicks
        self.beta = np.full(self.n_actions, float(b0))  # (K,) prior + non-clicks

    def posterior_mean(self) -> np.ndarray:
        """(K,) E[p_a | data] = alpha / (alpha + beta)."""
        return self.alpha / (self.alpha + self.beta)

    def select(self, x=None) -> int:
        return argmax_random_ties(self.rng.beta(self.alpha, self.beta), self.rng)

    def update(self, x, action: int, reward: float) -> None:
        action, reward = self._checked(action, reward, 0.0, 1.0)
        self.alpha[action] += reward
        self.beta[action] += 1.0 - reward


class ContextualPolicy(Policy):
    """A policy whose models read features: one model per arm, or one model shared by all arms (``shared=True``).

    ``x`` is either one context (dim,) that every arm's model reads (the
    disjoint setting of Li et al. 2010), or a matrix (n_actions, dim) of one
    feature vector per arm: arm a's own model reads row a, or, with
    ``shared=True``, one model scores every row (Chapelle & Li 2011's display
    ads, where the features describe the pair of request and ad). A shared
    model needs the per-arm form, since one vector for all arms cannot tell
    them apart.
    """

    contextual = True

    def __init__(self, n_actions: int, dim: int, seed: int | None = None, shared: bool = False):
        super().__init__(n_actions, dim, seed)
        if self.dim < 1:
            raise DataError(f"a contextual policy needs dim >= 1, got {dim}")
        self.shared = bool(shared)
        self.n_models = 1 if self.shared else self.n_actions

    def features(self, x) -> np.ndarray:
        """``x`` as (n_actions, dim) float64, one row per arm (a view when x is one shared context)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape == (self.n_actions, self.dim):
            return x
        if x.shape == (self.dim,) and not self.shared:
            return np.broadcast_to(x, (self.n_actions, self.dim))
        forms = "" if self.shared else f"({self.dim},) or "
        raise DataError(f"{type(self).__name__} takes x of shape {forms}({self.n_actions}, {self.dim}), got {x.shape}")

    def model_of(self, action: int) -> int:
        """The index of the model that learns from ``action``'s rewards."""
        return 0 if self.shared else action
