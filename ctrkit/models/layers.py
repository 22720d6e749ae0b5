"""The blocks every ctrkit model is composed of (chapter 03): field embeddings, numeric embeddings, an MLP.

No model re-implements embeddings. :class:`FeatureEmbedding` turns one batch
``(x_dense, x_sparse)`` into one token per field, ``(B, F, D)``: the 26
categorical fields (C1..C26) through lookup tables, the 13 numeric fields
(I1..I13) through a per-field learned projection of the scaled value (plus a
learned "missing" vector where the preprocessor added a missing indicator).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ctrkit.preprocessing.preprocessor import FeatureSpec

MISSING_SUFFIX = "_missing"


def numeric_fields(spec: FeatureSpec) -> tuple[list[str], list[str]]:
    """The numeric fields of a spec and the ones that have a missing-indicator column."""
    values = [d for d in spec.dense if not d.endswith(MISSING_SUFFIX)]
    flagged = [d for d in values if d + MISSING_SUFFIX in spec.dense]
    return values, flagged


class SparseEmbedding(nn.Module):
    """One lookup table per categorical field: ``x_sparse`` (B, F_s) → list of (B, D_f).

    ``dim=None`` takes each field's size from the preprocessor's suggestion
    (``SparseField.embed_dim``); an integer gives every field that size.
    ``shared={"C14": "C6"}`` makes C14 look up C6's table, which is meaningful
    when both fields are encoded into the same id space (hashed with the same
    buckets, or one shared vocabulary). ``dropout`` drops a whole field's vector
    for a row (embedding dropout). ``l2`` sets :attr:`penalty` on each training
    forward: ``l2 * Σ_j ‖w_j‖² / n_j`` over the distinct rows ``j`` looked up in
    the batch, where ``n_j`` is how often row ``j`` occurs in the training data
    (:meth:`set_frequencies`; :func:`ctrkit.training.fit` calls it). Only the
    rows in the batch are regularised, and over one epoch every row gets about
    ``l2 * ‖w_j‖²`` in total however rare it is, so rare values are pulled
    towards 0 much harder per occurrence than frequent ones: the mini-batch
    aware regularisation of DIN (Zhou et al. 2018), which stops the 100k-value
    fields from being memorised after one epoch (chapter 03).
    """

    def __init__(self, spec: FeatureSpec, dim: int | None = 16, shared: dict[str, str] | None = None,
                 dropout: float = 0.0, l2: float = 0.0):
        super().__init__()
        fields = {s.name: s for s in spec.sparse}
        shared = dict(shared or {})
        for name, owner in shared.items():
            if name not in fields or owner not in fields:
                raise ValueError(f"shared embedding {name!r} -> {owner!r}: both must be categorical fields of the spec")
            if owner in shared:
                raise ValueError(f"shared embedding {name!r} -> {owner!r}: {owner!r} is itself shared; name the owner")
        self.names = [s.name for s in spec.sparse]
        owners = [shared.get(n, n) for n in self.names]
        self.owner_index = [sorted(set(owners), key=owners.index).index(o) for o in owners]
        tables = []
        for owner in sorted(set(owners), key=owners.index):
            users = [fields[n] for n, o in zip(self.names, owners) if o == owner]
            size = max(u.vocab_size for u in users)
            tables.append(nn.Embedding(size, dim or fields[owner].embed_dim))
        self.tables = nn.ModuleList(tables)
        self.dims = [self.tables[i].embedding_dim for i in self.owner_index]
        self.dropout = dropout
        self.l2 = l2
        self.penalty: torch.Tensor | None = None
        for i, t in enumerate(self.tables):
            nn.init.normal_(t.weight, std=1e-2)
            self.register_buffer(f"frequency_{i}", None, persistent=False)  # rows' training counts, for l2

    def set_frequencies(self, x_sparse: torch.Tensor) -> None:
        """Count how often each row of each table occurs in the training ids ``x_sparse`` (for ``l2``)."""
        for t, table in enumerate(self.tables):
            n = torch.zeros(table.num_embeddings, device=table.weight.device)
            for i in (i for i, owner in enumerate(self.owner_index) if owner == t):
                n += torch.bincount(x_sparse[:, i].cpu(), minlength=table.num_embeddings).to(n)
            setattr(self, f"frequency_{t}", n.clamp(min=1.0))

    def forward(self, x_sparse: torch.Tensor) -> list[torch.Tensor]:
        out = [self.tables[t](x_sparse[:, i]) for i, t in enumerate(self.owner_index)]  # F_s x (B, D_f)
        if self.training and self.l2 > 0 and torch.is_grad_enabled() and self.frequency_0 is not None:
            self.penalty = self.l2 * sum(self._row_penalty(t, x_sparse[:, i]) for i, t in enumerate(self.owner_index))
        if self.training and self.dropout > 0:
            keep = torch.rand(x_sparse.shape, device=x_sparse.device) >= self.dropout  # (B, F_s)
            out = [e * keep[:, i, None] / (1 - self.dropout) for i, e in enumerate(out)]
        return out

    def _row_penalty(self, t: int, ids: torch.Tensor) -> torch.Tensor:
        """Σ ‖w_j‖² / n_j over the distinct rows ``j`` of table ``t`` in ``ids``."""
        rows = torch.unique(ids)
        return (self.tables[t].weight[rows].float().pow(2).sum(-1) / getattr(self, f"frequency_{t}")[rows]).sum()


class NumericEmbedding(nn.Module):
    """Numeric fields as vectors: ``x_dense`` (B, n_dense) → (B, F_n, D).

    ``kind="linear"``: ``x_f * w_f + b_f``, a per-field learned projection of the
    scaled value (AutoInt, FT-Transformer). ``kind="periodic"``: ``sin``/``cos``
    of ``k`` learned frequencies, then a per-field linear map and ReLU (Gorishniy
    et al. 2022, "On embeddings for numerical features"). ``kind="pwl"``:
    piecewise-linear encoding on fixed edges of the standardised value, then a
    per-field linear map. A missing value adds the field's learned "missing" vector.
    """

    def __init__(self, spec: FeatureSpec, dim: int, kind: str = "linear", n_frequencies: int = 8,
                 n_pieces: int = 8, sigma: float = 1.0):
        super().__init__()
        values, flagged = numeric_fields(spec)
        self.names = values
        self.value_index = [spec.dense.index(v) for v in values]
        self.flag_index = [spec.dense.index(v + MISSING_SUFFIX) for v in flagged]
        self.flag_field = [values.index(v) for v in flagged]
        self.kind = kind
        n = len(values)
        if kind == "linear":
            self.weight = nn.Parameter(torch.randn(n, dim) * 1e-2)
            self.bias = nn.Parameter(torch.zeros(n, dim))
        elif kind == "periodic":
            self.frequencies = nn.Parameter(torch.randn(n, n_frequencies) * sigma)
            self.weight = nn.Parameter(torch.randn(n, 2 * n_frequencies, dim) / math.sqrt(2 * n_frequencies))
            self.bias = nn.Parameter(torch.zeros(n, dim))
        elif kind == "pwl":
            # edges at standard-normal quantiles: the preprocessor scaled each value to mean 0, sd 1
            q = torch.linspace(0, 1, n_pieces + 1)[1:-1]
            inner = math.sqrt(2) * torch.erfinv(2 * q - 1)
            self.register_buffer("edges", torch.cat([torch.tensor([-4.0]), inner, torch.tensor([4.0])]))
            self.weight = nn.Parameter(torch.randn(n, n_pieces, dim) / math.sqrt(n_pieces))
            self.bias = nn.Parameter(torch.zeros(n, dim))
        else:
            raise ValueError(f"numeric embedding kind must be 'linear', 'periodic' or 'pwl', got {kind!r}")
        self.missing = nn.Parameter(torch.zeros(len(flagged), dim)) if flagged else None

    @property
    def n_fields(self) -> int:
        return len(self.value_index)

    def forward(self, x_dense: torch.Tensor) -> torch.Tensor:
        x = x_dense[:, self.value_index]  # (B, F_n)
        if self.kind == "linear":
            out = x[..., None] * self.weight + self.bias  # (B, F_n, D)
        elif self.kind == "periodic":
            z = 2 * math.pi * x[..., None] * self.frequencies  # (B, F_n, k)
            z = torch.cat([torch.sin(z), torch.cos(z)], dim=-1)  # (B, F_n, 2k)
            out = F.relu(torch.einsum("bfk,fkd->bfd", z, self.weight) + self.bias)
        else:
            lo, hi = self.edges[:-1], self.edges[1:]
            z = ((x[..., None] - lo) / (hi - lo)).clamp(0, 1)  # (B, F_n, pieces)
            out = torch.einsum("bfk,fkd->bfd", z, self.weight) + self.bias
        if self.missing is not None:
            m = x_dense[:, self.flag_index]  # (B, F_flagged), 1.0 where the raw value was missing
            out = out.index_add(1, torch.tensor(self.flag_field, device=out.device), m[..., None] * self.missing)
        return out


class FeatureEmbedding(nn.Module):
    """Every field as a token: ``(x_dense, x_sparse)`` → (B, F, D), numeric fields first.

    The one embedding layer of ctrkit's models (see :class:`SparseEmbedding` and
    :class:`NumericEmbedding` for the options). With ``dim=None`` the categorical
    fields take the preprocessor's suggested sizes; :meth:`flat` then concatenates
    (B, ΣD) and :meth:`forward` is unavailable, because tokens need one size.
    """

    def __init__(self, spec: FeatureSpec, dim: int | None = 16, numeric: str = "linear",
                 shared: dict[str, str] | None = None, dropout: float = 0.0, l2: float = 0.0):
        super().__init__()
        self.sparse = SparseEmbedding(spec, dim, shared=shared, dropout=dropout, l2=l2)
        self.dense = NumericEmbedding(spec, dim or 16, kind=numeric)
        self.dim = dim
        self.n_fields = self.dense.n_fields + len(self.sparse.names)
        self.out_features = self.dense.n_fields * (dim or 16) + sum(self.sparse.dims)

    def forward(self, x_dense: torch.Tensor, x_sparse: torch.Tensor) -> torch.Tensor:
        if self.dim is None:
            raise ValueError("tokens need one embedding size: build the model with an integer embed_dim")
        return torch.cat([self.dense(x_dense), torch.stack(self.sparse(x_sparse), dim=1)], dim=1)  # (B, F, D)

    def flat(self, x_dense: torch.Tensor, x_sparse: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.dense(x_dense).flatten(1), *self.sparse(x_sparse)], dim=1)  # (B, ΣD)


class MLP(nn.Sequential):
    """Linear → (BatchNorm) → ReLU → Dropout blocks; ``out_features`` is the last hidden size."""

    def __init__(self, in_features: int, hidden: tuple[int, ...] = (256, 128), dropout: float = 0.0,
                 batch_norm: bool = False):
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(in_features, h)]
            layers += [nn.BatchNorm1d(h)] if batch_norm else []
            layers += [nn.ReLU(), nn.Dropout(dropout)] if dropout > 0 else [nn.ReLU()]
            in_features = h
        super().__init__(*layers)
        self.out_features = in_features


def set_frequencies(model: nn.Module, x_sparse: torch.Tensor) -> None:
    """Give every regularised embedding layer of ``model`` its rows' training counts (see :class:`SparseEmbedding`)."""
    for m in model.modules():
        if isinstance(m, SparseEmbedding) and m.l2 > 0:
            m.set_frequencies(x_sparse)


def embedding_penalty(model: nn.Module) -> torch.Tensor | float:
    """The L2 penalties the model's embedding layers set during the last training forward."""
    total: torch.Tensor | float = 0.0
    for m in (m for m in model.modules() if isinstance(m, SparseEmbedding)):
        if m.l2 > 0 and m.frequency_0 is None:
            raise RuntimeError("embedding l2 needs the rows' training frequencies: call "
                               "set_frequencies(model, train.x_sparse) first (ctrkit.training.fit does)")
        if m.penalty is not None:
            total = total + m.penalty
            m.penalty = None
    return total
