"""Pre-train the course's tiny models on the training plays, on CPU, and ship them as safetensors.

    python -m course_utils.pretrain bert     # MLM + NSP, writes course_utils/assets/tiny_bert.safetensors + .md
    python -m course_utils.pretrain gpt      # next-token prediction, tiny_gpt.safetensors + .md
    python -m course_utils.pretrain bart     # denoising (text infilling), tiny_bart.safetensors + .md

Each recipe is the training run of one shipped checkpoint; the card records it with the held-out figures of
`course_utils.evaluation`, in the checkpoint's metadata and in the model card (.md) beside it (`checkpoints`).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from ._validate import check_int, check_positive, check_probability, check_seed, minibatches, set_seed
from .checkpoints import (  # noqa: F401  re-exported for one release: moved to course_utils.checkpoints
    TINY_BART_CONFIG, TINY_BART_PATH, TINY_BERT_CONFIG, TINY_BERT_PATH, TINY_GPT_CONFIG, TINY_GPT_PATH, load_tiny_bart,
    load_tiny_bert, load_tiny_gpt, save_checkpoint,
)
from .data import load_wordpiece
from .datasets import (  # noqa: F401  re-exported for one release: moved to course_utils.datasets
    BART_MAX_TOKENS, BART_NOISE, bart_documents, bert_documents, collate, gpt_batches, gpt_stream, noisy_batch,
    nsp_dataset,
)
from .evaluation import (  # noqa: F401  re-exported for one release: moved to course_utils.evaluation
    BART_BEAMS, bart_metrics, evaluate_bart, evaluate_bert, evaluate_gpt,
)
from .metrics import (  # noqa: F401  re-exported for one release: moved to course_utils.metrics
    bigram_perplexity, common_subsequence, edit_distance, perplexity,
)
from .models import Decoder, Encoder, EncoderDecoder, EncoderForPreTraining
from .noising import check_poisson_lambda, denoising_loss  # denoising_loss: moved to course_utils.noising
from .objectives import lm_loss, mlm_nsp_loss  # re-exported for one release: moved to course_utils.objectives
from .training import train

BERT_RECIPE = dict(steps=6000, batch_size=64, max_seq_length=64, lr=1e-3, dupe_factor=10, seed=12345)
GPT_RECIPE = dict(steps=2500, batch_size=16, block_size=128, lr=1e-3, dropout=0.1, seed=12345)
BART_RECIPE = dict(steps=18000, batch_size=16, max_tokens=BART_MAX_TOKENS, lr=1e-3, dropout=0.0, **BART_NOISE,
                   seed=12345)
_COUNTS = ("steps", "batch_size", "max_seq_length", "dupe_factor", "block_size", "max_tokens")


def _recipe(defaults: dict, overrides: dict) -> dict:
    """The recipe with the caller's overrides, every value checked before any work (building a dataset)."""
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise TypeError(f"unknown recipe keys {unknown}: expected some of {sorted(defaults)}")
    recipe = {**defaults, **overrides}
    for name in _COUNTS:
        if name in recipe:
            check_int(name, recipe[name], 1)
    check_positive("lr", recipe["lr"])
    check_seed("seed", recipe["seed"])
    for name in ("dropout", "mask_ratio"):
        if name in recipe:
            check_probability(name, recipe[name])
    if "poisson_lambda" in recipe:
        check_poisson_lambda(recipe["poisson_lambda"])
    return recipe


def pretrain_bert(out: Path = TINY_BERT_PATH, **recipe) -> dict:
    """Pre-train the tiny BERT (MLM + NSP) on the training plays; write the checkpoint and its model card."""
    recipe = _recipe(BERT_RECIPE, recipe)
    generator = set_seed(recipe["seed"])
    tokenizer = load_wordpiece()
    instances = nsp_dataset(bert_documents("train", tokenizer), max_seq_length=recipe["max_seq_length"],
                            dupe_factor=recipe["dupe_factor"], seed=recipe["seed"], tokenizer=tokenizer)
    order = minibatches(len(instances), recipe["batch_size"], torch.Generator().manual_seed(recipe["seed"]),
                        drop_last=True)
    batches = (collate([instances[i] for i in idx.tolist()]) for idx in order)
    model = EncoderForPreTraining(Encoder.from_config(TINY_BERT_CONFIG))
    return _train_and_save(model, batches, lambda m, b: mlm_nsp_loss(m, b, generator), recipe, TINY_BERT_CONFIG,
                           lambda m: {s: evaluate_bert(m, s) for s in ("validation", "test")},
                           out, "tiny BERT (MLM + NSP)", "bert", n_instances=len(instances))


def pretrain_gpt(out: Path = TINY_GPT_PATH, **recipe) -> dict:
    """Pre-train the tiny GPT on next-token prediction over the training plays; write checkpoint and card."""
    recipe = _recipe(GPT_RECIPE, recipe)
    generator = set_seed(recipe["seed"])
    config = replace(TINY_GPT_CONFIG, dropout=recipe["dropout"])
    model = Decoder.from_config(config)
    batches = gpt_batches(gpt_stream("train"), recipe["batch_size"], recipe["block_size"], generator)
    return _train_and_save(model, batches, lm_loss, recipe, config,
                           lambda m: {s: evaluate_gpt(m, s) for s in ("validation", "test")},
                           out, "tiny GPT (next-token prediction)", "gpt")


def pretrain_bart(out: Path = TINY_BART_PATH, **recipe) -> dict:
    """Pre-train the tiny BART on text infilling over the training plays; write checkpoint and card."""
    recipe = _recipe(BART_RECIPE, recipe)
    generator = set_seed(recipe["seed"])
    config = replace(TINY_BART_CONFIG, dropout=recipe["dropout"])
    model = EncoderDecoder.from_config(config)
    chunks = bart_documents("train", recipe["max_tokens"])
    order = torch.randint(len(chunks), (recipe["steps"], recipe["batch_size"]), generator=generator)
    batches = (noisy_batch([chunks[i] for i in row.tolist()], recipe, generator) for row in order)
    return _train_and_save(model, batches, denoising_loss, recipe, config, bart_metrics,
                           out, "tiny BART (text infilling)", "bart")


def _train_and_save(model: nn.Module, batches: Iterator, loss_fn: Callable, recipe: dict, config,
                    evaluate: Callable[[nn.Module], dict], out: Path, title: str, command: str, **extra) -> dict:
    """Train for the recipe's steps, measure on the held-out plays, write the checkpoint and its card."""
    start = time.perf_counter()
    history = train(model, batches, loss_fn, steps=recipe["steps"], lr=recipe["lr"], progress=True)
    minutes = (time.perf_counter() - start) / 60
    card = _card(config, recipe, minutes, history, evaluate(model), **extra)
    save_checkpoint(model, out, config, card, title, command, history)
    return card


def _card(config, recipe: dict, minutes: float, history: list[float], metrics: dict, **extra) -> dict:
    """What the model card and the checkpoint's metadata record: config, recipe, training time (evaluation excluded)."""
    return {"config": asdict(config), "recipe": recipe, **extra, "wall_minutes": round(minutes, 1),
            "threads": torch.get_num_threads(), "final_loss": round(sum(history[-100:]) / len(history[-100:]), 4),
            "metrics": metrics}


PRETRAINERS = {"bert": (pretrain_bert, TINY_BERT_PATH), "gpt": (pretrain_gpt, TINY_GPT_PATH),
               "bart": (pretrain_bart, TINY_BART_PATH)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=sorted(PRETRAINERS), help="which tiny model to pre-train")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's number of steps")
    parser.add_argument("--out", type=Path, default=None, help="where to write the checkpoint (default: the shipped one)")
    args = parser.parse_args(argv)
    pretrain, default_out = PRETRAINERS[args.model]
    recipe = {} if args.steps is None else {"steps": args.steps}
    card = pretrain(args.out or default_out, **recipe)
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
