"""The torch device a step runs on, from the `device` setting (auto, cpu or cuda[:i]), its
CPU thread count, the models' forward precision and copies of results back to the host."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .cli import UserError


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; anything else must be a device torch knows."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for but no CUDA GPU is visible; use cpu or auto")
    return device


def set_threads(threads: int | None) -> None:
    """Pin torch's CPU threads: float32 results depend on how work is split between threads,
    so a step reproduces its output byte for byte only with the same count."""
    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)


AUTOCAST = ("auto", "on", "off")


def forward_precision(device: torch.device, mode: str = "auto"
                      ) -> contextlib.AbstractContextManager:
    """The context of models' forward passes: bfloat16 autocast (`on`; `auto`: on for CUDA
    only, where tensor cores make it several times faster), or full precision (`off`). Only
    the forward passes run in it: the correlation sums stay float64 whatever it is."""
    if mode not in AUTOCAST:
        raise UserError(f"autocast must be one of {', '.join(AUTOCAST)}, not {mode!r}")
    if mode == "on" or (mode == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_host(t: torch.Tensor) -> np.ndarray:
    """A tensor's values as a NumPy array in host memory. From CUDA the copy lands in
    page-locked memory (reused by torch's caching host allocator), which the GPU writes at
    the bus's full speed instead of through a pageable bounce buffer."""
    if t.device.type != "cuda":
        return t.detach().cpu().numpy()
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    host.copy_(t, non_blocking=True)
    torch.cuda.current_stream(t.device).synchronize()
    return host.numpy()
