"""Neural-linear Thompson sampling (chapter 10): a Bayesian linear regression on a CTR model's last hidden layer.

Riquelme, Tucker & Snoek (2018), "Deep Bayesian Bandits Showdown", found
that the simplest way to give a neural network honest uncertainty worked
best among many: keep the network for the representation and put an exact
Bayesian linear regression on its last hidden layer (NeuralLinear). Here the
network is a trained ctrkit CTR model, fixed while the bandit runs (their
NeuralLinear also retrains it every so often): :func:`last_hidden` reads the
input of the model's final linear layer, and :class:`NeuralLinearThompson`
does Thompson sampling with that layer's features.

The regression is conjugate, with Gaussian noise of unknown variance and a
Normal-Inverse-Gamma prior: σ² ~ IG(a0, b0) and β | σ² ~ N(0, σ²/λ · I).
After n rows (Φ, y) the posterior is, in closed form,

    Λ_n = λI + ΦᵀΦ,   μ_n = Λ_n⁻¹ Φᵀy,   a_n = a0 + n/2,   b_n = b0 + ½ (yᵀy − μ_nᵀ Λ_n μ_n),

and a draw is σ² ~ IG(a_n, b_n), then β ~ N(μ_n, σ² Λ_n⁻¹). With
``noise_variance`` set, σ² is that fixed number instead (no Inverse-Gamma).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

from ctrkit.bandits.policies import ContextualPolicy, argmax_random_ties
from ctrkit.errors import ConfigError, DataError


class NeuralLinearThompson(ContextualPolicy):
    """Thompson sampling with a Bayesian linear regression (Normal-Inverse-Gamma) on given features, per arm or shared.

    ``x`` is a model's last hidden layer (see :func:`last_hidden`): one row
    (dim,) per round read by each arm's own regression, or one row per
    candidate (n_actions, dim); with ``shared=True`` one regression scores all
    candidates, as when each candidate ad is a row the CTR model scores.
    ``intercept`` appends a constant 1 to the features. The defaults
    ``prior_precision`` λ = 0.25 and a0 = b0 = 6 are Riquelme et al.'s. The
    posterior of the model an update touches is recomputed at once (one
    Cholesky factorisation, O(dim³)); attributes per model: ``precision``
    Λ_n (M, d, d), ``mean`` μ_n (M, d), ``a`` and ``b`` (M,), with d = dim (+1).
    """

    def __init__(self, n_actions: int, dim: int, seed: int | None = None, prior_precision: float = 0.25,
                 a0: float = 6.0, b0: float = 6.0, noise_variance: float | None = None, intercept: bool = True,
                 shared: bool = False):
        super().__init__(n_actions, dim, seed, shared)
        if not (prior_precision > 0 and a0 > 0 and b0 > 0) or (noise_variance is not None and not noise_variance > 0):
            raise DataError("NeuralLinearThompson needs prior_precision, a0, b0 (and noise_variance, when set) > 0")
        self.intercept, self.noise_variance = bool(intercept), noise_variance
        self.a0, self.b0 = float(a0), float(b0)
        M, d = self.n_models, self.dim + self.intercept
        self.precision = np.tile(np.eye(d) * prior_precision, (M, 1, 1))  # Λ_n (M, d, d)
        self.xty = np.zeros((M, d))  # Φᵀy
        self.yty = np.zeros(M)  # yᵀy
        self.count = np.zeros(M, dtype=np.int64)
        self.mean = np.zeros((M, d))  # μ_n
        self.a, self.b = np.full(M, self.a0), np.full(M, self.b0)
        self._scale = np.tile(np.eye(d) / np.sqrt(prior_precision), (M, 1, 1))  # F with F Fᵀ = Λ_n⁻¹

    def _design(self, x) -> np.ndarray:
        """(K, d): the features per arm, with the constant 1 when ``intercept``."""
        X = self.features(x)
        return np.concatenate([X, np.ones((self.n_actions, 1))], axis=1) if self.intercept else X

    def covariance(self, k: int = 0) -> np.ndarray:
        """Λ_n⁻¹ of model k (the covariance of β is σ² times it)."""
        return self._scale[k] @ self._scale[k].T

    def sample(self) -> np.ndarray:
        """(M, d): one β per model, after one σ² per model (or the fixed ``noise_variance``)."""
        M, d = self.mean.shape
        sigma2 = (np.full(M, self.noise_variance) if self.noise_variance is not None
                  else self.b / self.rng.gamma(self.a))  # IG(a, b) = b / Gamma(a, 1)
        z = self.rng.standard_normal((M, d))
        return self.mean + np.sqrt(sigma2)[:, None] * (self._scale @ z[:, :, None])[:, :, 0]

    def select(self, x) -> int:
        return argmax_random_ties((self.sample() * self._design(x)).sum(1), self.rng)

    def update(self, x, action: int, reward: float) -> None:
        action, reward = self._checked(action, reward)
        phi = self._design(x)[action]  # (d,)
        k = self.model_of(action)
        self.precision[k] += np.outer(phi, phi)
        self.xty[k] += reward * phi
        self.yty[k] += reward**2
        self.count[k] += 1
        L = np.linalg.cholesky(self.precision[k])  # Λ = L Lᵀ
        self._scale[k] = solve_triangular(L, np.eye(len(phi)), lower=True).T  # L⁻ᵀ: L⁻ᵀ L⁻¹ = Λ⁻¹
        self.mean[k] = self._scale[k] @ (self._scale[k].T @ self.xty[k])
        self.a[k] = self.a0 + self.count[k] / 2
        self.b[k] = self.b0 + 0.5 * max(self.yty[k] - self.mean[k] @ self.xty[k], 0.0)  # μᵀΛμ = μᵀΦᵀy


def last_hidden(model, x_dense, x_sparse, batch_size: int = 4096) -> np.ndarray:
    """(N, H) float32: what a ctrkit model's final linear layer ``model.out`` reads, for every row.

    A forward pre-hook on ``model.out`` catches its input while the model runs
    in eval mode under ``torch.no_grad()`` (its training mode is restored
    after), so ``model.out(h)`` gives the model's logits back. Which models
    have such a layer:

    - "transformer", "dcnv2" and "autoint": ``out`` reads the whole
      representation (the transformer's head MLP output; DCNv2's cross and
      deep outputs; AutoInt's attention output and MLP), so
      ``out(h) == logits``;
    - "deepfm": ``out`` reads the deep part only (its MLP); the logit also
      adds the linear and FM terms, which ``h`` does not carry;
    - "lr" and "fm" have no hidden layer, a transformer built with
      ``n_outputs=0`` has no ``out``, and the multi-task models have one
      output layer per task (``outs``): each raises a ConfigError.
    """
    import torch
    from torch import nn

    out = getattr(model, "out", None)
    if not isinstance(out, nn.Linear):
        raise ConfigError(f"{type(model).__name__} has no final linear layer `out` to read a hidden layer from; "
                          "use a 'transformer', 'dcnv2', 'autoint' or 'deepfm' model")
    if int(batch_size) < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    x_dense, x_sparse = torch.as_tensor(x_dense, dtype=torch.float32), torch.as_tensor(x_sparse, dtype=torch.long)
    if len(x_dense) != len(x_sparse):
        raise DataError(f"x_dense has {len(x_dense)} rows and x_sparse {len(x_sparse)}")
    device = next(model.parameters()).device
    caught: list[torch.Tensor] = []
    hook = out.register_forward_pre_hook(lambda module, inputs: caught.append(inputs[0].detach().float().cpu()))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(x_sparse), batch_size):
                rows = slice(start, start + batch_size)
                model(x_dense[rows].to(device), x_sparse[rows].to(device))
    finally:
        hook.remove()
        model.train(was_training)
    if not caught:
        return np.zeros((0, out.in_features), dtype=np.float32)
    return torch.cat(caught).numpy()  # (N, H)
