"""The shared training loop."""

import pytest
import torch

from course_utils.training import train, warmup_linear


def test_warmup_linear_schedule():
    factors = [warmup_linear(s, warmup=4, total=12) for s in range(12)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == 1.0 and factors[8] == 0.5 and factors[11] == 0.125


def test_train_fits_a_linear_map_and_returns_the_history():
    torch.manual_seed(0)
    w = torch.randn(3, 1)
    x = torch.randn(256, 3)
    model = torch.nn.Linear(3, 1)
    batches = iter(lambda: (x, x @ w), None)  # the same batch forever
    history = train(model, batches, lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), steps=300, lr=0.05, weight_decay=0)
    assert len(history) == 300 and history[-1] < 1e-3 * history[0]
    assert torch.allclose(model.weight.T, w, atol=0.05)
    assert not model.training  # handed back in eval mode


@pytest.mark.parametrize("kwargs, error", [({"steps": 0}, ValueError), ({"lr": -1.0}, ValueError),
                                           ({"steps": 2.5}, TypeError)])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        train(torch.nn.Linear(1, 1), iter([]), lambda m, b: 0, **{"steps": 1, **kwargs})
