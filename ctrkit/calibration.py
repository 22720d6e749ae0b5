"""Calibration (chapter 06): make a predicted CTR of 3% mean that 3 in 100 such impressions are clicked.

Four calibrators map a model's scores to probabilities:

- :class:`TemperatureScaling` (Guo et al. 2017): σ(z / T), one parameter fit by LBFGS;
- :class:`PlattScaling` (Platt 1999): σ(a·z + b), a logistic regression on the score;
- :class:`IsotonicCalibrator` (Zadrozny & Elkan 2002): scikit-learn's isotonic
  regression, a monotone step function interpolated between its steps;
- :class:`HistogramBinning` (Zadrozny & Elkan 2001): the click rate of the
  score's equal-mass bin.

Scores are logits (:func:`ctrkit.training.predict_logits`); for probabilities
pass ``ctrkit.metrics.logit(p)``. Each follows scikit-learn's contract —
``fit(scores, labels)`` returns the calibrator, ``predict_proba(scores)`` —
and saves itself as JSON (:meth:`Calibrator.save`, :func:`load_calibrator`).
Fit on validation data, report on test data: a calibrator scored on the rows it
was fit on looks better than it is.

Also here: :func:`downsampling_correction`, which undoes training on a
subsample of the negatives (He et al. 2014), and :class:`SegmentCalibrator`,
one calibrator per segment (campaign, hour, ...) with a global fallback.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from scipy.special import expit

from ctrkit.errors import DataError
from ctrkit.metrics import logistic_fit


def downsampling_correction(p, w: float) -> np.ndarray:
    """Probabilities of a model trained with negatives kept at rate ``w``, mapped back to the full data.

    Dropping negatives divides the odds of a click by ``w``, so the true odds
    are ``w`` times the model's: q = p / (p + (1 − p) / w).
    """
    if not 0 < w <= 1:
        raise ValueError(f"the negative sampling rate w must be in (0, 1], got {w}")
    p = np.asarray(p, dtype=np.float64)
    return p / (p + (1.0 - p) / w)


def _checked(scores, labels=None) -> tuple[np.ndarray, np.ndarray | None]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not np.isfinite(s).all():
        raise DataError("scores contain NaN or infinite values")
    if labels is None:
        return s, None
    y = np.asarray(labels, dtype=np.float64).ravel()
    if y.size != s.size:
        raise DataError(f"scores and labels have different lengths: {s.size} and {y.size}")
    if not np.isin(y, (0.0, 1.0)).all() or y.min() == y.max():
        raise DataError("labels must be 0/1 with both classes present")
    if s.size > 100 and s.min() >= 0 and s.max() <= 1:
        warnings.warn("every score lies in [0, 1]: calibrators take logits; for probabilities pass "
                      "ctrkit.metrics.logit(p)", stacklevel=3)
    return s, y


def _platt_targets(y: np.ndarray) -> np.ndarray:
    """Platt's smoothed targets: (N₊ + 1)/(N₊ + 2) for clicks and 1/(N₋ + 2) for non-clicks instead of 1 and 0."""
    n_pos = y.sum()
    return np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (y.size - n_pos + 2))


class Calibrator:
    """The shared contract: ``fit`` learns attributes ending in ``_``, ``predict_proba`` maps scores, JSON I/O."""

    method = ""
    _state: tuple[str, ...] = ()  # the fitted attributes saved to JSON

    def fit(self, scores, labels) -> Calibrator:
        raise NotImplementedError

    def predict_proba(self, scores) -> np.ndarray:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not all(hasattr(self, name) for name in self._state):
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit(scores, labels) first")

    def to_dict(self) -> dict:
        self._check_fitted()
        state = {name: np.asarray(getattr(self, name)).tolist() for name in self._state}
        return {"method": self.method, "params": self._params(), "state": state}

    def _params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        calibrator = cls(**d.get("params", {}))
        for name in cls._state:
            value = d["state"][name]
            setattr(calibrator, name, np.asarray(value) if isinstance(value, list) else value)
        return calibrator


class TemperatureScaling(Calibrator):
    """σ(z / T): one temperature for every score. Fixes over- and under-confidence, not a shifted base rate."""

    method = "temperature"
    _state = ("temperature_",)

    def fit(self, scores, labels) -> TemperatureScaling:
        import torch  # here, so that `ctrkit --help` does not wait for it

        s, y = _checked(scores, labels)
        z, target = torch.as_tensor(s), torch.as_tensor(y)
        log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)  # T = exp(log_t) stays positive
        optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z / log_t.exp(), target)
            loss.backward()
            return loss

        optimizer.step(closure)
        self.temperature_ = float(log_t.detach().exp())
        return self

    def predict_proba(self, scores) -> np.ndarray:
        self._check_fitted()
        return expit(_checked(scores)[0] / self.temperature_)


class PlattScaling(Calibrator):
    """σ(a·z + b): a slope for confidence and an intercept for the base rate.

    ``smoothed=True`` fits Platt's targets (N₊ + 1)/(N₊ + 2) and 1/(N₋ + 2)
    instead of 1 and 0, which keeps a small validation set from producing 0 or 1.
    """

    method = "platt"
    _state = ("a_", "b_")

    def __init__(self, smoothed: bool = True):
        self.smoothed = smoothed

    def fit(self, scores, labels) -> PlattScaling:
        s, y = _checked(scores, labels)
        self.a_, self.b_ = logistic_fit(s, _platt_targets(y) if self.smoothed else y)
        return self

    def predict_proba(self, scores) -> np.ndarray:
        self._check_fitted()
        return expit(self.a_ * _checked(scores)[0] + self.b_)


class IsotonicCalibrator(Calibrator):
    """The best monotone step function of the score (scikit-learn's ``IsotonicRegression``).

    Saved as its steps (``x_``, ``y_``) and applied with linear interpolation
    between them, clipped outside: exactly scikit-learn's ``predict``, without
    pickling its object. ``smoothed=True`` fits Platt's targets (see
    :class:`PlattScaling`): at a low CTR the lowest steps often hold no click of
    the validation data, and a predicted 0 costs an infinite logloss on the
    first click there.
    """

    method = "isotonic"
    _state = ("x_", "y_")

    def __init__(self, smoothed: bool = True):
        self.smoothed = smoothed

    def fit(self, scores, labels) -> IsotonicCalibrator:
        from sklearn.isotonic import IsotonicRegression

        s, y = _checked(scores, labels)
        y = _platt_targets(y) if self.smoothed else y
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
        self.x_, self.y_ = iso.X_thresholds_, iso.y_thresholds_
        return self

    def predict_proba(self, scores) -> np.ndarray:
        self._check_fitted()
        return np.interp(_checked(scores)[0], self.x_, self.y_)


class HistogramBinning(Calibrator):
    """The click rate of the score's bin, with ``n_bins`` equal-mass bins fit on the calibration data."""

    method = "histogram"
    _state = ("edges_", "rates_")

    def __init__(self, n_bins: int = 15):
        if n_bins < 1:
            raise ValueError(f"n_bins must be at least 1, got {n_bins}")
        self.n_bins = n_bins

    def fit(self, scores, labels) -> HistogramBinning:
        s, y = _checked(scores, labels)
        edges = np.unique(np.quantile(s, np.linspace(0, 1, self.n_bins + 1))[1:-1])  # inner edges
        ids = np.searchsorted(edges, s)
        count = np.bincount(ids, minlength=edges.size + 1)
        clicks = np.bincount(ids, weights=y, minlength=edges.size + 1)
        self.edges_ = edges
        self.rates_ = np.where(count > 0, clicks / np.maximum(count, 1), y.mean())
        return self

    def predict_proba(self, scores) -> np.ndarray:
        self._check_fitted()
        return self.rates_[np.searchsorted(self.edges_, _checked(scores)[0])]


CALIBRATORS: dict[str, type[Calibrator]] = {
    c.method: c for c in (TemperatureScaling, PlattScaling, IsotonicCalibrator, HistogramBinning)
}


def _calibrator_class(method: str) -> type[Calibrator]:
    if method not in CALIBRATORS:
        raise ValueError(f"unknown calibration method {method!r}; choose one of {', '.join(CALIBRATORS)}")
    return CALIBRATORS[method]


def make_calibrator(method: str, **params) -> Calibrator:
    """A calibrator by name: ``temperature``, ``platt``, ``isotonic`` or ``histogram``."""
    return _calibrator_class(method)(**params)


class SegmentCalibrator(Calibrator):
    """One calibrator per segment (a campaign, an hour of the day) with at least ``min_count`` rows.

    Rarer or unseen segments use a calibrator fit on all rows. A model
    calibrated overall can still be off by tens of percent within segments it
    cannot tell apart (chapter 06); this repairs it where the segment is known
    when serving.
    """

    method = "segment"
    _state = ("global_", "segments_")

    def __init__(self, base: str = "platt", min_count: int = 1000):
        _calibrator_class(base)  # an unknown name fails here, not at fit
        self.base, self.min_count = base, min_count

    def fit(self, scores, labels, segments) -> SegmentCalibrator:
        s, y = _checked(scores, labels)
        keys = np.asarray(segments).astype(str).ravel()
        if keys.size != s.size:
            raise ValueError(f"segments has {keys.size} values for {s.size} scores")
        self.global_ = make_calibrator(self.base).fit(s, y)
        self.segments_ = {}
        values, counts = np.unique(keys, return_counts=True)
        for value in values[counts >= self.min_count]:
            rows = keys == value
            if 0 < y[rows].sum() < rows.sum():
                self.segments_[str(value)] = make_calibrator(self.base).fit(s[rows], y[rows])
        return self

    def predict_proba(self, scores, segments) -> np.ndarray:
        self._check_fitted()
        s = _checked(scores)[0]
        keys = np.asarray(segments).astype(str).ravel()
        if keys.size != s.size:
            raise ValueError(f"segments has {keys.size} values for {s.size} scores")
        p = self.global_.predict_proba(s)
        for value, calibrator in self.segments_.items():
            rows = keys == value
            if rows.any():
                p[rows] = calibrator.predict_proba(s[rows])
        return p

    def to_dict(self) -> dict:
        self._check_fitted()
        return {"method": self.method, "params": self._params(), "state": {
            "global_": self.global_.to_dict(), "segments_": {k: c.to_dict() for k, c in self.segments_.items()}}}

    @classmethod
    def from_dict(cls, d: dict) -> SegmentCalibrator:
        calibrator = cls(**d.get("params", {}))
        calibrator.global_ = calibrator_from_dict(d["state"]["global_"])
        calibrator.segments_ = {k: calibrator_from_dict(v) for k, v in d["state"]["segments_"].items()}
        return calibrator


def calibrator_from_dict(d: dict) -> Calibrator:
    kinds = {**CALIBRATORS, SegmentCalibrator.method: SegmentCalibrator}
    if not isinstance(d, dict) or d.get("method") not in kinds:
        raise DataError(f"not a saved ctrkit calibrator (method {d.get('method') if isinstance(d, dict) else d!r})")
    try:
        return kinds[d["method"]].from_dict(d)
    except (KeyError, TypeError) as e:
        raise DataError(f"a saved {d['method']} calibrator with missing or unknown fields ({e})") from None


def _read_json(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no calibrator at {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON: {e}") from None


def load_calibrator(path: str | Path) -> Calibrator:
    """A calibrator saved with :meth:`Calibrator.save` (JSON; nothing is unpickled)."""
    return calibrator_from_dict(_read_json(path))


def save_calibrators(path: str | Path, calibrators: dict[str, Calibrator]) -> None:
    """One calibrator per label in one JSON file (a run's ``calibrator.json``)."""
    Path(path).write_text(json.dumps({label: c.to_dict() for label, c in calibrators.items()}, indent=1))


def load_calibrators(path: str | Path) -> dict[str, Calibrator]:
    """The ``{label: calibrator}`` of :func:`save_calibrators`."""
    return {label: calibrator_from_dict(d) for label, d in _read_json(path).items()}
