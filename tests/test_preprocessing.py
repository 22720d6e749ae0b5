import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ctrkit.datasets import DENSE, SPARSE, DataError, split
from ctrkit.preprocessing import MISSING, OOV, CTRPreprocessor, FeatureSpec, suggest_embed_dim


@pytest.fixture(scope="module")
def parts(small_df):
    return split(small_df, seed=0)


@pytest.fixture(scope="module")
def fitted(parts):
    return CTRPreprocessor().fit(parts[0])


def test_transform_shapes_and_types(fitted, parts):
    out = fitted.transform(parts[1])
    spec = fitted.spec
    assert spec.dense_names == tuple(DENSE) + tuple(f"{c}_missing" for c in DENSE)
    assert [(c.field, c.role) for c in spec.dense] == [(c, "value") for c in DENSE] + [(c, "missing") for c in DENSE]
    assert spec.fields == tuple(DENSE + SPARSE) and spec.n_fields == 39
    assert [s.name for s in spec.sparse] == SPARSE
    assert len(out) == len(parts[1])
    assert out[list(spec.dense_names)].dtypes.eq(np.float32).all()
    assert out[SPARSE].dtypes.eq(np.int32).all()
    for s in spec.sparse:
        assert out[s.name].between(0, s.vocab_size - 1).all()
    assert {"click", "p_click", "user_id", "ts", "conversion"} <= set(out.columns)


def test_dense_log_scaling_standardises_training_data(fitted, parts):
    out = fitted.transform(parts[0])
    present = parts[0]["I5"].notna().to_numpy()
    z = out["I5"].to_numpy()[present]
    assert abs(z.mean()) < 1e-3 and abs(z.std() - 1) < 1e-2
    assert (out["I5"].to_numpy()[~present] == 0).all()
    assert (out["I5_missing"].to_numpy() == (~present).astype(np.float32)).all()
    # signed log keeps the order of negative counts in I2
    x, t = parts[0]["I2"].to_numpy(), out["I2"].to_numpy()
    assert np.all(np.diff(t[np.argsort(x, kind="stable")]) >= -1e-6)


def test_missing_and_unseen_categories(fitted, parts):
    frame = parts[1].head(3).copy()
    frame["C1"] = pd.array(["never-seen", None, fitted.vocab_["C1"][0]], dtype="string")
    ids = fitted.transform(frame)["C1"].tolist()
    assert ids == [OOV, MISSING, 2]  # the most frequent value gets the first free id


def test_min_count_shrinks_the_vocabulary(parts):
    sizes = [len(CTRPreprocessor(min_count=m).fit(parts[0]).vocab_["C3"]) for m in (1, 2, 5)]
    assert sizes[0] > sizes[1] > sizes[2]
    counts = parts[0]["C3"].value_counts()
    assert sizes[1] == (counts >= 2).sum()


def test_vocab_is_ordered_by_frequency(fitted, parts):
    counts = parts[0]["C6"].value_counts()
    vocab = fitted.vocab_["C6"]
    assert [counts[v] for v in vocab] == sorted(counts[counts >= 2].tolist(), reverse=True)


def test_hashing_bounds_large_fields(parts):
    pre = CTRPreprocessor(hash_threshold=100, hash_buckets=64, min_count=1).fit(parts[0])
    hashed = {s.name for s in pre.spec.sparse if s.hashed}
    assert "C3" in hashed and "C6" not in hashed
    out = pre.transform(parts[1])
    assert out["C3"].max() <= 65 and (out["C3"][parts[1]["C3"].isna()] == MISSING).all()
    again = CTRPreprocessor(hash_threshold=100, hash_buckets=64, min_count=1).fit(parts[2]).transform(parts[1])
    assert (again["C3"] == out["C3"]).all()  # the bucket depends on the value only


def test_bins_become_tokens(parts):
    pre = CTRPreprocessor(dense_transform="bins", n_bins=8).fit(parts[0])
    assert pre.spec.dense == ()
    names = [s.name for s in pre.spec.sparse]
    assert names[:13] == DENSE
    out = pre.transform(parts[1])
    assert out["I5"].between(0, 9).all() and out["I5"].nunique() > 4
    assert (out["I1"][parts[1]["I1"].isna()] == MISSING).all()


def test_standard_scaling(parts):
    pre = CTRPreprocessor(dense_transform="standard", missing_indicator=False).fit(parts[0])
    assert pre.spec.dense_names == tuple(DENSE) and pre.spec.dense_index("I1", "missing") is None
    x = parts[0]["I5"].dropna().to_numpy()
    assert pre.mean_["I5"] == pytest.approx(x.mean()) and pre.std_["I5"] == pytest.approx(x.std())


def test_json_round_trip_transforms_identically(fitted, parts, tmp_path):
    path = fitted.save(tmp_path / "pre.json")
    assert json.loads(path.read_text())["format"] == "ctrkit.preprocessor"
    loaded = CTRPreprocessor.load(path)
    assert loaded.spec == fitted.spec
    pd.testing.assert_frame_equal(loaded.transform(parts[2]), fitted.transform(parts[2]))
    with pytest.raises(RuntimeError, match="loaded preprocessor"):
        loaded.partial_fit(parts[2])
    assert loaded.fit(parts[2]).n_rows_ == len(parts[2])  # fit() starts afresh


def test_load_rejects_other_files(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a ctrkit preprocessor"):
        CTRPreprocessor.load(tmp_path / "x.json")
    with pytest.raises(FileNotFoundError):
        CTRPreprocessor.load(tmp_path / "nope.json")


def test_partial_fit_over_chunks_equals_fit(parts):
    train = parts[0]
    whole = CTRPreprocessor().fit(train)
    chunked = CTRPreprocessor()
    for i in range(0, len(train), 1_000):
        chunked.partial_fit(pa.Table.from_pandas(train.iloc[i:i + 1_000], preserve_index=False))
    assert chunked.vocab_ == whole.vocab_
    for c in DENSE:
        assert chunked.mean_[c] == pytest.approx(whole.mean_[c]) and chunked.std_[c] == pytest.approx(whole.std_[c])


def test_unfitted_and_bad_settings_fail_clearly(parts):
    with pytest.raises(RuntimeError, match="not fitted"):
        CTRPreprocessor().transform(parts[0])
    with pytest.raises(ValueError, match="dense_transform"):
        CTRPreprocessor(dense_transform="sqrt").fit(parts[0])
    with pytest.raises(DataError, match="columns missing from the data: I1"):
        CTRPreprocessor().fit(parts[0].drop(columns="I1"))


def test_suggested_embedding_sizes():
    assert suggest_embed_dim(10) == 11 and suggest_embed_dim(10**6) == 50
    sizes = [suggest_embed_dim(v) for v in (3, 100, 10_000)]
    assert sizes == sorted(sizes)


def test_spec_round_trips_through_a_dict(fitted):
    assert FeatureSpec.from_dict(json.loads(json.dumps(fitted.spec.to_dict()))) == fitted.spec
    assert fitted.spec.n_fields == 13 + 26  # fields, not columns: the 13 missing flags belong to their fields
