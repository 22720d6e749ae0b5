"""Scoring a model on tensors (chapters 05-06): logits, probabilities, the full report and the cheap one.

A model returns logits, (N,) or (N, L) for several labels; the sigmoid lives
here. :func:`label_metrics` is the full :func:`ctrkit.metrics.report` of each
label; :func:`quick_metrics` is what the trainer checks every epoch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ctrkit import metrics
from ctrkit.metrics import sigmoid
from ctrkit.preprocessing.loader import BatchLoader, CTRTensors
from ctrkit.training.device import amp_dtype, autocast, resolve_device


@torch.no_grad()
def loader_logits(model: nn.Module, loader: BatchLoader, dtype: torch.dtype | None) -> np.ndarray:
    """Logits of every batch of ``loader`` (model in eval mode, restored afterwards)."""
    was_training = model.training
    model.eval()
    out = []
    for x_dense, x_sparse, _ in loader:
        with autocast(loader.device, dtype):
            out.append(model(x_dense, x_sparse).float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy()


def predict_logits(model: nn.Module, data: CTRTensors, batch_size: int = 16384, device="auto",
                   amp: str = "off") -> np.ndarray:
    """Logits for every row of ``data``: (N,), or (N, L) for a model with several labels."""
    device = resolve_device(device)
    loader = BatchLoader(CTRTensors(data.x_dense, data.x_sparse), batch_size, device=device)
    return loader_logits(model, loader, amp_dtype(amp, device))


def predict_proba(model: nn.Module, data: CTRTensors, batch_size: int = 16384, device="auto",
                  amp: str = "off") -> np.ndarray:
    """Click probabilities: the sigmoid of :func:`predict_logits` (models return logits)."""
    return sigmoid(predict_logits(model, data, batch_size, device, amp))


def evaluate(model: nn.Module, data: CTRTensors, batch_size: int = 16384, device="auto", amp: str = "off",
             labels: tuple[str, ...] | None = None) -> dict:
    """:func:`ctrkit.metrics.report` on a labelled split: AUC, PR-AUC, logloss, NE, Brier, ECE, … (chapter 06)."""
    if data.y is None:
        raise ValueError("evaluate needs labels; this split has none")
    return label_metrics(data.y.numpy(), predict_proba(model, data, batch_size, device, amp), labels)


def label_names(y: np.ndarray, labels: tuple[str, ...] | None) -> tuple[str, ...]:
    n = 1 if y.ndim == 1 else y.shape[1]
    labels = tuple(labels) if labels else tuple(f"label{j}" for j in range(n))
    if len(labels) != n:
        raise ValueError(f"{n} label column(s) but {len(labels)} label name(s): {', '.join(labels)}")
    return labels


def label_metrics(y: np.ndarray, p: np.ndarray, labels: tuple[str, ...] | None = None) -> dict:
    """The full :func:`ctrkit.metrics.report` of each label: flat for one label, ``{label: report}`` for several."""
    if y.ndim == 1:
        return metrics.report(y, p)
    return {name: metrics.report(y[:, j], p[:, j]) for j, name in enumerate(label_names(y, labels))}


def quick_metrics(y: np.ndarray, p: np.ndarray, labels: tuple[str, ...] | None = None) -> dict[str, float]:
    """What the trainer checks every epoch: AUC and logloss, per label (``click_auc``…) and averaged (``auc``).

    With one label there is only the plain ``auc`` and ``logloss``.
    """
    if y.ndim == 1:
        return {"auc": metrics.auc(y, p), "logloss": metrics.logloss(y, p)}
    out, names = {}, label_names(y, labels)
    for j, name in enumerate(names):
        out |= {f"{name}_auc": metrics.auc(y[:, j], p[:, j]), f"{name}_logloss": metrics.logloss(y[:, j], p[:, j])}
    return {"auc": float(np.mean([out[f"{n}_auc"] for n in names])),
            "logloss": float(np.mean([out[f"{n}_logloss"] for n in names])), **out}
