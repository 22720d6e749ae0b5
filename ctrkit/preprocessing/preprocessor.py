"""The CTR preprocessor: dense scaling and categorical vocabularies, saved as JSON (chapter 02).

A scikit-learn-style estimator: ``__init__`` only stores settings, ``fit``
learns state whose names end in ``_``, ``transform`` checks it was fitted.
Every statistic it learns is a sum or a count (except quantile bin edges, taken
from a fixed-size sample), so ``partial_fit`` can learn from a file chunk by
chunk, and a Spark job could compute the same numbers with a ``groupBy``. The fitted state is plain JSON: loading it runs no code,
unlike a pickle.

Dense (count) features, per ``dense_transform``:

- ``"log"`` (default): ``z = sign(x) * log1p(|x|)``, then standardised — counts are
  heavy-tailed, and the log keeps one huge count from dominating the gradient;
- ``"standard"``: ``(x - mean) / std`` on the raw counts;
- ``"bins"``: quantile bins, each bin a categorical token (the field moves to the sparse side).

Missing values are filled with the mean (0 after scaling) and flagged by an
``<name>_missing`` indicator column. Categorical features map to integer ids:
0 is reserved for missing, 1 for out-of-vocabulary (unseen, or seen fewer than
``min_count`` times), 2.. for the vocabulary, most frequent first. A field whose
vocabulary is larger than ``hash_threshold`` is hashed into ``hash_buckets``
buckets instead (ids 2..hash_buckets+1), which bounds the embedding table.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ctrkit.datasets import DENSE, SPARSE
from ctrkit.datasets.splits import row_uniform

MISSING, OOV = 0, 1  # reserved categorical ids
PASSTHROUGH = ("label", "conversion", "p_click", "p_conversion", "user_id", "ts")
LABELS = ("label", "conversion")
_FORMAT_VERSION = 1


def suggest_embed_dim(vocab_size: int) -> int:
    """Embedding size for a field: ``min(50, round(6 * vocab_size ** 0.25))``.

    The heuristic of the Deep & Cross Network paper (Wang et al., 2017): the
    dimension grows with the fourth root of the vocabulary (as in Google's
    feature-column guide), so a 10-value field gets 11 and a 100k-value field
    50 (the cap). Chapter 02.
    """
    return int(min(50, round(6 * vocab_size**0.25)))


@dataclass(frozen=True)
class SparseField:
    name: str
    vocab_size: int  # including the reserved ids
    embed_dim: int
    hashed: bool = False


@dataclass(frozen=True)
class FeatureSpec:
    """What models need to know about the features (the schema between data and models).

    ``dense`` names the float columns of ``x_dense`` in order, ``sparse`` the
    integer columns of ``x_sparse``; ``labels`` the targets a trainer may use.
    """

    dense: tuple[str, ...]
    sparse: tuple[SparseField, ...]
    labels: tuple[str, ...] = ("label",)

    @property
    def n_fields(self) -> int:
        return len(self.dense) + len(self.sparse)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        return cls(tuple(d["dense"]), tuple(SparseField(**s) for s in d["sparse"]), tuple(d["labels"]))


def _column(data, name: str) -> pa.Array:
    """One column of a pandas DataFrame or a pyarrow Table, as an arrow array."""
    if isinstance(data, pa.Table):
        return data[name].combine_chunks()
    return pa.array(data[name], from_pandas=True)


def _dense_values(data, name: str) -> np.ndarray:
    return _column(data, name).cast(pa.float64()).to_numpy(zero_copy_only=False)


def _hash_bucket(values: pa.Array, n_buckets: int) -> np.ndarray:
    """Stable bucket of each string: pandas' ``hash_array`` (SipHash-2-4, then a bit mix) mod ``n_buckets``."""
    h = pd.util.hash_array(values.to_numpy(zero_copy_only=False).astype(object), categorize=False)
    return (h % np.uint64(n_buckets)).astype(np.int64)


@dataclass
class _Moments:
    """Count, mean and sum of squared deviations; merged with Chan's parallel formula."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: np.ndarray) -> None:
        if len(x) == 0:
            return
        n, mean, m2 = len(x), float(x.mean()), float(((x - x.mean()) ** 2).sum())
        delta, total = mean - self.mean, self.n + n
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.n * n / total
        self.n = total

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n > 1 and self.m2 > 0 else 1.0


class CTRPreprocessor:
    """Fit on training rows, transform any rows; see the module docstring. Chapter 02."""

    def __init__(
        self,
        dense_transform: str = "log",
        missing_indicator: bool = True,
        n_bins: int = 16,
        min_count: int = 2,
        hash_threshold: int | None = None,
        hash_buckets: int = 100_000,
        embed_dim: int | None = None,
        dense_fields: tuple[str, ...] = tuple(DENSE),
        sparse_fields: tuple[str, ...] = tuple(SPARSE),
        bin_sample: int = 200_000,
        seed: int = 0,
    ):
        self.dense_transform = dense_transform
        self.missing_indicator = missing_indicator
        self.n_bins = n_bins
        self.min_count = min_count
        self.hash_threshold = hash_threshold
        self.hash_buckets = hash_buckets
        self.embed_dim = embed_dim
        self.dense_fields = tuple(dense_fields)
        self.sparse_fields = tuple(sparse_fields)
        self.bin_sample = bin_sample
        self.seed = seed

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in (
            "dense_transform", "missing_indicator", "n_bins", "min_count", "hash_threshold",
            "hash_buckets", "embed_dim", "dense_fields", "sparse_fields", "bin_sample", "seed")}

    def _check_params(self) -> None:
        if self.dense_transform not in ("log", "standard", "bins"):
            raise ValueError(f"dense_transform must be 'log', 'standard' or 'bins', got {self.dense_transform!r}")
        if self.min_count < 1 or self.n_bins < 2 or self.hash_buckets < 1:
            raise ValueError("min_count must be >= 1, n_bins >= 2 and hash_buckets >= 1")

    # --- fitting -------------------------------------------------------------------------------

    def fit(self, data) -> CTRPreprocessor:
        """Learn scaling statistics and vocabularies from ``data`` (a DataFrame or arrow Table)."""
        for name in ("counts_", "moments_", "samples_", "n_rows_", "spec_"):
            self.__dict__.pop(name, None)
        return self.partial_fit(data)

    def partial_fit(self, data) -> CTRPreprocessor:
        """Add one chunk of training rows to the statistics and refresh the fitted state."""
        self._check_params()
        missing = [c for c in self.dense_fields + self.sparse_fields if c not in _names(data)]
        if missing:
            raise KeyError(f"columns missing from the data: {', '.join(missing)}")
        if hasattr(self, "spec_") and not hasattr(self, "counts_"):
            raise RuntimeError("a loaded preprocessor keeps no running counts to add to; call fit() to start afresh")
        if not hasattr(self, "counts_"):
            self.counts_ = {f: _EMPTY_COUNTS for f in self.sparse_fields}
            self.moments_ = {f: _Moments() for f in self.dense_fields}
            self.samples_ = {f: np.empty(0) for f in self.dense_fields}
            self.n_rows_ = 0
        n = len(data) if not isinstance(data, pa.Table) else data.num_rows
        keep = row_uniform(np.arange(self.n_rows_, self.n_rows_ + n), self.seed) < self.bin_sample / max(n, self.bin_sample)
        for f in self.dense_fields:
            x = _dense_values(data, f)
            present = ~np.isnan(x)
            self.moments_[f].add(self._pre_scale(x[present]))
            if self.dense_transform == "bins":
                self.samples_[f] = _cap(np.concatenate([self.samples_[f], x[present & keep]]), self.bin_sample, self.seed)
        for f in self.sparse_fields:
            vc = pc.value_counts(_column(data, f).cast(pa.string()).drop_null())
            chunk = pa.table([vc.field("values"), vc.field("counts").cast(pa.int64())], names=["value", "count"])
            merged = pa.concat_tables([self.counts_[f], chunk]).group_by("value").aggregate([("count", "sum")])
            self.counts_[f] = merged.rename_columns(["value", "count"])
        self.n_rows_ += n
        self._finalize()
        return self

    def _pre_scale(self, x: np.ndarray) -> np.ndarray:
        return np.sign(x) * np.log1p(np.abs(x)) if self.dense_transform == "log" else x

    def _finalize(self) -> None:
        """Turn the running statistics into the fitted state used by ``transform``."""
        self.mean_ = {f: m.mean for f, m in self.moments_.items()}
        self.std_ = {f: m.std for f, m in self.moments_.items()}
        self.bin_edges_ = {}
        if self.dense_transform == "bins":
            qs = np.linspace(0, 1, self.n_bins + 1)[1:-1]
            self.bin_edges_ = {f: np.unique(np.quantile(s, qs)).tolist() if len(s) else [] for f, s in self.samples_.items()}
        self.vocab_, self.hashed_ = {}, {}
        for f, counts in self.counts_.items():
            kept = counts.filter(pc.greater_equal(counts["count"], self.min_count))
            if self.hash_threshold is not None and kept.num_rows > self.hash_threshold:
                self.hashed_[f] = self.hash_buckets
            else:
                kept = kept.sort_by([("count", "descending"), ("value", "ascending")])
                self.vocab_[f] = kept["value"].to_pylist()
        self.spec_ = self._make_spec()

    def _make_spec(self) -> FeatureSpec:
        sparse = []
        binned = self.dense_fields if self.dense_transform == "bins" else ()
        for f in binned:
            sparse.append((f, len(self.bin_edges_[f]) + 2, False))
        for f in self.sparse_fields:
            size = self.hashed_[f] + 2 if f in self.hashed_ else len(self.vocab_[f]) + 2
            sparse.append((f, size, f in self.hashed_))
        dense = () if binned else self.dense_fields
        if self.missing_indicator and not binned:
            dense = dense + tuple(f"{f}_missing" for f in self.dense_fields)
        return FeatureSpec(
            dense=tuple(dense),
            sparse=tuple(SparseField(n, v, self.embed_dim or suggest_embed_dim(v), h) for n, v, h in sparse),
        )

    # --- transforming --------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "spec_"):
            raise RuntimeError("this CTRPreprocessor is not fitted yet: call fit() or load() first")

    @property
    def spec(self) -> FeatureSpec:
        """The feature spec models are built from (needs a fitted preprocessor)."""
        self._check_fitted()
        return self.spec_

    def transform_table(self, data) -> pa.Table:
        """Transform to an arrow table: dense float32 columns, sparse int32 ids, passthrough columns."""
        self._check_fitted()
        out: dict[str, pa.Array] = {}
        for c in PASSTHROUGH:
            if c in _names(data):
                out[c] = _column(data, c)
        dense = {f: _dense_values(data, f) for f in self.dense_fields}
        if self.dense_transform == "bins":
            for f, x in dense.items():
                ids = np.searchsorted(np.asarray(self.bin_edges_[f]), x, side="right") + 1
                out[f] = pa.array(np.where(np.isnan(x), MISSING, ids).astype(np.int32))
        else:
            for f, x in dense.items():
                z = (self._pre_scale(x) - self.mean_[f]) / self.std_[f]
                out[f] = pa.array(np.nan_to_num(z, nan=0.0).astype(np.float32))
            if self.missing_indicator:
                for f, x in dense.items():
                    out[f"{f}_missing"] = pa.array(np.isnan(x).astype(np.float32))
        for f in self.sparse_fields:
            out[f] = pa.array(self._encode(_column(data, f), f))
        names = [c for c in PASSTHROUGH if c in out] + list(self.spec_.dense) + [s.name for s in self.spec_.sparse]
        return pa.table([out[c] for c in names], names=names)

    def _encode(self, values: pa.Array, f: str) -> np.ndarray:
        values = values.cast(pa.string())
        is_missing = values.is_null().to_numpy(zero_copy_only=False)
        if f in self.hashed_:
            ids = _hash_bucket(values.fill_null(""), self.hashed_[f]) + 2
        else:
            pos = pc.index_in(values, value_set=pa.array(self.vocab_[f], type=pa.string()))
            ids = pos.fill_null(OOV - 2).to_numpy().astype(np.int64) + 2
        return np.where(is_missing, MISSING, ids).astype(np.int32)

    def transform(self, data) -> pd.DataFrame:
        """Transform a DataFrame (or arrow Table) into model inputs; see :meth:`transform_table`."""
        return self.transform_table(data).to_pandas()

    def fit_transform(self, data) -> pd.DataFrame:
        return self.fit(data).transform(data)

    # --- saving ---------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        self._check_fitted()
        return {
            "format": "ctrkit.preprocessor",
            "version": _FORMAT_VERSION,
            "params": self.get_params(),
            "n_rows": self.n_rows_,
            "mean": self.mean_,
            "std": self.std_,
            "bin_edges": self.bin_edges_,
            "vocab": self.vocab_,
            "hashed": self.hashed_,
            "hash": "pandas.util.hash_array(values, categorize=False): SipHash-2-4 of the UTF-8 value with key "
                    "'0123456789123456', then pandas' 64-bit mixing step; bucket = 2 + hash mod buckets",
            "spec": self.spec_.to_dict(),
        }

    def save(self, path) -> Path:
        """Write the fitted state as JSON (no pickle: loading a JSON file cannot run code)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path) -> CTRPreprocessor:
        """Read a preprocessor written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such preprocessor file")
        d = json.loads(path.read_text())
        if d.get("format") != "ctrkit.preprocessor" or d.get("version") != _FORMAT_VERSION:
            raise ValueError(f"{path}: not a ctrkit preprocessor (version {_FORMAT_VERSION}) file")
        params = d["params"]
        params["dense_fields"], params["sparse_fields"] = tuple(params["dense_fields"]), tuple(params["sparse_fields"])
        pre = cls(**params)
        pre.n_rows_, pre.mean_, pre.std_ = d["n_rows"], d["mean"], d["std"]
        pre.bin_edges_, pre.vocab_, pre.hashed_ = d["bin_edges"], d["vocab"], d["hashed"]
        pre.spec_ = FeatureSpec.from_dict(d["spec"])
        return pre


_EMPTY_COUNTS = pa.table({"value": pa.array([], pa.string()), "count": pa.array([], pa.int64())})


def _names(data) -> list[str]:
    return data.column_names if isinstance(data, pa.Table) else list(data.columns)


def _cap(x: np.ndarray, size: int, seed: int) -> np.ndarray:
    """At most ``size`` values of ``x``, drawn without replacement (deterministically)."""
    if len(x) <= size:
        return x
    return np.random.default_rng(seed).choice(x, size, replace=False)
