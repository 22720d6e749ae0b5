"""Figures of chapter 05 (training at speed).

Each function takes numbers the chapter has already computed (a learning rate
per step, a training history) and returns a ``plotly.graph_objects.Figure``
with bilingual axis titles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ctrkit.plots import _TEMPLATE

__all__ = ["lr_schedules", "swa_curves"]


def lr_schedules(schedules: Mapping[str, Sequence[float]], steps_per_epoch: int | None = None) -> go.Figure:
    """The learning rate at each optimizer step, one line per schedule. Chapter 05.

    ``steps_per_epoch`` draws a dotted vertical line at each epoch boundary.
    """
    fig = go.Figure()
    for name, lrs in schedules.items():
        fig.add_trace(go.Scatter(x=np.arange(len(lrs)), y=list(lrs), mode="lines", name=str(name)))
    if steps_per_epoch:
        n = max(len(v) for v in schedules.values())
        for step in range(steps_per_epoch, n, steps_per_epoch):
            fig.add_vline(x=step, line_dash="dot", line_color="lightgray")
    fig.update_layout(template=_TEMPLATE, height=360, xaxis_title="스텝 · step",
                      yaxis_title="학습률 · learning rate", legend_title_text="스케줄 · schedule")
    return fig


def swa_curves(history: pd.DataFrame) -> go.Figure:
    """Validation logloss per epoch of the running and the averaged (SWA) model. Chapter 05.

    ``history`` is what ``ctrkit.training.fit(..., TrainConfig(swa=True))``
    returns: columns ``epoch``, ``val_logloss``, ``swa_val_logloss`` and
    ``attrs["best_val_logloss"]``, drawn as a dashed line.
    """
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=history["epoch"], y=history["val_logloss"], mode="lines+markers",
                             name="학습 중인 모델 · running model"))
    fig.add_trace(go.Scatter(x=history["epoch"], y=history["swa_val_logloss"], mode="lines+markers",
                             name="평균 모델 · SWA average"))
    fig.add_hline(y=history.attrs["best_val_logloss"], line_dash="dash", line_color="gray",
                  annotation_text="최고 체크포인트 · best checkpoint", annotation_position="top left")
    swa = history.index[history["phase"] == "swa"]
    if len(swa):
        fig.add_vrect(x0=history["epoch"][swa[0]] - 0.5, x1=history["epoch"][swa[-1]] + 0.5,
                      fillcolor="lightgray", opacity=0.2, line_width=0)
    fig.update_layout(template=_TEMPLATE, height=380, xaxis_title="에폭 · epoch",
                      yaxis_title="검증 로그 손실 · val logloss")
    return fig
