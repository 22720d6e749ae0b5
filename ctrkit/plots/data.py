"""Figures of chapter 01 (data exploration).

Each function takes a frame in the Criteo layout (``click``, ``I1..I13``,
``C1..C26``; the synthetic twin adds ``p_click`` and ``ts``), aggregates it
first (value counts, group means, numpy histograms), so a figure carries a few
dozen bars rather than every row, and returns a ``plotly.graph_objects.Figure``
with bilingual axis titles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ctrkit.datasets.criteo import DENSE, LABEL, SPARSE
from ctrkit.plots import _TEMPLATE

__all__ = [
    "ctr_by_value",
    "missing_rates",
    "cardinalities",
    "count_distributions",
    "ctr_by_hour",
    "p_click_histogram",
    "split_timeline",
]

_MISSING = "(결측 · missing)"
_BARS = "rgba(120, 120, 120, 0.35)"  # impressions: grey bars behind the CTR markers
_BLUE = "#4C78A8"
_PART_COLORS = {"train": _BLUE, "val": "#F58518", "test": "#E45756"}


def _impressions_and_ctr(stats: pd.DataFrame, x: list, base_rate: float) -> go.Figure:
    """Bars of impressions (left axis) and CTR with 95% intervals (right axis), one per x."""
    half = 1.96 * np.sqrt(stats["ctr"] * (1 - stats["ctr"]) / stats["impressions"])  # normal approximation
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=x, y=stats["impressions"], name="노출 · impressions", marker_color=_BARS), secondary_y=False)
    fig.add_trace(go.Scatter(x=x, y=stats["ctr"], name="CTR (클릭률)", mode="lines+markers",
                             error_y={"type": "data", "array": half, "thickness": 1}), secondary_y=True)
    fig.add_shape(type="line", xref="paper", x0=0, x1=1, yref="y2", y0=base_rate, y1=base_rate,
                  line={"dash": "dash", "color": "gray"})
    fig.add_annotation(xref="paper", x=0, yref="y2", y=base_rate, text="전체 CTR · overall", showarrow=False,
                       xanchor="left", yanchor="bottom", font={"color": "gray"},
                       bgcolor="rgba(255, 255, 255, 0.7)")
    fig.update_yaxes(title_text="노출 · impressions", rangemode="tozero", showgrid=False, secondary_y=False)
    fig.update_yaxes(title_text="CTR (클릭률)", tickformat=".0%", secondary_y=True)
    fig.update_layout(template=_TEMPLATE, height=380, legend={"orientation": "h", "y": 1.12})
    return fig


def ctr_by_value(df: pd.DataFrame, field: str, top: int = 20, label: str = LABEL) -> go.Figure:
    """CTR and impressions of the ``top`` most frequent values of one field. Chapter 01.

    Missing values count as one value of their own. Error bars are 95% normal
    intervals, so differences inside them are noise; the dashed line is the
    overall CTR of ``df``.
    """
    key = df[field].astype("string").fillna(_MISSING)
    stats = (df[label].groupby(key).agg(impressions="size", ctr="mean")
             .sort_values("impressions", ascending=False, kind="stable").head(top))
    fig = _impressions_and_ctr(stats, [str(v) for v in stats.index], float(df[label].mean()))
    fig.update_xaxes(title_text=f"{field}의 값 · value of {field}", type="category")
    fig.update_layout(title=f"{field}: 값별 CTR · CTR by value (상위 · top {len(stats)})")
    return fig


def missing_rates(df: pd.DataFrame, columns: Sequence[str] | None = None) -> go.Figure:
    """The share of missing values in each column, dense and categorical fields in two colours. Chapter 01."""
    columns = list(columns) if columns is not None else [c for c in DENSE + SPARSE if c in df.columns]
    rates = df[columns].isna().mean()
    fig = go.Figure()
    for name, kind in (("수치형 · dense", DENSE), ("범주형 · categorical", SPARSE)):
        cols = [c for c in columns if c in kind]
        if cols:
            fig.add_trace(go.Bar(x=cols, y=rates[cols], name=name))
    others = [c for c in columns if c not in DENSE + SPARSE]
    if others:
        fig.add_trace(go.Bar(x=others, y=rates[others], name="기타 · other"))
    fig.update_xaxes(title_text="필드 · field", type="category", categoryorder="array", categoryarray=columns)
    fig.update_yaxes(title_text="결측률 · missing rate", tickformat=".0%", range=[0, 1])
    fig.update_layout(template=_TEMPLATE, barmode="relative", height=340, legend={"orientation": "h", "y": 1.12})
    return fig


def cardinalities(df: pd.DataFrame, fields: Sequence[str] | None = None,
                  reference: Mapping[str, int] | None = None,
                  reference_name: str = "기준 · reference") -> go.Figure:
    """Distinct values per field, and how many of them occur only once, on a log scale. Chapter 01.

    ``reference`` (e.g. the synthetic twin's ``CARDINALITY``) is drawn as
    markers: how many values the field could take.
    """
    fields = list(fields) if fields is not None else [c for c in SPARSE if c in df.columns]
    counts = {f: df[f].value_counts() for f in fields}  # missing values are not values
    fig = go.Figure([
        go.Bar(x=fields, y=[len(counts[f]) for f in fields], name="고유값 · distinct values"),
        go.Bar(x=fields, y=[int((counts[f] == 1).sum()) for f in fields], name="한 번만 등장 · seen once"),
    ])
    if reference is not None:
        fig.add_trace(go.Scatter(x=fields, y=[reference[f] for f in fields], mode="markers", name=reference_name,
                                 marker={"symbol": "line-ew", "size": 18, "line": {"width": 3, "color": "black"}}))
    fig.update_xaxes(title_text="필드 · field", type="category")
    fig.update_yaxes(title_text="값의 수 · number of values (log)", type="log")
    fig.update_layout(template=_TEMPLATE, barmode="group", height=360, legend={"orientation": "h", "y": 1.12})
    return fig


def count_distributions(df: pd.DataFrame, fields: Sequence[str], bins: int = 40, cols: int = 4) -> go.Figure:
    """Histograms of count fields on the signed-log scale ``sign(x) log(1 + |x|)``. Chapter 01.

    One panel per field, rows on a log axis so the tail stays visible; missing
    values are left out. A field with at most ``bins`` distinct values gets one
    bar per value; hovering a bar shows the raw counts it covers.
    """
    fields = list(fields)
    cols = min(cols, len(fields))
    n_rows = -(-len(fields) // cols)
    x_max = {f: df[f].max() for f in fields}
    fig = make_subplots(rows=n_rows, cols=cols, horizontal_spacing=0.05, vertical_spacing=0.18,
                        subplot_titles=[f"{f} (최댓값 · max {x_max[f]:,.0f})" for f in fields])
    for i, f in enumerate(fields):
        x = df[f].dropna().to_numpy(dtype=np.float64)
        s = np.sign(x) * np.log1p(np.abs(x))
        values, counts = np.unique(s, return_counts=True)
        if len(values) <= bins:  # few distinct counts: one bar per count
            lo = hi = values
            centres, widths = values, np.full(len(values), 0.1)
        else:
            counts, edges = np.histogram(s, bins=bins)
            lo, hi = edges[:-1], edges[1:]
            centres, widths = (lo + hi) / 2, np.diff(edges)
        raw = np.stack([np.sign(lo) * np.expm1(np.abs(lo)), np.sign(hi) * np.expm1(np.abs(hi))], axis=1)
        fig.add_trace(go.Bar(x=centres, y=counts, width=widths, customdata=raw, showlegend=False, marker_line_width=0,
                             marker_color=_BLUE,
                             hovertemplate="x: %{customdata[0]:,.0f} … %{customdata[1]:,.0f}<br>%{y:,} rows<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(title_text="sign(x)·log(1+|x|)")
    fig.update_yaxes(type="log")
    fig.update_yaxes(title_text="행 수 · rows", col=1)
    fig.update_layout(template=_TEMPLATE, height=300 * n_rows, bargap=0)
    return fig


def ctr_by_hour(df: pd.DataFrame, time_col: str = "ts", label: str = LABEL, p: str | None = "p_click") -> go.Figure:
    """Impressions and CTR by hour of day, with the mean true click probability when ``df`` has it. Chapter 01."""
    hour = df[time_col].dt.hour.rename("hour")
    stats = df[label].groupby(hour).agg(impressions="size", ctr="mean")
    fig = _impressions_and_ctr(stats, stats.index.tolist(), float(df[label].mean()))
    if p is not None and p in df.columns:
        truth = df[p].groupby(hour).mean()
        fig.add_trace(go.Scatter(x=truth.index.tolist(), y=truth, name="평균 p_click · mean p_click (truth)",
                                 mode="lines", line={"dash": "dot"}), secondary_y=True)
    fig.update_xaxes(title_text="시각 · hour of day", dtick=2)
    return fig


def p_click_histogram(df: pd.DataFrame, p: str = "p_click", label: str = LABEL, bins: int = 50) -> go.Figure:
    """The distribution of the true click probability among clicks and among non-clicks. Chapter 01.

    Each class is normalised to sum to 1, so the two shapes compare directly;
    their overlap is why even the truth ranks with an AUC below 1.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    q, y = df[p].to_numpy(dtype=np.float64), df[label].to_numpy()
    fig = go.Figure()
    for value, name in ((0, "클릭 없음 · no click (label 0)"), (1, "클릭 · click (label 1)")):
        counts, _ = np.histogram(q[y == value], bins=edges)
        fig.add_trace(go.Bar(x=centres, y=counts / max(counts.sum(), 1), name=name, width=1 / bins, opacity=0.6))
    fig.update_xaxes(title_text="실제 클릭 확률 · true click probability (p_click)", range=[0, 1])
    fig.update_yaxes(title_text="비율 · share of rows", tickformat=".0%")
    fig.update_layout(template=_TEMPLATE, barmode="overlay", bargap=0, height=340,
                      legend={"orientation": "h", "y": 1.12})
    return fig


def split_timeline(splits: Mapping[str, Sequence[pd.DataFrame]], time_col: str = "ts", freq: str = "6h",
                   names: Sequence[str] = ("train", "val", "test")) -> go.Figure:
    """Rows of each part per time bucket, one panel per way of splitting. Chapter 01.

    ``splits`` maps a name (e.g. ``"random"``) to the parts ``split`` returned,
    in the order of ``names``; each bucket is ``freq`` wide and the parts stack.
    """
    fig = make_subplots(rows=len(splits), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=list(splits))
    for row, parts in enumerate(splits.values(), start=1):
        for name, part in zip(names, parts):
            counts = part[time_col].dt.floor(freq).value_counts().sort_index()
            fig.add_trace(go.Bar(x=counts.index, y=counts.to_numpy(), name=name, legendgroup=name, showlegend=row == 1,
                                 marker_color=_PART_COLORS.get(name)), row=row, col=1)
        fig.update_yaxes(title_text="행 수 · rows", row=row, col=1)
    fig.update_xaxes(title_text="시각 · time", row=len(splits), col=1)
    fig.update_layout(template=_TEMPLATE, barmode="stack", bargap=0.05, height=220 * len(splits) + 80,
                      legend={"orientation": "h", "y": 1.08})
    return fig
