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


def test_select_rows_cuts_the_columns_that_are_padding_in_every_selected_row():
    """What fine_tune, pooled_features and minilm_nsp feed the model: the same rows, the all-padding columns gone."""
    from course_utils._validate import pad_batch, select_rows

    rows = [[5, 6, 7, 8], [5, 6], [5]]
    batch = {"input_ids": pad_batch(rows, 0), "attention_mask": pad_batch([[1] * len(r) for r in rows], 0),
             "labels": torch.tensor([1, 0, 1])}
    b = select_rows(batch, torch.tensor([2, 1]))
    assert b["input_ids"].tolist() == [[5, 0], [5, 6]] and b["attention_mask"].tolist() == [[1, 0], [1, 1]]
    assert b["labels"].tolist() == [1, 0]
    assert select_rows(batch, slice(0, 2))["input_ids"].tolist() == [[5, 6, 7, 8], [5, 6, 0, 0]]
