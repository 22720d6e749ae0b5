"""Embeddings in two dimensions with UMAP (McInnes et al. 2018), chapter 07.

:func:`embedding_umap` places each value of a categorical field by its learned
vector; :func:`representation_umap` places rows by the vector the model's head
reads (for the Transformer, the MLP on the [CLS] token and the cross network). With a fixed
``seed`` umap-learn is deterministic (and single-threaded).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from ctrkit.models.layers import SparseEmbedding


def _umap(vectors: np.ndarray, seed: int, n_neighbors: int, min_dist: float) -> np.ndarray:
    import umap

    reducer = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed, n_components=2)
    with warnings.catch_warnings():  # a seed makes umap-learn single-threaded, and it says so every time
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden", category=UserWarning)
        return reducer.fit_transform(vectors)


def embedding_umap(model: nn.Module, field: str, x_sparse, y, min_count: int = 20, seed: int = 0,
                   n_neighbors: int = 15, min_dist: float = 0.1) -> pd.DataFrame:
    """The learned vectors of one categorical field's values in 2-D, with each value's count and CTR. Chapter 07.

    ``x_sparse`` and ``y`` are the training ids and labels: they give each value
    its frequency and observed CTR (values seen fewer than ``min_count`` times
    are left out). The table used is the model's widest one for the field.
    Returns a DataFrame with ``id``, ``x``, ``y``, ``count`` and ``ctr``.
    """
    layers = [m for m in model.modules() if isinstance(m, SparseEmbedding) and field in m.names]
    if not layers:
        raise ValueError(f"no categorical field {field!r} in the model")
    layer = max(layers, key=lambda m: m.dim)
    f = layer.names.index(field)
    weight = layer.rows(field).detach().float().cpu().numpy()
    ids = torch.as_tensor(x_sparse)[:, f].numpy()
    labels = np.asarray(torch.as_tensor(y).float().cpu(), dtype=np.float64).reshape(len(ids), -1)[:, 0]
    count = np.bincount(ids, minlength=len(weight))
    clicks = np.bincount(ids, weights=labels, minlength=len(weight))
    keep = np.flatnonzero(count >= min_count)
    if len(keep) <= n_neighbors:
        raise ValueError(f"{field}: only {len(keep)} values seen at least {min_count} times; lower min_count")
    xy = _umap(weight[keep], seed, n_neighbors, min_dist)
    return pd.DataFrame({"id": keep, "x": xy[:, 0], "y": xy[:, 1], "count": count[keep],
                         "ctr": clicks[keep] / count[keep]})


def representation_umap(model: nn.Module, x_dense, x_sparse, seed: int = 0, n_neighbors: int = 15,
                        min_dist: float = 0.1) -> pd.DataFrame:
    """Rows in 2-D by the input of the model's final linear layer (``out``), with their predicted CTR. Chapter 07.

    For the Transformer that vector is the head MLP's output on the [CLS] token and the cross network; the
    predicted CTR is a (linear) read-out of it, so the map should be ordered by it.
    """
    head = getattr(model, "out", None)
    if not isinstance(head, nn.Linear):
        raise ValueError(f"{type(model).__name__} has no final linear layer ('out') whose input could be mapped")
    seen = []
    hook = head.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].detach().float().cpu()))
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            logits = model(torch.as_tensor(x_dense, dtype=torch.float32).to(device),
                           torch.as_tensor(x_sparse, dtype=torch.long).to(device))
    finally:
        hook.remove()
    vectors = torch.cat(seen).numpy()
    xy = _umap(vectors, seed, n_neighbors, min_dist)
    p = torch.sigmoid(logits.float()).cpu().numpy().reshape(len(vectors), -1)[:, 0]
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "p": p})
