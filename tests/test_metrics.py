import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score, brier_score_loss, f1_score, log_loss, ndcg_score, precision_score, recall_score,
    roc_auc_score,
)

from ctrkit import metrics as M


def scored(n=20_000, base=-2.0, seed=0):
    """Labels drawn from a known probability, and a noisy, miscalibrated score of it."""
    rng = np.random.default_rng(seed)
    p_true = 1 / (1 + np.exp(-(base + rng.normal(0, 1, n))))
    y = (rng.random(n) < p_true).astype(int)
    p = np.round(np.clip(1.2 * p_true + rng.normal(0, 0.02, n), 0.001, 0.999), 3)  # with ties
    return y, p, p_true


def test_match_scikit_learn():
    y, p, _ = scored()
    assert M.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-9)
    assert M.logloss(y, p) == pytest.approx(log_loss(y, p), abs=1e-9)
    assert M.pr_auc(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-9)
    assert M.brier(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-9)
    chosen = p >= 0.2
    got = M.precision_recall_f1(y, p, threshold=0.2)
    assert got["precision"] == pytest.approx(precision_score(y, chosen), abs=1e-9)
    assert got["recall"] == pytest.approx(recall_score(y, chosen), abs=1e-9)
    assert got["f1"] == pytest.approx(f1_score(y, chosen), abs=1e-9)


@pytest.mark.parametrize("scheme, strategy", [("width", "uniform"), ("mass", "quantile")])
@pytest.mark.parametrize("n_bins", [5, 15, 40])
def test_calibration_bins_match_calibration_curve(scheme, strategy, n_bins):
    y, p, _ = scored()
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    bins = M.calibration_bins(y, p, n_bins, scheme)
    np.testing.assert_allclose(bins["mean_y"], prob_true, atol=1e-9)
    np.testing.assert_allclose(bins["mean_p"], prob_pred, atol=1e-9)
    expected_ece = np.sum(bins["count"] * np.abs(prob_true - prob_pred)) / len(y)
    assert M.ece(y, p, n_bins, scheme) == pytest.approx(expected_ece, abs=1e-12)
    assert M.mce(y, p, n_bins, scheme) == pytest.approx(np.abs(prob_true - prob_pred).max(), abs=1e-12)


@pytest.mark.parametrize("base", [-3.5, -1.0, 0.5])  # CTRs of about 4%, 30% and 60%
@pytest.mark.parametrize("scheme", ["width", "mass"])
def test_a_perfectly_calibrated_score_has_ece_near_zero(base, scheme):
    """Labels drawn from p itself: the estimated ECE is only label noise, the true calibration error is 0."""
    rng = np.random.default_rng(int(10 * base) + 100)
    p = 1 / (1 + np.exp(-(base + rng.normal(0, 1, 200_000))))
    y = rng.random(p.size) < p
    assert M.ece(y, p, 15, scheme) < 0.005
    assert M.true_calibration_error(p, p, 100, scheme) < 1e-12
    off = 0.7 * p  # a score that is 30% too low
    assert M.true_calibration_error(p, off, 100, scheme) == pytest.approx(0.3 * p.mean(), rel=1e-9)
    assert M.ece(y, off, 15, scheme) > 0.2 * p.mean()


def test_equal_width_bins_hide_miscalibration_at_a_low_ctr():
    y, p, p_true = scored(200_000, base=-4.5)
    wrong = np.clip(p_true * np.exp(0.5 * (p_true > np.median(p_true)) - 0.25), 0, 1)
    width = M.calibration_bins(y, wrong, 10, "width")
    assert width["count"][0] / len(y) > 0.95  # nearly every row lands in the first bin
    truth = M.true_calibration_error(p_true, wrong)
    assert M.ece(y, wrong, 10, "width") < 0.85 * truth  # errors of opposite sign cancel inside that bin
    assert M.ece(y, wrong, 10, "mass") == pytest.approx(truth, rel=0.1)


def test_gauc_is_the_impression_weighted_mean_of_per_group_aucs():
    y, p, _ = scored(30_000)
    groups = np.random.default_rng(3).integers(0, 2_000, y.size)
    value, used, skipped = M.gauc(y, p, groups, return_counts=True)
    frame = pd.DataFrame({"y": y, "p": p, "g": groups})
    total = weight = 0.0
    n_skipped = 0
    for _, part in frame.groupby("g"):
        if part["y"].nunique() < 2:
            n_skipped += 1
            continue
        total += roc_auc_score(part["y"], part["p"]) * len(part)
        weight += len(part)
    assert value == pytest.approx(total / weight, abs=1e-9)
    assert skipped == n_skipped > 0 and used + skipped == frame["g"].nunique()
    assert M.gauc(y, p, groups) == value
    with pytest.raises(ValueError, match="no group"):
        M.gauc([1, 0], [0.3, 0.2], ["a", "b"])


@pytest.mark.parametrize("k", [1, 3, 10])
def test_ndcg_at_k_matches_scikit_learn_per_group(k):
    y, _, p_true = scored(20_000, base=-1.0)
    p = p_true + np.random.default_rng(6).normal(0, 0.1, y.size)  # a score without ties
    groups = np.random.default_rng(4).integers(0, 1_000, y.size)
    frame = pd.DataFrame({"y": y, "p": p, "g": groups})
    per_group = [ndcg_score([part["y"]], [part["p"]], k=k) if len(part) > 1 else 1.0
                 for _, part in frame.groupby("g") if part["y"].sum() > 0]
    assert M.ndcg_at_k(y, p, groups, k) == pytest.approx(np.mean(per_group), abs=1e-9)
    assert M.ndcg_at_k(y, y.astype(float), groups, k) == pytest.approx(1.0)


def test_top_k_selection_per_group():
    y = np.array([1, 0, 0, 1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.6, 0.6])
    groups = np.array(["a", "a", "a", "b", "b", "c", "c"])
    assert M.top_k_mask(p, 1, groups).tolist() == [True, False, False, False, True, True, False]  # ties: earlier row
    assert M.top_k_ctr(y, p, groups, k=1) == pytest.approx(2 / 3)
    got = M.precision_recall_f1(y, p, top_k=2)
    assert got["selected"] == 2 and got["precision"] == 0.5 and got["recall"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="exactly one"):
        M.precision_recall_f1(y, p)


def test_normalized_entropy_and_information_gain():
    y, p, _ = scored()
    rate = y.mean()
    entropy = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
    assert M.normalized_entropy(y, p) == pytest.approx(log_loss(y, p) / entropy, abs=1e-12)
    assert M.normalized_entropy(y, np.full(y.size, rate)) == pytest.approx(1.0, abs=1e-9)  # predicting the CTR
    assert M.relative_information_gain(y, p) == pytest.approx(1 - M.normalized_entropy(y, p))
    assert 0 < M.relative_information_gain(y, p) < 1


def test_calibration_slope_intercept_recover_a_known_miscalibration():
    rng = np.random.default_rng(5)
    z = rng.normal(-2, 1.5, 100_000)
    y = rng.random(z.size) < 1 / (1 + np.exp(-(0.6 * z - 0.4)))  # the model's logit z is 1/0.6 too confident
    p = 1 / (1 + np.exp(-z))
    slope, intercept = M.calibration_slope_intercept(y, p)
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(z[:, None], y)
    assert slope == pytest.approx(reference.coef_[0, 0], abs=1e-5)
    assert intercept == pytest.approx(reference.intercept_[0], abs=1e-5)
    assert slope == pytest.approx(0.6, abs=0.03) and intercept == pytest.approx(-0.4, abs=0.05)
    assert M.calibration_ratio(y, p) == pytest.approx(p.sum() / y.sum())


def test_money():
    p, bids = np.array([0.03, 0.02]), np.array([1.0, 2.0])
    np.testing.assert_allclose(M.ecpm(p, bids), [30.0, 40.0])  # the second ad wins the auction
    assert M.expected_revenue(p, bids) == pytest.approx(0.07)
    assert M.roas([1, 0, 1, 0], spend=[0.5, 0.5, 0.5, 0.5], value_per_click=2.0) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="without spend"):
        M.roas([1], [0.0], 1.0)


def test_report_and_bad_input():
    y, p, _ = scored()
    report = M.report(y, p)
    assert {"auc", "pr_auc", "logloss", "ne", "brier", "ece", "mce", "calibration_ratio"} <= set(report)
    assert report["ece"] == M.ece(y, p) and report["rows"] == y.size
    with pytest.raises(ValueError, match="different lengths"):
        M.logloss([0, 1], [0.5])
    with pytest.raises(ValueError, match="probabilities"):
        M.ece([0, 1], [-1.0, 2.0])
    with pytest.raises(ValueError, match="scheme"):
        M.ece([0, 1], [0.2, 0.4], scheme="equal")


def test_pr_auc_of_a_random_score_is_the_base_rate():
    rng = np.random.default_rng(1)
    y = rng.random(200_000) < 0.05
    assert M.pr_auc(y, rng.random(y.size)) == pytest.approx(0.05, abs=0.005)
    assert M.pr_auc(y, y.astype(float)) == 1.0
    with pytest.raises(ValueError, match="without positives"):
        M.pr_auc([0, 0], [0.1, 0.2])


def test_auc_needs_both_classes():
    with pytest.raises(ValueError, match="one class"):
        M.auc([1, 1], [0.2, 0.3])


def test_paired_bootstrap_separates_a_real_gap_from_noise():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-truth))).astype(int)
    good, worse = truth + rng.normal(scale=0.5, size=4000), truth + rng.normal(scale=1.5, size=4000)
    twin = good + rng.normal(scale=0.05, size=4000)  # the same model up to tiny noise
    gap = M.paired_bootstrap(y, good, worse, n_resamples=300)
    assert gap["difference"] == pytest.approx(M.auc(y, good) - M.auc(y, worse))
    assert 0 < gap["low"] < gap["difference"] < gap["high"] and gap["p_value"] == pytest.approx(1 / 300)
    same = M.paired_bootstrap(y, good, twin, n_resamples=300)
    assert same["low"] < 0 < same["high"] and same["p_value"] > 0.05
    # pairing: the interval of the difference is far narrower than what resampling each model alone would allow
    assert same["high"] - same["low"] < 0.2 * (gap["high"] - gap["low"])
    ll = M.paired_bootstrap(y, worse, good, metric=M.logloss, n_resamples=100)  # any metric; here lower is better
    assert ll["difference"] > 0
    with pytest.raises(ValueError, match="different lengths"):
        M.paired_bootstrap(y, good, worse[:10])
