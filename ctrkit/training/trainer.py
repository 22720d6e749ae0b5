"""The trainer (chapter 05): one loop for every model, the CLI and the notebooks.

``fit(model, train, val, config)`` knows nothing about the model it trains
(minGPT's trainer is the model for this); :class:`Trainer` names its parts —
an epoch, a validation, the stopping rule, SWA, the checkpoint state — so the
loop in :meth:`Trainer.fit` reads like this list:

- AdamW, with weight decay only on the weight matrices of linear layers (not on
  embeddings, biases or norms: decaying a rarely seen embedding row on every
  step would erase it), plus an optional L2 penalty on the embedding rows looked
  up in the batch, divided by their training frequencies (:func:`ctrkit.models.embedding_penalty`);
- a per-step schedule: cosine annealing with warm restarts (Loshchilov & Hutter
  2017, the default), cosine with linear warm-up, or constant;
- gradient clipping by global norm; AMP: an autocast context (fp16 with a
  ``GradScaler``, or bf16) or a null context when off;
- one loss per label (a model may return several logits), weighted by
  ``loss_weights``; a cheap validation each epoch (AUC and logloss per label);
- early stopping on the ``monitor`` (validation logloss by default; ``auc``,
  or one label's, e.g. ``conversion_auc``), restoring the best weights;
- SWA (Izmailov et al. 2018): after the main phase, ``swa_epochs`` more epochs
  from the best weights under ``SWALR``, averaging the weights at each epoch
  end; the average is kept only if its validation monitor beats the best
  single checkpoint;
- checkpoints of the best and the last state each epoch (safetensors + JSON)
  and an exact ``resume``.

It is ready for several processes (``torchrun``, torch DDP): each process takes
its shard of every epoch's batches on its own device (``cuda:LOCAL_RANK``), the
embedding frequencies are summed across processes, gradients are averaged by
``DistributedDataParallel``, and only rank 0 writes checkpoints, history and
logs, with the model's own (unwrapped) parameter names.
"""

from __future__ import annotations

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

from ctrkit._config import ConfigError
from ctrkit.models import embedding_penalty, set_frequencies
from ctrkit.preprocessing.loader import BatchLoader, CTRTensors
from ctrkit.training.checkpoint import int_keys, load_checkpoint, save_checkpoint
from ctrkit.training.device import Ranks, amp_dtype, autocast, resolve_device
from ctrkit.training.losses import class_balanced_weights, ctr_loss
from ctrkit.metrics import sigmoid
from ctrkit.training.predict import label_names, loader_logits, quick_metrics

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
    patience: int = 2  # epochs without a better monitored value before stopping
    monitor: str = "logloss"  # or "auc"; averaged over labels, or one label's: "click_logloss"
    loss_weights: tuple[float, ...] = ()  # one per label (default: 1 each); the loss is Σ w_l · loss_l
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
            raise ConfigError(f"train: 'schedule' must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.amp not in AMP:
            raise ConfigError(f"train: 'amp' must be one of {', '.join(AMP)}, got {self.amp!r}")
        if self.loss not in ("bce", "focal"):
            raise ConfigError(f"train: 'loss' must be 'bce' or 'focal', got {self.loss!r}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train: {name!r} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"train: 'label_smoothing' must be in [0, 1), got {self.label_smoothing}")
        if self.monitor.rsplit("_", 1)[-1] not in ("logloss", "auc"):
            raise ConfigError(f"train: 'monitor' must be logloss or auc, or a label's (click_auc), got {self.monitor!r}")
        if any(w < 0 for w in self.loss_weights):
            raise ConfigError(f"train: 'loss_weights' must not be negative, got {list(self.loss_weights)}")


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
    best: float = math.nan  # the best monitored validation value so far
    best_epoch: int = -1
    bad_epochs: int = 0
    swa_epochs_done: int = 0


class Trainer:
    """Train ``model`` on ``train``, validating on ``val``; see the module docstring and :meth:`fit`.

    ``labels`` names the columns of ``y`` (several for a multi-task model); it
    names the metrics (``val_click_auc``) and the monitor's choices. ``out``: a
    directory for ``checkpoints/`` and ``history.csv`` (nothing is written without it).
    """

    def __init__(self, model: nn.Module, train: CTRTensors, val: CTRTensors, config: TrainConfig | None = None,
                 out: str | Path | None = None, labels: tuple[str, ...] | None = None):
        self.config = config = config or TrainConfig()
        if train.y is None or val.y is None:
            raise ValueError("fit needs labelled train and validation splits")
        self.labels = label_names(train.y.numpy(), labels)
        self.ranks = Ranks.current()
        self.device = resolve_device(config.device, self.ranks.local_rank)
        self.dtype = amp_dtype(config.amp, self.device)
        self.model, self.train, self.val = model, train, val
        self.monitor, self.maximize = self._check_monitor(config.monitor)
        self.loss_weights = self._check_loss_weights(config.loss_weights)
        self.out = Path(out) if out is not None else None
        self.ckpt = self.out / "checkpoints" if out is not None else None  # every rank reads it; rank 0 writes
        # the loaders are built once: each process iterates over its own shard of every epoch's permutation
        r, w = self.ranks.rank, self.ranks.world_size
        self.loader = BatchLoader(train, config.batch_size, shuffle=True, seed=config.seed, device=self.device,
                                  rank=r, world_size=w)
        self.val_loader = BatchLoader(CTRTensors(val.x_dense, val.x_sparse), config.eval_batch_size, device=self.device)
        self.norm_loader = BatchLoader(train, config.eval_batch_size, device=self.device)  # SWA's BatchNorm pass
        self.weights = (1.0, 1.0)
        if config.class_balanced:
            n_pos = int(train.y.sum())
            self.weights = class_balanced_weights(n_pos, train.y.numel() - n_pos, config.class_balanced_beta)

    def _check_monitor(self, monitor: str) -> tuple[str, bool]:
        known = ["logloss", "auc"] + ([f"{n}_{m}" for n in self.labels for m in ("logloss", "auc")]
                                      if len(self.labels) > 1 else [])
        if monitor not in known:
            raise ConfigError(f"train: 'monitor' {monitor!r} is not one of {', '.join(known)}")
        return monitor, monitor.endswith("auc")

    def _check_loss_weights(self, weights: tuple[float, ...]) -> torch.Tensor | None:
        if not weights:
            return None
        if getattr(self.model, "log_vars", None) is not None:
            raise ConfigError("train: 'loss_weights' and the model's uncertainty weighting both weigh the labels; "
                              "use one of them")
        if len(weights) != len(self.labels):
            raise ConfigError(f"train: 'loss_weights' has {len(weights)} value(s) for {len(self.labels)} label(s) "
                              f"({', '.join(self.labels)})")
        return torch.tensor(weights, device=self.device)

    # --- the parts of an epoch ------------------------------------------------------------------

    def train_epoch(self, step_model: nn.Module, desc: str) -> dict:
        """One pass over this process's shard of the training data; the mean loss and the speed."""
        config, model = self.config, self.model
        model.train()
        started, total_loss, n_seen = time.perf_counter(), torch.zeros((), device=self.device), 0
        bar = tqdm(self.loader, desc=desc, leave=False, disable=not (config.progress and self.ranks.main))
        for step, (x_dense, x_sparse, y) in enumerate(bar):
            with autocast(self.device, self.dtype):
                logits = step_model(x_dense, x_sparse)
            loss = ctr_loss(logits, y, config.loss, config.label_smoothing, config.focal_gamma, *self.weights,
                            label_weights=self.loss_weights, log_vars=getattr(model, "log_vars", None))
            loss = loss + embedding_penalty(model, x_sparse)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if config.clip_norm > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            total_loss += loss.detach() * len(y)
            n_seen += len(y)
            if step % 20 == 0 and config.progress and self.ranks.main:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        seconds = time.perf_counter() - started
        return {"lr": self.optimizer.param_groups[0]["lr"], "train_loss": float(total_loss) / n_seen,
                "seconds": seconds, "samples_per_s": n_seen / seconds}

    def validate(self, model: nn.Module) -> dict[str, float]:
        """The cheap validation of every epoch: AUC and logloss (per label, and averaged)."""
        p = sigmoid(loader_logits(model, self.val_loader, self.dtype))
        return quick_metrics(self.val.y.numpy(), p, self.labels)

    def better(self, value: float) -> bool:
        """The early-stopping rule's comparison: does ``value`` beat the best so far (by more than 1e-5)?"""
        best = self.progress.best
        if math.isnan(best):
            return True
        return value > best + 1e-5 if self.maximize else value < best - 1e-5

    def end_train_epoch(self, scores: dict[str, float]) -> None:
        """Keep the best weights, count the epochs without progress, and move to SWA or stop."""
        p, config = self.progress, self.config
        value = scores[self.monitor]
        if self.better(value):
            p.best, p.best_epoch, p.bad_epochs = value, p.epoch, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
            if self.ckpt is not None and self.ranks.main:
                self.ckpt.mkdir(parents=True, exist_ok=True)
                save_file({k: v.contiguous() for k, v in self.best_state.items()}, str(self.ckpt / "best.safetensors"))
        else:
            p.bad_epochs += 1
        if p.epoch >= config.epochs or p.bad_epochs >= config.patience:
            p.phase = "swa" if config.swa else "done"
            if config.swa:
                self.start_swa()

    def start_swa(self) -> None:
        """From the best weights, a fresh optimizer under SWALR and an empty average."""
        self.model.load_state_dict(self.best_state)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, self.config.weight_decay), lr=self.config.swa_lr)
        self.scheduler = SWALR(self.optimizer, swa_lr=self.config.swa_lr, anneal_epochs=max(1, len(self.loader) // 2))
        self.swa_model = AveragedModel(self.model)

    def end_swa_epoch(self) -> dict[str, float]:
        """Add this epoch's weights to the average and validate the average."""
        self.swa_model.update_parameters(self.model)
        _update_norm_stats(self.swa_model, self.norm_loader)
        self.progress.swa_epochs_done += 1
        if self.progress.swa_epochs_done >= self.config.swa_epochs:
            self.progress.phase = "done"
        return self.validate(self.swa_model)

    # --- checkpoint state -----------------------------------------------------------------------

    def state(self, history: list[dict]) -> dict:
        """Everything an exact resume needs (all on rank 0; the model's own parameter names)."""
        return {
            "progress": asdict(self.progress), "history": history, "model": self.model.state_dict(),
            "best": self.best_state, "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "rng": torch.get_rng_state(),
            **({"swa": self.swa_model.state_dict()} if self.swa_model is not None else {}),
        }

    def load_state(self, state: dict) -> list[dict]:
        self.progress = _Progress(**state["progress"])
        self.best_state = {k: v.to(self.device) for k, v in state["best"].items()}
        if self.progress.phase == "swa":
            self.start_swa()
        if "swa" in state:  # also when the run had finished: the average may be the model it ended with
            self.swa_model = self.swa_model or AveragedModel(self.model)
            self.swa_model.load_state_dict(state["swa"])
        self.model.load_state_dict(state["model"])
        opt = state["optimizer"]
        self.optimizer.load_state_dict({"state": int_keys(opt["state"]), "param_groups": opt["param_groups"]})
        self.scheduler.load_state_dict(state["scheduler"] | {k: v for k, v in self.scheduler.state_dict().items()
                                                              if callable(v)})
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        self.loader.epoch = self.progress.epoch
        return state["history"]

    # --- the loop -------------------------------------------------------------------------------

    def fit(self, resume: bool = False) -> pd.DataFrame:
        """Train in place; return the per-epoch history (its ``attrs`` hold the summary). Chapter 05."""
        config, model = self.config, self.model
        torch.manual_seed(config.seed)  # the trainer seeds; models never do
        model.to(self.device)
        self._check_outputs()
        # the embedding l2 divides by each row's training count: each process counts its share, the layers sum them
        set_frequencies(model, self.train.x_sparse[self.ranks.rank::self.ranks.world_size])
        step_model = self._step_model()
        self.optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr)
        self.scheduler = make_scheduler(self.optimizer, config, len(self.loader))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.progress, history = _Progress(), []
        self.best_state = copy.deepcopy(model.state_dict())
        self.swa_model: AveragedModel | None = None
        if resume:
            if self.ckpt is None or not (self.ckpt / "last.json").exists():
                raise FileNotFoundError(f"nothing to resume: no checkpoint in {self.ckpt}")
            history = self.load_state(load_checkpoint(self.ckpt / "last"))

        while self.progress.phase != "done":
            swa_phase = self.progress.phase == "swa"
            row = {"epoch": self.progress.epoch + 1, "phase": self.progress.phase}
            row |= self.train_epoch(step_model, f"epoch {self.progress.epoch + 1}{' (swa)' if swa_phase else ''}")
            row |= {f"val_{k}": v for k, v in self.validate(model).items()}
            self.progress.epoch += 1
            if swa_phase:
                row |= {f"swa_val_{k}": v for k, v in self.end_swa_epoch().items()}
            else:
                self.end_train_epoch({k[4:]: v for k, v in row.items() if k.startswith("val_")})
            history.append(row)
            self._log(row)
            if self.ckpt is not None and self.ranks.main:
                save_checkpoint(self.ckpt / "last", self.state(history))
        return self._finish(history)

    def _check_outputs(self) -> None:
        """A model must return one logit per label."""
        with torch.no_grad():
            was_training = self.model.training
            self.model.eval()
            logits = self.model(self.val.x_dense[:2].to(self.device), self.val.x_sparse[:2].to(self.device))
            self.model.train(was_training)
        n = 1 if logits.ndim == 1 else logits.shape[1]
        if n != len(self.labels):
            raise ConfigError(f"the model returns {n} logit(s) per row but there are {len(self.labels)} label(s) "
                              f"({', '.join(self.labels)})")

    def _step_model(self) -> nn.Module:
        """The module the training steps call: compiled and/or DDP-wrapped; ``self.model`` stays the plain one."""
        step_model = torch.compile(self.model) if self.config.compile else self.model
        if self.ranks.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            step_model = DistributedDataParallel(step_model, device_ids=ids)
        return step_model

    def _log(self, row: dict) -> None:
        if self.config.progress and self.ranks.main:
            shown = ("epoch", "phase", "train_loss", "val_logloss", "val_auc", "swa_val_logloss")
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                                if k in shown))

    def _finish(self, history: list[dict]) -> pd.DataFrame:
        """The weights the run ends with (best, or the SWA average when it validates better) and the history."""
        frame = pd.DataFrame(history)
        p, name = self.progress, self.monitor
        frame.attrs |= {"best_epoch": p.best_epoch, f"best_val_{name}": p.best, "monitor": name, "final": "best"}
        self.model.load_state_dict(self.best_state)
        if self.swa_model is not None:
            swa_value = float(frame[f"swa_val_{name}"].iloc[-1])
            frame.attrs[f"swa_val_{name}"] = swa_value
            if (swa_value > p.best) if self.maximize else (swa_value < p.best):
                self.model.load_state_dict(self.swa_model.module.state_dict())
                frame.attrs["final"] = "swa"
        if self.out is not None and self.ranks.main:
            frame.to_csv(self.out / "history.csv", index=False)
        return frame


def fit(model: nn.Module, train: CTRTensors, val: CTRTensors, config: TrainConfig | None = None,
        out: str | Path | None = None, resume: bool = False, labels: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Train ``model`` in place and return the per-epoch history (a DataFrame); see :class:`Trainer`.

    ``resume=True`` continues from ``out/checkpoints/last``. The returned
    frame's ``attrs`` hold the summary: best epoch, best and SWA validation
    value of the monitor (``best_val_logloss``…), and which weights the model ended with.
    """
    return Trainer(model, train, val, config, out, labels).fit(resume)


def config_fields() -> dict:
    """TrainConfig's settings and their defaults (for YAML checking)."""
    return {f.name: f.default for f in fields(TrainConfig)}
