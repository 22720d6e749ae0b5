"""Training (chapter 05): the trainer, its losses, checkpoints and runs.

``fit(model, train, val, config)`` → history (the :class:`Trainer` does the
work); ``predict_proba(model, data)``; ``load_run(path)`` → (model,
preprocessor, config); ``calibrate_run(path, method)`` (chapter 06).
"""

from ctrkit.training.checkpoint import load_checkpoint, save_checkpoint
from ctrkit.training.device import Ranks, amp_dtype, autocast, resolve_device
from ctrkit.training.losses import class_balanced_weights, ctr_loss
from ctrkit.training.predict import evaluate, label_metrics, predict_logits, predict_proba, quick_metrics
from ctrkit.training.run import RunConfig, calibrate_run, evaluate_run, load_config, load_run, train_run
from ctrkit.training.trainer import TrainConfig, Trainer, fit, make_scheduler, param_groups

__all__ = [
    "TrainConfig", "Trainer", "fit", "predict_proba", "predict_logits", "evaluate", "param_groups", "amp_dtype",
    "autocast", "make_scheduler", "resolve_device", "Ranks", "ctr_loss", "class_balanced_weights",
    "save_checkpoint", "load_checkpoint", "RunConfig", "load_config", "train_run", "load_run", "evaluate_run",
    "calibrate_run", "label_metrics", "quick_metrics",
]
