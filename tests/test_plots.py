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


def test_regret_curves_draw_the_mean_over_seeds_between_the_lowest_and_highest():
    t = np.arange(1, 11)
    runs = pd.DataFrame({"policy": ["a"] * 20 + ["b"] * 10, "seed": [0] * 10 + [1] * 10 + [0] * 10,
                         "t": np.r_[t, t, t], "cumulative_regret": np.r_[t * 1.0, t * 3.0, t * 0.5]})
    fig = plots.regret_curves(runs, points=10)
    lines = {trace.name: trace for trace in fig.data if trace.name}
    assert set(lines) == {"a", "b"}
    assert np.allclose(lines["a"].y, t * 2.0) and np.allclose(lines["b"].y, t * 0.5)
    band = fig.data[0]  # policy a's band: the highest seed going out, the lowest coming back
    assert np.allclose(band.y, np.r_[t * 3.0, (t * 1.0)[::-1]])


def test_pacing_draws_spend_and_value_as_shares_of_budget_and_optimum():
    from ctrkit import bidding

    values, prices = np.array([0.1, 0.2, 0.1, 0.4]), np.array([1.0, 1.0, 2.0, 1.0])
    best = bidding.hindsight_optimum(values, prices, budget=2.0)  # takes auctions 3 and 1 (value per cost 0.4, 0.2)
    result = bidding.run_auctions(values, prices, bidding.ConstantBidder(lam=0.15), budget=2.0)  # bids v / 0.15
    fig = plots.pacing({"fixed": result}, values, prices, best, points=4)
    spend = [tr for tr in fig.data if tr.xaxis == "x2"]
    value = [tr for tr in fig.data if tr.xaxis == "x3"]
    assert np.allclose(spend[0].y, [0.25, 0.5, 0.75, 1.0])  # the even plan
    assert np.allclose(spend[1].y, [0.0, 0.5, 0.5, 1.0])  # the optimum buys auctions 1 and 3
    assert np.allclose(spend[-1].y, result.spent / 2.0) and np.isclose(spend[-1].y[-1], result.spend_share)
    assert np.allclose(value[-1].y, np.cumsum(result.won * values) / best.value)
    assert np.allclose(value[0].y[-1], 1.0)
