"""Checkpoints as safetensors + JSON (never pickle): weights, optimizer, schedule, scaler and RNG.

A checkpoint is two files, ``<name>.safetensors`` (every tensor, under a
prefixed key) and ``<name>.json`` (everything else). Restoring one gives the
exact state an uninterrupted run would have had (chapter 05).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def _split(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move the tensors of a nested state dict into ``tensors``; leave a reference in their place."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {str(k): _split(v, f"{prefix}.{k}", tensors) for k, v in obj.items() if not callable(v)}
    if isinstance(obj, (list, tuple)):
        return [_split(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    return obj


def _join(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        return {k: _join(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    return obj


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (nested dicts of tensors, numbers, strings) to ``path``.safetensors and ``path``.json."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    meta = _split(state, "s", tensors)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp) + ".safetensors")
    tmp.with_suffix(".tmp.json").write_text(json.dumps(meta))
    # rename after both are written, so an interruption never leaves a half checkpoint behind
    Path(str(tmp) + ".safetensors").replace(str(path) + ".safetensors")
    tmp.with_suffix(".tmp.json").replace(str(path) + ".json")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    tensors = load_file(str(path) + ".safetensors")
    return _join(json.loads(Path(str(path) + ".json").read_text()), tensors)


def int_keys(state: dict) -> dict:
    """JSON turned the optimizer's integer parameter ids into strings; turn them back."""
    return {int(k) if isinstance(k, str) and k.isdigit() else k: v for k, v in state.items()}
