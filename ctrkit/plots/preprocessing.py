"""Figures of chapter 02 (preprocessing).

Each function takes numbers the chapter has already computed (histograms are
binned here with numpy, so a figure carries a few dozen bars, not every row)
and returns a ``plotly.graph_objects.Figure`` with bilingual axis titles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ctrkit.plots import _TEMPLATE

__all__ = ["dense_transforms", "gradient_shares", "learning_curves", "vocab_tradeoff", "hashing_tradeoff"]


def dense_transforms(raw: np.ndarray, transformed: Mapping[str, np.ndarray], bins: int = 40,
                     title: str | None = None) -> go.Figure:
    """Histograms of one dense feature before (``raw``) and after each transform. Chapter 02.

    ``transformed`` maps a transform's name to the transformed values of the
    same rows. Missing values (NaN) are left out; each panel has ``bins`` equal-width bins.
    """
    panels = {"raw": np.asarray(raw, dtype=np.float64), **{k: np.asarray(v, dtype=np.float64) for k, v in transformed.items()}}
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels), horizontal_spacing=0.06)
    for i, x in enumerate(panels.values(), start=1):
        x = x[~np.isnan(x)]
        values, counts = np.unique(x, return_counts=True)
        if len(values) <= bins and np.array_equal(values, np.round(values)):  # ids (binned): one bar per id
            centres, widths = values, np.full(len(values), 0.8)
        else:
            counts, edges = np.histogram(x, bins=bins)
            centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        fig.add_trace(go.Bar(x=centres, y=counts, width=widths, marker_line_width=0, showlegend=False), row=1, col=i)
        fig.update_xaxes(title_text="값 · value", row=1, col=i)
    fig.update_yaxes(title_text="행 수 · rows", row=1, col=1)
    fig.update_layout(template=_TEMPLATE, title=title, height=320, bargap=0)
    return fig


def gradient_shares(shares: pd.DataFrame) -> go.Figure:
    """Each feature's share of the gradient, one group of bars per feature. Chapter 02.

    ``shares`` has one row per feature (the index names it) and one column per
    transform; each column sums to 1.
    """
    fig = go.Figure([go.Bar(name=str(c), x=[str(i) for i in shares.index], y=shares[c]) for c in shares.columns])
    fig.update_layout(template=_TEMPLATE, barmode="group", height=340,
                      xaxis_title="특성 · feature", yaxis_title="그래디언트 비중 · share of gradient",
                      yaxis_range=[0, 1], legend_title_text="변환 · transform")
    return fig


def learning_curves(curves: Mapping[str, Sequence[float]], reference: Mapping[str, float] | None = None,
                    y_range: tuple[float, float] | None = None, legend_title: str = "변환 · transform",
                    y_title: str = "검증 로그 손실 · val logloss") -> go.Figure:
    """A metric after each epoch, one line per curve (a transform in chapter 02, a model or a setting in 03-05).

    ``reference`` draws dashed horizontal lines (e.g. the logloss of always
    predicting the base rate); ``y_range`` zooms in when one curve is far above the rest.
    """
    fig = go.Figure()
    for name, values in curves.items():
        fig.add_trace(go.Scatter(x=np.arange(1, len(values) + 1), y=list(values), mode="lines+markers", name=str(name)))
    for name, value in (reference or {}).items():
        fig.add_hline(y=value, line_dash="dash", line_color="gray", annotation_text=str(name),
                      annotation_position="top left")
    fig.update_layout(template=_TEMPLATE, height=380, xaxis_title="에폭 · epoch",
                      yaxis_title=y_title, legend_title_text=legend_title)
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return fig


def vocab_tradeoff(table: pd.DataFrame) -> go.Figure:
    """Vocabulary size and validation OOV rate against ``min_count``. Chapter 02.

    ``table`` has columns ``min_count``, ``vocab_size`` (all fields together)
    and ``oov_rate`` (share of non-missing validation values mapped to OOV).
    """
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=["어휘 사전 크기 · vocabulary size", "검증 OOV 비율 · val OOV rate"])
    fig.add_trace(go.Scatter(x=table["min_count"], y=table["vocab_size"], mode="lines+markers", showlegend=False), row=1, col=1)
    fig.add_trace(go.Scatter(x=table["min_count"], y=table["oov_rate"], mode="lines+markers", showlegend=False), row=1, col=2)
    fig.update_xaxes(type="log", title_text="최소 빈도 · min_count")
    fig.update_yaxes(title_text="어휘 수 · ids", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="OOV 비율 · OOV rate", tickformat=".1%", rangemode="tozero", row=1, col=2)
    fig.update_layout(template=_TEMPLATE, height=340)
    return fig


def hashing_tradeoff(table: pd.DataFrame) -> go.Figure:
    """Hash-collision rate and embedding memory against the number of buckets. Chapter 02.

    ``table`` has columns ``buckets``, ``collision_rate`` (measured),
    ``memory_mb`` and optionally ``expected_rate`` (a theoretical curve, dashed).
    """
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=["해시 충돌 비율 · collision rate", "임베딩 메모리 · embedding memory"])
    fig.add_trace(go.Scatter(x=table["buckets"], y=table["collision_rate"], mode="lines+markers",
                             name="측정 · measured"), row=1, col=1)
    if "expected_rate" in table:
        fig.add_trace(go.Scatter(x=table["buckets"], y=table["expected_rate"], mode="lines",
                                 line_dash="dash", name="이론 · theory"), row=1, col=1)
    fig.add_trace(go.Scatter(x=table["buckets"], y=table["memory_mb"], mode="lines+markers", showlegend=False), row=1, col=2)
    fig.update_xaxes(type="log", title_text="버킷 수 · hash buckets")
    fig.update_yaxes(title_text="충돌 비율 · collision rate", tickformat=".0%", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="MB", rangemode="tozero", row=1, col=2)
    fig.update_layout(template=_TEMPLATE, height=340)
    return fig
