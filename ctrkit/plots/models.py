"""Figures of chapters 03 and 04 (models compared)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

__all__ = ["model_comparison", "parameter_breakdown"]

_TEMPLATE = "plotly_white"


def model_comparison(results: pd.DataFrame, metric: str = "auc", references: Mapping[str, float] | None = None,
                     title: str | None = None) -> go.Figure:
    """Mean ± std of ``metric`` per model (one row per model and seed in ``results``). Chapters 03 and 04.

    ``references`` draws labelled horizontal lines, e.g. ``{"Bayes-optimal": 0.797}``:
    the ceiling no model can pass on the synthetic twin.
    """
    stats = results.groupby("model", sort=False)[metric].agg(["mean", "std", "count"]).fillna(0.0)
    fig = go.Figure(go.Bar(
        x=stats.index, y=stats["mean"], error_y=dict(type="data", array=stats["std"]),
        text=[f"{m:.4f}" for m in stats["mean"]], textposition="outside", marker_line_width=0,
        hovertemplate="%{x}: %{y:.4f} ± %{error_y.array:.4f}<extra></extra>",
    ))
    lows = [stats["mean"].min() - 2 * stats["std"].max()] + list((references or {}).values())
    highs = [stats["mean"].max() + 2 * stats["std"].max()] + list((references or {}).values())
    for name, value in (references or {}).items():
        fig.add_hline(y=value, line_dash="dash", annotation_text=f"{name} {value:.4f}", annotation_position="top left")
    pad = 0.15 * (max(highs) - min(lows) or 0.01)
    fig.update_yaxes(range=[min(lows) - pad, max(highs) + pad], title_text=f"test {metric}")
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
