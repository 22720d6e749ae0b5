"""Figures of chapter 09 (off-policy evaluation).

Each function takes numbers the chapter has already computed (an error table
of :func:`ctrkit.ope.error_table`) and returns a ``plotly.graph_objects.Figure``
with bilingual axis titles.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ctrkit.plots import _TEMPLATE

__all__ = ["estimator_errors"]


def estimator_errors(table: pd.DataFrame, x: str = "n_rounds", x_title: str = "로그의 라운드 수 · rounds in the log",
                     log_x: bool = True) -> go.Figure:
    """Bias, standard deviation and RMSE of each estimator against ``x`` (a level of the table's index), side by side.

    ``table`` is :func:`ctrkit.ope.error_table`'s output, indexed by (``x``,
    estimator). Bias is signed, so a line away from 0 is an estimator that is
    wrong on average; the RMSE panel combines it with the spread.
    """
    panels = (("bias", "편향 · bias"), ("std", "표준편차 · std"), ("rmse", "RMSE"))
    fig = make_subplots(rows=1, cols=3, subplot_titles=[title for _, title in panels], horizontal_spacing=0.07)
    for i, estimator in enumerate(table.index.get_level_values("estimator").unique()):
        rows = table.xs(estimator, level="estimator").sort_index()
        for col, (column, _) in enumerate(panels, start=1):
            fig.add_trace(go.Scatter(x=rows.index, y=rows[column], mode="lines+markers", name=str(estimator),
                                     legendgroup=str(estimator), showlegend=col == 1,
                                     line=dict(color=_COLORS[i % len(_COLORS)])), row=1, col=col)
    fig.update_xaxes(title_text=x_title, type="log" if log_x else "linear")
    fig.add_hline(y=0, line=dict(color="grey", width=1), row=1, col=1)
    return fig.update_layout(template=_TEMPLATE, height=380, legend_title_text="추정량 · estimator",
                             yaxis_title="추정값 − 참값 · estimate − truth")


_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
