"""Figures of chapter 08 (clicks and conversions).

Each function takes numbers the chapter has already computed (predictions by
impression, a model's gate weights) and returns a ``plotly.graph_objects.Figure``
with bilingual axis titles.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ctrkit.plots import _TEMPLATE

__all__ = ["mean_by_bin", "gate_weights"]


def mean_by_bin(score, series: Mapping[str, np.ndarray], n_bins: int = 10, x_title: str = "점수 · score",
                y_title: str = "평균 · mean") -> go.Figure:
    """The mean of each series within equal-mass bins of ``score``, one line per series (log y axis). Chapter 08.

    With the truth as one series, the gap of another line from it is that
    prediction's bias in each bin, where a single mean would hide it.
    """
    score = np.asarray(score, dtype=np.float64)
    bins = pd.qcut(pd.Series(score).rank(method="first"), n_bins, labels=False).to_numpy()
    x = pd.Series(score).groupby(bins).mean().to_numpy()
    fig = go.Figure()
    for name, values in series.items():
        y = pd.Series(np.asarray(values, dtype=np.float64)).groupby(bins).mean().to_numpy()
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=str(name)))
    fig.update_layout(template=_TEMPLATE, height=400, xaxis_title=x_title, yaxis_title=y_title, yaxis_type="log",
                      xaxis_type="log", legend_title_text="예측 · prediction")
    return fig


def gate_weights(weights: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Mean gate weights as a heatmap: one row per gate (a task's, or PLE's shared one), one column per expert;
    NaN where a gate does not mix that expert (a PLE task gate and the other task's experts)."""
    z = weights.to_numpy(dtype=np.float64)  # NaN: an expert this gate does not mix (PLE), drawn blank
    fig = go.Figure(go.Heatmap(z=z, x=[str(c) for c in weights.columns], y=[str(i) for i in weights.index],
                               zmin=0, zmax=1, colorscale="Blues", colorbar_title_text="가중치 · weight",
                               text=[["" if np.isnan(v) else f"{v:.2f}" for v in row] for row in z],
                               texttemplate="%{text}"))
    fig.update_xaxes(title_text="전문가 · expert", type="category")
    fig.update_yaxes(title_text="게이트 · gate", type="category", autorange="reversed")
    return fig.update_layout(template=_TEMPLATE, title=title, height=120 + 45 * len(weights),
                             margin=dict(t=60 if title else 30))
