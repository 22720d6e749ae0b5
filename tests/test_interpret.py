import numpy as np
import pytest
import torch

from ctrkit import interpret as I
from ctrkit.datasets import split, synthetic_criteo, synthetic_truth
from ctrkit.models import build
from ctrkit.preprocessing import CTRPreprocessor, CTRTensors


@pytest.fixture(scope="module")
def data():
    df = synthetic_criteo(3000, seed=1)
    train, val, _ = split(df, seed=1)
    pre = CTRPreprocessor().fit(train)
    tensors = [CTRTensors.from_frame(pre.transform(part), pre.spec) for part in (train, val)]
    return pre.spec, *tensors, val


def model(name, spec):
    torch.manual_seed(0)
    m = build(name, spec)
    for p in m.parameters():  # random but sizeable weights, so attributions are far from 0
        torch.nn.init.normal_(p, std=0.3)
    return m.eval()


@pytest.mark.parametrize("name", ["lr", "deepfm", "dcnv2", "autoint", "transformer"])
@pytest.mark.parametrize("baseline", I.BASELINES)
def test_integrated_gradients_are_complete(data, name, baseline):
    """Attributions add up to logit(row) − logit(baseline), within the convergence delta captum reports."""
    spec, _, val, _ = data
    m = model(name, spec)
    x_dense, x_sparse = val.x_dense[:40], val.x_sparse[:40]
    attributions, delta = I.integrated_gradients(m, x_dense, x_sparse, baseline=baseline, n_steps=64, batch_size=16)
    assert attributions.shape == (40, 39) and list(attributions.columns[:2]) == ["I1", "I2"]
    assert attributions.columns[-1] == "C26"
    token_model = I.TokenModel(m)
    tokens = token_model.tokens(x_dense, x_sparse)
    with torch.no_grad():
        gap = (m(x_dense, x_sparse) - token_model(*I.baseline_tokens(token_model, tokens, baseline))[:, 0]).numpy()
    np.testing.assert_allclose(attributions.sum(axis=1) - gap, delta, atol=1e-4)
    assert np.abs(delta).max() < 0.02 * np.abs(gap).max()
    assert attributions.abs().to_numpy().max() > 0.01


def test_logistic_regression_attributions_are_exact(data):
    """For a linear model IG is each field's weight minus the baseline's, and KernelSHAP finds the same."""
    spec, _, val, _ = data
    m = model("lr", spec)
    x_dense, x_sparse = val.x_dense[:3], val.x_sparse[:3]
    attributions, _ = I.integrated_gradients(m, x_dense, x_sparse, baseline="zeros", n_steps=8)
    with torch.no_grad():
        per_field = m.weights(x_dense, x_sparse)[..., 0].numpy()  # (B, F): each field's weight
    np.testing.assert_allclose(attributions.to_numpy(), per_field, atol=1e-5)
    kernel = I.kernel_shap(m, x_dense, x_sparse, baseline="zeros", n_samples=500)
    np.testing.assert_allclose(kernel.to_numpy(), per_field, atol=1e-4)


def test_deterministic(data):
    spec, train, val, _ = data
    m = model("transformer", spec)
    a1, d1 = I.integrated_gradients(m, val.x_dense[:20], val.x_sparse[:20])
    a2, d2 = I.integrated_gradients(m, val.x_dense[:20], val.x_sparse[:20])
    assert a1.equals(a2) and np.array_equal(d1, d2)
    background = CTRTensors(train.x_dense[:50], train.x_sparse[:50])
    s1 = I.shap_values(m, val.x_dense[:10], val.x_sparse[:10], background, n_samples=20, seed=3)
    s2 = I.shap_values(m, val.x_dense[:10], val.x_sparse[:10], background, n_samples=20, seed=3)
    assert s1.shape == (10, 39) and s1.equals(s2)
    assert I.global_importance(s1).index[0] in s1.columns


def test_shap_agrees_with_integrated_gradients_on_a_trained_direction(data):
    """Expected gradients over a background and IG from the background's mean rank the fields alike."""
    spec, train, val, _ = data
    m = model("deepfm", spec)
    background = CTRTensors(train.x_dense[:100], train.x_sparse[:100])
    values = I.shap_values(m, val.x_dense[:60], val.x_sparse[:60], background, n_samples=100)
    ig, _ = I.integrated_gradients(m, val.x_dense[:60], val.x_sparse[:60], baseline="mean", reference=background)
    a, b = I.global_importance(values), I.global_importance(ig).reindex(values.columns)
    assert np.corrcoef(a.reindex(values.columns), b)[0, 1] > 0.8


def test_attention_maps(data):
    spec, _, val, _ = data
    for name, tokens in (("transformer", 40), ("autoint", 39)):
        maps, labels = I.attention_maps(model(name, spec), val.x_dense[:30], val.x_sparse[:30], batch_size=7)
        assert maps.shape[0] == 30 and maps.shape[-2:] == (tokens, tokens) and len(labels) == tokens
        np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    assert labels[0] == "I1" and I.attention_maps(model("transformer", spec), val.x_dense[:2], val.x_sparse[:2])[1][0] == "[CLS]"
    scores = I.pair_attention(maps, labels)
    assert scores.shape == (39, 39) and np.allclose(scores, scores.T) and (np.diag(scores) == 0).all()
    ranks = I.rank_pairs(scores, [("C1", "C9")])
    assert 1 <= ranks.loc["C1×C9", "rank"] <= 39 * 38 / 2
    with pytest.raises(ValueError, match="no attention"):
        I.attention_maps(model("deepfm", spec), val.x_dense[:2], val.x_sparse[:2])


def test_permutation_importance_of_an_ignored_field_is_zero(data):
    spec, _, val, _ = data
    m = model("lr", spec)
    with torch.no_grad():
        m.weights.sparse.rows("C5").zero_()  # the model ignores C5
    importance = I.permutation_importance(m, val, n_repeats=2)
    assert len(importance) == 39 and importance["C5"] == 0.0
    assert importance.iloc[0] > 0.001


def test_umap_is_deterministic(data):
    spec, train, val, _ = data
    m = model("transformer", spec)
    a = I.embedding_umap(m, "C6", train.x_sparse, train.y, min_count=5, seed=0, n_neighbors=5)
    b = I.embedding_umap(m, "C6", train.x_sparse, train.y, min_count=5, seed=0, n_neighbors=5)
    assert list(a.columns) == ["id", "x", "y", "count", "ctr"] and a.equals(b)
    assert (a["count"] >= 5).all() and a["ctr"].between(0, 1).all()
    rows = I.representation_umap(m, val.x_dense[:60], val.x_sparse[:60], seed=0)
    assert rows.shape == (60, 3) and rows.equals(I.representation_umap(m, val.x_dense[:60], val.x_sparse[:60], seed=0))
    with pytest.raises(ValueError, match="no categorical field"):
        I.embedding_umap(m, "C99", train.x_sparse, train.y)


def test_synthetic_truth_adds_up_to_the_true_logit(data):
    *_, val = data
    truth = synthetic_truth(seed=1, rows=val)
    logit = np.log(val["p_click"] / (1 - val["p_click"]))
    total = truth.contributions.sum(axis=1) + truth.unobserved.sum(axis=1)
    assert np.ptp(logit - total) < 1e-9  # equal up to the intercept
    assert truth.contributions.shape == (len(val), 39) and np.allclose(truth.contributions.mean(), 0)
    assert truth.effects["C4"] == 0 and truth.effects["C6"] > 0.1 and truth.effects.is_monotonic_decreasing
    assert ("C1", "C9") in truth.pairs and len(truth.pairs) == 7
    world = synthetic_truth(1, n_rows=20_000)  # measured on fresh rows of the same world: the same effects
    assert set(world.effects.index[world.effects == 0]) == set(truth.effects.index[truth.effects == 0])
    assert np.corrcoef(world.effects.reindex(truth.effects.index), truth.effects)[0, 1] > 0.95
    wrong_seed = synthetic_truth(seed=2, rows=val)  # another world's effects do not add up
    assert np.ptp(logit - wrong_seed.contributions.sum(axis=1) - wrong_seed.unobserved.sum(axis=1)) > 1


@pytest.fixture(scope="module")
def transformed():
    """The same rows under each dense transform (bins moves the numeric fields to x_sparse)."""
    df = synthetic_criteo(2000, seed=2)
    out = {}
    for dense in ("log", "standard", "bins"):
        pre = CTRPreprocessor(dense_transform=dense, n_bins=8).fit(df)
        out[dense] = pre.spec, CTRTensors.from_frame(pre.transform_table(df), pre.spec)
    return out


@pytest.mark.parametrize("dense", ["log", "standard", "bins"])
@pytest.mark.parametrize("name", ["lr", "fm", "deepfm", "dcnv2", "autoint", "transformer"])
def test_attributions_work_for_every_model_and_dense_transform(transformed, name, dense):
    """IG through model.head for every model x dense transform: complete, per field, in the spec's field order."""
    spec, t = transformed[dense]
    m = model(name, spec)
    x_dense, x_sparse = t.x_dense[:24], t.x_sparse[:24]
    attributions, delta = I.integrated_gradients(m, x_dense, x_sparse, baseline="oov", n_steps=32)
    assert list(attributions.columns) == list(spec.fields) and attributions.shape == (24, 39)
    token_model = I.TokenModel(m)
    base = I.baseline_tokens(token_model, token_model.tokens(x_dense, x_sparse), "oov")
    with torch.no_grad():
        gap = (m(x_dense, x_sparse) - token_model(*base)[:, 0]).numpy()
    np.testing.assert_allclose(attributions.sum(axis=1) - gap, delta, atol=1e-4)
    assert np.abs(delta).max() < 0.05 * np.abs(gap).max() and attributions.abs().to_numpy().max() > 1e-4


def test_binned_oov_baseline_is_missing_for_numeric_fields(transformed):
    spec, t = transformed["bins"]
    m = model("lr", spec)
    token_model = I.TokenModel(m)
    base = I.baseline_tokens(token_model, token_model.tokens(t.x_dense[:1], t.x_sparse[:1]), "oov")[0]
    sparse = m.weights.sparse
    with torch.no_grad():
        assert torch.equal(base[0, 0], sparse.rows("I1")[0])  # I1 is binned: its baseline is "missing" (id 0)
        assert torch.equal(base[0, 13], sparse.rows("C1")[1])  # C1: out-of-vocabulary (id 1)
    importance = I.permutation_importance(m, CTRTensors(t.x_dense[:500], t.x_sparse[:500], t.y[:500]), n_repeats=1)
    assert set(importance.index) == set(spec.fields)
