"""Checks for the exercises at the end of each chapter: the student's function against the reference.

Each chapter has a module (ch01, ch02, ...) of `check_*` functions built on `compare`. A function that still
raises NotImplementedError is reported as "not attempted" (no error), a wrong one raises an AssertionError
that says which case failed and by how much.
"""

from __future__ import annotations

import copy
from typing import Callable, Iterable, Sequence

import torch


def check_callable(fn) -> None:
    """Raise TypeError unless the student passed a function (checks that wrap it call this first)."""
    if not callable(fn):
        raise TypeError(f"student_fn must be a function, got {fn!r} of type {type(fn).__name__}")


def randn(*shape: int, seed: int, scale: float = 1.0, shift: float = 0.0, dtype=torch.float32) -> torch.Tensor:
    """A seeded normal tensor (shift + scale * N(0, 1)) that leaves the global random state alone."""
    return shift + scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _copies(args: Sequence) -> list:
    """Fresh copies of a case's arguments, so an in-place edit by one function cannot reach the other."""
    return [a.clone() if isinstance(a, torch.Tensor) else copy.deepcopy(a) for a in args]


def _flatten(x) -> list[torch.Tensor]:
    if isinstance(x, (tuple, list)):
        return [t for item in x for t in _flatten(item)]
    return [torch.as_tensor(x)]


def compare(
    name: str,
    student_fn: Callable,
    reference_fn: Callable,
    cases: Iterable[Sequence],
    *,
    atol: float = 1e-5,
) -> bool:
    """Call both functions on copies of every case (a tuple of arguments); True if all outputs match within atol."""
    check_callable(student_fn)
    cases = list(cases)
    for i, args in enumerate(cases):
        try:
            got = student_fn(*_copies(args))
        except NotImplementedError:
            print(f"{name}: not attempted yet (replace `raise NotImplementedError` with your code).")
            return False
        expected = reference_fn(*_copies(args))
        got_t, exp_t = _flatten(got), _flatten(expected)
        if len(got_t) != len(exp_t):
            raise AssertionError(f"{name}, case {i}: expected {len(exp_t)} output(s), got {len(got_t)}")
        for g, e in zip(got_t, exp_t):
            if g.shape != e.shape:
                raise AssertionError(f"{name}, case {i}: expected shape {tuple(e.shape)}, got {tuple(g.shape)}")
            if not torch.allclose(g.to(e.dtype), e, atol=atol, rtol=0, equal_nan=True):
                diff = (g.to(e.dtype) - e).abs().max().item() if e.is_floating_point() else "values differ"
                raise AssertionError(f"{name}, case {i}: wrong values (max abs difference {diff})")
    print(f"{name}: correct on all {len(cases)} cases.")
    return True
