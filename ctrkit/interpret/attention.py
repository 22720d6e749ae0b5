"""Attention maps (chapter 07): what the attention models' heads read, from the weights they return.

:func:`attention_maps` runs a model with ``return_attn=True`` (the explicit
softmax path; training keeps the fused kernel) and stacks its weights per row,
layer and head. :func:`pair_attention` turns them into a field × field score,
to ask whether attention singles out the pairs that truly interact (often it
does not: attention weights say where a head reads, not what changes the output;
Jain & Wallace 2019).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from ctrkit.models import AutoInt, CTRTransformer


def attention_maps(model: nn.Module, x_dense, x_sparse, batch_size: int = 2048) -> tuple[np.ndarray, list[str]]:
    """Attention weights (N, L, H, T, T) of an AutoInt or CTRTransformer, and the T token labels. Chapter 07.

    Rows of each (T, T) map sum to 1: row i is how token i splits its reading
    over all tokens. CTRTransformer's token 0 is ``[CLS]``; the others are the
    fields, numeric first.
    """
    if not isinstance(model, (AutoInt, CTRTransformer)):
        raise ValueError(f"{type(model).__name__} has no attention; use an autoint or transformer model")
    x_dense, x_sparse = torch.as_tensor(x_dense, dtype=torch.float32), torch.as_tensor(x_sparse, dtype=torch.long)
    device = next(model.parameters()).device
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x_dense), batch_size):
            _, maps = model(x_dense[start:start + batch_size].to(device), x_sparse[start:start + batch_size].to(device),
                            return_attn=True)
            out.append(torch.stack(maps, dim=1).float().cpu().numpy())  # (B, L, H, T, T)
    fields = list(model.embedding.dense.names) + list(model.embedding.sparse.names)
    labels = ["[CLS]", *fields] if isinstance(model, CTRTransformer) else fields
    return np.concatenate(out), labels


def pair_attention(maps: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """Field × field attention averaged over rows, layers and heads, made symmetric: (a_ij + a_ji) / 2.

    Only field tokens are kept (no ``[CLS]``) and the diagonal is 0, so the
    largest entries are the pairs that read each other most.
    """
    mean = maps.mean(axis=(0, 1, 2))  # (T, T)
    keep = [i for i, name in enumerate(labels) if name != "[CLS]"]
    mean = mean[np.ix_(keep, keep)]
    sym = (mean + mean.T) / 2
    np.fill_diagonal(sym, 0.0)
    names = [labels[i] for i in keep]
    return pd.DataFrame(sym, index=names, columns=names)


def rank_pairs(scores: pd.DataFrame, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """Where each of ``pairs`` ranks among all field pairs by ``scores`` (1 = the highest), with its percentile."""
    names = list(scores.index)
    upper = [(names[i], names[j], scores.iat[i, j]) for i in range(len(names)) for j in range(i + 1, len(names))]
    table = pd.DataFrame(upper, columns=["a", "b", "score"]).sort_values("score", ascending=False, kind="stable")
    table["rank"] = np.arange(1, len(table) + 1)
    lookup = {frozenset((a, b)): (s, r) for a, b, s, r in table.itertuples(index=False)}
    rows = []
    for a, b in pairs:
        score, rank = lookup[frozenset((a, b))]
        rows.append({"pair": f"{a}×{b}", "score": score, "rank": rank, "percentile": 1 - (rank - 1) / len(table)})
    return pd.DataFrame(rows).set_index("pair")
