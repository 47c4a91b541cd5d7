"""Argument checks shared by the public functions: clear errors before any work is done."""

from __future__ import annotations

import math
from typing import Iterable

import torch


def check_tensor(name: str, x, *, ndim_min: int = 0, ndim: int | None = None, floating: bool = False) -> None:
    """Raise TypeError / ValueError unless `x` is a tensor of the expected rank (and float dtype)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if x.dim() < ndim_min:
        raise ValueError(f"{name} must have at least {ndim_min} dimensions, got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_positive_int(name: str, value, *, minimum: int = 1) -> None:
    """Raise unless `value` is an int (not a bool) that is at least `minimum`."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def check_positive_float(name: str, value) -> None:
    """Raise unless `value` is a finite real number > 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a positive number, got {value!r} of type {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")


def check_choice(name: str, value, choices: Iterable[str]) -> None:
    """Raise ValueError unless `value` is one of `choices`."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_broadcast(name: str, shape: tuple, target: tuple, target_name: str) -> None:
    """Raise ValueError unless `shape` broadcasts to exactly `target`."""
    try:
        ok = torch.broadcast_shapes(shape, target) == torch.Size(target)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name} of shape {tuple(shape)} does not broadcast to {target_name} of shape {tuple(target)}"
        )


def check_ids(name: str, ids: torch.Tensor, upper: int, shape: tuple | None = None) -> None:
    """Raise unless `ids` is an integer tensor (B, L) with values in [0, upper) (and the given shape)."""
    check_tensor(name, ids, ndim=2)
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an integer tensor (torch.long), got dtype {ids.dtype}")
    if shape is not None and tuple(ids.shape) != tuple(shape):
        raise ValueError(f"{name} must have the shape of input_ids {tuple(shape)}, got {tuple(ids.shape)}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= upper):
        raise ValueError(f"{name} must lie in [0, {upper}), got values from {ids.min().item()} to {ids.max().item()}")
