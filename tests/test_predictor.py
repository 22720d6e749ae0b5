"""ctrkit.Predictor and `ctrkit predict`: raw rows of every kind give the probabilities `evaluate` scores."""

import json
import math
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctrkit import Predictor, metrics
from ctrkit.cli import main
from ctrkit.datasets import DataError, split, synthetic_criteo, write_criteo
from ctrkit.preprocessing import prepare_frame
from ctrkit.training import RunConfig, TrainConfig, calibrate_run, evaluate_run, train_run


@pytest.fixture(scope="module")
def raw():
    df = synthetic_criteo(4000, seed=3)
    return df, split(df, "random", (0.8, 0.1, 0.1), seed=3)[2]  # the rows prepare_frame puts in test


@pytest.fixture(scope="module")
def run(raw, tmp_path_factory):
    """A DeepFM run on prepared twin data, trained one epoch and calibrated with Platt scaling."""
    df, _ = raw
    root = tmp_path_factory.mktemp("predictor")
    prepare_frame(df, root / "data", seed=3)
    config = RunConfig("deepfm", {"l2": 0.1}, TrainConfig(epochs=1, progress=False))
    train_run(config, root / "data", root / "run")
    calibrate_run(root / "run", "platt")
    return root / "run"


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as a JSON request would carry them: None for missing values."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def test_raw_rows_score_as_evaluate_does(run, raw):
    """Predictor on raw test rows gives the calibrated metrics `evaluate` reports on the prepared test split."""
    _, test = raw
    predictor = Predictor.from_run(run)
    p = predictor.predict(test)
    assert list(p.columns) == ["p_click"] and len(p) == len(test)
    evaluated = evaluate_run(run, "test")
    scored = metrics.report(test["click"], p["p_click"])
    for k in ("auc", "logloss", "ece", "brier"):
        assert scored[k] == pytest.approx(evaluated["calibrated"][k], abs=1e-12)
    raw_p = predictor.predict(test, calibrated=False)["p_click"]
    assert metrics.logloss(test["click"], raw_p) == pytest.approx(evaluated["logloss"], abs=1e-12)
    assert not np.allclose(raw_p, p["p_click"]), "the calibrator changes the probabilities"


def test_tables_dicts_and_files_agree(run, raw, tmp_path):
    _, test = raw
    predictor = Predictor.from_run(run)
    expected = predictor.predict(test)["p_click"].to_numpy()
    np.testing.assert_array_equal(predictor.predict(pa.Table.from_pandas(test))["p_click"], expected)
    np.testing.assert_array_equal(predictor.predict(records(test))["p_click"], expected)
    for name in ("test.txt", "test.txt.gz"):
        path = write_criteo(test, tmp_path / name)
        np.testing.assert_allclose(predictor.predict(path)["p_click"], expected, rtol=0, atol=1e-12)
    unlabelled = write_criteo(test.drop(columns="click"), tmp_path / "unlabelled.txt")
    np.testing.assert_allclose(predictor.predict(unlabelled)["p_click"], expected, rtol=0, atol=1e-12)
    test.to_parquet(tmp_path / "test.parquet")
    np.testing.assert_allclose(predictor.predict(tmp_path / "test.parquet")["p_click"], expected, rtol=0, atol=1e-12)


def test_absent_fields_are_missing_and_unknown_values_oov(run, raw):
    _, test = raw
    predictor = Predictor.from_run(run)
    rows = records(test.head(50))
    for row in rows[::2]:  # drop some fields from every other row ...
        del row["I3"], row["C7"]
    frame = test.head(50).copy()
    frame.loc[frame.index[::2], ["I3", "C7"]] = None  # ... which is the same as those fields being null
    np.testing.assert_array_equal(predictor.predict(rows)["p_click"], predictor.predict(frame)["p_click"])
    only_one = predictor.predict([{"C1": "never-seen-before"}, {}])
    assert only_one.shape == (2, 1) and np.isfinite(only_one.to_numpy()).all()
    x_dense, x_sparse = predictor.preprocessor.encode([{"C1": "never-seen-before"}, {}])
    assert x_sparse[0, 0] == 1 and x_sparse[1, 0] == 0  # OOV, missing


@pytest.mark.parametrize("rows, message", [
    ([{"I1": 1}, {"I1": "abc"}], "field 'I1', row 1: 'abc' is not a finite number"),
    ([{"I2": math.nan}], "field 'I2', row 0: nan"),
    ([{"I4": math.inf}], "field 'I4', row 0: inf"),
    (pd.DataFrame({"I5": [1.0, 2.0, 3.0, math.inf]}), "field 'I5', row 3: inf"),
    (pa.table({"I6": pa.array([1.0, math.nan])}), "field 'I6', row 1: nan"),
    (pd.DataFrame({"I7": ["1", "x"]}), "field 'I7', row 1: 'x'"),  # text that reads as a number is one
    ([{"I8": "2.5"}, {"I8": "two"}], "field 'I8', row 1: 'two'"),
])
def test_bad_values_name_the_field_and_the_row(run, rows, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        Predictor.from_run(run).predict(rows)


def test_one_dict_is_a_type_error(run):
    with pytest.raises(TypeError, match="list of dicts"):
        Predictor.from_run(run).predict({"I1": 3})


def test_ctrkit_predict_round_trip(run, raw, tmp_path, capsys):
    _, test = raw
    path = write_criteo(test, tmp_path / "test.txt.gz")
    out = tmp_path / "preds.parquet"
    capsys.readouterr()
    assert main(["predict", "--run", str(run), "--input", str(path), "--output", str(out), "--chunk-rows", "150",
                 "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == len(test) and report["rows_per_s"] > 0
    written = pq.read_table(out).to_pandas()
    assert list(written.columns) == ["row", "p_click"] and written["row"].tolist() == list(range(len(test)))
    np.testing.assert_allclose(written["p_click"], Predictor.from_run(run).predict(test)["p_click"], atol=1e-12)
    assert main(["predict", "--run", str(run), "--input", str(path), "--output", str(tmp_path / "raw.parquet"),
                 "--raw", "--quiet"]) == 0
    assert not np.allclose(pq.read_table(tmp_path / "raw.parquet")["p_click"].to_numpy(), written["p_click"])


@pytest.mark.parametrize("make_input, message", [
    (lambda d: d / "missing.txt", "no such file"),
    (lambda d: (d / "bad.txt").write_text("a\tb\n") and d / "bad.txt", "tab-separated fields"),
    (lambda d: (d / "bad.parquet").write_text("not parquet") and d / "bad.parquet", "not a parquet file"),
])
def test_predict_errors_are_one_line(run, tmp_path, capsys, make_input, message):
    path = make_input(tmp_path)
    assert main(["predict", "--run", str(run), "--input", str(path), "--output", str(tmp_path / "p.parquet")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ctrkit: error:") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "p.parquet").exists()


def test_a_bug_is_a_traceback_not_a_one_line_error(run, monkeypatch, tmp_path):
    """Only user mistakes become one-line errors; an internal error keeps its traceback."""
    import ctrkit.predictor

    def broken(*args, **kwargs):
        raise KeyError("an internal bug")

    monkeypatch.setattr(ctrkit.predictor.Predictor, "predict_file", broken)
    with pytest.raises(KeyError, match="an internal bug"):
        main(["predict", "--run", str(run), "--input", str(tmp_path / "x.txt"), "--output", str(tmp_path / "p.parquet")])


def test_one_impression_needs_no_arrow(run, raw, monkeypatch):
    """Dict rows take the per-value path: one impression is encoded without any arrow compute call."""
    _, test = raw
    predictor = Predictor.from_run(run)
    row = records(test.head(1))
    expected = predictor.predict(row)
    import pyarrow.compute as pc

    def forbidden(*args, **kwargs):
        raise AssertionError("an arrow lookup on the one-impression path")

    monkeypatch.setattr(pc, "index_in", forbidden)
    pd.testing.assert_frame_equal(predictor.predict(row), expected)
    assert "pyarrow.compute" in sys.modules
