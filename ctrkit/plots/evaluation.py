"""Figures of chapter 06 (evaluation and calibration).

Each function takes labels and the probabilities to compare (a model before
and after each calibrator, say) and returns a ``plotly.graph_objects.Figure``
with bilingual axis titles.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from ctrkit import metrics
from ctrkit.plots import _TEMPLATE

__all__ = ["reliability_diagram", "roc_pr_curves", "segment_calibration", "ece_by_bins"]


def reliability_diagram(y_true, probabilities: Mapping[str, np.ndarray], n_bins: int = 15,
                        scheme: str = "mass", log: bool = False) -> go.Figure:
    """Observed against predicted CTR per bin, one line per model or calibrator, with the bin counts below. Chapter 06.

    Points on the diagonal are calibrated. The axes stop just past the largest
    bin; ``log=True`` uses log axes, which spread out a low CTR and keep a badly
    calibrated curve from squeezing the others into a corner.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.05)
    low, top = 1.0, 0.0
    for i, (name, p) in enumerate(probabilities.items()):
        b = metrics.calibration_bins(y_true, p, n_bins, scheme)
        color = qualitative.Plotly[i % len(qualitative.Plotly)]
        text = [f"{n:,}" for n in b["count"]]
        fig.add_trace(go.Scatter(x=b["mean_p"], y=b["mean_y"], mode="lines+markers", name=str(name), legendgroup=name,
                                 line_color=color, text=text, hovertemplate="p̂ %{x:.4f}<br>y %{y:.4f}<br>n %{text}"),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=b["mean_p"], y=b["count"], mode="markers", marker_color=color, legendgroup=name,
                                 showlegend=False, hovertemplate="p̂ %{x:.4f}<br>n %{y:,}"), row=2, col=1)
        positive = np.r_[b["mean_p"], b["mean_y"]]
        low = min(low, positive[positive > 0].min())
        top = max(top, positive.max())
    top = min(1.0, 1.1 * top)
    low = 0.9 * low if log else 0.0
    fig.add_trace(go.Scatter(x=[low, top], y=[low, top], mode="lines", line=dict(dash="dash", color="gray"),
                             name="완벽한 보정 · perfect"), row=1, col=1)
    kind = "log" if log else "linear"
    span = [np.log10(low), np.log10(top)] if log else [0, top]
    fig.update_xaxes(type=kind, range=span, row=1, col=1)
    fig.update_xaxes(type=kind, range=span, title_text="예측 CTR (구간 평균) · predicted CTR (bin mean)", row=2, col=1)
    fig.update_yaxes(type=kind, range=span, title_text="관측 CTR · observed CTR", row=1, col=1)
    fig.update_yaxes(title_text="행 수 · rows", rangemode="tozero", row=2, col=1)
    fig.update_layout(template=_TEMPLATE, height=560, legend_title_text="확률 · probabilities")
    return fig


def _thin(x: np.ndarray, y: np.ndarray, points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    keep = np.unique(np.linspace(0, len(x) - 1, min(points, len(x))).astype(int))
    return x[keep], y[keep]


def roc_pr_curves(y_true, scores: Mapping[str, np.ndarray]) -> go.Figure:
    """ROC curves (left) and precision-recall curves (right), one line per score. Chapter 06.

    The legend carries each score's AUC and PR-AUC (:mod:`ctrkit.metrics`);
    the curves are scikit-learn's, thinned to 400 points.
    """
    from sklearn.metrics import precision_recall_curve, roc_curve

    y = np.asarray(y_true).ravel()
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=["ROC", "정밀도-재현율 · precision-recall"])
    for i, (name, s) in enumerate(scores.items()):
        color = qualitative.Plotly[i % len(qualitative.Plotly)]
        fpr, tpr, _ = roc_curve(y, s)
        precision, recall, _ = precision_recall_curve(y, s)
        label = f"{name} (AUC {metrics.auc(y, s):.3f}, PR-AUC {metrics.pr_auc(y, s):.3f})"
        x, y_ = _thin(fpr, tpr)
        fig.add_trace(go.Scatter(x=x, y=y_, mode="lines", name=label, legendgroup=name, line_color=color), row=1, col=1)
        x, y_ = _thin(recall, precision)
        fig.add_trace(go.Scatter(x=x, y=y_, mode="lines", legendgroup=name, showlegend=False, line_color=color),
                      row=1, col=2)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="gray"), showlegend=False),
                  row=1, col=1)
    fig.add_hline(y=float(y.mean()), line_dash="dash", line_color="gray", row=1, col=2,
                  annotation_text="CTR", annotation_position="top right")
    fig.update_xaxes(title_text="거짓 양성률 · false positive rate", row=1, col=1)
    fig.update_yaxes(title_text="참 양성률 · true positive rate", row=1, col=1)
    fig.update_xaxes(title_text="재현율 · recall", row=1, col=2)
    fig.update_yaxes(title_text="정밀도 · precision", row=1, col=2)
    fig.update_layout(template=_TEMPLATE, height=420, legend=dict(orientation="h", y=-0.25))
    return fig


def segment_calibration(tables: Mapping[str, pd.DataFrame], true_ratio: bool = True) -> go.Figure:
    """Predicted / true (or observed) CTR per segment, one line per model. Chapter 06.

    ``tables`` are :func:`ctrkit.metrics.calibration_by_segment` results; with
    ``true_ratio`` the y-axis is ``true_ratio`` (synthetic data), else ``ratio``.
    The dashed line at 1 is calibrated; each segment's label carries its rows.
    """
    column = "true_ratio" if true_ratio else "ratio"
    fig = go.Figure()
    for name, table in tables.items():
        table = table.sort_values("segment")
        labels = [f"{s} ({n:,})" for s, n in zip(table["segment"], table["rows"])]
        fig.add_trace(go.Scatter(x=labels, y=table[column], mode="lines+markers", name=str(name)))
    fig.add_hline(y=1.0, line_dash="dash", line_color="gray")
    truth = ("실제", "true") if true_ratio else ("관측", "observed")
    fig.update_layout(template=_TEMPLATE, height=400, xaxis_type="category",
                      xaxis_title="세그먼트 (행 수) · segment (rows)",
                      yaxis_title=f"예측 / {truth[0]} CTR · predicted / {truth[1]} CTR")
    return fig


def ece_by_bins(table: pd.DataFrame) -> go.Figure:
    """Estimated ECE against the number of bins, per score and bin scheme, with the true error dashed. Chapter 06.

    ``table`` has columns ``score``, ``scheme``, ``n_bins``, ``ece`` and ``true``
    (the score's :func:`ctrkit.metrics.true_calibration_error`).
    """
    fig = go.Figure()
    for i, (score, part) in enumerate(table.groupby("score", sort=False)):
        color = qualitative.Plotly[i % len(qualitative.Plotly)]
        for scheme, dash in (("width", "dot"), ("mass", "solid")):
            rows = part[part["scheme"] == scheme]
            fig.add_trace(go.Scatter(x=rows["n_bins"], y=rows["ece"], mode="lines+markers", line=dict(color=color, dash=dash),
                                     name=f"{score}: {scheme}"))
        fig.add_trace(go.Scatter(x=part["n_bins"], y=part["true"], mode="lines", line=dict(color=color, dash="dash", width=1),
                                 name=f"{score}: 실제 · true"))
    fig.update_layout(template=_TEMPLATE, height=420, xaxis_title="구간 수 · number of bins", xaxis_type="log",
                      yaxis_title="ECE", legend_title_text="점수: 구간 방식 · score: bins")
    fig.update_xaxes(tickvals=sorted(table["n_bins"].unique()))
    return fig
