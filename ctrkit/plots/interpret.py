"""Figures of chapter 07 (interpretation).

Each function takes what :mod:`ctrkit.interpret` returned (attributions per
row and field, global importances, a UMAP table) and returns a
``plotly.graph_objects.Figure`` with bilingual axis titles. The attention
heatmap is :func:`ctrkit.plots.attention_map` (chapter 04's).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ctrkit.plots import _TEMPLATE

__all__ = ["importance_bars", "attribution_strip", "umap_scatter", "explanation_waterfall"]


def importance_bars(importances: Mapping[str, pd.Series], top: int = 20) -> go.Figure:
    """Global importance per field for several methods (and the truth), each scaled to a maximum of 1. Chapter 07.

    Fields are ordered by the first series; the ``top`` first are shown.
    """
    first = next(iter(importances.values()))
    fields = list(first.sort_values(ascending=False).index[:top])[::-1]  # largest on top
    fig = go.Figure()
    for name, series in importances.items():
        scaled = series / series.abs().max()
        fig.add_trace(go.Bar(y=fields, x=scaled.reindex(fields), orientation="h", name=str(name)))
    fig.update_layout(template=_TEMPLATE, height=max(360, 10 * len(fields) * (len(importances) + 1)), barmode="group",
                      yaxis=dict(tickmode="array", tickvals=fields),
                      xaxis_title="중요도 (최댓값 = 1) · importance (max = 1)", yaxis_title="필드 · field",
                      legend_title_text="방법 · method")
    return fig


def attribution_strip(attributions: pd.DataFrame, top: int = 12, seed: int = 0) -> go.Figure:
    """Each row's attribution for the ``top`` most important fields, one jittered dot per row. Chapter 07.

    A beeswarm-style view: the spread shows whether a field pushes every
    prediction a little or a few predictions a lot, and in which direction.
    """
    order = attributions.abs().mean().sort_values(ascending=False).index[:top][::-1]
    rng = np.random.default_rng(seed)
    fig = go.Figure()
    for i, field in enumerate(order):
        values = attributions[field].to_numpy()
        fig.add_trace(go.Scatter(x=values, y=i + rng.uniform(-0.3, 0.3, len(values)), mode="markers", showlegend=False,
                                 marker=dict(size=4, opacity=0.5, color=values, colorscale="RdBu_r", cmid=0),
                                 name=field, hovertemplate=f"{field}: " + "%{x:.3f}<extra></extra>"))
    fig.add_vline(x=0, line_color="gray")
    fig.update_layout(template=_TEMPLATE, height=max(360, 28 * len(order)),
                      xaxis_title="로짓에 대한 기여 · contribution to the logit",
                      yaxis=dict(tickvals=list(range(len(order))), ticktext=list(order), title="필드 · field"))
    return fig


def umap_scatter(table: pd.DataFrame, color: str, size: str | None = None, title: str | None = None) -> go.Figure:
    """A UMAP table (columns ``x``, ``y`` and more) as a scatter, coloured by ``color`` and sized by ``size``. Chapter 07.

    Every column of the table shows on hover (for an embedding: the id, its
    count and its observed CTR).
    """
    sizes = 6 if size is None else 4 + 16 * np.sqrt(table[size] / table[size].max())
    hover = [c for c in table.columns if c not in ("x", "y")]
    fig = go.Figure(go.Scatter(
        x=table["x"], y=table["y"], mode="markers", customdata=table[hover].to_numpy(),
        marker=dict(size=sizes, color=table[color], colorscale="Viridis", showscale=True,
                    colorbar=dict(title=color), opacity=0.8, line=dict(width=0)),
        hovertemplate="<br>".join(f"{c}: %{{customdata[{i}]:.4g}}" for i, c in enumerate(hover)) + "<extra></extra>"))
    fig.update_layout(template=_TEMPLATE, height=460, title=title, xaxis_title="UMAP 1", yaxis_title="UMAP 2")
    return fig


def explanation_waterfall(contributions: pd.Series, base_logit: float, top: int = 8) -> go.Figure:
    """From the baseline's logit to one row's logit, field by field: a per-impression explanation. Chapter 07.

    ``contributions`` are the row's attributions (they add up to the row's
    logit minus ``base_logit``); the ``top`` largest by size get a bar each and
    the rest one "other fields" bar. The axis shows logits, the labels CTRs.
    """
    order = contributions.abs().sort_values(ascending=False).index
    shown = contributions[order[:top]]
    rest = float(contributions[order[top:]].sum())
    total = base_logit + float(contributions.sum())
    names = [*shown.index, "나머지 필드 · other fields", "예측 · prediction"]
    text = [*[f"{v:+.2f}" for v in shown], f"{rest:+.2f}", f"{1 / (1 + np.exp(-total)):.1%}"]
    fig = go.Figure(go.Waterfall(x=names, y=[*shown.to_numpy(), rest, 0.0], base=base_logit, text=text,
                                 measure=["relative"] * (len(shown) + 1) + ["total"], textposition="outside",
                                 connector=dict(line=dict(color="lightgray"))))
    fig.add_hline(y=base_logit, line_dash="dash", line_color="gray", annotation_position="top left",
                  annotation_text=f"기준 · baseline {1 / (1 + np.exp(-base_logit)):.1%}")
    running = base_logit + np.cumsum([0.0, *shown.to_numpy(), rest])
    pad = 0.15 * (running.max() - running.min() + 0.5)
    fig.update_layout(template=_TEMPLATE, height=420, showlegend=False, yaxis_title="로짓 · logit",
                      yaxis_range=[running.min() - pad, running.max() + pad])
    return fig
