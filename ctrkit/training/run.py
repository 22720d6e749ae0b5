"""Runs: a YAML config in, a directory of safe artifacts out (what ``ctrkit train / evaluate / calibrate`` do).

A config names a model and fills two small dataclasses::

    model:            # ctrkit.models.build(name, spec, **the rest)
      name: transformer
      embed_dim: 16
    train:            # ctrkit.training.TrainConfig
      epochs: 8
    labels: [label]   # optional; several labels for multi-task models

A run directory holds ``config.yaml`` (resolved, with the data directory),
``preprocessor.json``, ``model.safetensors``, ``history.csv``, ``metrics.json``,
``checkpoints/`` and, after ``ctrkit calibrate``, ``calibrator.json``. Nothing
in it is a pickle.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file
from scipy.special import expit
from torch import nn

from ctrkit import metrics
from ctrkit._config import fill
from ctrkit.calibration import load_calibrator, make_calibrator
from ctrkit.models import build, hparams_of
from ctrkit.preprocessing import CTRPreprocessor
from ctrkit.preprocessing.prepare import PREPROCESSOR_FILE, load_preprocessor, load_tensors
from ctrkit.training.trainer import TrainConfig, config_fields, evaluate, fit, label_metrics, predict_logits

CONFIG_FILE, MODEL_FILE, METRICS_FILE = "config.yaml", "model.safetensors", "metrics.json"
CALIBRATOR_FILE = "calibrator.json"


@dataclass
class RunConfig:
    model: str
    hparams: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    labels: tuple[str, ...] = ("label",)
    data: str | None = None  # the prepared data directory, recorded by train_run

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        if not isinstance(d, dict):
            raise ValueError("a run config is a YAML mapping with 'model' and 'train' sections")
        d = fill({"model": {}, "train": {}, "labels": ("label",), "data": ""}, d, "config")
        model = d.get("model") or {}
        if not isinstance(model, dict) or "name" not in model:
            raise ValueError("config: 'model' needs a 'name' (one of lr, fm, deepfm, dcnv2, autoint, transformer)")
        model = dict(model)
        name = model.pop("name")
        hparams = fill(hparams_of(name), model, f"config: model {name!r}")
        train = TrainConfig(**fill(config_fields(), d.get("train") or {}, "config: train"))
        return cls(name, hparams, train, tuple(d.get("labels", ("label",))), d.get("data") or None)

    def to_dict(self) -> dict:
        hp = {k: list(v) if isinstance(v, tuple) else v for k, v in self.hparams.items()}
        return {"model": {"name": self.model, **hp}, "train": asdict(self.train), "labels": list(self.labels),
                **({"data": self.data} if self.data else {})}


def load_config(path: str | Path) -> RunConfig:
    """Read and check a YAML run config; mistakes are one-line ``ValueError``s."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        d = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    return RunConfig.from_dict(d)


def _check_data(data_dir: Path) -> None:
    if not (data_dir / PREPROCESSOR_FILE).is_file():
        raise FileNotFoundError(f"no prepared data in {data_dir} (run `ctrkit prepare --out {data_dir}` first)")


def train_run(config: RunConfig, data_dir: str | Path, out: str | Path, resume: bool = False) -> dict:
    """Train ``config`` on the prepared data in ``data_dir``; write the run into ``out``; return its metrics."""
    data_dir, out = Path(data_dir), Path(out)
    _check_data(data_dir)
    if not resume and (out / CONFIG_FILE).exists():
        raise FileExistsError(f"{out} already holds a run; pick another --out, delete it, or pass --resume")
    pre = load_preprocessor(data_dir)
    torch.manual_seed(config.train.seed)  # the initial weights; models never seed themselves
    model = build(config.model, pre.spec, **config.hparams)
    train, val = (load_tensors(data_dir, s, config.labels) for s in ("train", "val"))
    out.mkdir(parents=True, exist_ok=True)
    config.data = str(data_dir)
    (out / CONFIG_FILE).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    shutil.copy(data_dir / PREPROCESSOR_FILE, out / PREPROCESSOR_FILE)
    history = fit(model, train, val, config.train, out=out, resume=resume)
    (out / CALIBRATOR_FILE).unlink(missing_ok=True)  # fit on other weights: `ctrkit calibrate` again
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(out / MODEL_FILE))
    result = {"model": config.model, "parameters": sum(p.numel() for p in model.parameters()), **history.attrs}
    result["val"] = evaluate(model, val, config.train.eval_batch_size, config.train.device)
    if (data_dir / "test_data.parquet").exists():
        test = load_tensors(data_dir, "test", config.labels)
        result["test"] = evaluate(model, test, config.train.eval_batch_size, config.train.device)
    return _write_metrics(out, result)


def _write_metrics(out: Path, result: dict) -> dict:
    """metrics.json: the test metrics at the top level (or validation without a test split), each split nested."""
    top = result.get("test") or result.get("val") or {}
    merged = {**top, **result}
    (out / METRICS_FILE).write_text(json.dumps(merged, indent=2, default=float))
    return merged


def load_run(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, CTRPreprocessor, RunConfig]:
    """A trained run back as (model in eval mode, preprocessor, config); weights load from safetensors."""
    path = Path(path)
    if not (path / MODEL_FILE).is_file():
        raise FileNotFoundError(f"no trained model in {path} (expected {MODEL_FILE}; did `ctrkit train` finish?)")
    config = load_config(path / CONFIG_FILE)
    pre = CTRPreprocessor.load(path / PREPROCESSOR_FILE)
    model = build(config.model, pre.spec, **config.hparams)
    model.load_state_dict(load_file(str(path / MODEL_FILE), device=str(device)))
    return model.to(device).eval(), pre, config


def _run_data(config: RunConfig, data_dir: str | Path | None) -> Path:
    """The prepared data a run is scored on: ``data_dir``, or the directory it was trained on."""
    data_dir = Path(data_dir or config.data or "")
    _check_data(data_dir)
    return data_dir


def _split_scores(model: nn.Module, config: RunConfig, data, split: str, calibrator=None, logits=None) -> dict:
    """The metrics of one labelled split, and of its calibrated probabilities when there is a calibrator."""
    if data.y is None:
        raise ValueError(f"the {split} split has no labels to evaluate against")
    if logits is None:
        logits = predict_logits(model, data, config.train.eval_batch_size, "cpu")
    y = data.y.numpy()
    scores = label_metrics(y, expit(logits))
    if calibrator is not None:
        scores["calibrated"] = {"method": calibrator.method, **metrics.report(y, calibrator.predict_proba(logits))}
    return scores


def _merge_metrics(path: Path, scores: dict[str, dict]) -> None:
    """Put each split's scores into the run's metrics.json, keeping the splits already there."""
    metrics_path = path / METRICS_FILE
    result = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    _write_metrics(path, result | scores)


def evaluate_run(path: str | Path, split: str = "test", data_dir: str | Path | None = None) -> dict:
    """Metrics of a run on one split of its data; merged into the run's metrics.json under the split name.

    When the run has a calibrator (``ctrkit calibrate``), the metrics of the
    calibrated probabilities are added under ``"calibrated"``.
    """
    path = Path(path)
    model, _, config = load_run(path)
    data = load_tensors(_run_data(config, data_dir), split, config.labels)
    calibrator = load_calibrator(path / CALIBRATOR_FILE) if (path / CALIBRATOR_FILE).exists() else None
    scores = _split_scores(model, config, data, split, calibrator)
    _merge_metrics(path, {split: scores})
    return scores


def calibrate_run(path: str | Path, method: str = "isotonic", data_dir: str | Path | None = None) -> dict:
    """Fit a calibrator on the run's validation logits, save it as calibrator.json, and re-evaluate (chapter 06).

    Returns the metrics of each labelled split the data has (validation, and
    test when present), each with its ``"calibrated"`` counterpart.
    """
    path = Path(path)
    model, _, config = load_run(path)
    if len(config.labels) != 1:
        raise ValueError(f"calibrate works on single-label runs; this run predicts {', '.join(config.labels)}")
    data_dir = _run_data(config, data_dir)
    val = load_tensors(data_dir, "val", config.labels)
    if val.y is None:
        raise ValueError("the val split has no labels to fit a calibrator on")
    logits = predict_logits(model, val, config.train.eval_batch_size, "cpu")
    calibrator = make_calibrator(method).fit(logits, val.y.numpy())
    calibrator.save(path / CALIBRATOR_FILE)
    result = {"val": _split_scores(model, config, val, "val", calibrator, logits)}
    if (data_dir / "test_data.parquet").exists():
        result["test"] = _split_scores(model, config, load_tensors(data_dir, "test", config.labels), "test", calibrator)
    _merge_metrics(path, result)
    return result
