"""Figures of chapter 10 (bandits and budget-constrained bidding).

Each function takes what the chapter has already computed (the rows of
:func:`ctrkit.bandits.compare`, the result of :func:`ctrkit.bidding.run_auctions`)
and returns a ``plotly.graph_objects.Figure`` with bilingual axis titles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ctrkit.plots import _TEMPLATE

__all__ = ["regret_curves", "pacing"]

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def regret_curves(runs: pd.DataFrame, points: int = 200, title: str | None = None) -> go.Figure:
    """Cumulative regret against the round, one line per policy: the mean over seeds, and a band from the lowest to the
    highest seed. ``runs`` is :func:`ctrkit.bandits.compare`'s output; ``points`` rounds per line are drawn."""
    fig = go.Figure()
    n_rounds = int(runs["t"].max())
    shown = np.unique(np.linspace(1, n_rounds, points).round().astype(int))
    rows = runs[runs["t"].isin(shown)]
    for i, (policy, part) in enumerate(rows.groupby("policy", sort=False)):
        stats = part.groupby("t")["cumulative_regret"].agg(["mean", "min", "max"])
        color = _COLORS[i % len(_COLORS)]
        fig.add_trace(go.Scatter(x=np.r_[stats.index, stats.index[::-1]], y=np.r_[stats["max"], stats["min"][::-1]],
                                 fill="toself", fillcolor=_rgba(color, 0.15), line=dict(width=0), hoverinfo="skip",
                                 showlegend=False, legendgroup=policy))
        fig.add_trace(go.Scatter(x=stats.index, y=stats["mean"], mode="lines", name=policy, legendgroup=policy,
                                 line=dict(color=color)))
    return fig.update_layout(template=_TEMPLATE, height=420, title=title, legend_title_text="정책 · policy",
                             xaxis_title="라운드 · round t", yaxis_title="누적 리그렛 · cumulative regret")


def pacing(results: dict, values, prices, optimum, hours=None, points: int = 400, title: str | None = None) -> go.Figure:
    """A day of auctions, per bidder: its λ, its spend against the plan, and its value against the hindsight optimum.

    ``results`` maps a label to a :class:`ctrkit.bidding.AuctionResult`;
    ``values`` and ``prices`` are the auctions' true values and market prices, and ``optimum`` the day's
    :class:`ctrkit.bidding.Hindsight`. The x axis is the hour of day when
    ``hours`` (fractional, one per auction) is given, else the auction's index.
    Spend is a share of the budget, drawn beside the even line (the uniform
    plan) and the optimum's own spend; value is a share of the optimum's.
    """
    values, prices = np.asarray(values, dtype=np.float64), np.asarray(prices, dtype=np.float64)
    n = len(values)
    at = np.unique(np.linspace(0, n - 1, points).round().astype(int))
    x = (np.arange(n) if hours is None else np.asarray(hours, dtype=np.float64))[at]
    panels = ("λ (로그 축 · log scale)", "예산 대비 누적 지출 · spend / budget",
              "최적 대비 누적 가치 · value / hindsight optimum")
    fig = make_subplots(rows=1, cols=3, subplot_titles=panels, horizontal_spacing=0.07)
    budget = optimum.budget
    grey = dict(color="grey", dash="dot")
    fig.add_trace(go.Scatter(x=x, y=(at + 1) / n, mode="lines", name="균등 계획 · even plan", line=grey), row=1, col=2)
    fig.add_trace(go.Scatter(x=x, y=np.cumsum(optimum.x * prices)[at] / budget,
                             mode="lines", name="사후 최적 · hindsight optimum", line=dict(color="black", dash="dash")),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=x, y=np.cumsum(optimum.x * values)[at] / optimum.value, mode="lines", showlegend=False,
                             line=dict(color="black", dash="dash")), row=1, col=3)
    for i, (label, result) in enumerate(results.items()):
        color = _COLORS[i % len(_COLORS)]
        fig.add_trace(go.Scatter(x=x, y=result.lambdas[at], mode="lines", name=label, legendgroup=label,
                                 line=dict(color=color)), row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=result.spent[at] / budget, mode="lines", showlegend=False, legendgroup=label,
                                 line=dict(color=color)), row=1, col=2)
        fig.add_trace(go.Scatter(x=x, y=np.cumsum(result.won * values)[at] / optimum.value, mode="lines",
                                 showlegend=False, legendgroup=label, line=dict(color=color)), row=1, col=3)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(title_text="시각 · hour of day" if hours is not None else "경매 · auction")
    return fig.update_layout(template=_TEMPLATE, height=400, title=title, legend_title_text="입찰자 · bidder")
