"""Figure helpers: what they draw, read back from the plotly figure."""

import numpy as np
import pandas as pd

from ctrkit import plots


def test_model_comparison_draws_known_references_only():
    results = pd.DataFrame({"model": ["lr", "lr", "fm", "fm"], "seed": [0, 1, 0, 1], "auc": [0.60, 0.62, 0.70, 0.72]})
    fig = plots.model_comparison(results, "auc", references={"Bayes-optimal": 0.8})
    (bar,) = fig.data
    assert list(bar.x) == ["lr", "fm"] and np.allclose(bar.y, [0.61, 0.71])
    assert [s.y0 for s in fig.layout.shapes] == [0.8] and fig.layout.yaxis.range[1] > 0.8
    unknown = plots.model_comparison(results, "auc", references={"Bayes-optimal": float("nan")})  # real data
    assert not unknown.layout.shapes and np.isfinite(unknown.layout.yaxis.range).all()
