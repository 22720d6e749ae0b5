"""ctrkit.training: the trainer's promises (resume, SWA, AMP, early stopping, losses) and runs."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch.optim.swa_utils import AveragedModel

from ctrkit import metrics
from ctrkit.datasets import split
from ctrkit.models import build
from ctrkit.preprocessing import CTRPreprocessor, CTRTensors, prepare_frame
from ctrkit.training import (
    TrainConfig, class_balanced_weights, ctr_loss, evaluate, fit, load_checkpoint, load_config, load_run,
    param_groups, predict_proba, save_checkpoint, train_run,
)
from ctrkit.training import trainer as trainer_module

FAST = TrainConfig(epochs=3, batch_size=512, progress=False)


@pytest.fixture(scope="module")
def tensors(small_df):
    train, val, _ = split(small_df, seed=0)
    pre = CTRPreprocessor().fit(train)
    return pre.spec, *(CTRTensors.from_frame(pre.transform(p), pre.spec) for p in (train, val))


def _model(spec, name="deepfm", **hparams):
    torch.manual_seed(0)  # models never seed themselves: the caller fixes their initial weights
    return build(name, spec, **hparams)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_fit_is_deterministic_and_restores_the_best_epoch(tensors):
    spec, train, val = tensors
    runs = []
    for _ in range(2):
        model = _model(spec)
        history = fit(model, train, val, FAST)
        runs.append((_weights(model), history))
    (w1, h1), (w2, h2) = runs
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert h1["val_logloss"].tolist() == h2["val_logloss"].tolist()
    assert set(h1.columns) == {"epoch", "phase", "lr", "train_loss", "seconds", "samples_per_s", "val_auc", "val_logloss"}
    best = h1.attrs["best_epoch"]
    assert h1["val_logloss"].iloc[best - 1] == h1["val_logloss"].min() == h1.attrs["best_val_logloss"]
    model = _model(spec)
    model.load_state_dict(w1)
    assert evaluate(model, val)["logloss"] == pytest.approx(h1.attrs["best_val_logloss"], abs=1e-9)


def test_early_stopping(tensors):
    spec, train, val = tensors
    # a large learning rate on 4,000 rows overfits within an epoch or two, so patience 1 must stop the run early
    history = fit(_model(spec), train, val, replace(FAST, epochs=12, lr=0.03, patience=1))
    assert len(history) < 12
    assert history.attrs["best_epoch"] == len(history) - 1


@pytest.mark.parametrize("swa", [False, True])
def test_resume_after_interruption_is_exact(tensors, tmp_path, monkeypatch, swa):
    spec, train, val = tensors
    config = replace(FAST, epochs=3, swa=swa, swa_epochs=2, patience=5)
    whole = _model(spec, embed_dropout=0.1)
    full = fit(whole, train, val, config, out=tmp_path / "a")

    calls = {"n": 0}
    real_validate = trainer_module.Trainer.validate

    def interrupted(self, model):
        calls["n"] += 1
        if calls["n"] == 3:  # the third validation pass: two epochs are checkpointed
            raise KeyboardInterrupt
        return real_validate(self, model)

    monkeypatch.setattr(trainer_module.Trainer, "validate", interrupted)
    first = _model(spec, embed_dropout=0.1)
    with pytest.raises(KeyboardInterrupt):
        fit(first, train, val, config, out=tmp_path / "b")
    monkeypatch.setattr(trainer_module.Trainer, "validate", real_validate)
    torch.manual_seed(999)  # whatever the caller's RNG state, resuming restores the run's own
    resumed = _model(spec, embed_dropout=0.1)
    history = fit(resumed, train, val, config, out=tmp_path / "b", resume=True)
    assert history["val_logloss"].tolist() == full["val_logloss"].tolist()
    a, b = _weights(whole), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_needs_a_checkpoint(tensors, tmp_path):
    spec, train, val = tensors
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        fit(_model(spec, "lr"), train, val, FAST, out=tmp_path, resume=True)


def test_swa_averages_the_epoch_end_weights(tensors, monkeypatch):
    """The averaged model equals the mean of the running weights at each SWA epoch's end."""
    spec, train, val = tensors
    seen, averaged = [], []
    real_validate = trainer_module.Trainer.validate

    def spy(self, model):
        (averaged if isinstance(model, AveragedModel) else seen).append(_weights(model.module if isinstance(model, AveragedModel) else model))
        return real_validate(self, model)

    monkeypatch.setattr(trainer_module.Trainer, "validate", spy)
    model = _model(spec, "lr")
    history = fit(model, train, val, replace(FAST, epochs=2, swa=True, swa_epochs=3, patience=5))
    assert list(history["phase"]) == ["train"] * 2 + ["swa"] * 3
    swa_epochs = seen[-3:]
    for k in averaged[-1]:
        torch.testing.assert_close(averaged[-1][k], torch.stack([w[k] for w in swa_epochs]).mean(0))
    assert history.attrs["final"] in ("swa", "best")
    final_loss = evaluate(model, val)["logloss"]
    assert final_loss == pytest.approx(min(history.attrs["swa_val_logloss"], history.attrs["best_val_logloss"]), abs=1e-9)


def test_bf16_autocast_runs_on_cpu(tensors):
    spec, train, val = tensors
    model = _model(spec, "transformer")
    history = fit(model, train, val, replace(FAST, epochs=1, amp="bf16"))
    assert np.isfinite(history["train_loss"]).all() and history["val_auc"].iloc[0] > 0.5
    with pytest.raises(ValueError, match="fp16' needs a CUDA device"):
        fit(model, train, val, replace(FAST, amp="fp16", device="cpu"))


def test_config_errors_are_one_line():
    with pytest.raises(ValueError, match="'schedule' must be one of"):
        TrainConfig(schedule="step")
    with pytest.raises(ValueError, match="'label_smoothing'"):
        TrainConfig(label_smoothing=1.0)


def test_param_groups_decay_only_linear_weights(tensors):
    spec = tensors[0]
    model = _model(spec, "transformer")
    decay, no_decay = param_groups(model, 0.01)
    decayed = {id(p) for p in decay["params"]}
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(id(t.weight) not in decayed for t in model.embedding.sparse.tables)
    assert id(model.blocks[0].attn.qkv.weight) in decayed and id(model.blocks[0].attn.qkv.bias) not in decayed
    assert id(model.blocks[0].norm1.weight) not in decayed and id(model.cls) not in decayed
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_losses():
    torch.manual_seed(0)
    logits, y = torch.randn(1000), (torch.rand(1000) < 0.3).float()
    bce = F.binary_cross_entropy_with_logits(logits, y)
    torch.testing.assert_close(ctr_loss(logits, y), bce)
    torch.testing.assert_close(ctr_loss(logits, y, "focal", gamma=0.0), bce)
    assert ctr_loss(logits, y, "focal", gamma=2.0) < bce  # easy examples are down-weighted
    smoothed = F.binary_cross_entropy_with_logits(logits, y * 0.9 + 0.05)
    torch.testing.assert_close(ctr_loss(logits, y, label_smoothing=0.1), smoothed)
    w_pos, w_neg = class_balanced_weights(300, 700, beta=0.999)
    assert w_pos > 1 > w_neg and (300 * w_pos + 700 * w_neg) / 1000 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="'bce' or 'focal'"):
        ctr_loss(logits, y, "hinge")


def test_checkpoint_round_trip(tmp_path):
    state = {"a": torch.arange(3.0), "nested": {"1": {"step": torch.tensor(2.0)}, "groups": [{"lr": 0.1, "params": [0, 1]}]},
             "fn": print, "n": 3}
    save_checkpoint(tmp_path / "ck", state)
    back = load_checkpoint(tmp_path / "ck")
    assert torch.equal(back["a"], state["a"]) and back["nested"]["1"]["step"].item() == 2.0
    assert back["nested"]["groups"] == [{"lr": 0.1, "params": [0, 1]}] and back["n"] == 3 and "fn" not in back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.json", "ck.safetensors"]


def test_train_run_and_load_run(small_df, tmp_path):
    data = tmp_path / "data"
    prepare_frame(small_df, data, seed=0)
    config_path = tmp_path / "lr.yaml"
    config_path.write_text(yaml.safe_dump({"model": {"name": "lr"}, "train": {"epochs": 2, "batch_size": 512, "progress": False}}))
    config = load_config(config_path)
    result = train_run(config, data, tmp_path / "run")
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for split_name in ("val", "test"):
        assert {"auc", "logloss", "pr_auc"} <= set(written[split_name])
    assert written["auc"] == written["test"]["auc"] == result["test"]["auc"]
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert files >= {"config.yaml", "model.safetensors", "preprocessor.json", "metrics.json", "history.csv", "checkpoints"}
    assert not any(p.suffix in (".pt", ".pkl", ".pickle") for p in (tmp_path / "run").rglob("*"))
    model, pre, loaded = load_run(tmp_path / "run")
    assert loaded.model == "lr" and loaded.train.epochs == 2
    test = CTRTensors.from_frame(pre.transform(split(small_df, seed=0)[2]), pre.spec)
    p = predict_proba(model, test)
    assert metrics.auc(test.y.numpy(), p) == pytest.approx(result["test"]["auc"], abs=1e-12)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_run(config, data, tmp_path / "run")


@pytest.mark.parametrize("name", ["lr", "fm", "deepfm", "dcnv2", "autoint", "transformer"])
def test_configs_build_their_model(tensors, name):
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml")
    assert config.model == name
    model = build(name, tensors[0], **config.hparams)
    assert model(tensors[1].x_dense[:8], tensors[1].x_sparse[:8]).shape == (8,)
