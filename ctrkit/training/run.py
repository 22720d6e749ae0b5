"""Runs: a YAML config in, a directory of safe artifacts out (what ``ctrkit train / evaluate / calibrate`` do).

A config names a model and fills two small dataclasses::

    model:            # ctrkit.models.build(name, spec, **the rest)
      name: transformer
      embed_dim: 16
    train:            # ctrkit.training.TrainConfig
      epochs: 8
    labels: [click]   # the label columns to learn (default click); several for multi-task models

A run directory holds ``config.yaml`` (resolved, with the data directory),
``preprocessor.json``, ``model.safetensors``, ``history.csv``, ``metrics.json``,
``checkpoints/`` and, after ``ctrkit calibrate``, ``calibrator.json`` (one
calibrator per output: per label, or a multi-task model's three). Nothing in it is a pickle. Scoring a run goes through
:class:`ctrkit.Predictor`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import save_file
from torch import nn

from ctrkit import metrics
from ctrkit._config import ConfigError, fill
from ctrkit.calibration import make_calibrator, save_calibrators
from ctrkit.datasets import LABEL
from ctrkit.models import build, hparams_of
from ctrkit.predictor import CALIBRATOR_FILE, MODEL_FILE, Predictor
from ctrkit.preprocessing import CTRPreprocessor, CTRTensors
from ctrkit.preprocessing.prepare import PREPROCESSOR_FILE, load_preprocessor, load_tensors
from ctrkit.training.device import resolve_device
from ctrkit.training.trainer import TrainConfig, config_fields, fit

CONFIG_FILE, METRICS_FILE = "config.yaml", "metrics.json"


@dataclass
class RunConfig:
    model: str
    hparams: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    labels: tuple[str, ...] = (LABEL,)
    data: str | None = None  # the prepared data directory, recorded by train_run

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        if not isinstance(d, dict):
            raise ConfigError("a run config is a YAML mapping with 'model' and 'train' sections")
        d = fill({"model": {}, "train": {}, "labels": (LABEL,), "data": ""}, d, "config")
        model = d.get("model") or {}
        if not isinstance(model, dict) or "name" not in model:
            raise ConfigError("config: 'model' needs a 'name' (one of lr, fm, deepfm, dcnv2, autoint, transformer)")
        model = dict(model)
        name = model.pop("name")
        hparams = fill(hparams_of(name), model, f"config: model {name!r}")
        train = TrainConfig(**fill(config_fields(), d.get("train") or {}, "config: train"))
        labels = tuple(d.get("labels", (LABEL,)))
        if not labels or len(set(labels)) != len(labels):
            raise ConfigError(f"config: 'labels' must name one or more distinct label columns, got {list(labels)}")
        return cls(name, hparams, train, labels, d.get("data") or None)

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
        raise ConfigError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
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
    history = fit(model, train, val, config.train, out=out, resume=resume, labels=config.labels)
    (out / CALIBRATOR_FILE).unlink(missing_ok=True)  # fit on other weights: `ctrkit calibrate` again
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(out / MODEL_FILE))
    result = {"model": config.model, "parameters": sum(p.numel() for p in model.parameters()), **history.attrs}
    # the full report, once, at the end (the epochs validate on AUC and logloss only), per output as `evaluate` scores it
    predictor = Predictor(model, pre, config.labels, batch_size=config.train.eval_batch_size,
                          device=resolve_device(config.train.device))
    splits = {"val": val, **({"test": load_tensors(data_dir, "test", config.labels)}
                             if (data_dir / "test_data.parquet").exists() else {})}
    for name, data in splits.items():
        result[name] = _split_scores(predictor, data, name)
    return _write_metrics(out, result)


def _write_metrics(out: Path, result: dict) -> dict:
    """metrics.json: the test metrics at the top level (or validation without a test split), each split nested."""
    top = result.get("test") or result.get("val") or {}
    merged = {**top, **result}
    (out / METRICS_FILE).write_text(json.dumps(merged, indent=2, default=float))
    return merged


def load_run(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, CTRPreprocessor, RunConfig]:
    """A trained run back as (model in eval mode, preprocessor, config); weights load from safetensors."""
    predictor = Predictor.from_run(path, device)
    return predictor.model, predictor.preprocessor, load_config(Path(path) / CONFIG_FILE)


def _run_data(config: RunConfig, data_dir: str | Path | None) -> Path:
    """The prepared data a run is scored on: ``data_dir``, or the directory it was trained on."""
    data_dir = Path(data_dir or config.data or "")
    _check_data(data_dir)
    return data_dir


def _targets(predictor: Predictor, data: CTRTensors) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each output's labels and the rows it is scored on (a post-click output: the clicked rows only)."""
    y = data.y.numpy().reshape(len(data), -1)
    column = {label: y[:, j] for j, label in enumerate(predictor.labels)}
    return {name: (column[label], column[given] == 1 if given else np.ones(len(y), dtype=bool))
            for name, (label, given) in predictor.targets().items()}


def _split_scores(predictor: Predictor, data: CTRTensors, split: str, logits: np.ndarray | None = None) -> dict:
    """The metrics of one labelled split, and of its calibrated probabilities when the run has calibrators.

    A post-click output (a multi-task model's ``conversion``) is scored on the
    clicked rows, and its AUC over every impression is added as ``auc_all_rows``.
    """
    if data.y is None:
        raise ConfigError(f"the {split} split has no labels to evaluate against")
    logits = predictor.logits(data) if logits is None else logits
    raw, calibrated = predictor.probabilities(logits, calibrated=False), predictor.probabilities(logits)
    scores = {}
    for j, (name, (y, rows)) in enumerate(_targets(predictor, data).items()):
        s = metrics.report(y[rows], raw[rows, j])
        if not rows.all():
            s["auc_all_rows"] = metrics.auc(y, raw[:, j])
        if name in predictor.calibrators:
            s["calibrated"] = {"method": predictor.calibrators[name].method,
                               **metrics.report(y[rows], calibrated[rows, j])}
        scores[name] = s
    return scores[predictor.outputs[0]] if len(predictor.outputs) == 1 else scores


def _merge_metrics(path: Path, scores: dict[str, dict]) -> None:
    """Put each split's scores into the run's metrics.json, keeping the splits already there."""
    metrics_path = path / METRICS_FILE
    result = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    _write_metrics(path, result | scores)


def evaluate_run(path: str | Path, split: str = "test", data_dir: str | Path | None = None) -> dict:
    """Metrics of a run on one split of its data; merged into the run's metrics.json under the split name.

    When the run has calibrators (``ctrkit calibrate``), the metrics of the
    calibrated probabilities are added under ``"calibrated"``. Several labels
    give one block of metrics per label.
    """
    path = Path(path)
    predictor = Predictor.from_run(path)
    data = load_tensors(_run_data(load_config(path / CONFIG_FILE), data_dir), split, predictor.labels)
    scores = _split_scores(predictor, data, split)
    _merge_metrics(path, {split: scores})
    return scores


def calibrate_run(path: str | Path, method: str = "isotonic", data_dir: str | Path | None = None) -> dict:
    """Fit one calibrator per output on the run's validation logits (a post-click output on the clicked rows),
    save them as calibrator.json, re-evaluate.

    Returns the metrics of each labelled split the data has (validation, and
    test when present), each with its ``"calibrated"`` counterpart. Chapter 06.
    """
    path = Path(path)
    predictor = Predictor.from_run(path)
    data_dir = _run_data(load_config(path / CONFIG_FILE), data_dir)
    val = load_tensors(data_dir, "val", predictor.labels)
    if val.y is None:
        raise ConfigError("the val split has no labels to fit a calibrator on")
    logits = predictor.logits(val)
    predictor.calibrators = {name: make_calibrator(method).fit(logits[rows, j], y[rows])
                             for j, (name, (y, rows)) in enumerate(_targets(predictor, val).items())}
    save_calibrators(path / CALIBRATOR_FILE, predictor.calibrators)
    result = {"val": _split_scores(predictor, val, "val", logits)}
    if (data_dir / "test_data.parquet").exists():
        result["test"] = _split_scores(predictor, load_tensors(data_dir, "test", predictor.labels), "test")
    _merge_metrics(path, result)
    return result
