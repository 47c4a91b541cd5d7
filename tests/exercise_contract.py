"""The contract every chapter's exercise checks keep; a chapter's test module binds these tests to its tables.

CHECKS lists (check, a right solution), WRONG lists (check, a typical wrong solution). A right solution passes and
says so, a stub that still raises NotImplementedError is "not attempted", a wrong one raises an AssertionError naming
the failing case, a non-function is a TypeError, and no check touches the global random state. The five typical
slips of a student (no `return`, a wrong shape, a wrong dtype, NaN, an exception inside the function) each get an
AssertionError that names the slip and the case; a check whose answer is a structure (optimizer groups: dicts of
parameters), not numbers, has no shape, dtype or NaN to slip on and is listed in `structured`.
"""

import numbers
import random

import pytest
import torch


def stub(*args):
    raise NotImplementedError


def _numbers(x) -> bool:
    return isinstance(x, list) and all(isinstance(v, numbers.Number) for v in x)


def _each_output(out, slip):
    """slip applied to each output: a tuple (or list) of outputs, or one tensor, list of numbers or number."""
    if isinstance(out, (tuple, list)) and not _numbers(out):
        return tuple(_each_output(o, slip) for o in out)
    return slip(out)


def _wrong_shape(x):  # a tensor or list stacked twice, a number given twice
    return torch.stack([x, x]) if isinstance(x, torch.Tensor) else [x, x]


def _wrong_dtype(x):  # floats as integers, ids, masks and counts as floats (a count as a bool)
    if isinstance(x, torch.Tensor):
        return x.long() if x.is_floating_point() else x.double()
    return [float(v) for v in x] if isinstance(x, list) else torch.tensor(x).bool()


def _nan(x):
    if isinstance(x, torch.Tensor):
        return torch.full(x.shape, float("nan"))
    return [float("nan")] * len(x) if isinstance(x, list) else float("nan")


def _raises(*args):
    raise IndexError("index 7 is out of bounds for dimension 0 with size 7")


SLIPS = {  # the slip -> (the student's function, given the right solution; what the message must say)
    "no return": (lambda solution: lambda *a: None, "returned None"),
    "wrong shape": (lambda solution: lambda *a: _each_output(solution(*a), _wrong_shape), "shape"),
    "wrong dtype": (lambda solution: lambda *a: _each_output(solution(*a), _wrong_dtype), "dtype"),
    "NaN": (lambda solution: lambda *a: _each_output(solution(*a), _nan), "NaN"),
    "exception": (lambda solution: _raises, "raised IndexError: index 7 is out of bounds"),
}


NUMERIC_SLIPS = ("wrong shape", "wrong dtype", "NaN")


def contract_tests(checks: list, wrongs: list, structured: tuple = ()) -> dict:
    """The contract tests, parametrised over this chapter's CHECKS and WRONG: `globals().update(...)` them."""
    slips = [(check, solution, slip) for check, solution in checks for slip in SLIPS
             if not (check in structured and slip in NUMERIC_SLIPS)]

    @pytest.mark.parametrize("check, solution", checks)
    def test_a_right_solution_passes(check, solution, capsys):
        assert check(solution) is True
        assert "correct on all" in capsys.readouterr().out

    @pytest.mark.parametrize("check", [c for c, _ in checks])
    def test_a_stub_is_not_attempted(check, capsys):
        assert check(stub) is False
        assert "not attempted yet" in capsys.readouterr().out

    @pytest.mark.parametrize("check, wrong", wrongs)
    def test_a_wrong_solution_raises(check, wrong):
        with pytest.raises(AssertionError, match="case"):
            check(wrong)

    @pytest.mark.parametrize("check, solution, slip", slips)
    def test_a_typical_slip_is_named_with_its_case(check, solution, slip):
        make, says = SLIPS[slip]
        with pytest.raises(AssertionError) as error:
            check(make(solution))
        message = str(error.value)
        assert says in message and "case 0 (" in message, message
        assert "\n" not in message and len(message) < 400, message
        if slip == "exception":
            assert isinstance(error.value.__cause__, IndexError)  # the student's traceback stays reachable

    @pytest.mark.parametrize("check", [c for c, _ in checks])
    @pytest.mark.parametrize("bad", [None, 42, "my_function"])
    def test_bad_arguments_raise(check, bad):
        with pytest.raises(TypeError, match="student_fn must be a function"):
            check(bad)

    def test_checks_leave_the_global_random_state_alone():
        torch.manual_seed(123)
        random.seed(123)
        expected = torch.rand(3), random.random()
        torch.manual_seed(123)
        random.seed(123)
        for check, solution in checks:
            check(solution)
        assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]

    return {test.__name__: test for test in (
        test_a_right_solution_passes, test_a_stub_is_not_attempted, test_a_wrong_solution_raises,
        test_a_typical_slip_is_named_with_its_case, test_bad_arguments_raise,
        test_checks_leave_the_global_random_state_alone)}
