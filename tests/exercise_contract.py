"""The contract every chapter's exercise checks keep; a chapter's test module binds these tests to its tables.

CHECKS lists (check, a right solution), WRONG lists (check, a typical wrong solution). A right solution passes and
says so, a stub that still raises NotImplementedError is "not attempted", a wrong one raises an AssertionError naming
the failing case, a non-function is a TypeError, and no check touches the global random state.
"""

import random

import pytest
import torch


def stub(*args):
    raise NotImplementedError


def contract_tests(checks: list, wrongs: list) -> tuple:
    """The five contract tests, parametrised over this chapter's CHECKS and WRONG."""

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

    return (test_a_right_solution_passes, test_a_stub_is_not_attempted, test_a_wrong_solution_raises,
            test_bad_arguments_raise, test_checks_leave_the_global_random_state_alone)
