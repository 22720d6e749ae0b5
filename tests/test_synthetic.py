import numpy as np
import pandas as pd
import pytest

from ctrkit.datasets import DENSE, SPARSE, bayes_optimal_metrics, split, split_codes, synthetic_criteo
from ctrkit.datasets.synthetic import CARDINALITY, MISSING
from ctrkit.metrics import auc


def test_deterministic_per_seed(small_df):
    pd.testing.assert_frame_equal(synthetic_criteo(5_000, seed=0), small_df)
    assert not synthetic_criteo(5_000, seed=1)["p_click"].equals(small_df["p_click"])


def test_schema_and_quirks(small_df):
    df = small_df
    assert list(df.columns[:40]) == ["click"] + DENSE + SPARSE
    assert {"p_click", "user_id", "ts", "conversion", "p_conversion"} <= set(df.columns)
    assert df["I2"].min() < 0 and df["I2"].isna().sum() == 0
    assert (df[DENSE].drop(columns="I2").dropna() >= 0).all().all()
    values = df["C3"].dropna()
    assert values.str.fullmatch(r"[0-9a-f]{8}").all()
    for c in SPARSE:
        assert df[c].nunique() <= CARDINALITY[c]
    assert df["ts"].is_monotonic_increasing


def test_marginals_follow_the_documented_tables():
    df = synthetic_criteo(40_000, seed=3, base_rate=0.1)
    assert abs(df["click"].mean() - 0.1) < 0.01
    assert abs(df["p_click"].mean() - 0.1) < 1e-6  # the intercept is solved exactly
    for c in ["I1", "I12", "C22", "C19"]:
        assert abs(df[c].isna().mean() - MISSING[c]) < 0.02
    top = df["C1"].value_counts(normalize=True)
    assert top.iloc[0] > 10 * top.iloc[100]  # Zipf-like: a head and a long tail


def test_conversions_follow_clicks(small_df):
    df = small_df
    assert (df.loc[df["conversion"] == 1, "click"] == 1).all()
    assert 0 < df["conversion"].mean() < df["click"].mean()
    assert df["p_conversion"].between(0, 1).all()


def test_bayes_optimal_metrics(small_df):
    m = bayes_optimal_metrics(small_df)
    base = m["base_rate"]
    entropy = -(base * np.log(base) + (1 - base) * np.log(1 - base))
    assert 0.75 < m["auc"] < 0.9
    assert m["expected_logloss"] < entropy
    assert m["auc"] == pytest.approx(auc(small_df["click"], small_df["p_click"]))


def test_interactions_carry_signal():
    """A model of the truth that drops every interaction ranks clearly worse: interaction models have room to win."""
    from ctrkit.datasets import synthetic

    parts = {}
    original = synthetic._components

    def spy(*args):
        parts.update(original(*args))
        return parts

    synthetic._components = spy
    try:
        df = synthetic.synthetic_criteo(50_000, seed=0)
    finally:
        synthetic._components = original
    y = df["click"].to_numpy()
    total = sum(parts.values())
    mains = total - sum(v for k, v in parts.items() if "x" in k)
    assert auc(y, total) - auc(y, mains) > 0.03


@pytest.mark.parametrize("how", ["random", "time"])
def test_split_partitions_rows(small_df, how):
    df = small_df.assign(row=np.arange(len(small_df)))
    train, val, test = split(df, how=how, seed=1)
    rows = np.sort(pd.concat([train, val, test])["row"].to_numpy())
    assert (rows == np.arange(len(df))).all()  # every row exactly once
    assert abs(len(train) / len(df) - 0.8) < 0.03
    if how == "time":
        assert train["ts"].max() <= val["ts"].min() and val["ts"].max() <= test["ts"].min()


def test_random_split_is_chunk_invariant():
    whole = split_codes(np.arange(10_000), "random", seed=7)
    parts = np.concatenate([split_codes(np.arange(i, i + 999), "random", seed=7) for i in range(0, 10_000, 999)])
    assert (whole == parts[:10_000]).all()
    assert not (whole == split_codes(np.arange(10_000), "random", seed=8)).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"fractions": (0.5, 0.5, 0.5)}, "summing to 1"),
    ({"how": "sideways"}, "unknown split"),
])
def test_split_rejects_bad_arguments(small_df, kwargs, message):
    with pytest.raises(ValueError, match=message):
        split(small_df, **kwargs)
