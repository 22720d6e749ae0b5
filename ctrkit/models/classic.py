"""The classic CTR models (chapter 03), each a composition of the shared blocks in :mod:`ctrkit.models.layers`.

- logistic regression: one weight per categorical value and per numeric field ("wide");
- FM (Rendle 2010): adds every pairwise interaction as a dot product of two field vectors;
- DeepFM (Guo et al. 2017): FM plus an MLP over the same field vectors;
- DCNv2 (Wang et al. 2021): explicit bounded-degree crosses ``x0 * (W x + b) + x``,
  stacked before or run in parallel with an MLP, with full-rank or low-rank ``W``.

Every model maps ``(x_dense, x_sparse)`` to logits (B,) as ``head(embed(...))``
(:class:`~ctrkit.models.layers.CTRModel`); the sigmoid lives in
:func:`ctrkit.training.predict_proba`.
"""

from __future__ import annotations

import torch
from torch import nn

from ctrkit._config import ConfigError
from ctrkit.models.layers import MLP, CTRModel, FeatureEmbedding
from ctrkit.preprocessing.spec import FeatureSpec


class LogisticRegression(CTRModel):
    """``logit = b + Σ_f w_f(x_f)``: a 1-dimensional embedding per field, summed."""

    def __init__(self, spec: FeatureSpec, l2: float = 0.0):
        super().__init__()
        self.weights = FeatureEmbedding(spec, dim=1, l2=l2)
        self.bias = nn.Parameter(torch.zeros(1))

    def embed(self, x_dense, x_sparse):
        return (self.weights(x_dense, x_sparse),)  # (B, F, 1)

    def head(self, tokens, return_attn: bool = False):
        logits = tokens[0].sum(dim=(1, 2)) + self.bias  # (B,)
        return (logits, []) if return_attn else logits


def fm_interaction(v: torch.Tensor) -> torch.Tensor:
    """Σ_{i<j} <v_i, v_j> for tokens ``v`` (B, F, D), in O(F·D): ½ (‖Σ v‖² − Σ ‖v‖²)."""
    return 0.5 * (v.sum(dim=1).pow(2) - v.pow(2).sum(dim=1)).sum(dim=1)  # (B,)


class FM(CTRModel):
    """Factorisation machine: logistic regression + the pairwise term of :func:`fm_interaction`."""

    def __init__(self, spec: FeatureSpec, embed_dim: int = 16, embed_dropout: float = 0.0, l2: float = 0.0):
        super().__init__()
        self.linear = LogisticRegression(spec)  # main effects: l2 is for the interaction vectors only
        self.embedding = FeatureEmbedding(spec, embed_dim, dropout=embed_dropout, l2=l2)

    def embed(self, x_dense, x_sparse):
        v = self.embedding(x_dense, x_sparse)  # (B, F, D)
        return self.linear.embed(x_dense, x_sparse) + (v,)  # (w (B, F, 1), v)

    def head(self, tokens, return_attn: bool = False):
        w, v = tokens
        logits = self.linear.head((w,)) + fm_interaction(v)
        return (logits, []) if return_attn else logits


class DeepFM(CTRModel):
    """FM and an MLP reading the same field vectors; their logits are added."""

    def __init__(self, spec: FeatureSpec, embed_dim: int = 16, hidden: tuple[int, ...] = (256, 128),
                 dropout: float = 0.1, embed_dropout: float = 0.0, batch_norm: bool = False, l2: float = 0.0):
        super().__init__()
        self.linear = LogisticRegression(spec)  # main effects: l2 is for the interaction vectors only
        self.embedding = FeatureEmbedding(spec, embed_dim, dropout=embed_dropout, l2=l2)
        self.mlp = MLP(self.embedding.out_features, hidden, dropout, batch_norm)
        self.out = nn.Linear(self.mlp.out_features, 1)

    def embed(self, x_dense, x_sparse):
        v = self.embedding(x_dense, x_sparse)  # (B, F, D)
        return self.linear.embed(x_dense, x_sparse) + (v,)  # (w (B, F, 1), v)

    def head(self, tokens, return_attn: bool = False):
        w, v = tokens
        deep = self.out(self.mlp(v.flatten(1))).squeeze(-1)  # (B,)
        logits = self.linear.head((w,)) + fm_interaction(v) + deep
        return (logits, []) if return_attn else logits


class CrossLayer(nn.Module):
    """One DCNv2 cross: ``x0 ⊙ (W x + b) + x``; ``W = U Vᵀ`` when ``rank`` is set (DCN-M's low-rank form)."""

    def __init__(self, d: int, rank: int | None = None):
        super().__init__()
        self.w = nn.Linear(d, d) if rank is None else nn.Sequential(nn.Linear(d, rank, bias=False), nn.Linear(rank, d))

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.w(x) + x  # (B, d)


class DCNv2(CTRModel):
    """Deep & Cross Network v2: ``n_cross`` cross layers and an MLP, ``structure`` "stacked" or "parallel"."""

    def __init__(self, spec: FeatureSpec, embed_dim: int = 16, n_cross: int = 3, rank: int | None = None,
                 structure: str = "parallel", hidden: tuple[int, ...] = (256, 128), dropout: float = 0.1,
                 embed_dropout: float = 0.0, batch_norm: bool = False, l2: float = 0.0):
        super().__init__()
        if structure not in ("stacked", "parallel"):
            raise ConfigError(f"structure must be 'stacked' or 'parallel', got {structure!r}")
        self.structure = structure
        self.embedding = FeatureEmbedding(spec, embed_dim, dropout=embed_dropout, l2=l2)
        d = self.embedding.out_features
        self.cross = nn.ModuleList(CrossLayer(d, rank) for _ in range(n_cross))
        self.mlp = MLP(d, hidden, dropout, batch_norm)
        self.out = nn.Linear(self.mlp.out_features + (d if structure == "parallel" else 0), 1)

    def embed(self, x_dense, x_sparse):
        return (self.embedding(x_dense, x_sparse),)  # (B, F, D)

    def head(self, tokens, return_attn: bool = False):
        x0 = tokens[0].flatten(1)  # (B, d = F·D)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        h = self.mlp(x) if self.structure == "stacked" else torch.cat([x, self.mlp(x0)], dim=1)
        logits = self.out(h).squeeze(-1)  # (B,)
        return (logits, []) if return_attn else logits
