"""Multi-task models (chapter 08): shapes, gates, the ESMM product, uncertainty weighting, runs and the Predictor."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from ctrkit import metrics
from ctrkit._config import ConfigError
from ctrkit.models import MULTITASK, build
from ctrkit.models.multitask import OUTPUTS, log1mexp, product_logit
from ctrkit.preprocessing import CTRPreprocessor, CTRTensors
from ctrkit.training import RunConfig, TrainConfig, ctr_loss, fit, train_run

FAST = TrainConfig(epochs=2, batch_size=256, progress=False, device="cpu")
MODELS = list(MULTITASK)


@pytest.fixture(scope="module")
def data(small_df):
    pre = CTRPreprocessor(labels=("click", "conversion")).fit(small_df)
    return pre.spec, CTRTensors.from_frame(pre.transform(small_df), pre.spec)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The twin prepared with both of its labels (what `ctrkit prepare` keeps for the synthetic source)."""
    from ctrkit.cli import main

    out = tmp_path_factory.mktemp("multitask") / "data"
    assert main(["prepare", "--rows", "6000", "--base-rate", "0.2", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("encoder", ["transformer", "embedding"])
@pytest.mark.parametrize("name", MODELS)
def test_shapes(data, name, encoder):
    spec, t = data
    torch.manual_seed(0)
    model = build(name, spec, encoder=encoder)
    assert model(t.x_dense[:16], t.x_sparse[:16]).shape == (16, 2)  # one logit per trained label
    assert model.task_logits(t.x_dense[:16], t.x_sparse[:16]).shape == (16, len(OUTPUTS))


@pytest.mark.parametrize("name", MODELS)
def test_every_parameter_takes_part(data, name):
    spec, t = data
    torch.manual_seed(0)
    model = build(name, spec, task_weighting="uncertainty")
    logits = model(t.x_dense[:64], t.x_sparse[:64])
    ctr_loss(logits, t.y[:64], log_vars=model.log_vars).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_product_logit_is_the_logit_of_the_product_and_stable():
    z1 = torch.linspace(-40, 40, 81, dtype=torch.float64)
    z2 = torch.linspace(40, -40, 81, dtype=torch.float64)
    product = torch.sigmoid(z1) * torch.sigmoid(z2)
    got = torch.sigmoid(product_logit(z1, z2).double())
    torch.testing.assert_close(got, product, rtol=1e-5, atol=0)  # the rare tail too, where 1 - p rounds to 1
    a = torch.tensor([-50.0, -1.0, -0.7, -0.69, -1e-3, 0.0], requires_grad=True)
    out = log1mexp(a)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(a.grad).all()
    torch.testing.assert_close(out[:5], torch.log(1 - torch.exp(a[:5].detach())), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_esmm_product_is_consistent(data, name):
    spec, t = data
    torch.manual_seed(0)
    model = build(name, spec, encoder="embedding").eval()
    with torch.no_grad():
        z = model.task_logits(t.x_dense[:256], t.x_sparse[:256]).double()
        trained = model(t.x_dense[:256], t.x_sparse[:256]).double()
    p_ctr, p_cvr, p_ctcvr = torch.sigmoid(z).unbind(1)
    torch.testing.assert_close(p_ctcvr, p_ctr * p_cvr, rtol=1e-5, atol=1e-7)
    assert (p_ctcvr <= p_ctr + 1e-7).all() and (p_ctcvr <= p_cvr + 1e-7).all()
    torch.testing.assert_close(trained, z[:, [0, 2]])  # it trains click and click-and-conversion


@pytest.mark.parametrize("name, gates", [("mmoe", [[4, 4]]), ("ple", [[3, 3, 4], [3, 3]])])
def test_gates_are_distributions_over_their_experts(data, name, gates):
    spec, t = data
    torch.manual_seed(0)
    model = build(name, spec, encoder="embedding")
    with torch.no_grad():
        weights = model.gate_weights(t.x_dense[:64], t.x_sparse[:64])
    assert [[w.shape[1] for w in level] for level in weights] == gates  # PLE: own + shared; the shared gate: all
    for level in weights:
        for w in level:
            assert (w >= 0).all()
            torch.testing.assert_close(w.sum(1), torch.ones(64))


def test_esmm_has_no_gates(data):
    spec, t = data
    assert build("esmm", spec, encoder="embedding").gate_weights(t.x_dense[:4], t.x_sparse[:4]) == []


def test_uncertainty_weighting_is_kendalls_and_learns(data):
    logits, y = torch.randn(64, 2), (torch.rand(64, 2) < 0.3).float()
    log_vars = torch.tensor([0.5, -1.0])
    per_label = torch.stack([ctr_loss(logits[:, j], y[:, j]) for j in range(2)])
    torch.testing.assert_close(ctr_loss(logits, y, log_vars=log_vars), (torch.exp(-log_vars) * per_label + log_vars).sum())

    spec, t = data
    torch.manual_seed(0)
    model = build("esmm", spec, encoder="embedding", task_weighting="uncertainty")
    assert torch.equal(model.log_vars.detach(), torch.zeros(2))
    fit(model, t, t, replace(FAST, epochs=3, lr=0.01))
    s = model.log_vars.detach()
    # each s_k moves towards log(loss_k): both losses are below 1, and the rare conversion label's much more so
    assert (s < -0.05).all() and s[1] < s[0], s


def test_loss_weights_and_uncertainty_exclude_each_other(data):
    spec, t = data
    model = build("esmm", spec, encoder="embedding", task_weighting="uncertainty")
    with pytest.raises(ConfigError, match="use one of them"):
        fit(model, t, t, replace(FAST, loss_weights=(1.0, 2.0)))


@pytest.mark.parametrize("name", MODELS)
def test_a_tiny_two_task_problem_is_learned_by_heart(data, name):
    spec, t = data
    rows = CTRTensors(t.x_dense[:256], t.x_sparse[:256], t.y[:256])
    torch.manual_seed(0)
    model = build(name, spec, encoder="embedding", l2=0.0)
    fit(model, rows, rows, replace(FAST, epochs=60, batch_size=64, lr=0.01, patience=60, weight_decay=0.0))
    with torch.no_grad():
        p = torch.sigmoid(model(rows.x_dense, rows.x_sparse)).numpy()
    y = rows.y.numpy()
    for j in range(2):
        assert metrics.auc(y[:, j], p[:, j]) > 0.99, (name, j)
        assert metrics.logloss(y[:, j], p[:, j]) < 0.3 * metrics.logloss(y[:, j], np.full(len(y), y[:, j].mean()))


def _config(name="esmm", encoder="transformer", **train):
    return RunConfig(name, {"encoder": encoder, "embed_dim": 8}, replace(FAST, **({"epochs": 3} | train)),
                     labels=("click", "conversion"))


def test_a_multitask_run_resumes_exactly(prepared, tmp_path, cut_training):
    config = _config("ple", "embedding", patience=5)
    train_run(config, prepared, tmp_path / "whole")
    with cut_training():
        train_run(config, prepared, tmp_path / "cut")
    train_run(config, prepared, tmp_path / "cut", resume=True)
    assert (tmp_path / "cut" / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()


def test_the_predictor_serves_three_outputs_and_calibrates_each_on_its_rows(prepared, tmp_path):
    from ctrkit import Predictor
    from ctrkit.preprocessing import load_tensors
    from ctrkit.training import calibrate_run, evaluate_run

    result = train_run(_config(), prepared, tmp_path / "run")
    assert set(result["test"]) == {"click", "conversion", "ctcvr"}  # scored per output, as evaluate scores them
    predictor = Predictor.from_run(tmp_path / "run")
    assert predictor.outputs == ("click", "conversion", "ctcvr")
    raw = predictor.predict([{"I1": 2, "C1": "x"}, {}], calibrated=False)
    assert list(raw.columns) == ["p_click", "p_conversion", "p_ctcvr"]
    np.testing.assert_allclose(raw["p_ctcvr"], raw["p_click"] * raw["p_conversion"], rtol=1e-5)

    scores = evaluate_run(tmp_path / "run", "test")
    for name in ("click", "conversion", "ctcvr"):  # the same scores at the end of training as from `evaluate`
        assert scores[name] == pytest.approx(result["test"][name], abs=1e-12)
    test = load_tensors(prepared, "test", ("click", "conversion"))
    y, p = test.y.numpy(), predictor.probabilities(predictor.logits(test), calibrated=False)
    clicked = y[:, 0] == 1
    assert scores["conversion"]["auc"] == pytest.approx(metrics.auc(y[clicked, 1], p[clicked, 1]), abs=1e-12)
    assert scores["conversion"]["auc_all_rows"] == pytest.approx(metrics.auc(y[:, 1], p[:, 1]), abs=1e-12)
    assert scores["ctcvr"]["auc"] == pytest.approx(metrics.auc(y[:, 1], p[:, 2]), abs=1e-12)

    calibrated = calibrate_run(tmp_path / "run", "platt")
    for name in ("click", "conversion", "ctcvr"):  # fit on validation: its logloss there cannot get worse
        val = calibrated["val"][name]
        assert val["calibrated"]["logloss"] <= val["logloss"] + 1e-9
    assert set(Predictor.from_run(tmp_path / "run").calibrators) == {"click", "conversion", "ctcvr"}

    # `ctrkit predict` streams a file into the three columns, calibrated
    from ctrkit.cli import main
    from ctrkit.datasets import synthetic_criteo, write_criteo

    raw_file = write_criteo(synthetic_criteo(300, seed=5), tmp_path / "raw.txt")
    assert main(["predict", "--run", str(tmp_path / "run"), "--input", str(raw_file), "--output",
                 str(tmp_path / "p.parquet"), "--quiet"]) == 0
    written = __import__("pandas").read_parquet(tmp_path / "p.parquet")
    assert list(written.columns) == ["row", "p_click", "p_conversion", "p_ctcvr"] and len(written) == 300
