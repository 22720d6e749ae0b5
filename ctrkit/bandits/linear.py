"""Contextual bandits with linear models (chapter 10): LinUCB and Thompson sampling with a logistic regression.

- :class:`LinUCB`: disjoint LinUCB (Li, Chu, Langford & Schapire 2010). Each
  arm keeps a ridge regression A_a = λI + Σ x xᵀ, b_a = Σ r x and plays the
  arm with the highest upper confidence bound θ_aᵀx + α √(xᵀ A_a⁻¹ x), where
  θ_a = A_a⁻¹ b_a. A⁻¹ is kept up to date by Sherman–Morrison rank-1 updates,
  O(dim²) per round instead of a new inverse.
- :class:`LogisticThompson`: Thompson sampling with a Bayesian logistic
  regression and a Laplace approximation (Chapelle & Li 2011, "An Empirical
  Evaluation of Thompson Sampling", Algorithm 3). The posterior N(m, Q⁻¹) is
  refreshed every ``refresh_every`` rewards: the MAP of the batch's
  log-likelihood under the previous posterior as prior (Newton's method, as
  IRLS), and the precision Q + Σ p(1 − p) x xᵀ at the MAP, full or only its
  diagonal (Chapelle & Li's choice for millions of sparse features). Each
  round draws θ ~ N(m, Q⁻¹) and plays argmax xᵀθ.

Both read ``x`` as :class:`~ctrkit.bandits.policies.ContextualPolicy` does: one
context (dim,) for per-arm models, or (n_actions, dim) features per arm, with
``shared=True`` for one model over all arms. A constant 1 in the features
gives the models an intercept.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import expit

from ctrkit.bandits.policies import ContextualPolicy, argmax_random_ties
from ctrkit.errors import DataError


class LinUCB(ContextualPolicy):
    """Disjoint LinUCB: per arm a ridge regression of reward on x and an upper confidence bound on its prediction.

    ``alpha`` scales the confidence width (Li et al. 2010 set it to
    1 + √(ln(2/δ)/2); smaller explores less), ``ridge`` is λ in A = λI + Σ x xᵀ.
    Attributes per model: ``A_inv`` (M, dim, dim), ``b`` (M, dim) and ``theta`` (M, dim).
    """

    def __init__(self, n_actions: int, dim: int, seed: int | None = None, alpha: float = 1.0, ridge: float = 1.0,
                 shared: bool = False):
        super().__init__(n_actions, dim, seed, shared)
        if not alpha >= 0 or not ridge > 0:
            raise DataError(f"LinUCB needs alpha >= 0 and ridge > 0, got {alpha} and {ridge}")
        self.alpha = float(alpha)
        self.A_inv = np.tile(np.eye(self.dim) / ridge, (self.n_models, 1, 1))  # (M, d, d)
        self.b = np.zeros((self.n_models, self.dim))  # (M, d)
        self.theta = np.zeros((self.n_models, self.dim))  # (M, d) = A⁻¹ b

    def scores(self, x) -> np.ndarray:
        """(K,) upper confidence bounds θᵀx + α √(xᵀ A⁻¹ x), one per arm."""
        X = self.features(x)  # (K, d)
        AX = (self.A_inv @ X[:, :, None])[:, :, 0]  # (K, d): A_a⁻¹ x_a (M = 1 broadcasts)
        width = np.sqrt(np.maximum((AX * X).sum(1), 0.0))
        return (self.theta * X).sum(1) + self.alpha * width

    def select(self, x) -> int:
        return argmax_random_ties(self.scores(x), self.rng)

    def update(self, x, action: int, reward: float) -> None:
        action, reward = self._checked(action, reward)
        z = self.features(x)[action]  # (d,)
        m = self.model_of(action)
        Az = self.A_inv[m] @ z  # (d,)
        self.A_inv[m] -= np.outer(Az, Az) / (1.0 + z @ Az)  # Sherman–Morrison: (A + z zᵀ)⁻¹
        self.b[m] += reward * z
        self.theta[m] = self.A_inv[m] @ self.b[m]


def _objective(w, m, Q, X, y) -> float:
    """The negative log-posterior up to a constant: ½ (w − m)ᵀ Q (w − m) + Σ [log(1 + e^{xᵀw}) − y xᵀw]."""
    z = X @ w
    return 0.5 * (w - m) @ Q @ (w - m) + float(np.sum(np.logaddexp(0.0, z) - y * z))


def logistic_map(m: np.ndarray, Q: np.ndarray, X: np.ndarray, y: np.ndarray, max_steps: int = 20,
                 tol: float = 1e-10) -> np.ndarray:
    """The MAP of a logistic regression with the Gaussian prior N(m, Q⁻¹): Newton's method with step halving.

    ``m`` (d,), ``Q`` (d, d), ``X`` (n, d), ``y`` (n,) in [0, 1]. Starts at the
    prior mean and stops when a step moves no weight by more than ``tol``.
    """
    w = m.copy()
    f = _objective(w, m, Q, X, y)
    for _ in range(max_steps):
        p = expit(X @ w)  # (n,)
        grad = Q @ (w - m) + X.T @ (p - y)  # (d,)
        hess = Q + (X.T * (p * (1.0 - p))) @ X  # (d, d)
        step = np.linalg.solve(hess, grad)
        for _ in range(30):  # halve the step until the objective does not rise (it is convex)
            f_new = _objective(w - step, m, Q, X, y)
            if f_new <= f + 1e-12 * abs(f):
                break
            step = step / 2
        w, f = w - step, f_new
        if np.abs(step).max() < tol:
            break
    return w


def laplace_update(mean: np.ndarray, precision: np.ndarray, X, y, max_steps: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """One batch of Chapelle & Li (2011)'s Algorithm 3: the Laplace posterior after the rows ``X``, ``y``.

    The prior is N(mean, precision⁻¹), with ``precision`` either a full (d, d)
    matrix or a diagonal (d,). Returns the MAP m' and the new precision: the
    Hessian Q + Σ p(1 − p) x xᵀ at m' (full), or Q + Σ p(1 − p) x² (diagonal).
    """
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    diagonal = precision.ndim == 1
    Q = np.diag(precision) if diagonal else precision
    w = logistic_map(mean, Q, X, y, max_steps)
    p = expit(X @ w)
    s = p * (1.0 - p)  # (n,)
    if diagonal:
        return w, precision + (X**2 * s[:, None]).sum(0)
    return w, precision + (X.T * s) @ X


class LogisticThompson(ContextualPolicy):
    """Thompson sampling with a Bayesian logistic regression per arm (or shared), Laplace-approximated in batches.

    The prior is N(0, I / ``prior_precision``). The rewards of
    ``refresh_every`` rounds are buffered; then each model's posterior is
    refreshed by :func:`laplace_update` on its rows, with the previous
    posterior as prior. ``posterior`` is "full" (a (d, d) precision, the
    default for the small dims of chapter 10) or "diagonal". Each round draws
    θ ~ N(m, Q⁻¹) for every model and plays argmax xᵀθ; between refreshes the
    posterior stays the same and only the draws change, as in a system that
    retrains its model on a schedule.
    """

    def __init__(self, n_actions: int, dim: int, seed: int | None = None, prior_precision: float = 1.0,
                 posterior: str = "full", refresh_every: int = 50, newton_steps: int = 20, shared: bool = False):
        super().__init__(n_actions, dim, seed, shared)
        if posterior not in ("full", "diagonal"):
            raise DataError(f"posterior must be 'full' or 'diagonal', got {posterior!r}")
        if not prior_precision > 0 or int(refresh_every) < 1 or int(newton_steps) < 1:
            raise DataError("LogisticThompson needs prior_precision > 0, refresh_every >= 1 and newton_steps >= 1")
        M, d = self.n_models, self.dim
        self.posterior, self.refresh_every, self.newton_steps = posterior, int(refresh_every), int(newton_steps)
        self.mean = np.zeros((M, d))
        self.precision = (np.full((M, d), float(prior_precision)) if posterior == "diagonal"
                          else np.tile(np.eye(d) * prior_precision, (M, 1, 1)))  # (M, d) or (M, d, d)
        self._scale = np.zeros_like(self.precision)  # (M, d) std, or (M, d, d) F with F Fᵀ = Q⁻¹
        for k in range(M):
            self._set_scale(k)
        self._x = np.empty((self.refresh_every, d))  # the batch since the last refresh
        self._model = np.empty(self.refresh_every, dtype=np.int64)
        self._y = np.empty(self.refresh_every)
        self._n = 0

    def _set_scale(self, k: int) -> None:
        """The factor that turns standard normal draws into draws from model k's posterior."""
        if self.posterior == "diagonal":
            self._scale[k] = 1.0 / np.sqrt(self.precision[k])
        else:
            L = np.linalg.cholesky(self.precision[k])  # Q = L Lᵀ, so Q⁻¹ = L⁻ᵀ L⁻¹
            self._scale[k] = solve_triangular(L, np.eye(self.dim), lower=True).T

    def sample(self) -> np.ndarray:
        """(M, d): one θ per model drawn from the current Laplace posterior."""
        z = self.rng.standard_normal((self.n_models, self.dim))
        if self.posterior == "diagonal":
            return self.mean + self._scale * z
        return self.mean + (self._scale @ z[:, :, None])[:, :, 0]

    def select(self, x) -> int:
        X = self.features(x)  # (K, d)
        return argmax_random_ties((self.sample() * X).sum(1), self.rng)  # M = 1 broadcasts over arms

    def update(self, x, action: int, reward: float) -> None:
        action, reward = self._checked(action, reward, 0.0, 1.0)
        self._x[self._n] = self.features(x)[action]
        self._model[self._n], self._y[self._n] = self.model_of(action), reward
        self._n += 1
        if self._n == self.refresh_every:
            self.refresh()

    def refresh(self) -> None:
        """Fold the buffered rewards into each model's posterior (one Laplace step per model that has rows)."""
        x, model, y = self._x[:self._n], self._model[:self._n], self._y[:self._n]
        for k in np.unique(model):
            rows = model == k
            self.mean[k], self.precision[k] = laplace_update(self.mean[k], self.precision[k], x[rows], y[rows],
                                                             self.newton_steps)
            self._set_scale(k)
        self._n = 0
