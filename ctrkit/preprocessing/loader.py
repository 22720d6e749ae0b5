"""Batches for PyTorch: slices of pre-built tensors, never a per-row ``__getitem__`` (chapter 02).

A ``torch.utils.data.DataLoader`` over a row-wise ``Dataset`` calls Python once
per row and collates the rows back into a batch; at CTR batch sizes (thousands
of rows of 39 features) that overhead, not the model, sets the pace. Here the
whole split is three tensors and a batch is one indexing operation on each.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from ctrkit.preprocessing.spec import FeatureSpec


@dataclass
class CTRTensors:
    """One split as tensors: ``x_dense`` (N, n_dense) float32, ``x_sparse`` (N, F) int64, ``y`` float32.

    ``y`` is (N,) for one label and (N, L) for several (multi-task); None for unlabelled data.
    """

    x_dense: torch.Tensor
    x_sparse: torch.Tensor
    y: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.x_sparse.shape[0]

    @classmethod
    def from_frame(cls, data: pd.DataFrame | pa.Table, spec: FeatureSpec,
                   labels: Sequence[str] | None = None) -> CTRTensors:
        """Build tensors from transformed data (a DataFrame or an arrow Table), columns in the spec's order.

        ``labels``: the label columns for ``y`` (default: the spec's); ``y`` is
        None when the data lacks any of them (an unlabelled test file).
        """
        labels = spec.labels if labels is None else tuple(labels)
        names = data.column_names if isinstance(data, pa.Table) else list(data.columns)

        def block(columns, dtype) -> np.ndarray:  # (N, len(columns))
            if isinstance(data, pa.Table):
                return np.stack([data[c].to_numpy().astype(dtype) for c in columns], axis=1) if columns else \
                    np.zeros((data.num_rows, 0), dtype)
            return data[list(columns)].to_numpy(dtype, copy=True).reshape(len(data), -1)

        x_dense = torch.from_numpy(block(spec.dense_names, np.float32))
        x_sparse = torch.from_numpy(block([s.name for s in spec.sparse], np.int64))
        y = None
        if labels and all(c in names for c in labels):
            y = torch.from_numpy(block(labels, np.float32))
            y = y[:, 0].contiguous() if len(labels) == 1 else y
        return cls(x_dense, x_sparse, y)

    def subset(self, index: torch.Tensor) -> CTRTensors:
        return CTRTensors(self.x_dense[index], self.x_sparse[index], None if self.y is None else self.y[index])


class BatchLoader:
    """Iterate over ``(x_dense, x_sparse, y)`` batches of a :class:`CTRTensors`.

    With ``shuffle=True`` each pass draws a new permutation from ``seed`` and the
    pass number, so runs are reproducible. On CUDA the tensors are pinned once
    and copied with ``non_blocking=True``, overlapping the copy with compute.
    ``rank`` of ``world_size`` processes takes every ``world_size``-th row of
    each pass's order (the same permutation in every process): disjoint shards.
    """

    def __init__(self, data: CTRTensors, batch_size: int = 4096, shuffle: bool = False, seed: int = 0,
                 device: str | torch.device = "cpu", drop_last: bool = False, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.device = torch.device(device)
        if self.device.type == "cuda":
            data = CTRTensors(*(t.pin_memory() if t is not None else None for t in (data.x_dense, data.x_sparse, data.y)))
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank {rank} of {world_size}")
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def _rows(self) -> int:
        return len(range(self.rank, len(self.data), self.world_size))

    def __len__(self) -> int:
        n = self._rows()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        n = self._rows()
        order = None
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(len(self.data), generator=g)
        if self.world_size > 1:
            order = (order if order is not None else torch.arange(len(self.data)))[self.rank::self.world_size]
        self.epoch += 1
        non_blocking = self.device.type == "cuda"
        for i in range(len(self)):
            sl = slice(i * self.batch_size, min((i + 1) * self.batch_size, n))
            idx = order[sl] if order is not None else sl
            batch = (self.data.x_dense[idx], self.data.x_sparse[idx], None if self.data.y is None else self.data.y[idx])
            yield tuple(None if t is None else t.to(self.device, non_blocking=non_blocking) for t in batch)
