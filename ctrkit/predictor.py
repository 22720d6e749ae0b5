"""``Predictor``: one path from raw rows to calibrated probabilities per label (chapters 06 and 11).

    predictor = Predictor.from_run("runs/deepfm")
    predictor.predict([{"I1": 3, "C3": "68fd1e64"}])      # a DataFrame with p_click
    predictor.predict_file("test.txt", "preds.parquet")   # what `ctrkit predict` does

A run's preprocessor turns raw rows into model inputs, its model gives one logit
per output (one per label; a multi-task model's three: ``click``, the post-click
``conversion`` and ``ctcvr``, chapter 08), and its calibrators (``ctrkit
calibrate``) turn each output's logits into probabilities; without a calibrator, or with ``calibrated=False``, a
probability is the sigmoid of the logit. ``evaluate``, ``calibrate`` and
``predict`` all score through here, and so will the server.

Raw rows are a pandas DataFrame, a pyarrow Table, a list of dicts (one
impression each) or a file (Criteo text, plain or ``.gz``, or parquet). An
absent or null field is missing, an unknown category is out-of-vocabulary; a
value that is not a finite number where a number is required raises
:class:`~ctrkit.datasets.DataError` naming the field and the row. (In a pandas
DataFrame NaN is pandas' null, so there it means missing; in dict rows and arrow
tables a NaN is a value, and not an accepted one.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from ctrkit.calibration import Calibrator, load_calibrators
from ctrkit.datasets import DataError, iter_criteo_tables
from ctrkit.metrics import sigmoid
from ctrkit.models import build
from ctrkit.models.multitask import OUTPUTS
from ctrkit.preprocessing import CTRPreprocessor, CTRTensors

MODEL_FILE, CALIBRATOR_FILE, PREPROCESSOR_FILE = "model.safetensors", "calibrator.json", "preprocessor.json"


class Predictor:
    """A trained model with its preprocessor and calibrators: raw rows in, ``p_<output>`` columns out.

    ``labels`` are the label columns the model was trained on; ``outputs`` what
    it predicts: the labels, or for a multi-task model (one with
    ``task_logits``) ``click``, ``conversion`` (post-click) and ``ctcvr``.
    :meth:`targets` says which label column and rows each output is scored on.
    ``batch_size`` rows go through the model at once (4096 keeps a CPU's caches
    warm; on a GPU, larger is faster).
    """

    def __init__(self, model: nn.Module, preprocessor: CTRPreprocessor, labels: tuple[str, ...],
                 calibrators: dict[str, Calibrator] | None = None, batch_size: int = 4096,
                 device: str | torch.device = "cpu"):
        self.labels = tuple(labels)
        self.outputs = tuple(OUTPUTS) if hasattr(model, "task_logits") else self.labels
        unknown = set(calibrators or {}) - set(self.outputs)
        if unknown:
            raise ValueError(f"calibrators for outputs the model does not predict: {', '.join(sorted(unknown))}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.preprocessor = preprocessor
        self.calibrators = dict(calibrators or {})
        self.batch_size = batch_size
        self.columns = pd.Index([f"p_{name}" for name in self.outputs], dtype=object)  # built once: one row is fast

    def targets(self) -> dict[str, tuple[str, str | None]]:
        """Each output's label column, and the label whose positive rows it is defined on (None: every row)."""
        multitask = hasattr(self.model, "task_logits")
        return {name: OUTPUTS[name] if multitask else (name, None) for name in self.outputs}

    @classmethod
    def from_run(cls, path: str | Path, device: str | torch.device = "cpu", batch_size: int = 4096) -> Predictor:
        """Load a run directory written by ``ctrkit train`` (and ``ctrkit calibrate``)."""
        from ctrkit.training.run import load_config  # run.py builds on this module

        path = Path(path)
        if not (path / MODEL_FILE).is_file():
            raise FileNotFoundError(f"no trained model in {path} (expected {MODEL_FILE}; did `ctrkit train` finish?)")
        config = load_config(path / "config.yaml")
        pre = CTRPreprocessor.load(path / PREPROCESSOR_FILE)
        model = build(config.model, pre.spec, **config.hparams)
        model.load_state_dict(load_file(str(path / MODEL_FILE), device=str(device)))
        calibrators = load_calibrators(path / CALIBRATOR_FILE) if (path / CALIBRATOR_FILE).exists() else None
        return cls(model, pre, config.labels, calibrators, batch_size, device)

    def tensors(self, rows, row0: int = 0) -> CTRTensors:
        """Raw rows as model inputs (no labels); ``row0`` numbers the rows in error messages."""
        x_dense, x_sparse = self.preprocessor.encode(rows, row0)  # column-major arrays: rows made contiguous here
        return CTRTensors(torch.from_numpy(np.ascontiguousarray(x_dense)), torch.from_numpy(np.ascontiguousarray(x_sparse)))

    @torch.inference_mode()
    def logits(self, data: CTRTensors) -> np.ndarray:
        """The model's logits for encoded rows, (N, outputs): one column per output."""
        forward, out = getattr(self.model, "task_logits", self.model), []
        for start in range(0, len(data), self.batch_size):
            x_dense = data.x_dense[start:start + self.batch_size].to(self.device)
            x_sparse = data.x_sparse[start:start + self.batch_size].to(self.device)
            out.append(forward(x_dense, x_sparse).float().cpu().numpy().reshape(len(x_dense), -1))
        return np.concatenate(out) if out else np.zeros((0, len(self.outputs)), dtype=np.float32)

    def probabilities(self, logits: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Logits (N, outputs) → probabilities, each output through its calibrator when there is one."""
        p = np.empty(logits.shape, dtype=np.float64)
        for j, label in enumerate(self.outputs):
            calibrator = self.calibrators.get(label) if calibrated else None
            z = logits[:, j].astype(np.float64)
            p[:, j] = calibrator.predict_proba(z) if calibrator is not None else sigmoid(z)
        return p

    def predict(self, rows, calibrated: bool = True, row0: int = 0) -> pd.DataFrame:
        """Probabilities of raw rows: a DataFrame with one ``p_<output>`` column per output (``p_click``…)."""
        if isinstance(rows, (str, Path)):
            return pd.concat([self.predict(table, calibrated, start) for start, table in self.iter_file(rows)],
                             ignore_index=True)
        p = self.probabilities(self.logits(self.tensors(rows, row0)), calibrated)
        return pd.DataFrame(p, columns=self.columns, copy=False)

    def iter_file(self, path: str | Path, chunk_rows: int = 100_000) -> Iterator[tuple[int, pa.Table]]:
        """A Criteo text file (plain or .gz, with or without labels) or a parquet file, in chunks: (first row, table).

        The file is checked when this is called, before the first chunk is read.
        """
        path = Path(path)
        if path.suffix == ".parquet":
            if not path.is_file():
                raise DataError(f"{path}: no such file")
            try:
                tables = (pa.Table.from_batches([b]) for b in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows))
            except pa.ArrowInvalid as e:
                raise DataError(f"{path}: not a parquet file ({e})") from None
        else:
            tables = iter_criteo_tables(path, chunk_rows)
        return _numbered(tables)

    def predict_file(self, path: str | Path, output: str | Path, chunk_rows: int = 100_000, calibrated: bool = True,
                     progress: bool = True) -> int:
        """Stream ``path`` through :meth:`predict` into a parquet file: ``row`` (the input's row number) and
        one ``p_<output>`` column per output. Memory is bounded by ``chunk_rows``; returns the rows written."""
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".tmp")
        writer, n = None, 0
        try:
            chunks = self.iter_file(path, chunk_rows)  # a bad file fails here, before a progress bar is drawn
            with tqdm(desc="predict", unit=" rows", disable=not progress) as bar:
                for start, table in chunks:
                    p = self.predict(table, calibrated, row0=start)
                    part = pa.table({"row": np.arange(start, start + len(p), dtype=np.int64),
                                     **{c: p[c].to_numpy() for c in p.columns}})
                    writer = writer or pq.ParquetWriter(tmp, part.schema, compression="zstd")
                    writer.write_table(part)
                    n += len(p)
                    bar.update(len(p))
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise DataError(f"{path}: no rows to predict")
        tmp.replace(output)  # a complete file or none: an interrupted run leaves no half output behind
        return n


def _numbered(tables) -> Iterator[tuple[int, pa.Table]]:
    start = 0
    for table in tables:
        yield start, table
        start += table.num_rows
