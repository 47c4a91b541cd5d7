"""The training loop shared by every chapter: AdamW, linear warm-up and decay, gradient clipping, loss history."""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from ._validate import check_bool, check_float, check_instance, check_int, check_positive


def warmup_linear(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: 0 -> 1 over `warmup` steps, then 1 -> 0 at `total` (BERT's schedule)."""
    check_int("total", total, 1)
    check_int("warmup", warmup, 1, total)
    check_int("step", step, 0)
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def train(
    model: nn.Module,
    batches: Iterator,
    loss_fn: Callable[[nn.Module, object], torch.Tensor],
    *,
    steps: int,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    warmup: int | None = None,
    clip: float = 1.0,
    progress: bool = False,
) -> list[float]:
    """Run `steps` optimisation steps of loss_fn(model, batch) over `batches`; return the loss of each step.

    `batches` is any iterator (it is cycled through as needed); weight decay skips biases and norms, as BERT.
    A loss that is not finite stops the training at once with an error naming the step.
    """
    check_instance("model", model, nn.Module, "torch.nn.Module")
    if not hasattr(batches, "__next__"):
        raise TypeError(f"batches must be an iterator (e.g. a generator of batches), got {type(batches).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (model, batch) -> loss, got {type(loss_fn).__name__}")
    check_int("steps", steps, 1)
    check_positive("lr", lr)
    check_float("weight_decay", weight_decay, 0.0)
    check_positive("clip", clip)
    check_bool("progress", progress)
    warmup = steps // 10 if warmup is None else warmup
    check_int("warmup", warmup, 0, steps)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"model must have trainable parameters, {type(model).__name__} has none")
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_linear(s, max(1, warmup), steps))
    model.train()
    history = []
    bar = tqdm(range(steps), disable=not progress, desc="training")
    for _ in bar:
        batch = next(batches, None)
        if batch is None:
            raise ValueError(f"batches ran out after {len(history)} of steps={steps} batches: pass an endless iterator "
                             "(a generator with `while True`, or itertools.cycle)")
        loss = loss_fn(model, batch)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.requires_grad:
            raise TypeError(f"loss_fn must return a scalar tensor computed from the model's parameters, got "
                            f"{type(loss).__name__} {tuple(getattr(loss, 'shape', ()))}")
        if not torch.isfinite(loss):
            raise ValueError(f"the loss is {loss.item()} at step {len(history)}: lower lr or check the data")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        schedule.step()
        history.append(loss.item())
        bar.set_postfix(loss=f"{history[-1]:.3f}", refresh=False)
    model.eval()
    return history
