"""Checks for the exercises at the end of each chapter: the student's function against the reference.

Each chapter's module (ch01, ch02, ...) has `check_*(fn)` functions built on `compare`: they run the student's `fn`
and a reference (course_utils, torch or transformers) on seeded cases, each on its own copies of the arguments.
A check returns True ("correct on all N cases."), False while `fn` raises NotImplementedError ("not attempted
yet"), or raises an AssertionError naming the case, its inputs and the mistake in plain words: returned None, a
wrong type, shape or dtype, NaN or inf, wrong values, an exception inside `fn`. A non-function is a TypeError.
No check touches the global random state.
"""

from __future__ import annotations

import copy
import dis
import inspect
import numbers
import types
from typing import Callable, Sequence

import torch


class Mistake(Exception):
    """What is wrong with the student's answer on one case, in the student's words."""


def check_callable(fn) -> None:
    """Raise TypeError unless the student passed a function (checks that wrap it call this first)."""
    if not callable(fn):
        raise TypeError(f"student_fn must be a function, got {fn!r} of type {type(fn).__name__}")


def gen(seed: int) -> torch.Generator:
    """A seeded generator for a case's random draws: the global random state is left alone."""
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int, scale: float = 1.0, shift: float = 0.0, dtype=torch.float32) -> torch.Tensor:
    """A seeded normal tensor (shift + scale * N(0, 1)) that leaves the global random state alone."""
    return shift + scale * torch.randn(*shape, generator=gen(seed), dtype=dtype)


def randint(high: int, *shape: int, seed: int) -> torch.Tensor:
    """Seeded token ids in [0, high) that leave the global random state alone."""
    return torch.randint(high, shape, generator=gen(seed))


def lengths_mask(lengths: list[int], L: int, left: bool = False) -> torch.Tensor:
    """A 0/1 attention mask (B, L): row b has lengths[b] real tokens, padding after them (or before, if left)."""
    mask = (torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]).long()  # (B, L), right padding
    return mask.flip(1) if left else mask


def loaded(build: Callable[[], torch.nn.Module], state: dict) -> torch.nn.Module:
    """build() on the meta device (no random initialisation: the global random state is left alone), holding the
    tensors of `state`, in eval mode: a reference made of course_utils' modules."""
    with torch.device("meta"):
        module = build()
    module.load_state_dict(state, assign=True)
    return module.eval()


def copies(args: Sequence) -> list:
    """Fresh copies of a case's arguments, so an in-place edit by one function cannot reach the other."""
    return [a.clone() if isinstance(a, torch.Tensor) else copy.deepcopy(a) for a in args]


def call(fn: Callable, *args):
    """fn(*args), the student's answer; a Mistake if fn raised (NotImplementedError passes) or returned None."""
    try:
        got = fn(*args)
    except NotImplementedError:
        raise
    except Exception as err:
        raise Mistake(f"your function raised {type(err).__name__}: {err}") from err
    if got is None:
        raise Mistake("your function returned None (did you forget `return`?)")
    return got


def _kind(dtype: torch.dtype) -> str:
    return "a boolean" if dtype == torch.bool else "a floating-point" if dtype.is_floating_point else "an integer"


def _as_tensor(got, e: torch.Tensor, whole: bool, lists: bool) -> torch.Tensor:
    """The student's output as a tensor: a tensor, a number for a single number, a list if lists (or whole)."""
    want = "a whole number" if whole else "a tensor or a list" if lists else "a torch.Tensor"
    if isinstance(got, torch.Tensor):
        return got.detach()
    if (e.dim() == 0 and isinstance(got, numbers.Number)) or ((lists or whole) and isinstance(got, (list, tuple))):
        try:
            g = torch.as_tensor(got)
            return g.to(e.dtype) if g.numel() == 0 else g  # an empty list is as good as any empty tensor
        except (TypeError, ValueError, RuntimeError):
            pass
    raise Mistake(f"expected {want}, got {_what(got)}")


def _check_output(got, expected, lists: bool, atol: float | None) -> None:
    """Raise a Mistake naming what is wrong with one output: its type, NaN or inf, dtype, shape, values."""
    whole = isinstance(expected, numbers.Integral)  # a count: a whole float or a tensor of one element will do
    e = torch.as_tensor(expected)
    g = _as_tensor(got, e, whole, lists)
    if g.is_floating_point():  # NaN or inf where the reference has none: an overflow, a log of 0, a 0 / 0
        for what, bad, allowed in (("NaN", g.isnan(), e.isnan()), ("inf", g.isinf(), e.isinf())):
            if bad.any() and not allowed.any():
                count = f"holds {what} in {int(bad.sum())} of {g.numel()} entries" if g.numel() > 1 else f"is {what}"
                raise Mistake(f"your output {count}")
    if _kind(g.dtype) != _kind(e.dtype) and not (whole and g.is_floating_point()):
        want = "a whole number" if whole else f"{_kind(e.dtype)} tensor"
        raise Mistake(f"wrong dtype: expected {want} (like {e.dtype}), got dtype {g.dtype}")
    g = g.reshape(()) if e.dim() == 0 and g.numel() == 1 else g
    if g.shape != e.shape:
        single = "a single number (shape ())" if e.dim() == 0 else f"shape {tuple(e.shape)}"
        raise Mistake(f"expected {single}, got shape {tuple(g.shape)}")
    if whole and g.is_floating_point() and g != g.round():
        raise Mistake(f"expected a whole number, got {g.item():g}")
    wrong = None if atol is None else _wrong_values(g.to(e.dtype), e, atol)
    if wrong:
        raise Mistake(wrong)


def check_outputs(got, expected, *, lists: bool = False, atol: float | None = None) -> None:
    """Raise a Mistake unless the student's answer is like `expected`, an output (a tensor, list or whole number) or a
    tuple of them: the type (lists=True accepts lists of numbers for tensors), no NaN or inf, the dtype kind
    (boolean, integer, floating-point), the shape and, given atol, the values."""
    if not isinstance(expected, tuple):
        return _check_output(got, expected, lists, atol)
    if not isinstance(got, (tuple, list)) or len(got) != len(expected):
        raise Mistake(f"expected {len(expected)} outputs (a tuple), got {_what(got)}")
    for k, (g, e) in enumerate(zip(got, expected)):
        try:
            _check_output(g, e, lists, atol)
        except Mistake as mistake:
            raise Mistake(f"{('first', 'second', 'third', 'fourth')[k]} output: {mistake}") from None


def _wrong_values(g: torch.Tensor, e: torch.Tensor, atol: float) -> str | None:
    """None if g matches e within atol, else which entries differ and how."""
    bad = ~torch.isclose(g, e, rtol=0, atol=atol, equal_nan=True) if e.is_floating_point() else g != e
    if not bad.any():
        return None
    if e.dim() == 0:
        return f"wrong value: expected {_brief(e.item())}, got {_brief(g.item())}"
    i = tuple(bad.nonzero()[0].tolist())
    where = f" in {int(bad.sum())} of {bad.numel()} entries" if bad.numel() > 1 else ""
    return f"wrong values{where}, e.g. at index {i}: expected {_brief(e[i].item())}, got {_brief(g[i].item())}"


def _brief(x) -> str:
    """x in a few words: the values of a small list or integer tensor, else its shape (and dtype if not float32)."""
    if isinstance(x, torch.Tensor):
        if x.numel() <= 8 and not x.is_floating_point():
            return f"tensor({x.tolist()})"
        return f"tensor of shape {tuple(x.shape)}" + ("" if x.dtype == torch.float32 else f" {str(x.dtype)[6:]}")
    if isinstance(x, (list, tuple)) and len(x) > 8:
        return f"a {type(x).__name__} of {len(x)}"
    if isinstance(x, (list, tuple)):
        return ("[{}]" if isinstance(x, list) else "({})").format(", ".join(map(_brief, x)))
    if isinstance(x, float):
        return f"{x:.6g}"
    return f"{x!r:.40}" if isinstance(x, (numbers.Number, str)) else type(x).__name__


def _what(x) -> str:
    """A wrong answer as a message names it: its type and, in brief, its value."""
    brief = _brief(x)
    known = isinstance(x, torch.Tensor) or brief.startswith(("a ", type(x).__name__))
    return brief if known else f"{type(x).__name__} {brief}"


def _names(fn: Callable) -> list[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # no signature: the arguments go unnamed
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def run(name: str, cases: Sequence[Sequence], one_case: Callable, names: Sequence[str] = ()) -> bool:
    """one_case(*args) on every case: False if not attempted, True if all pass, else an AssertionError naming the
    case and its arguments in brief (only the named ones, if names are given)."""
    for i, args in enumerate(cases):
        try:
            one_case(*args)
        except NotImplementedError:
            print(f"{name}: not attempted yet (replace `raise NotImplementedError` with your code).")
            return False
        except Mistake as mistake:
            shown = [f"{n}={_brief(a)}" for n, a in zip(names, args)] if names else map(_brief, args)
            message = f"{name}, case {i} ({', '.join(shown)}): {mistake}"
            raise AssertionError(message) from mistake.__cause__
    print(f"{name}: correct on all {len(cases)} cases.")
    return True


def _uses(fn: Callable) -> set[str]:
    """The names fn's code reads as attributes (`F.softmax`, `x.softmax()`) and the names of the torch and
    course_utils functions it reads as globals (`softmax` imported under any name), lambdas included."""
    found, codes = set(), [fn.__code__]
    while codes:
        code = codes.pop()
        codes += [const for const in code.co_consts if isinstance(const, types.CodeType)]
        for step in dis.get_instructions(code):
            obj = fn.__globals__.get(step.argval) if step.opname in ("LOAD_GLOBAL", "LOAD_NAME") else None
            if step.opname in ("LOAD_ATTR", "LOAD_METHOD"):
                found.add(step.argval)
            elif (getattr(obj, "__module__", None) or "").startswith(("torch", "course_utils")):
                found.add(getattr(obj, "__name__", step.argval))
    return found


def compare(name: str, student_fn: Callable, reference_fn: Callable, cases: Sequence[Sequence], *,
            atol: float = 1e-5, lists: bool = False, reference_only: int = 0, forbidden: Sequence[str] = ()) -> bool:
    """Call both functions on copies of every case (a tuple of arguments); True if all outputs match within atol
    (see check_outputs). The last reference_only arguments of a case go to the reference only (e.g. a seed).
    forbidden: what the exercise says not to use, by the last part of its name ("layer_norm": F.layer_norm...)."""
    check_callable(student_fn)
    used = sorted(set(forbidden) & _uses(student_fn)) if hasattr(student_fn, "__code__") else []
    if used:
        raise AssertionError(f"{name}: your function uses {', '.join(f'`{u}`' for u in used)}, which this exercise "
                             "asks you to write yourself")

    def one_case(*args):
        with torch.no_grad():  # neither function needs gradients
            got = call(student_fn, *copies(args[:len(args) - reference_only]))
            expected = reference_fn(*copies(args))
        check_outputs(got, expected, lists=lists, atol=atol)

    names = _names(reference_fn)
    return run(name, cases, one_case, names[:len(names) - reference_only])
