"""Turning a device name ("auto", "cpu", "cuda", "cuda:1", "mps") into a ``torch.device``."""

from __future__ import annotations

import re

import torch

#: The device names :func:`resolve_device` accepts (``cuda:N`` means any device index).
DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")

_PATTERN = re.compile(r"cpu|mps|cuda(:\d+)?")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The ``torch.device`` for ``device``; "auto" picks cuda, then mps, then cpu.

    Resolved when called (never at import), so a process sees the accelerators it has now.
    Unknown names raise ``ValueError``; a known but absent accelerator raises ``RuntimeError``.
    """
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        name = device.strip().lower()
        if name == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            return torch.device("mps") if _mps_available() else torch.device("cpu")
        if not _PATTERN.fullmatch(name):
            raise ValueError(f"unknown device {device!r}; allowed: {', '.join(DEVICE_NAMES)}")
        dev = torch.device(name)
    else:
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")

    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index is not None and dev.index >= count):
            raise RuntimeError(f"device {str(dev)!r} requested but {count} CUDA device(s) found")
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise RuntimeError("device 'mps' requested but MPS is not available")
        return dev
    raise ValueError(f"unsupported device type {dev.type!r}; allowed: {', '.join(DEVICE_NAMES)}")
