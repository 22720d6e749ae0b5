import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from ctrkit import metrics as M
from ctrkit.calibration import (
    CALIBRATORS, HistogramBinning, IsotonicCalibrator, PlattScaling, SegmentCalibrator, TemperatureScaling,
    calibrator_from_dict, downsampling_correction, load_calibrator, make_calibrator,
)


def logits(n=40_000, seed=0, slope=2.0, shift=0.0):
    """A model's logits ``slope · z + shift`` of the true logit z (too confident when slope > 1), and labels."""
    rng = np.random.default_rng(seed)
    z_true = rng.normal(-2.5, 1.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z_true))).astype(int)
    return slope * z_true + shift, y, 1 / (1 + np.exp(-z_true))


@pytest.mark.parametrize("method", list(CALIBRATORS))
def test_each_calibrator_lowers_held_out_ece(method, tmp_path):
    z, y, p_true = logits()
    fit_rows, test_rows = slice(0, 20_000), slice(20_000, None)
    calibrator = make_calibrator(method).fit(z[fit_rows], y[fit_rows])
    before = 1 / (1 + np.exp(-z[test_rows]))
    after = calibrator.predict_proba(z[test_rows])
    assert M.ece(y[test_rows], after) < 0.5 * M.ece(y[test_rows], before)
    assert M.true_calibration_error(p_true[test_rows], after) < M.true_calibration_error(p_true[test_rows], before)
    calibrator.save(tmp_path / "c.json")
    saved = json.loads((tmp_path / "c.json").read_text())  # plain JSON, no pickle
    assert saved["method"] == method
    assert np.array_equal(load_calibrator(tmp_path / "c.json").predict_proba(z[test_rows]), after)


def test_temperature_recovers_the_confidence_and_cannot_shift():
    z, y, _ = logits(200_000, slope=2.0)
    assert TemperatureScaling().fit(z, y).temperature_ == pytest.approx(2.0, rel=0.03)
    z, y, _ = logits(200_000, slope=1.0, shift=1.0)  # a pure shift: no temperature fixes the base rate
    p = TemperatureScaling().fit(z, y).predict_proba(z)
    assert M.calibration_ratio(y, p) > 1.2
    assert M.calibration_ratio(y, PlattScaling().fit(z, y).predict_proba(z)) == pytest.approx(1.0, abs=0.01)


def test_platt_is_scikit_learns_logistic_regression():
    z, y, _ = logits()
    platt = PlattScaling(smoothed=False).fit(z, y)
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(z[:, None], y)
    assert platt.a_ == pytest.approx(reference.coef_[0, 0], abs=1e-5)
    assert platt.b_ == pytest.approx(reference.intercept_[0], abs=1e-5)
    smoothed = PlattScaling().fit(z, y)
    assert smoothed.a_ == pytest.approx(platt.a_, abs=0.01) and (smoothed.a_, smoothed.b_) != (platt.a_, platt.b_)


def test_isotonic_predicts_exactly_like_scikit_learn():
    z, y, _ = logits()
    ours = IsotonicCalibrator(smoothed=False).fit(z[:20_000], y[:20_000])
    theirs = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(z[:20_000], y[:20_000])
    new = np.r_[z[20_000:], -50.0, 50.0]  # also outside the fitted range
    np.testing.assert_allclose(ours.predict_proba(new), theirs.predict(new), atol=1e-12)
    assert theirs.predict(new).min() == 0.0  # a step without a click predicts 0 ...
    smoothed = IsotonicCalibrator().fit(z[:20_000], y[:20_000]).predict_proba(new)
    assert smoothed.min() > 0 and np.isfinite(M.logloss(y[20_000:], smoothed[:-2]))  # ... unless smoothed
    assert M.logloss(y[20_000:], smoothed[:-2]) < M.logloss(y[20_000:], ours.predict_proba(new)[:-2])


def test_histogram_binning_is_each_bins_click_rate():
    z, y, _ = logits()
    hist = HistogramBinning(n_bins=10).fit(z, y)
    p = hist.predict_proba(z)
    assert len(np.unique(p)) == 10
    for value in np.unique(p):
        assert y[p == value].mean() == pytest.approx(value, abs=1e-12)
    with pytest.raises(ValueError, match="n_bins"):
        HistogramBinning(n_bins=0)


def test_downsampling_correction_recovers_the_base_rate():
    rng = np.random.default_rng(2)
    p = 1 / (1 + np.exp(-rng.normal(-3.5, 1.0, 400_000)))
    y = rng.random(p.size) < p
    w = 0.1
    kept = y | (rng.random(p.size) < w)  # every click, a tenth of the non-clicks
    p_sub = p / (p + (1 - p) * w)  # the true probability on the subsample
    assert M.calibration_ratio(y[kept], p_sub[kept]) == pytest.approx(1.0, abs=0.03)
    np.testing.assert_allclose(downsampling_correction(p_sub, w), p, rtol=1e-12)
    assert downsampling_correction(p_sub, w).mean() == pytest.approx(y.mean(), rel=0.03)
    with pytest.raises(ValueError, match="sampling rate"):
        downsampling_correction(p, 0.0)


def test_segment_calibrator_repairs_per_segment_errors(tmp_path):
    z, y, p_true = logits(60_000, slope=1.0, shift=0.0)
    segment = np.random.default_rng(3).integers(0, 4, z.size)
    z_seen = z - 0.4 * (segment - 1.5)  # the model is off by a different shift in each segment
    fit_rows, test_rows = slice(0, 30_000), slice(30_000, None)
    seg = SegmentCalibrator(base="platt", min_count=500).fit(z_seen[fit_rows], y[fit_rows], segment[fit_rows])
    glob = PlattScaling().fit(z_seen[fit_rows], y[fit_rows])

    def worst_ratio(p):
        return max(abs(np.log(M.calibration_ratio(y[test_rows][segment[test_rows] == s], p[segment[test_rows] == s])))
                   for s in range(4))

    p_seg = seg.predict_proba(z_seen[test_rows], segment[test_rows])
    assert worst_ratio(p_seg) < 0.1 < worst_ratio(glob.predict_proba(z_seen[test_rows]))
    seg.save(tmp_path / "seg.json")
    again = load_calibrator(tmp_path / "seg.json")
    assert np.array_equal(again.predict_proba(z_seen[test_rows], segment[test_rows]), p_seg)
    unseen = again.predict_proba(z_seen[:5], ["new"] * 5)  # an unseen segment falls back to the global fit
    np.testing.assert_allclose(unseen, seg.global_.predict_proba(z_seen[:5]))


def test_clear_errors():
    with pytest.raises(ValueError, match="not fitted"):
        PlattScaling().predict_proba([0.1])
    with pytest.raises(ValueError, match="both classes"):
        PlattScaling().fit([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="different lengths"):
        IsotonicCalibrator().fit([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="unknown calibration method"):
        make_calibrator("beta")
    with pytest.raises(ValueError, match="missing or unknown fields"):
        calibrator_from_dict({"method": "platt", "params": {"smooth": True}, "state": {"a_": 1.0, "b_": 0.0}})
    with pytest.raises(ValueError, match="not a saved ctrkit calibrator"):
        calibrator_from_dict({"method": "beta"})
    with pytest.warns(UserWarning, match="take logits"):
        TemperatureScaling().fit(np.linspace(0.01, 0.99, 200), np.arange(200) % 2)
