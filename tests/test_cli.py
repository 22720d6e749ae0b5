import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ctrkit.cli import main
from ctrkit.datasets import write_criteo
from ctrkit.preprocessing import CTRPreprocessor, load_tensors


def test_prepare_synthetic_writes_the_artifacts(tmp_path, capsys):
    out = tmp_path / "processed"
    assert main(["prepare", "--source", "synthetic", "--rows", "3000", "--seed", "0", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(report["rows"].values()) == 3000
    for name in ("train", "val", "test"):
        assert pq.read_metadata(out / f"{name}_data.parquet").num_rows == report["rows"][name]
    pre = CTRPreprocessor.load(out / "preprocessor.json")
    t = load_tensors(out, "val")
    assert t.x_sparse.shape == (report["rows"]["val"], len(pre.spec.sparse))


def test_prepare_criteo_streams_a_file(tmp_path, small_df, capsys):
    path = write_criteo(small_df, tmp_path / "train.txt.gz")
    out = tmp_path / "processed"
    args = ["prepare", "--source", "criteo", "--input", str(path), "--out", str(out), "--chunk-rows", "700", "--quiet"]
    assert main(args + ["--split", "time"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows == {"train": 4000, "val": 500, "test": 500}
    train = pq.read_table(out / "train_data.parquet").to_pandas()
    assert (train["click"].to_numpy() == small_df["click"].to_numpy()[:4000]).all()  # file order kept


def test_streamed_and_in_memory_preprocessing_agree(tmp_path, small_df):
    """The two-pass streaming path fits the same preprocessor as fitting on the whole training part."""
    path = write_criteo(small_df, tmp_path / "train.txt")
    main(["prepare", "--source", "criteo", "--input", str(path), "--out", str(tmp_path / "a"), "--chunk-rows", "333", "--quiet"])
    main(["prepare", "--source", "criteo", "--input", str(path), "--out", str(tmp_path / "b"), "--quiet"])
    a = CTRPreprocessor.load(tmp_path / "a" / "preprocessor.json")
    b = CTRPreprocessor.load(tmp_path / "b" / "preprocessor.json")
    assert a.vocab_ == b.vocab_ and a.spec == b.spec
    assert pq.read_table(tmp_path / "a" / "test_data.parquet").equals(pq.read_table(tmp_path / "b" / "test_data.parquet"))


@pytest.mark.parametrize("args, message", [
    (["--source", "criteo"], "needs --input"),
    (["--source", "criteo", "--input", "/no/such/file.txt"], "no such file"),
    (["--source", "synthetic", "--input", "x.txt"], "--input is for --source criteo"),
    (["--rows", "-3"], "positive integer"),
    (["--fractions", "0.5,0.5"], "three numbers"),
    (["--fractions", "0.9,0.2,0.1"], "summing to 1"),
])
def test_user_errors_are_one_line(tmp_path, capsys, args, message):
    try:
        code = main(["prepare", "--out", str(tmp_path / "o"), "--rows", "100", *args])
    except SystemExit as e:  # argparse's own errors exit directly
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_python_dash_m(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ctrkit", "prepare", "--source", "criteo", "--input", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"ctrkit: error: {tmp_path}: is a directory, expected a Criteo file"


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture
def prepared(tmp_path):
    out = tmp_path / "data"
    assert main(["prepare", "--rows", "3000", "--out", str(out)]) == 0
    return out


def test_train_then_evaluate(prepared, tmp_path, capsys):
    capsys.readouterr()
    run = tmp_path / "runs" / "fm"
    args = ["train", "--config", str(CONFIGS / "fm.yaml"), "--data", str(prepared), "--out", str(run), "--epochs", "1", "--quiet"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "fm" and 0.4 < report["test"]["auc"] < 1
    written = json.loads((run / "metrics.json").read_text())
    assert {"auc", "logloss", "pr_auc"} <= set(written) and written["val"]["auc"] == report["val"]["auc"]
    assert main(["evaluate", "--run", str(run), "--split", "val"]) == 0
    assert json.loads(capsys.readouterr().out)["auc"] == pytest.approx(report["val"]["auc"], abs=1e-12)
    assert main(args + ["--resume"]) == 0  # a finished run resumes to the same place
    assert json.loads(capsys.readouterr().out)["test"]["auc"] == pytest.approx(report["test"]["auc"], abs=1e-12)


def test_train_is_deterministic(prepared, tmp_path, capsys):
    """The same command gives the same weights: train_run seeds before it builds the model."""
    for name in ("a", "b"):
        assert main(["train", "--config", str(CONFIGS / "fm.yaml"), "--data", str(prepared),
                     "--out", str(tmp_path / name), "--epochs", "1", "--quiet"]) == 0
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


@pytest.mark.parametrize("method", ["temperature", "platt", "isotonic", "histogram"])
def test_calibrate_then_evaluate(prepared, tmp_path, capsys, method):
    run = tmp_path / "runs" / "lr"
    assert main(["train", "--config", str(CONFIGS / "lr.yaml"), "--data", str(prepared), "--out", str(run),
                 "--epochs", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["calibrate", "--run", str(run), "--method", method]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["method"] == method and set(printed) >= {"val", "test"}
    assert printed["test"]["before"]["auc"] > 0.5 and printed["test"]["after"]["ece"] >= 0
    saved = json.loads((run / "calibrator.json").read_text())
    assert saved["click"]["method"] == method  # one calibrator per label
    written = json.loads((run / "metrics.json").read_text())
    assert {"auc", "pr_auc", "logloss", "ne", "brier", "ece", "mce", "calibrated"} <= set(written)
    assert {"auc", "pr_auc", "logloss", "ne", "brier", "ece", "mce"} <= set(written["calibrated"])
    assert written["calibrated"]["method"] == method
    assert written["calibrated"]["ece"] == printed["test"]["after"]["ece"]
    # Fit on validation: there, calibration must not make the logloss worse (isotonic/histogram: a lower bound).
    assert printed["val"]["after"]["logloss"] <= printed["val"]["before"]["logloss"] + 1e-9
    assert main(["evaluate", "--run", str(run), "--split", "test"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["calibrated"]["ece"] == pytest.approx(written["calibrated"]["ece"], abs=1e-12)


def test_calibrate_errors_are_one_line(prepared, tmp_path, capsys):
    assert main(["calibrate", "--run", str(tmp_path / "nothing")]) == 2
    assert "no trained model in" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", "--run", str(tmp_path), "--method", "beta"])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("config, message", [
    ("model:\n  name: gbdt\n", "unknown model 'gbdt'"),
    ("model:\n  name: fm\n  embed_dim: sixteen\n", "'embed_dim' must be an integer"),
    ("model:\n  name: fm\ntrain:\n  epochs: 2\n  optimiser: sgd\n", "no setting 'optimiser'"),
    ("model: fm\n", "'model' needs a 'name'"),
    ("model:\n  name: fm\ntrain:\n  amp: fp8\n", "'amp' must be one of"),
    ("model: [\n", "not valid YAML"),
])
def test_bad_configs_are_one_line_errors(prepared, tmp_path, capsys, config, message):
    path = tmp_path / "bad.yaml"
    path.write_text(config)
    assert main(["train", "--config", str(path), "--data", str(prepared), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ctrkit: error:") and message in err and len(err.strip().splitlines()) == 1


def test_train_needs_prepared_data(tmp_path, capsys):
    assert main(["train", "--config", str(CONFIGS / "lr.yaml"), "--data", str(tmp_path / "nowhere")]) == 2
    assert "no prepared data in" in capsys.readouterr().err


def test_prepare_keeps_the_labels_it_finds_or_is_told(tmp_path, small_df, capsys):
    out = tmp_path / "synthetic"
    assert main(["prepare", "--rows", "2000", "--out", str(out)]) == 0  # the twin's own labels: both
    spec = CTRPreprocessor.load(out / "preprocessor.json").spec
    assert spec.labels == ("click", "conversion")
    assert set(spec.passthrough) == {"p_click", "p_conversion", "user_id", "ts"}  # every other column, from the data
    assert load_tensors(out, "val").y.shape[1] == 2 and load_tensors(out, "val", ["conversion"]).y.ndim == 1
    path = write_criteo(small_df, tmp_path / "train.txt")
    assert main(["prepare", "--source", "criteo", "--input", str(path), "--out", str(tmp_path / "c"), "--quiet"]) == 0
    spec = CTRPreprocessor.load(tmp_path / "c" / "preprocessor.json").spec
    assert spec.labels == ("click",) and spec.passthrough == ()  # a Criteo file has its label and nothing else
    assert main(["prepare", "--rows", "500", "--labels", "click", "--out", str(tmp_path / "one")]) == 0
    assert CTRPreprocessor.load(tmp_path / "one" / "preprocessor.json").spec.labels == ("click",)
    capsys.readouterr()
    assert main(["prepare", "--rows", "500", "--labels", "click,purchase", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ctrkit: error: columns missing from the data: purchase"
