"""Figures of chapters 03 and 04 (models compared, numeric embeddings, attention maps)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ctrkit.plots import _TEMPLATE

__all__ = ["model_comparison", "parameter_breakdown", "numeric_embeddings", "attention_map"]


def model_comparison(results: pd.DataFrame, metric: str = "auc", references: Mapping[str, float] | None = None,
                     title: str | None = None) -> go.Figure:
    """Mean ± std of ``metric`` per model (one row per model and seed in ``results``). Chapters 03 and 04.

    ``references`` draws labelled horizontal lines, e.g. ``{"Bayes-optimal": 0.797}``:
    the ceiling no model can pass on the synthetic twin. A reference that is not
    known (NaN, as the Bayes-optimal AUC of real data) is not drawn.
    """
    references = {name: value for name, value in (references or {}).items() if np.isfinite(value)}
    stats = results.groupby("model", sort=False)[metric].agg(["mean", "std", "count"]).fillna(0.0)
    fig = go.Figure(go.Bar(
        x=stats.index, y=stats["mean"], error_y=dict(type="data", array=stats["std"]),
        text=[f"{m:.4f}" for m in stats["mean"]], textposition="outside", marker_line_width=0,
        hovertemplate="%{x}: %{y:.4f} ± %{error_y.array:.4f}<extra></extra>",
    ))
    lows = [stats["mean"].min() - 2 * stats["std"].max()] + list(references.values())
    highs = [stats["mean"].max() + 2 * stats["std"].max()] + list(references.values())
    for name, value in references.items():
        fig.add_hline(y=value, line_dash="dash", annotation_text=f"{name} {value:.4f}", annotation_position="top left")
    pad = 0.15 * (max(highs) - min(lows) or 0.01)
    fig.update_yaxes(range=[min(lows) - pad, max(highs) + pad], title_text=f"테스트 · test {metric}")
    fig.update_xaxes(title_text="모델 · model")
    return fig.update_layout(template=_TEMPLATE, title=title, height=420, margin=dict(t=60 if title else 30))


def parameter_breakdown(counts: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Parameters per model, stacked by part (embeddings, interaction, MLP, ...). Chapter 03.

    ``counts`` has one row per model (the index names it) and one column per
    part; a part a model lacks is 0.
    """
    fig = go.Figure([go.Bar(name=str(c), x=[str(i) for i in counts.index], y=counts[c], marker_line_width=0)
                     for c in counts.columns])
    fig.update_layout(template=_TEMPLATE, barmode="stack", title=title, height=380, margin=dict(t=60 if title else 30),
                      xaxis_title="모델 · model", yaxis_title="파라미터 수 · parameters", legend_title_text="부분 · part")
    return fig


def numeric_embeddings(x: np.ndarray, tokens: Mapping[str, np.ndarray], dims: int = 3) -> go.Figure:
    """The first ``dims`` coordinates of a numeric field's token as its value moves along ``x``. Chapter 04.

    ``tokens`` maps an embedding kind ("linear", "periodic", "pwl") to a
    (len(x), D) array; each kind gets its own panel.
    """
    fig = make_subplots(rows=1, cols=len(tokens), subplot_titles=list(tokens), shared_yaxes=False)
    colors = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a")
    for col, values in enumerate(tokens.values(), start=1):
        for d in range(min(dims, values.shape[1])):
            fig.add_trace(go.Scatter(x=x, y=values[:, d], mode="lines", name=f"dim {d}", legendgroup=str(d),
                                     showlegend=col == 1, line_color=colors[d % len(colors)]), row=1, col=col)
        fig.update_xaxes(title_text="스케일된 값 · scaled value", row=1, col=col)
    fig.update_yaxes(title_text="토큰 좌표 · token coordinate", row=1, col=1)
    return fig.update_layout(template=_TEMPLATE, height=340, margin=dict(t=40), legend_title_text="차원 · dim")


def attention_map(weights: np.ndarray, labels: Sequence[str], title: str | None = None) -> go.Figure:
    """A (T, T) attention matrix as a heatmap: row = the token that reads, column = the token read. Chapters 04, 07."""
    labels = [str(label) for label in labels]
    fig = go.Figure(go.Heatmap(z=weights, x=labels, y=labels, colorscale="Blues", zmin=0,
                               colorbar_title_text="가중치 · weight",
                               hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="읽는 토큰 (쿼리) · reading token (query)", tickfont_size=9)
    fig.update_xaxes(title_text="읽히는 토큰 (키) · token read (key)", tickfont_size=9)
    return fig.update_layout(template=_TEMPLATE, title=title, height=620, width=680, margin=dict(t=60 if title else 30))
