"""One copy of each small utility: argument checks (clear errors before any work), seeding, padding, mini-batches.

Every message names the argument as the caller wrote it, the value (or its shape / dtype) and what was expected.
"""

from __future__ import annotations

import importlib
import math
import os
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

SEED_MAX = 2**63 - 1  # torch.manual_seed and random.Random accept any int in [0, 2**63)
MAX_WIDTH = 2**14  # the widest layer the course builds on a laptop (d_model, d_ff): beyond, memory runs out first


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_bool(name: str, value) -> None:
    """Raise TypeError unless `value` is True or False (a string such as 'no' is not a bool)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool (True or False), got {value!r} of type {type(value).__name__}")


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> None:
    """Raise TypeError unless `value` is an int (not a bool), ValueError unless low <= value <= high."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")


def check_float(name: str, value, low: float | None = None, high: float | None = None, *,
                low_open: bool = False) -> None:
    """Raise unless `value` is a finite real number in [low, high] (in (low, high] with low_open=True)."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a number, got {value!r} of type {type(value).__name__}")
    below = value <= low if low_open else value < low if low is not None else False
    if not math.isfinite(value) or below or (high is not None and value > high):
        interval = f"{'(' if low_open else '['}{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value}")


def check_positive(name: str, value) -> None:
    """Raise unless `value` is a finite real number > 0."""
    check_float(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")


def check_probability(name: str, value, *, zero: bool = True) -> None:
    """Raise unless `value` is a probability in [0, 1] (in (0, 1] with zero=False, as top_p)."""
    check_float(name, value)
    if not (0 <= value <= 1) or (value == 0 and not zero):
        raise ValueError(f"{name} must lie in {'[0, 1]' if zero else '(0, 1]'}, got {value}")


def check_seed(name: str, value) -> None:
    """Raise unless `value` is a seed: an int in [0, 2**63)."""
    check_int(name, value, 0, SEED_MAX)


def check_choice(name: str, value, choices: Iterable) -> None:
    """Raise ValueError unless `value` is one of `choices`."""
    choices = tuple(choices)
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_strings(name: str, value, *, nonempty: bool = False, what: str = "") -> None:
    """Raise TypeError unless `value` is a list (or tuple) of str, and non-empty when asked (`what` says what each is)."""
    if not isinstance(value, (list, tuple)) or (nonempty and not value) or not all(isinstance(t, str) for t in value):
        kind = f"{'a non-empty' if nonempty else 'a'} list of str{f' ({what})' if what else ''}"
        raise TypeError(f"{name} must be {kind}, got {value!r:.60}")


def check_tensor(name: str, x, *, ndim: int | None = None, ndim_min: int = 0, floating: bool = False) -> None:
    """Raise TypeError / ValueError unless `x` is a tensor of the expected rank (and float dtype)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if x.dim() < ndim_min:
        raise ValueError(f"{name} must have at least {ndim_min} dimensions, got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_finite(name: str, x: torch.Tensor) -> None:
    """Raise ValueError if a float tensor holds NaN or +-inf (they would poison every number computed from it)."""
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError(f"{name} must hold finite values, got {int((~torch.isfinite(x)).sum())} NaN or inf")


def check_int_tensor(name: str, x, *, ndim: int | None = None, ndim_min: int = 0, low: int | None = None,
                     high: int | None = None) -> None:
    """Raise unless `x` is an integer tensor of the expected rank with values in [low, high)."""
    check_tensor(name, x, ndim=ndim, ndim_min=ndim_min)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor (torch.long), got dtype {x.dtype}")
    if x.numel() and ((low is not None and x.min() < low) or (high is not None and x.max() >= high)):
        raise ValueError(f"{name} must lie in [{low}, {high}), got values from {x.min().item()} to {x.max().item()}")


def check_ids(name: str, ids, upper: int, shape: tuple | None = None) -> None:
    """Raise unless `ids` is an integer tensor (B, L) with values in [0, upper) (and the given shape)."""
    check_int_tensor(name, ids, ndim=2, low=0, high=upper)
    if shape is not None and tuple(ids.shape) != tuple(shape):
        raise ValueError(f"{name} must have the shape {tuple(shape)}, got {tuple(ids.shape)}")


def check_last_dim(name: str, x: torch.Tensor, d: int, what: str = "d_model") -> None:
    """Raise unless the float tensor `x` (..., d) ends in the model's width d."""
    check_tensor(name, x, ndim_min=1, floating=True)
    if x.shape[-1] != d:
        raise ValueError(f"{name} must have last dimension {what}={d}, got shape {tuple(x.shape)}")


def check_dtype(name: str, x: torch.Tensor, dtype: torch.dtype) -> None:
    """Raise TypeError unless the tensor `x` has the dtype of the weights it meets (float64 into float32 fails)."""
    if x.dtype != dtype:
        raise TypeError(f"{name} must have the dtype of the model's weights {dtype}, got {x.dtype} "
                        f"(convert it with .to({dtype}))")


def check_broadcast(name: str, shape: tuple, target: tuple, target_name: str) -> None:
    """Raise ValueError unless `shape` broadcasts to exactly `target`."""
    try:
        ok = torch.broadcast_shapes(shape, target) == torch.Size(target)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {tuple(shape)} does not broadcast to {target_name} of shape {tuple(target)}")


def check_instance(name: str, value, cls: type | tuple[type, ...], what: str | None = None) -> None:
    """Raise TypeError unless `value` is an instance of `cls` (`what` describes it in the message)."""
    if not isinstance(value, cls):
        what = what or (cls.__name__ if isinstance(cls, type) else " or ".join(c.__name__ for c in cls))
        raise TypeError(f"{name} must be a {what}, got {type(value).__name__}")


def check_generator(generator) -> None:
    """Raise TypeError unless `generator` is a torch.Generator or None (then the global generator draws)."""
    check_instance("generator", generator, (torch.Generator, type(None)), "torch.Generator or None")


def check_path(name: str, path, missing: str = "") -> Path:
    """`path` as a Path: TypeError unless a str or os.PathLike, ValueError for a directory, FileNotFoundError if missing
    (`missing` says how to rebuild it)."""
    check_instance(name, path, (str, os.PathLike), "file path (str or pathlib.Path)")
    if Path(path).is_dir():
        raise ValueError(f"{name} must be a file, got the directory {path}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} is missing{missing}")
    return Path(path)


def require(module: str, what: str, package: str, install: str):
    """The optional `module`, imported; if it is not installed, an error naming what needs it and the pip command;
    if it is installed but its own import fails (a dependency it forgot to declare), that failure, named as such."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if err.name == module:  # the package itself is missing
            raise ModuleNotFoundError(f"{what} needs the package {package}: {install}") from err
        raise ImportError(f"{what} needs the package {package}, which is installed but fails to import: {err}. "
                          f"Install what it names, or another release of {package}") from err



# ---------------------------------------------------------------- seeding


def set_seed(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU) so a notebook re-executes identically; returns a torch.Generator."""
    check_seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global generator seeded, then restore the caller's random state."""
    check_seed("seed", seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# ---------------------------------------------------------------- batches


def pad_batch(rows: Sequence[Sequence[int] | torch.Tensor], value: int) -> torch.Tensor:
    """Rows of ids of different lengths -> one tensor (B, L_max), each row padded on the right with `value`."""
    if not rows:
        raise ValueError("rows must hold at least one sequence, got none")
    rows = [torch.as_tensor(r, dtype=torch.long) for r in rows]
    out = torch.full((len(rows), max(len(r) for r in rows)), value, dtype=torch.long)  # (B, L_max)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def select_rows(batch: dict[str, torch.Tensor], idx) -> dict[str, torch.Tensor]:
    """Rows idx (indices or a slice) of a right-padded batch, cut to the longest of them: the columns that are padding
    in every selected row are masked anyway, so dropping them changes no result, only the time."""
    length = int(batch["attention_mask"][idx].sum(1).max())
    return {k: v[idx, :length] if v.dim() == 2 else v[idx] for k, v in batch.items()}  # (B, length) or (B,)


def minibatches(n: int, batch_size: int, generator: torch.Generator, *, drop_last: bool = False
                ) -> Iterator[torch.Tensor]:
    """Indices of mini-batches, forever: each epoch visits the n examples once, in a new seeded order.

    drop_last=True skips an epoch's last batch when it is smaller than batch_size (all batches then have one shape).
    """
    check_int("n", n, 1)
    check_int("batch_size", batch_size, 1, n if drop_last else None)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1 if drop_last else n, batch_size):
            yield order[start:start + batch_size]
