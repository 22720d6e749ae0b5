"""Losses on logits (chapter 05): BCE, label smoothing, focal loss, class-balanced weights.

- focal loss (Lin et al. 2017): ``(1 - p_t)^γ · BCE`` down-weights the easy
  examples, which at a low CTR are most of the non-clicks;
- class-balanced weighting (Cui et al. 2019): each class weighted by the inverse
  of its "effective number" ``(1 - β^n) / (1 - β)``, normalised to mean 1 per row;
- with several labels, fixed weights per label, or uncertainty weighting (Kendall
  et al. 2018): ``Σ_l exp(-s_l) · loss_l + s_l`` with one learned log-variance
  ``s_l`` per label, so a noisier task weighs less (chapter 08).

Both reshape the loss, not just the optimum: a model trained with them is no
longer calibrated, which chapter 06 measures and repairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ctr_loss(logits: torch.Tensor, y: torch.Tensor, kind: str = "bce", label_smoothing: float = 0.0,
             gamma: float = 2.0, pos_weight: float = 1.0, neg_weight: float = 1.0,
             label_weights: torch.Tensor | None = None, log_vars: torch.Tensor | None = None) -> torch.Tensor:
    """Mean loss of ``logits`` for labels ``y`` (same shape).

    Several labels, (B, L): the sum over labels of each label's mean loss,
    weighted by ``label_weights`` (L,) when given, or by the learned
    log-variances ``log_vars`` (L,) of uncertainty weighting.
    """
    logits, y = logits.float(), y.float()
    target = y * (1 - label_smoothing) + 0.5 * label_smoothing if label_smoothing else y
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if kind == "focal":
        p = torch.sigmoid(logits)
        p_t = p * y + (1 - p) * (1 - y)  # the probability given to the true class
        bce = (1 - p_t).pow(gamma) * bce
    elif kind != "bce":
        raise ValueError(f"loss must be 'bce' or 'focal', got {kind!r}")
    if pos_weight != 1.0 or neg_weight != 1.0:
        bce = bce * (y * pos_weight + (1 - y) * neg_weight)
    if bce.ndim == 1:
        return bce.mean()
    per_label = bce.mean(dim=0)  # (L,)
    if log_vars is not None:
        return (torch.exp(-log_vars) * per_label + log_vars).sum()
    return (per_label if label_weights is None else per_label * label_weights).sum()


def class_balanced_weights(n_pos: int, n_neg: int, beta: float = 0.9999) -> tuple[float, float]:
    """(positive, negative) weights ∝ 1 / effective number, scaled so the mean row weight is 1."""
    if n_pos == 0 or n_neg == 0:
        raise ValueError("class-balanced weights need both classes in the training labels")
    w_pos, w_neg = (1 - beta) / (1 - beta**n_pos), (1 - beta) / (1 - beta**n_neg)
    scale = (n_pos + n_neg) / (w_pos * n_pos + w_neg * n_neg)
    return w_pos * scale, w_neg * scale
