"""Training (chapter 05): the trainer, its losses, checkpoints and runs.

``fit(model, train, val, config)`` → history; ``predict_proba(model, data)``;
``load_run(path)`` → (model, preprocessor, config); ``calibrate_run(path, method)`` (chapter 06).
"""

from ctrkit.training.checkpoint import load_checkpoint, save_checkpoint
from ctrkit.training.losses import class_balanced_weights, ctr_loss
from ctrkit.training.run import RunConfig, calibrate_run, evaluate_run, load_config, load_run, train_run
from ctrkit.training.trainer import (
    TrainConfig, amp_dtype, evaluate, fit, label_metrics, param_groups, predict_logits, predict_proba,
    resolve_device,
)

__all__ = [
    "TrainConfig", "fit", "predict_proba", "predict_logits", "evaluate", "param_groups", "amp_dtype",
    "resolve_device", "ctr_loss", "class_balanced_weights", "save_checkpoint", "load_checkpoint",
    "RunConfig", "load_config", "train_run", "load_run", "evaluate_run", "calibrate_run", "label_metrics",
]
