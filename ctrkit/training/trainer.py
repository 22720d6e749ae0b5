"""The trainer (chapter 05): one loop for every model, the CLI and the notebooks.

``fit(model, train, val, config)`` knows nothing about the model it trains
(minGPT's trainer is the model for this). What it does, in order:

- AdamW, with weight decay only on the weight matrices of linear layers (not on
  embeddings, biases or norms: decaying a rarely seen embedding row on every
  step would erase it), plus an optional L2 penalty on the embedding rows looked
  up in the batch, divided by their training frequencies (:func:`ctrkit.models.embedding_penalty`);
- a per-step schedule: cosine annealing with warm restarts (Loshchilov & Hutter
  2017, the default), cosine with linear warm-up, or constant;
- gradient clipping by global norm; AMP: an autocast context (fp16 with a
  ``GradScaler``, or bf16) or a null context when off;
- early stopping on validation logloss, restoring the best weights;
- SWA (Izmailov et al. 2018): after the main phase, ``swa_epochs`` more epochs
  from the best weights under ``SWALR``, averaging the weights at each epoch
  end; the average is kept only if its validation logloss beats the best
  single checkpoint;
- checkpoints of the best and the last state each epoch (safetensors + JSON)
  and an exact ``resume``.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file
from torch import nn
from torch.optim.swa_utils import SWALR, AveragedModel
from tqdm import tqdm

from ctrkit import metrics
from ctrkit.models import embedding_penalty, set_frequencies
from ctrkit.preprocessing.loader import BatchLoader, CTRTensors
from ctrkit.training.checkpoint import int_keys, load_checkpoint, save_checkpoint
from ctrkit.training.losses import class_balanced_weights, ctr_loss

SCHEDULES = ("cosine_restarts", "cosine_warmup", "constant")
AMP = ("auto", "off", "fp16", "bf16")


@dataclass
class TrainConfig:
    """Everything the trainer needs to know; YAML's ``train:`` section fills it (chapter 05)."""

    epochs: int = 10
    batch_size: int = 1024  # small data overfits after an epoch or two: more, smaller steps help
    lr: float = 2e-3
    weight_decay: float = 0.01
    clip_norm: float = 1.0  # 0 turns clipping off
    schedule: str = "cosine_restarts"
    restart_epochs: float = 2.0  # cosine_restarts: length of the first cycle (T_0), in epochs
    restart_mult: int = 2  # cosine_restarts: each cycle is this many times longer (T_mult)
    warmup_epochs: float = 0.5  # cosine_warmup
    min_lr: float = 1e-5
    patience: int = 2  # epochs without a better validation logloss before stopping
    loss: str = "bce"  # or "focal"
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0
    class_balanced: bool = False
    class_balanced_beta: float = 0.9999
    amp: str = "auto"  # auto: bf16 (or fp16) on CUDA, off on CPU; see chapter 05 for the CPU measurement
    swa: bool = False
    swa_epochs: int = 3
    swa_lr: float = 5e-4
    compile: bool = False
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 16384
    progress: bool = True

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"train: 'schedule' must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.amp not in AMP:
            raise ValueError(f"train: 'amp' must be one of {', '.join(AMP)}, got {self.amp!r}")
        if self.loss not in ("bce", "focal"):
            raise ValueError(f"train: 'loss' must be 'bce' or 'focal', got {self.loss!r}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"train: {name!r} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"train: 'label_smoothing' must be in [0, 1), got {self.label_smoothing}")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" is CUDA when there is a GPU, else the CPU; a device is detected, never assumed."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but PyTorch sees no GPU")
    return device


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for an ``amp`` setting on ``device`` (None: full fp32)."""
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("amp 'fp16' needs a CUDA device; on the CPU use 'bf16' or 'off'")
    return {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}[amp]


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay the weight matrices of linear layers; not embeddings, biases, norms or learned tokens."""
    decay = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if id(p) in decay], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) not in decay], "weight_decay": 0.0},
    ]


def make_scheduler(optimizer, config: TrainConfig, steps_per_epoch: int):
    """A per-step learning-rate schedule (see :class:`TrainConfig`)."""
    if config.schedule == "cosine_restarts":
        t0 = max(1, round(config.restart_epochs * steps_per_epoch))
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, t0, config.restart_mult, config.min_lr)
    if config.schedule == "cosine_warmup":
        warmup = max(1, round(config.warmup_epochs * steps_per_epoch))
        total = max(warmup + 1, config.epochs * steps_per_epoch)
        floor = config.min_lr / config.lr

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / (total - warmup))))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


@torch.no_grad()
def predict_logits(model: nn.Module, data: CTRTensors, batch_size: int = 16384, device="auto",
                   amp: str = "off") -> np.ndarray:
    """Logits for every row of ``data`` (model in eval mode, restored afterwards)."""
    device = resolve_device(device) if str(device) == "auto" else torch.device(device)
    dtype = amp_dtype(amp, device)
    was_training = model.training
    model.eval()
    out = []
    for x_dense, x_sparse, _ in BatchLoader(CTRTensors(data.x_dense, data.x_sparse), batch_size, device=device):
        with autocast(device, dtype):
            out.append(model(x_dense, x_sparse).float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy()


def predict_proba(model: nn.Module, data: CTRTensors, batch_size: int = 16384, device="auto",
                  amp: str = "off") -> np.ndarray:
    """Click probabilities: the sigmoid of :func:`predict_logits` (models return logits)."""
    z = predict_logits(model, data, batch_size, device, amp)
    return 1.0 / (1.0 + np.exp(-z))


def evaluate(model: nn.Module, data: CTRTensors, batch_size: int = 16384, device="auto", amp: str = "off") -> dict:
    """:func:`ctrkit.metrics.report` on a labelled split: AUC, PR-AUC, logloss, NE, Brier, ECE, … (chapter 06)."""
    if data.y is None:
        raise ValueError("evaluate needs labels; this split has none")
    return label_metrics(data.y.numpy(), predict_proba(model, data, batch_size, device, amp))


def label_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    """The metrics of each label; several labels get one set each, suffixed _0, _1, …"""
    if y.ndim == 1:
        return metrics.report(y, p)
    return {f"{k}_{j}": v for j in range(y.shape[1]) for k, v in metrics.report(y[:, j], p[:, j]).items()}


def _update_norm_stats(model: nn.Module, loader: BatchLoader) -> None:
    """Recompute BatchNorm running statistics for averaged weights (SWA's ``update_bn`` for our batches)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the pass
    was_training = model.training
    model.train()
    with torch.no_grad():
        for x_dense, x_sparse, _ in loader:
            model(x_dense, x_sparse)
    model.train(was_training)


@dataclass
class _Progress:
    """The loop's own state, saved in every checkpoint."""

    epoch: int = 0  # epochs done, both phases
    phase: str = "train"  # "train", then "swa", then "done"
    best_logloss: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    swa_epochs_done: int = 0


def fit(model: nn.Module, train: CTRTensors, val: CTRTensors, config: TrainConfig | None = None,
        out: str | Path | None = None, resume: bool = False) -> pd.DataFrame:
    """Train ``model`` in place and return the per-epoch history (a DataFrame).

    ``out``: a directory for ``checkpoints/`` and ``history.csv`` (nothing is
    written without it). ``resume=True`` continues from ``out/checkpoints/last``.
    The returned frame's ``attrs`` hold the summary: best epoch, best and SWA
    validation logloss, and which weights the model ended with.
    """
    config = config or TrainConfig()
    if train.y is None or val.y is None:
        raise ValueError("fit needs labelled train and validation splits")
    device = resolve_device(config.device)
    dtype = amp_dtype(config.amp, device)
    torch.manual_seed(config.seed)  # the trainer seeds; models never do
    model.to(device)
    set_frequencies(model, train.x_sparse)  # the embedding l2 divides by each row's training count
    step_model = torch.compile(model) if config.compile else model
    loader = BatchLoader(train, config.batch_size, shuffle=True, seed=config.seed, device=device)
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr)
    scheduler = make_scheduler(optimizer, config, len(loader))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    weights = (1.0, 1.0)
    if config.class_balanced:
        n_pos = int(train.y.sum())
        weights = class_balanced_weights(n_pos, train.y.numel() - n_pos, config.class_balanced_beta)
    progress, history = _Progress(), []
    best_state = copy.deepcopy(model.state_dict())
    swa_model: AveragedModel | None = None
    ckpt = Path(out) / "checkpoints" if out is not None else None

    def start_swa():
        nonlocal optimizer, scheduler, swa_model
        model.load_state_dict(best_state)
        optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.swa_lr)
        scheduler = SWALR(optimizer, swa_lr=config.swa_lr, anneal_epochs=max(1, len(loader) // 2))
        swa_model = AveragedModel(model)

    if resume:
        if ckpt is None or not (ckpt / "last.json").exists():
            raise FileNotFoundError(f"nothing to resume: no checkpoint in {ckpt}")
        state = load_checkpoint(ckpt / "last")
        progress = _Progress(**state["progress"])
        history = state["history"]
        best_state = {k: v.to(device) for k, v in state["best"].items()}
        if progress.phase == "swa":
            start_swa()
        if "swa" in state:  # also when the run had finished: the average may be the model it ended with
            swa_model = swa_model or AveragedModel(model)
            swa_model.load_state_dict(state["swa"])
        model.load_state_dict(state["model"])
        opt = state["optimizer"]
        optimizer.load_state_dict({"state": int_keys(opt["state"]), "param_groups": opt["param_groups"]})
        scheduler.load_state_dict(state["scheduler"] | {k: v for k, v in scheduler.state_dict().items() if callable(v)})
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        loader.epoch = progress.epoch

    while progress.phase != "done":
        swa_phase = progress.phase == "swa"
        model.train()
        started, total_loss, n_seen = time.perf_counter(), torch.zeros((), device=device), 0
        bar = tqdm(loader, desc=f"epoch {progress.epoch + 1}{' (swa)' if swa_phase else ''}", leave=False,
                   disable=not config.progress)
        for step, (x_dense, x_sparse, y) in enumerate(bar):
            with autocast(device, dtype):
                logits = step_model(x_dense, x_sparse)
            loss = ctr_loss(logits, y, config.loss, config.label_smoothing, config.focal_gamma, *weights)
            loss = loss + embedding_penalty(model)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.clip_norm > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            total_loss += loss.detach() * len(y)
            n_seen += len(y)
            if step % 20 == 0 and config.progress:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        seconds = time.perf_counter() - started
        val_metrics = evaluate(model, val, config.eval_batch_size, device, config.amp)
        row = {"epoch": progress.epoch + 1, "phase": progress.phase, "lr": optimizer.param_groups[0]["lr"],
               "train_loss": float(total_loss) / n_seen, **{f"val_{k}": v for k, v in val_metrics.items()},
               "seconds": seconds, "samples_per_s": n_seen / seconds}
        progress.epoch += 1
        val_logloss = next(v for k, v in val_metrics.items() if k.startswith("logloss"))
        if not swa_phase:
            if val_logloss < progress.best_logloss - 1e-5:
                progress.best_logloss, progress.best_epoch, progress.bad_epochs = val_logloss, progress.epoch, 0
                best_state = copy.deepcopy(model.state_dict())
                if ckpt is not None:
                    ckpt.mkdir(parents=True, exist_ok=True)
                    save_file({k: v.contiguous() for k, v in best_state.items()}, str(ckpt / "best.safetensors"))
            else:
                progress.bad_epochs += 1
            if progress.epoch >= config.epochs or progress.bad_epochs >= config.patience:
                progress.phase = "swa" if config.swa else "done"
                if config.swa:
                    start_swa()
        else:
            swa_model.update_parameters(model)
            _update_norm_stats(swa_model, BatchLoader(train, config.eval_batch_size, device=device))
            swa_metrics = evaluate(swa_model, val, config.eval_batch_size, device, config.amp)
            row |= {f"swa_val_{k}": v for k, v in swa_metrics.items()}
            progress.swa_epochs_done += 1
            if progress.swa_epochs_done >= config.swa_epochs:
                progress.phase = "done"
        history.append(row)
        if config.progress:
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                                if k in ("epoch", "phase", "train_loss", "val_logloss", "val_auc", "swa_val_logloss")))
        if ckpt is not None:
            save_checkpoint(ckpt / "last", {
                "progress": asdict(progress), "history": history, "model": model.state_dict(), "best": best_state,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "rng": torch.get_rng_state(),
                **({"swa": swa_model.state_dict()} if swa_model is not None else {}),
            })

    frame = pd.DataFrame(history)
    frame.attrs |= {"best_epoch": progress.best_epoch, "best_val_logloss": progress.best_logloss, "final": "best"}
    if swa_model is not None:
        swa_logloss = float(frame["swa_val_logloss"].iloc[-1])
        frame.attrs["swa_val_logloss"] = swa_logloss
        if swa_logloss < progress.best_logloss:
            model.load_state_dict(swa_model.module.state_dict())
            frame.attrs["final"] = "swa"
        else:
            model.load_state_dict(best_state)
    else:
        model.load_state_dict(best_state)
    if out is not None:
        frame.to_csv(Path(out) / "history.csv", index=False)
    return frame


def config_fields() -> dict:
    """TrainConfig's settings and their defaults (for YAML checking)."""
    return {f.name: f.default for f in fields(TrainConfig)}
