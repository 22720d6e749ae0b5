"""Where training runs (chapter 05): the device, mixed precision, and this process's place among several.

A device is detected, never assumed. Under ``torchrun`` (torch.distributed)
each process owns ``cuda:LOCAL_RANK``; :class:`Ranks` tells the trainer which
process it is, so that only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from ctrkit._config import ConfigError


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among several (torch.distributed); one process is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def current(cls) -> Ranks:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return cls(torch.distributed.get_rank(), torch.distributed.get_world_size(),
                       int(os.environ.get("LOCAL_RANK", 0)))
        return cls()

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints, history and logs."""
        return self.rank == 0


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """"auto" is CUDA when there is a GPU, else the CPU; a device is detected, never assumed.

    A bare ``cuda`` becomes ``cuda:{local_rank}``: each process of a DDP run owns one GPU.
    """
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but PyTorch sees no GPU")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for an ``amp`` setting on ``device`` (None: full fp32)."""
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("amp 'fp16' needs a CUDA device; on the CPU use 'bf16' or 'off'")
    return {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}[amp]


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
