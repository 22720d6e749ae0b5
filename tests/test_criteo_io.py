import gzip
import warnings

import numpy as np
import pandas as pd
import pytest

from ctrkit.datasets import (
    DENSE,
    SPARSE,
    DataError,
    MalformedLinesWarning,
    iter_criteo,
    read_criteo,
    write_criteo,
)


@pytest.fixture()
def train_file(tmp_path, small_df):
    return write_criteo(small_df.head(500), tmp_path / "train.txt")


def test_round_trip_is_exact(tmp_path, small_df):
    df = small_df.head(500)
    back = read_criteo(write_criteo(df, tmp_path / "t.txt"))
    assert list(back.columns) == ["click"] + DENSE + SPARSE
    pd.testing.assert_frame_equal(back[DENSE], df[DENSE].astype("float64"))
    assert (back["click"].to_numpy() == df["click"].to_numpy()).all()
    for c in SPARSE:
        assert back[c].isna().equals(df[c].isna())
        assert (back[c].dropna().to_numpy() == df[c].dropna().to_numpy()).all()
    assert back["I2"].min() < 0  # negative counts survive


def test_raw_format(train_file):
    first = train_file.read_text().splitlines()[0].split("\t")
    assert len(first) == 40
    assert all(len(v) in (0, 8) for v in first[14:])  # 8 hex digits or empty


def test_test_file_without_label_is_detected(tmp_path, small_df):
    path = write_criteo(small_df.head(100).drop(columns="click"), tmp_path / "test.txt")
    df = read_criteo(path)
    assert "click" not in df.columns and len(df) == 100 and len(df.columns) == 39


def test_gzip(tmp_path, small_df):
    path = write_criteo(small_df.head(300), tmp_path / "train.txt.gz")
    with gzip.open(path, "rt") as f:
        assert f.readline().count("\t") == 39
    assert len(read_criteo(path)) == 300


def test_chunks_add_up_to_the_whole(train_file):
    whole = read_criteo(train_file)
    chunks = list(iter_criteo(train_file, chunk_rows=120))
    assert [len(c) for c in chunks] == [120, 120, 120, 120, 20]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    assert len(read_criteo(train_file, max_rows=130)) == 130


def _corrupt(path):
    lines = path.read_text().splitlines()
    lines.insert(3, "1\t2\t3")  # line 4: wrong field count
    fields = lines[6].split("\t")
    fields[2] = "abc"  # line 7: not an integer
    lines[6] = "\t".join(fields)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_malformed_lines_are_skipped_with_one_warning(train_file):
    path = _corrupt(train_file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = read_criteo(path)
    relevant = [w for w in caught if issubclass(w.category, MalformedLinesWarning)]
    assert len(relevant) == 1
    message = str(relevant[0].message)
    assert "skipped 2 malformed" in message and "line(s) 4, 7" in message
    assert len(df) == 500 - 1  # the inserted line and the corrupted one are gone; 499 originals remain


def test_strict_raises_with_the_line_number(train_file):
    with pytest.raises(DataError, match="line 4: wrong number of fields"):
        read_criteo(_corrupt(train_file), strict=True)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.txt", "no such file"),
    (lambda p: p, "is a directory"),
    (lambda p: (p / "empty.txt", (p / "empty.txt").write_text(""))[0], "file is empty"),
    (lambda p: (p / "csv.txt", (p / "csv.txt").write_text("a,b,c\n1,2,3\n"))[0], "1 tab-separated fields"),
])
def test_bad_inputs_give_one_line_errors(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(DataError, match=message) as err:
        read_criteo(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_writer_needs_the_schema(tmp_path):
    with pytest.raises(DataError, match="columns missing"):
        write_criteo(pd.DataFrame({"click": [1]}), tmp_path / "x.txt")


def test_all_missing_integer_column_reads(tmp_path, small_df):
    df = small_df.head(50).copy()
    df["I12"] = np.nan
    assert read_criteo(write_criteo(df, tmp_path / "t.txt"))["I12"].isna().all()
