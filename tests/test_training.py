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
def test_resume_after_interruption_is_exact(tensors, tmp_path, cut_training, swa):
    spec, train, val = tensors
    config = replace(FAST, epochs=3, swa=swa, swa_epochs=2, patience=5)
    whole = _model(spec, embed_dropout=0.1)
    full = fit(whole, train, val, config, out=tmp_path / "a")

    first = _model(spec, embed_dropout=0.1)
    with cut_training(at=3):  # the third validation pass: two epochs are checkpointed
        fit(first, train, val, config, out=tmp_path / "b")
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
    model = _model(spec, "transformer", field_proj=False)  # nn.Linear Q/K/V (FieldLinear's weights are not decayed)
    decay, no_decay = param_groups(model, 0.01)
    decayed = {id(p) for p in decay["params"]}
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert id(model.embedding.sparse.table.weight) not in decayed
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


@pytest.fixture(scope="module")
def two_labels(tmp_path_factory):
    """The twin prepared with both of its labels (what `ctrkit prepare --source synthetic` keeps)."""
    from ctrkit.cli import main

    out = tmp_path_factory.mktemp("two_labels") / "data"
    assert main(["prepare", "--rows", "6000", "--base-rate", "0.2", "--out", str(out)]) == 0
    return out


def _two_label_config(**train):
    from ctrkit.training import RunConfig

    return RunConfig("transformer", {"n_outputs": 2, "embed_dim": 8}, replace(FAST, **({"epochs": 3} | train)),
                     labels=("click", "conversion"))


def test_two_labels_train_name_their_metrics_and_resume_exactly(two_labels, tmp_path, cut_training):
    from ctrkit import Predictor
    from ctrkit.preprocessing import load_tensors

    config = _two_label_config(monitor="conversion_auc", loss_weights=(1.0, 2.0), patience=5)
    result = train_run(config, two_labels, tmp_path / "whole")
    history = __import__("pandas").read_csv(tmp_path / "whole" / "history.csv")
    for name in ("val_click_auc", "val_click_logloss", "val_conversion_auc", "val_conversion_logloss"):
        assert name in history.columns
    assert not any(c.endswith(("_0", "_1")) for c in history.columns)
    np.testing.assert_allclose(history["val_auc"], (history["val_click_auc"] + history["val_conversion_auc"]) / 2)
    best = result["best_epoch"]
    assert result["monitor"] == "conversion_auc"
    assert history["val_conversion_auc"].iloc[best - 1] == history["val_conversion_auc"].max() == result["best_val_conversion_auc"]
    assert {"click", "conversion"} <= set(result["test"])  # the full report, once, per label
    assert {"auc", "logloss", "ece", "calibration_ratio"} <= set(result["test"]["conversion"])
    # the model ended with the best epoch's weights: re-scoring it gives the monitored value back
    predictor = Predictor.from_run(tmp_path / "whole")
    val = load_tensors(two_labels, "val", ("click", "conversion"))
    p = predictor.probabilities(predictor.logits(val), calibrated=False)
    assert metrics.auc(val.y[:, 1].numpy(), p[:, 1]) == pytest.approx(result["best_val_conversion_auc"], abs=1e-12)

    with cut_training():
        train_run(config, two_labels, tmp_path / "cut")
    train_run(config, two_labels, tmp_path / "cut", resume=True)
    assert (tmp_path / "cut" / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert (tmp_path / "cut" / "history.csv").read_text().count("\n") == (tmp_path / "whole" / "history.csv").read_text().count("\n")


def test_two_label_runs_calibrate_and_predict_per_label(two_labels, tmp_path):
    from ctrkit import Predictor
    from ctrkit.training import calibrate_run

    train_run(_two_label_config(epochs=1), two_labels, tmp_path / "run")
    result = calibrate_run(tmp_path / "run", "platt")
    assert set(result["test"]) == {"click", "conversion"}
    for label in ("click", "conversion"):
        scores = result["val"][label]  # fit on validation: the logloss there cannot get worse
        assert scores["calibrated"]["logloss"] <= scores["logloss"] + 1e-9
    rows = [{"I1": 2, "C1": "x"}, {}]
    p = Predictor.from_run(tmp_path / "run").predict(rows)
    assert list(p.columns) == ["p_click", "p_conversion"] and p.shape == (2, 2)


@pytest.mark.parametrize("change, message", [
    (dict(hparams={"n_outputs": 1}), "returns 1 logit(s) per row but there are 2 label"),
    (dict(monitor="purchase_auc"), "'monitor' 'purchase_auc' is not one of"),
    (dict(loss_weights=(1.0,)), "'loss_weights' has 1 value(s) for 2 label(s)"),
    (dict(labels=("click", "purchase")), "has no label column 'purchase'"),
])
def test_label_mistakes_are_config_errors(two_labels, tmp_path, change, message):
    from ctrkit._config import ConfigError

    config = _two_label_config(**{k: v for k, v in change.items() if k in ("monitor", "loss_weights")})
    config.hparams |= change.get("hparams", {})
    config.labels = change.get("labels", config.labels)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train_run(config, two_labels, tmp_path / "run")


def test_weighted_loss_is_the_weighted_sum_of_label_losses():
    logits, y = torch.randn(64, 2), (torch.rand(64, 2) < 0.3).float()
    per_label = [F.binary_cross_entropy_with_logits(logits[:, j], y[:, j]) for j in range(2)]
    torch.testing.assert_close(ctr_loss(logits, y, label_weights=torch.tensor([1.0, 3.0])),
                               per_label[0] + 3 * per_label[1])
    torch.testing.assert_close(ctr_loss(logits[:, 0], y[:, 0]), per_label[0])


@pytest.mark.parametrize("name", ["lr", "fm", "deepfm", "dcnv2", "autoint", "transformer"])
def test_every_model_compiles_into_one_graph(tensors, name):
    """torch.compile with fullgraph=True: no graph break, the same logits and gradients as eager."""
    spec, train, _ = tensors
    model = _model(spec, name, l2=0.1)
    x_dense, x_sparse = train.x_dense[:64], train.x_sparse[:64]
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    model.eval()
    torch.testing.assert_close(compiled(x_dense, x_sparse), model(x_dense, x_sparse))
    model.train()
    from ctrkit.models import embedding_penalty, set_frequencies

    set_frequencies(model, train.x_sparse)
    penalty = torch.compile(embedding_penalty, fullgraph=False, backend="aot_eager")(model, x_sparse)
    torch.testing.assert_close(penalty, embedding_penalty(model, x_sparse))


def test_compiled_training_saves_plain_parameter_names(tmp_path):
    """compile=True trains through the inductor-compiled model, through a smaller last batch (a second,
    dynamic-shape graph) and the per-field Q/K/V einsum; checkpoints keep the model's own names."""
    from ctrkit.training import load_checkpoint

    from ctrkit.datasets import synthetic_criteo

    train_df, val_df, _ = split(synthetic_criteo(3000, seed=0), seed=0)  # 2,405 rows: a last batch of 357
    pre = CTRPreprocessor().fit(train_df)
    spec = pre.spec
    train, val = (CTRTensors.from_frame(pre.transform(p), spec) for p in (train_df, val_df))
    assert len(train) % FAST.batch_size == 357
    # one process training two compiled models, as a notebook does: the second compiles with a dynamic batch size
    fit(_model(spec, "transformer"), train, val, replace(FAST, epochs=1, compile=True))
    model = _model(spec, "transformer", n_layers=2)  # a full block, then the [CLS]-only one
    history = fit(model, train, val, replace(FAST, epochs=1, compile=True), out=tmp_path)
    assert np.isfinite(history["train_loss"]).all()
    saved = load_checkpoint(tmp_path / "checkpoints" / "last")["model"]
    assert set(saved) == set(model.state_dict()) and not any("_orig_mod" in k or "module." in k for k in saved)


def _ddp_worker(rank: int, world_size: int, port: int, out: str) -> None:
    """One process of a two-process CPU run (gloo): each trains on its shard; DDP averages the gradients."""
    import os

    import torch.distributed as dist
    from safetensors.torch import save_file

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        from ctrkit.datasets import synthetic_criteo

        train_df, val_df, _ = split(synthetic_criteo(3000, seed=0), seed=0)
        pre = CTRPreprocessor().fit(train_df)
        train, val = (CTRTensors.from_frame(pre.transform(p), pre.spec) for p in (train_df, val_df))
        model = _model(pre.spec, "deepfm", l2=0.1)
        fit(model, train, val, replace(FAST, epochs=2, batch_size=256), out=out)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state | {"frequency": model.embedding.sparse.frequency}, f"{out}/rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


def test_two_processes_train_one_model(tmp_path):
    """torch DDP on the CPU: both ranks end with the same weights, frequencies count the whole training data,
    and only rank 0 writes checkpoints, with the model's own parameter names."""
    import socket

    import torch.multiprocessing as mp
    from safetensors.torch import load_file

    from ctrkit.training import load_checkpoint

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    a, b = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    train_df = split(__import__("ctrkit.datasets", fromlist=["x"]).synthetic_criteo(3000, seed=0), seed=0)[0]
    pre = CTRPreprocessor().fit(train_df)
    ids = CTRTensors.from_frame(pre.transform(train_df), pre.spec).x_sparse[:, 0]  # C1: the table's first block
    counts = torch.bincount(ids, minlength=pre.spec.sparse[0].vocab_size).float().clamp(min=1)
    assert torch.equal(a["frequency"][:len(counts)], counts), "each rank divides by the count over all shards"
    saved = load_checkpoint(tmp_path / "checkpoints" / "last")
    assert not any(k.startswith("module.") for k in saved["model"]) and "embedding.sparse.table.weight" in saved["model"]
    assert len(saved["history"]) == 2 and (tmp_path / "history.csv").exists()
