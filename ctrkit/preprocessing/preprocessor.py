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
indicator column (``I1_missing``, whose :class:`DenseColumn` says it is the
``missing`` flag of field ``I1``). Categorical features map to integer ids:
0 is reserved for missing, 1 for out-of-vocabulary (unseen, or seen fewer than
``min_count`` times), 2.. for the vocabulary, most frequent first. A field whose
vocabulary is larger than ``hash_threshold`` is hashed into ``hash_buckets``
buckets instead (ids 2..hash_buckets+1), which bounds the embedding table.

Columns that are not features pass through: the label columns (``labels``:
given, or the Criteo label ``click`` when the data has it) and every other
column of the training data (``p_click``, ``user_id``…); :class:`FeatureSpec`
records both. :meth:`CTRPreprocessor.encode` turns raw rows (a DataFrame, an
arrow Table or a list of dicts) straight into model inputs: an absent or null
field is missing, an unknown category is OOV, and a value that is not a finite
number where one is required is a :class:`~ctrkit.datasets.DataError` naming
the field and the row.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ctrkit.datasets import DENSE, LABEL, SPARSE, DataError
from ctrkit.datasets.splits import row_uniform
from ctrkit.preprocessing.spec import (MISSING, MISSING_FLAG, OOV, DenseColumn, FeatureSpec, SparseField,
                                       suggest_embed_dim)

_FORMAT_VERSION = 2


def _column(data, name: str) -> pa.Array:
    """One column of a pandas DataFrame or a pyarrow Table, as an arrow array (pandas' NaN is null)."""
    if isinstance(data, pa.Table):
        return data[name].combine_chunks()
    return pa.array(data[name], from_pandas=True)


def _bad_row(field: str, row: int, value) -> DataError:
    return DataError(f"field {field!r}, row {row}: {value!r} is not a finite number")


def _dense_values(data, name: str, n: int, row0: int = 0) -> np.ndarray:
    """A numeric field as float64 with NaN for missing (absent or null); anything else non-finite is an error."""
    if name not in _names(data):
        return np.full(n, np.nan)
    column = _column(data, name)
    try:
        x = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = column.to_pylist()
        row = next(i for i, v in enumerate(values) if v is not None and not _is_number(v))
        raise _bad_row(name, row0 + row, values[row]) from None
    bad = ~np.isfinite(x)
    if bad.any():
        bad &= ~column.is_null().to_numpy(zero_copy_only=False)
        if bad.any():
            row = int(np.argmax(bad))
            raise _bad_row(name, row0 + row, float(x[row]))
    return x


def _is_number(value) -> bool:
    """A value a numeric field accepts: a number, or text that reads as one (as arrow's cast does)."""
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _record_values(rows: list[dict], name: str, row0: int = 0) -> np.ndarray:
    """A numeric field of dict rows as float64 with NaN for missing (absent or None)."""
    values = [r.get(name) for r in rows]
    for i, v in enumerate(values):
        if v is not None and not (_is_number(v) and math.isfinite(float(v))):
            raise _bad_row(name, row0 + i, v)
    return np.array(values, dtype=np.float64)


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
        labels: tuple[str, ...] | None = None,
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
        self.labels = None if labels is None else tuple(labels)
        self.bin_sample = bin_sample
        self.seed = seed

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in (
            "dense_transform", "missing_indicator", "n_bins", "min_count", "hash_threshold",
            "hash_buckets", "embed_dim", "dense_fields", "sparse_fields", "labels", "bin_sample", "seed")}

    def _check_params(self) -> None:
        if self.dense_transform not in ("log", "standard", "bins"):
            raise ValueError(f"dense_transform must be 'log', 'standard' or 'bins', got {self.dense_transform!r}")
        if self.min_count < 1 or self.n_bins < 2 or self.hash_buckets < 1:
            raise ValueError("min_count must be >= 1, n_bins >= 2 and hash_buckets >= 1")

    # --- fitting -------------------------------------------------------------------------------

    def fit(self, data) -> CTRPreprocessor:
        """Learn scaling statistics and vocabularies from ``data`` (a DataFrame or arrow Table)."""
        for name in ("counts_", "moments_", "samples_", "n_rows_", "spec_", "labels_", "passthrough_"):
            self.__dict__.pop(name, None)
        return self.partial_fit(data)

    def partial_fit(self, data, finalize: bool = True) -> CTRPreprocessor:
        """Add one chunk of training rows to the statistics and refresh the fitted state.

        ``finalize=False`` only adds to the running statistics (vocabularies are
        sorted once, by :meth:`finalize`, after the last chunk of a file).
        """
        self._check_params()
        missing = [c for c in self.dense_fields + self.sparse_fields + (self.labels or ()) if c not in _names(data)]
        if missing:
            raise DataError(f"columns missing from the data: {', '.join(missing)}")
        if hasattr(self, "spec_") and not hasattr(self, "counts_"):
            raise RuntimeError("a loaded preprocessor keeps no running counts to add to; call fit() to start afresh")
        if not hasattr(self, "counts_"):
            self.counts_ = {f: [] for f in self.sparse_fields}  # per-chunk value counts, merged in batches
            self.moments_ = {f: _Moments() for f in self.dense_fields}
            self.samples_ = {f: np.empty(0) for f in self.dense_fields}
            self.n_rows_ = 0
            features = set(self.dense_fields + self.sparse_fields)
            found = tuple(c for c in (LABEL,) if c in _names(data))
            self.labels_ = found if self.labels is None else self.labels
            self.passthrough_ = tuple(c for c in _names(data) if c not in features and c not in self.labels_)
        n = _n_rows(data)
        keep = row_uniform(np.arange(self.n_rows_, self.n_rows_ + n), self.seed) < self.bin_sample / max(n, self.bin_sample)
        for f in self.dense_fields:
            x = _dense_values(data, f, n, self.n_rows_)
            present = ~np.isnan(x)
            self.moments_[f].add(self._pre_scale(x[present]))
            if self.dense_transform == "bins":
                self.samples_[f] = _cap(np.concatenate([self.samples_[f], x[present & keep]]), self.bin_sample, self.seed)
        for f in self.sparse_fields:
            vc = pc.value_counts(_column(data, f).cast(pa.string()).drop_null())
            self.counts_[f].append(pa.table([vc.field("values"), vc.field("counts").cast(pa.int64())],
                                            names=["value", "count"]))
            if len(self.counts_[f]) >= 8:  # merge now and then: one group-by for many chunks, memory still bounded
                self.counts_[f] = [_merge_counts(self.counts_[f])]
        self.n_rows_ += n
        if finalize:
            self.finalize()
        return self

    def _pre_scale(self, x: np.ndarray) -> np.ndarray:
        return np.copysign(np.log1p(np.abs(x)), x) if self.dense_transform == "log" else x  # sign(x)·log(1 + |x|)

    def finalize(self) -> None:
        """Turn the running statistics into the fitted state used by ``transform``."""
        self.mean_ = {f: m.mean for f, m in self.moments_.items()}
        self.std_ = {f: m.std for f, m in self.moments_.items()}
        self.bin_edges_ = {}
        if self.dense_transform == "bins":
            qs = np.linspace(0, 1, self.n_bins + 1)[1:-1]
            self.bin_edges_ = {f: np.unique(np.quantile(s, qs)).tolist() if len(s) else [] for f, s in self.samples_.items()}
        self.vocab_, self.hashed_ = {}, {}
        for f in self.counts_:
            self.counts_[f] = [counts := _merge_counts(self.counts_[f])]
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
            sparse.append((f, len(self.bin_edges_[f]) + 2, False, True))
        for f in self.sparse_fields:
            size = self.hashed_[f] + 2 if f in self.hashed_ else len(self.vocab_[f]) + 2
            sparse.append((f, size, f in self.hashed_, False))
        dense = [] if binned else [DenseColumn(f, f) for f in self.dense_fields]
        if self.missing_indicator and not binned:
            dense += [DenseColumn(f"{f}_missing", f, MISSING_FLAG) for f in self.dense_fields]
        return FeatureSpec(
            dense=tuple(dense),
            sparse=tuple(SparseField(n, v, self.embed_dim or suggest_embed_dim(v), h, b) for n, v, h, b in sparse),
            labels=self.labels_,
            passthrough=self.passthrough_,
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

    def encode(self, data, row0: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Raw rows → model inputs ``(x_dense (N, n_dense) float32, x_sparse (N, F) int64)``.

        ``data``: a DataFrame, an arrow Table, or a list of dicts (one row each,
        any field may be absent). Absent and null fields are missing, unknown
        categories OOV; ``row0`` numbers the rows in error messages (a file's
        chunk offset). Lists of dicts take a per-value path that is fast for a
        few rows; tables take arrow's vectorised one; both give the same numbers.
        """
        self._check_fitted()
        if isinstance(data, dict):
            raise TypeError("encode takes a list of dicts (one per row), a DataFrame or an arrow Table, not one dict")
        n, records, spec = _n_rows(data), isinstance(data, list), self.spec_
        # column-major: each field is filled, and read back by transform_table, as one contiguous column
        raw = np.empty((n, len(self.dense_fields)), order="F")  # (N, F_n) float64, NaN = missing
        for i, f in enumerate(self.dense_fields):
            raw[:, i] = _record_values(data, f, row0) if records else _dense_values(data, f, n, row0)
        x_dense = np.zeros((n, len(spec.dense)), dtype=np.float32, order="F")
        x_sparse = np.empty((n, len(spec.sparse)), dtype=np.int64, order="F")
        missing = np.isnan(raw)
        if self.dense_transform == "bins":  # binned fields are x_sparse's first columns
            for i, f in enumerate(self.dense_fields):
                x_sparse[:, i] = np.where(missing[:, i], MISSING, np.searchsorted(self.bin_edges_[f], raw[:, i], "right") + 1)
        else:
            mean, std = (np.array([d[f] for f in self.dense_fields]) for d in (self.mean_, self.std_))
            x_dense[:, :len(self.dense_fields)] = np.where(missing, 0.0, (self._pre_scale(raw) - mean) / std)
            x_dense[:, len(self.dense_fields):] = missing[:, :len(spec.dense) - len(self.dense_fields)]
        first = len(spec.sparse) - len(self.sparse_fields)
        if records:
            x_sparse[:, first:] = self._encode_records(data)
        else:
            for j, f in enumerate(self.sparse_fields):
                x_sparse[:, first + j] = self._encode(data, f, n)
        return x_dense, x_sparse

    def transform_table(self, data) -> pa.Table:
        """Transform to an arrow table: label and passthrough columns, dense float32 columns, sparse int32 ids."""
        x_dense, x_sparse = self.encode(data)
        spec = self.spec_
        kept = [c for c in spec.labels + spec.passthrough if c in _names(data)]
        arrays = [_column(data, c) for c in kept]
        arrays += [pa.array(x_dense[:, i]) for i in range(x_dense.shape[1])]
        arrays += [pa.array(x_sparse[:, j].astype(np.int32)) for j in range(x_sparse.shape[1])]
        return pa.table(arrays, names=kept + list(spec.dense_names) + [s.name for s in spec.sparse])

    def _encode(self, data, f: str, n: int) -> np.ndarray:
        if f not in _names(data):
            return np.full(n, MISSING, dtype=np.int64)
        values = _column(data, f).cast(pa.string())
        is_missing = values.is_null().to_numpy(zero_copy_only=False)
        if f in self.hashed_:
            ids = _hash_bucket(values.fill_null(""), self.hashed_[f]) + 2
        else:
            pos = pc.index_in(values, value_set=self._value_set(f))
            ids = pos.fill_null(OOV - 2).to_numpy().astype(np.int64) + 2
        return np.where(is_missing, MISSING, ids)

    def _encode_records(self, rows: list[dict]) -> np.ndarray:
        """The categorical ids of dict rows, (N, F_s): one dict lookup per value, no arrow call."""
        lookups = [self._lookup(f) if f not in self.hashed_ else None for f in self.sparse_fields]
        fields = list(zip(self.sparse_fields, lookups))
        ids = np.array([[MISSING if (v := row.get(f)) is None else lookup.get(str(v), OOV) if lookup is not None else -1
                         for f, lookup in fields] for row in rows], dtype=np.int64).reshape(len(rows), len(fields))
        for j, (f, lookup) in enumerate(fields):
            if lookup is None:  # hashed: one vectorised call per field
                values = [row.get(f) for row in rows]
                buckets = _hash_bucket(pa.array(["" if v is None else str(v) for v in values], pa.string()),
                                       self.hashed_[f]) + 2
                ids[:, j] = np.where([v is None for v in values], MISSING, buckets)
        return ids

    # The lookups are built once per field, on first use (a loaded preprocessor pays for them once).
    def _value_set(self, f: str) -> pa.Array:
        cache = self.__dict__.setdefault("_value_sets", {})
        if f not in cache:
            cache[f] = pa.array(self.vocab_[f], type=pa.string())
        return cache[f]

    def _lookup(self, f: str) -> dict[str, int]:
        cache = self.__dict__.setdefault("_lookups", {})
        if f not in cache:
            cache[f] = {v: i + 2 for i, v in enumerate(self.vocab_[f])}
        return cache[f]

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
            raise DataError(f"{path}: not a ctrkit preprocessor file of format version {_FORMAT_VERSION} "
                            "(prepare the data again with this ctrkit)")
        params = d["params"]
        pre = cls(**params)
        pre.n_rows_, pre.mean_, pre.std_ = d["n_rows"], d["mean"], d["std"]
        pre.bin_edges_, pre.vocab_, pre.hashed_ = d["bin_edges"], d["vocab"], d["hashed"]
        pre.spec_ = FeatureSpec.from_dict(d["spec"])
        pre.labels_, pre.passthrough_ = pre.spec_.labels, pre.spec_.passthrough
        return pre


_EMPTY_COUNTS = pa.table({"value": pa.array([], pa.string()), "count": pa.array([], pa.int64())})


def _merge_counts(tables: list[pa.Table]) -> pa.Table:
    """One (value, count) table from several: the counts of equal values summed."""
    if len(tables) == 1:
        return tables[0]
    merged = pa.concat_tables([_EMPTY_COUNTS, *tables]).group_by("value").aggregate([("count", "sum")])
    return merged.rename_columns(["value", "count"])


def _names(data) -> list[str]:
    if isinstance(data, list):  # dict rows: the fields any row has
        return list(dict.fromkeys(k for row in data for k in row))
    return data.column_names if isinstance(data, pa.Table) else list(data.columns)


def _n_rows(data) -> int:
    return data.num_rows if isinstance(data, pa.Table) else len(data)


def _cap(x: np.ndarray, size: int, seed: int) -> np.ndarray:
    """At most ``size`` values of ``x``, drawn without replacement (deterministically)."""
    if len(x) <= size:
        return x
    return np.random.default_rng(seed).choice(x, size, replace=False)
