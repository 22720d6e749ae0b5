import json
import subprocess
import sys

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
    assert (train["label"].to_numpy() == small_df["label"].to_numpy()[:4000]).all()  # file order kept


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
