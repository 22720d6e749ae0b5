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

from ctrkit._config import ConfigError
from ctrkit.preprocessing.spec import MISSING_FLAG, FeatureSpec


class SparseEmbedding(nn.Module):
    """The categorical fields' vectors from one fused table: ``x_sparse`` (B, F_s) → (B, F_s, D).

    Each field owns a block of rows of one ``nn.Embedding`` (``offsets`` says
    where), so a batch is one lookup, not one per field (torchrec's layout).
    ``shared={"C14": "C6"}`` makes C14 look up C6's rows, which is meaningful
    when both fields are encoded into the same id space (hashed with the same
    buckets, or one shared vocabulary). ``dropout`` drops a whole field's vector
    for a row (embedding dropout). ``l2`` is the weight of :meth:`penalty`,
    ``l2 * Σ_j ‖w_j‖² / n_j`` over the distinct rows ``j`` looked up in a batch,
    where ``n_j`` is how often row ``j`` occurs in the training data
    (:meth:`set_frequencies`; :func:`ctrkit.training.fit` calls it). Only the
    rows in the batch are regularised, each once per batch that contains it,
    and divided by its count, so rare values are pulled towards 0 much harder
    per occurrence than frequent ones: the mini-batch aware regularisation of
    DIN (Zhou et al. 2018), which stops the 100k-value fields from being
    memorised after one epoch (chapter 03).
    """

    def __init__(self, spec: FeatureSpec, dim: int = 16, shared: dict[str, str] | None = None,
                 dropout: float = 0.0, l2: float = 0.0):
        super().__init__()
        fields = {s.name: s for s in spec.sparse}
        shared = dict(shared or {})
        for name, owner in shared.items():
            if name not in fields or owner not in fields:
                raise ConfigError(f"shared embedding {name!r} -> {owner!r}: both must be categorical fields of the spec")
            if owner in shared:
                raise ConfigError(f"shared embedding {name!r} -> {owner!r}: {owner!r} is itself shared; name the owner")
        self.names = [s.name for s in spec.sparse]
        owners = [shared.get(n, n) for n in self.names]
        sizes = {o: max(fields[n].vocab_size for n, owner in zip(self.names, owners) if owner == o) for o in owners}
        starts = dict(zip(sizes, [0, *torch.tensor(list(sizes.values())).cumsum(0).tolist()]))
        self.register_buffer("offsets", torch.tensor([starts[o] for o in owners], dtype=torch.long), persistent=False)
        self.sizes = [sizes[o] for o in owners]  # the rows each field can look up
        self.table = nn.Embedding(max(sum(sizes.values()), 1), dim)
        nn.init.normal_(self.table.weight, std=1e-2)
        self.register_buffer("frequency", None, persistent=False)  # each row's training count, for l2
        self.dim = dim
        self.dropout = dropout
        self.l2 = l2

    def rows(self, field: str) -> torch.Tensor:
        """The block of the table that ``field`` looks up: row ``i`` is the vector of id ``i`` (a view)."""
        i = self.names.index(field)
        start = int(self.offsets[i])
        return self.table.weight[start:start + self.sizes[i]]

    @torch.no_grad()
    def set_frequencies(self, x_sparse: torch.Tensor) -> None:
        """Count how often each row of the table occurs in the training ids ``x_sparse`` (for ``l2``).

        Under ``torch.distributed`` each process holds a shard of the training
        data: the counts are summed across processes, so every process divides
        by the count of the whole data.
        """
        ids = (x_sparse.to(self.offsets.device) + self.offsets).flatten().cpu()
        n = torch.bincount(ids, minlength=self.table.num_embeddings).to(self.table.weight)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(n)
        self.frequency = n.clamp(min=1.0)

    def forward(self, x_sparse: torch.Tensor) -> torch.Tensor:
        ids = x_sparse + self.offsets
        # (B, F_s, D): one lookup for every field; on the CPU with the backward of _CPULookup
        w = self.table.weight
        out = _CPULookup.apply(w, ids) if w.device.type == "cpu" and w.dtype == torch.float32 else self.table(ids)
        if self.training and self.dropout > 0:
            keep = torch.rand(x_sparse.shape, device=x_sparse.device) >= self.dropout  # (B, F_s)
            out = out * keep[..., None] / (1 - self.dropout)
        return out

    def penalty(self, x_sparse: torch.Tensor) -> torch.Tensor:
        """``l2 * Σ ‖w_j‖² / n_j`` over the distinct rows ``j`` of the table that ``x_sparse`` looks up."""
        if self.frequency is None:
            raise RuntimeError("embedding l2 needs the rows' training frequencies: call "
                               "set_frequencies(model, train.x_sparse) first (ctrkit.training.fit does)")
        rows = torch.unique(x_sparse + self.offsets)  # one call for all fields
        return self.l2 * (self.table.weight[rows].float().pow(2).sum(-1) / self.frequency[rows]).sum()


class _CPULookup(torch.autograd.Function):
    """``weight[ids]`` whose backward sums the rows' gradients with ``index_add_``.

    The same gradient as ``nn.Embedding``'s, bit for bit, in about half the time on the CPU (whose embedding
    backward sorts the ids first): forward + backward 11.7 ms against 22.6 ms for a 4096 x 39 batch into a
    122k x 16 table (``benchmarks/attention.py``, 2 threads). fp32 tables only (the embedding backward of a
    bf16 table adds in fp32); on a GPU ``index_add_`` adds in no fixed order, so the GPU keeps ``nn.Embedding``.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.rows = weight.shape[0]
        return F.embedding(ids, weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (ids,) = ctx.saved_tensors
        d = grad.shape[-1]
        weight_grad = grad.new_zeros(ctx.rows, d).index_add_(0, ids.flatten(), grad.reshape(-1, d))
        return weight_grad, None


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
        values = list(spec.numeric_fields)
        flagged = [v for v in values if spec.dense_index(v, MISSING_FLAG) is not None]
        self.names = values
        self.value_index = [spec.dense_index(v) for v in values]
        self.flag_index = [spec.dense_index(v, MISSING_FLAG) for v in flagged]
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
            raise ConfigError(f"numeric embedding kind must be 'linear', 'periodic' or 'pwl', got {kind!r}")
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
    :class:`NumericEmbedding` for the options); ``out_features`` is F·D, the
    width of the tokens flattened.
    """

    def __init__(self, spec: FeatureSpec, dim: int = 16, numeric: str = "linear",
                 shared: dict[str, str] | None = None, dropout: float = 0.0, l2: float = 0.0):
        super().__init__()
        self.spec = spec  # the fields its tokens stand for (interpretation reads them)
        self.sparse = SparseEmbedding(spec, dim, shared=shared, dropout=dropout, l2=l2)
        self.dense = NumericEmbedding(spec, dim, kind=numeric)
        self.dim = dim
        self.fields = list(spec.fields)
        self.n_fields = len(self.fields)
        self.out_features = self.n_fields * dim

    def forward(self, x_dense: torch.Tensor, x_sparse: torch.Tensor) -> torch.Tensor:
        if not self.dense.n_fields:  # every field categorical (numeric ones binned): no copy into a new tensor
            return self.sparse(x_sparse)  # (B, F, D)
        return torch.cat([self.dense(x_dense), self.sparse(x_sparse)], dim=1)  # (B, F, D)


class CTRModel(nn.Module):
    """The contract of every ctrkit model: ``forward = head ∘ embed``.

    ``embed(x_dense, x_sparse)`` → tokens, a tuple of (B, F, D_k) tensors with
    one row per field in :attr:`FeatureSpec.fields` order (the outputs of the
    model's embedding layers); ``head(tokens)`` → logits (B,), or (B, L) for
    several labels. Interpretation (chapter 07) attributes through ``head``;
    ``return_attn=True`` also returns the attention maps (empty for models
    without attention).
    """

    def embed(self, x_dense: torch.Tensor, x_sparse: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def head(self, tokens: tuple[torch.Tensor, ...], return_attn: bool = False):
        raise NotImplementedError

    def forward(self, x_dense: torch.Tensor, x_sparse: torch.Tensor, return_attn: bool = False):
        return self.head(self.embed(x_dense, x_sparse), return_attn)


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


def embedding_penalty(model: nn.Module, x_sparse: torch.Tensor) -> torch.Tensor | float:
    """The frequency-aware L2 of every regularised embedding layer of ``model`` for the batch ``x_sparse``.

    The trainer adds it to the loss of the batch; models never keep it.
    """
    terms = [m.penalty(x_sparse) for m in model.modules() if isinstance(m, SparseEmbedding) and m.l2 > 0]
    return sum(terms) if terms else 0.0
