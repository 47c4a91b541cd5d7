"""Fine-tuning, figure 8 of the lecture: keep the pre-trained encoder, drop the pre-training heads, add a classifier.

The task is a tiny CoLA (the lecture's GLUE table): is a passage of a play as written, or are its words shuffled?
Both classes hold the same words (datasets.word_order_passages), so only word order tells them apart. The model
learns from passages of the training plays and is measured on passages of the test plays. The learning curve
compares, for a few label budgets, the tiny BERT pre-trained by `course_utils.pretrain` and the same architecture
from a random initialisation, both fine-tuned end to end, and the real MiniLM, fine-tuned end to end and frozen
(a linear probe: only the classifier is trained):

    python -m course_utils.finetune            # writes course_utils/assets/finetune_results.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from ._validate import (
    check_bool, check_choice, check_instance, check_int, check_path, check_positive, check_seed, minibatches, seeded,
    select_rows,
)
from .checkpoints import TINY_BERT_CONFIG, TINY_BERT_PATH, load_tiny_bert, sha256
from .data import ASSETS, SPLIT_NAMES as SPLITS  # noqa: F401  SPLITS: now course_utils.data.SPLIT_NAMES
from .datasets import (  # noqa: F401  re-exported for one release: moved to course_utils.datasets
    CLS_ID, MAX_TOKENS, MIN_TOKENS, ORDER_LABELS, PAD_ID, SEP_ID, Passage, check_passages, encode, genre_passages,
    play_passages, word_order_passages,
)
from .metrics import confusion_matrix  # re-exported for one release: moved to course_utils.metrics
from .models import Encoder, EncoderForClassification
from .training import train

RESULTS_PATH = ASSETS / "finetune_results.json"
N_LABELS = len(ORDER_LABELS)
MODELS = ("pretrained", "scratch", "minilm", "minilm-frozen")
BUDGETS = (32, 128, 512)
SEEDS = (0, 1, 2, 3, 4)
N_EVAL = 1200  # test passages, 600 as written and 600 shuffled
# BERT's recipe (AdamW, 10% warm-up then linear decay, batch 16) with steps = max(min_steps, epochs x budget / 16).
# Learning rates picked on the validation plays, never the test plays (best mean accuracy at 32 and 128 labels,
# 3 seeds): pretrained and scratch from {3e-4, 1e-3, 3e-3}; MiniLM fine-tuned from {2e-5, 5e-5, 1e-4} at 128
# labels, 2 seeds (0.696, 0.855, 0.893: the best is the grid's edge). The MiniLM probe's was picked from
# {1e-3, 3e-3, 1e-2} for the genre task this chapter had before, and not re-tuned. Re-check the pretrained
# learning rate when the checkpoint changes.
RECIPES = {
    "pretrained": dict(lr=1e-3, batch_size=16, epochs=5, min_steps=50, freeze_encoder=False),
    "scratch": dict(lr=3e-3, batch_size=16, epochs=5, min_steps=50, freeze_encoder=False),
    "minilm": dict(lr=1e-4, batch_size=16, epochs=5, min_steps=50, freeze_encoder=False),
    "minilm-frozen": dict(lr=3e-3, batch_size=16, epochs=100, min_steps=300, freeze_encoder=True),
}


# ------------------------------------------------------------------ the models of the learning curve


def tiny_bert_classifier(pretrained: bool = True, *, seed: int = 0) -> EncoderForClassification:
    """Figure 8: the shipped tiny BERT without its MLM and NSP heads, plus a new classifier on the pooled [CLS].

    The encoder and the pooler are the pre-trained ones (as transformers' BertForSequenceClassification does);
    only the classifier is new. pretrained=False builds the same architecture with BERT's random initialisation.
    """
    check_bool("pretrained", pretrained)
    check_seed("seed", seed)
    with seeded(seed):  # the caller's random state is left alone
        if not pretrained:
            return EncoderForClassification(Encoder.from_config(TINY_BERT_CONFIG), N_LABELS).eval()
        bert = load_tiny_bert()
        model = EncoderForClassification(bert.encoder, N_LABELS)
    model.pooler.load_state_dict(bert.pooler.state_dict())
    return model.eval()


def minilm_classifier(*, seed: int = 0) -> tuple[object, EncoderForClassification]:
    """The real MiniLM (all-MiniLM-L6-v2's BERT) in our EncoderForClassification: returns (tokenizer, model)."""
    from .hf import encoder_from_bert
    from .pretrained import load_minilm

    check_seed("seed", seed)
    tokenizer, bert = load_minilm()
    with seeded(seed):
        model = EncoderForClassification(encoder_from_bert(bert), N_LABELS)
    if bert.pooler is not None:
        model.pooler.dense.load_state_dict(bert.pooler.dense.state_dict())
    return tokenizer, model.eval()


# ------------------------------------------------------------------ fine-tuning and evaluation


def fine_tune(model: EncoderForClassification, passages: Sequence[Passage], *, steps: int, lr: float,
              batch_size: int = 16, seed: int = 0, tokenizer=None, max_len: int = 64,
              freeze_encoder: bool = False) -> EncoderForClassification:
    """Fine-tune the model on the passages' labels (ORDER_LABELS) with cross-entropy (course_utils.training.train), in place.

    Every parameter is trained; freeze_encoder=True trains the classifier only, on the pooled [CLS] vectors
    computed once (a linear probe). Batches and dropout are seeded and the caller's random state is left alone,
    so the same call gives the same model. Returns the model, in eval mode.
    """
    check_instance("model", model, EncoderForClassification, "course_utils EncoderForClassification")
    check_passages(passages)
    check_int("steps", steps, 1)
    check_positive("lr", lr)
    check_int("batch_size", batch_size, 1)
    check_seed("seed", seed)
    check_bool("freeze_encoder", freeze_encoder)
    if model.classifier.out_features != N_LABELS:
        raise ValueError(f"model must classify the {N_LABELS} labels of the passages {ORDER_LABELS}, got a classifier "
                         f"of n_labels={model.classifier.out_features}")
    if freeze_encoder:
        features = pooled_features(model, passages, tokenizer=tokenizer, max_len=max_len)  # (N, d_model)
        labels = torch.tensor([p.label for p in passages])  # (N,)
        return _fit_classifier(model, features, labels, steps=steps, lr=lr, batch_size=batch_size, seed=seed)
    data = _encode_for(model, passages, tokenizer, max_len)
    indices = minibatches(len(passages), batch_size, torch.Generator().manual_seed(seed))

    def loss_fn(m: EncoderForClassification, idx: torch.Tensor) -> torch.Tensor:
        b = select_rows(data, idx)  # (B, L)
        logits = m(b["input_ids"], None, b["attention_mask"])  # (B, n_labels)
        return F.cross_entropy(logits, b["labels"])

    with seeded(seed):  # dropout draws from the global generator: seed it, then restore it
        train(model, indices, loss_fn, steps=steps, lr=lr, progress=False)
    return model


def _fit_classifier(model: EncoderForClassification, features: torch.Tensor, labels: torch.Tensor, *, steps: int,
                    lr: float, batch_size: int, seed: int) -> EncoderForClassification:
    """Train model.classifier alone on fixed pooled features (N, d_model): the linear probe."""
    head = torch.nn.Sequential(model.dropout, model.classifier)  # the part of the model above the pooler
    indices = minibatches(len(labels), batch_size, torch.Generator().manual_seed(seed))
    with seeded(seed):
        train(head, indices, lambda h, idx: F.cross_entropy(h(features[idx]), labels[idx]), steps=steps, lr=lr)
    model.eval()
    return model


def _encode_for(model: EncoderForClassification, passages, tokenizer, max_len: int) -> dict:
    """encode(), refusing passages whose ids the model's vocabulary does not hold."""
    data = encode(passages, tokenizer, max_len)
    if tokenizer is None and data["input_ids"].max() >= model.encoder.config.vocab_size:
        raise ValueError(f"passages hold WordPiece ids up to {int(data['input_ids'].max())}, beyond the model's "
                         f"vocabulary (model vocab_size={model.encoder.config.vocab_size})")
    return data


@torch.no_grad()
def pooled_features(model: EncoderForClassification, passages: Sequence[Passage], *, tokenizer=None,
                    max_len: int = 64, batch_size: int = 64) -> torch.Tensor:
    """The classifier's input for each passage (N, d_model): tanh(W h_[CLS] + b), the pooled [CLS] vector."""
    check_instance("model", model, EncoderForClassification, "course_utils EncoderForClassification")
    check_int("batch_size", batch_size, 1)
    data = _encode_for(model, passages, tokenizer, max_len)
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(passages), batch_size):
        b = select_rows(data, slice(start, start + batch_size))  # (B, L)
        h = model.encoder(b["input_ids"], None, b["attention_mask"]).last_hidden_state  # (B, L, d_model)
        out.append(model.pooler(h))  # (B, d_model)
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def predict(model: EncoderForClassification, passages: Sequence[Passage], *, tokenizer=None, max_len: int = 64,
            batch_size: int = 64) -> torch.Tensor:
    """The predicted label of each passage (N,), eq. (6): y = arg max_y P(y | x), in eval mode (no dropout)."""
    pooled = pooled_features(model, passages, tokenizer=tokenizer, max_len=max_len, batch_size=batch_size)
    return model.classifier(pooled).argmax(-1)  # (N, n_labels) -> (N,)


def accuracy(model: EncoderForClassification, passages: Sequence[Passage], *, tokenizer=None,
             max_len: int = 64) -> float:
    """The fraction of passages whose label the model predicts (eq. 6)."""
    predictions = predict(model, passages, tokenizer=tokenizer, max_len=max_len)
    return (predictions == torch.tensor([p.label for p in passages])).float().mean().item()


# ------------------------------------------------------------------ the learning curve


def recipe(model: str, budget: int) -> dict:
    """The keyword arguments of fine_tune (steps, lr, batch_size, freeze_encoder) for a model and a label budget."""
    check_choice("model", model, MODELS)
    check_int("budget", budget, 1)
    r = RECIPES[model]
    steps = max(r["min_steps"], math.ceil(r["epochs"] * budget / r["batch_size"]))
    return {"steps": steps, "lr": r["lr"], "batch_size": r["batch_size"], "freeze_encoder": r["freeze_encoder"]}


def run(model: str, budget: int, seed: int = 0, *, eval_passages: Sequence[Passage] | None = None,
        cache: dict | None = None) -> dict:
    """One point of the learning curve: fine-tune on `budget` training passages (seeded), predict the test passages.

    `cache` (a dict, shared between runs) keeps the frozen MiniLM's features of the passages already seen.
    """
    start, args = time.perf_counter(), recipe(model, budget)  # recipe checks model and budget
    check_seed("seed", seed)
    if eval_passages is not None:
        check_passages(eval_passages, "eval_passages")
    check_instance("cache", cache, (dict, type(None)), "dict or None")
    eval_passages = eval_passages if eval_passages is not None else word_order_passages("test", N_EVAL, seed=0)
    train_passages = word_order_passages("train", budget, seed=seed)
    labels = torch.tensor([p.label for p in eval_passages])  # (N_eval,)
    if model.startswith("minilm"):
        tokenizer, classifier = minilm_classifier(seed=seed)
    else:
        tokenizer, classifier = None, tiny_bert_classifier(pretrained=model == "pretrained", seed=seed)
    if model == "minilm-frozen":  # a linear probe: the encoder is frozen, so its features are computed once
        cache = {} if cache is None else cache
        missing = [p for p in {**dict.fromkeys(train_passages), **dict.fromkeys(eval_passages)} if p not in cache]
        if missing:
            cache.update(zip(missing, pooled_features(classifier, missing, tokenizer=tokenizer)))
        features = torch.stack([cache[p] for p in train_passages])  # (budget, d_model)
        train_labels = torch.tensor([p.label for p in train_passages])
        _fit_classifier(classifier, features, train_labels, seed=seed,
                        **{k: v for k, v in args.items() if k != "freeze_encoder"})
        with torch.no_grad():
            predictions = classifier.classifier(torch.stack([cache[p] for p in eval_passages])).argmax(-1)
    else:
        fine_tune(classifier, train_passages, seed=seed, tokenizer=tokenizer, **args)
        predictions = predict(classifier, eval_passages, tokenizer=tokenizer)  # (N_eval,)
    return {
        "model": model, "budget": budget, "seed": seed, "steps": args["steps"],
        "accuracy": round((predictions == labels).float().mean().item(), 4),
        "confusion": confusion_matrix(labels, predictions, N_LABELS).tolist(),
        "seconds": round(time.perf_counter() - start, 1),
    }


def summarise(runs: Sequence[dict]) -> dict:
    """Mean, standard deviation (over seeds), min and max accuracy per model and budget: {model: {budget: {...}}}."""
    _check_list("runs", runs)
    out: dict = {}
    for k, r in enumerate(runs):
        if not isinstance(r, dict) or not {"model", "budget", "accuracy"} <= set(r):
            raise ValueError(f"runs[{k}] must be a run's dict (model, budget, accuracy, ...), got {r!r:.80}")
        out.setdefault(r["model"], {}).setdefault(str(r["budget"]), []).append(r["accuracy"])
    return {
        m: {b: {"mean": round(statistics.fmean(a), 4), "std": round(statistics.pstdev(a), 4),
                "min": min(a), "max": max(a), "n": len(a)} for b, a in per.items()}
        for m, per in out.items()
    }


def _check_list(name: str, value) -> None:
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (Sequence, range)):
        raise TypeError(f"{name} must be a list, got {value!r:.60} of type {type(value).__name__}")


def learning_curve(models: Sequence[str] = MODELS, budgets: Sequence[int] = BUDGETS, seeds: Sequence[int] = SEEDS,
                   *, n_eval: int = N_EVAL, verbose: bool = False) -> dict:
    """Every model x budget x seed, evaluated on the same balanced test passages; the results as a dict."""
    for name, value in (("models", models), ("budgets", budgets), ("seeds", seeds)):
        _check_list(name, value)
    for m in models:
        check_choice("models", m, MODELS)
    for b in budgets:
        check_int("budgets", b, 1)
    for s in seeds:
        check_seed("seeds", s)
    check_int("n_eval", n_eval, 1)
    check_bool("verbose", verbose)
    start, checkpoint = time.perf_counter(), sha256(TINY_BERT_PATH)
    eval_passages = word_order_passages("test", n_eval, seed=0)
    runs, cache = [], {}
    for m in models:
        for budget in budgets:
            for seed in seeds:
                runs.append(run(m, budget, seed, eval_passages=eval_passages, cache=cache))
                if verbose:
                    print(json.dumps({k: v for k, v in runs[-1].items() if k != "confusion"}), flush=True)
    if sha256(TINY_BERT_PATH) != checkpoint:
        raise RuntimeError(f"{TINY_BERT_PATH} changed during the run: run `python -m course_utils.finetune` again")
    return {
        "config": {
            "task": "is a passage of a held-out play as written or shuffled", "labels": list(ORDER_LABELS),
            "models": list(models), "budgets": list(budgets), "seeds": list(seeds),
            "eval": {"split": "test", "n": len(eval_passages), "seed": 0},
            "max_tokens": MAX_TOKENS, "min_tokens": MIN_TOKENS,
            "recipes": {m: RECIPES[m] for m in models},
            "tiny_bert_sha256": checkpoint,
        },
        "runs": runs,
        "summary": summarise(runs),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
    }


def load_results(path: Path | str = RESULTS_PATH) -> dict:
    """The stored learning curve written by `python -m course_utils.finetune`."""
    path = check_path("path", path, ": rebuild it with `python -m course_utils.finetune`")
    try:
        return json.loads(path.read_text())
    except ValueError as err:  # not JSON, or not text at all
        raise ValueError(f"{path} is not a learning curve written by `python -m course_utils.finetune`: {err}") from None


def main(argv: list[str] | None = None) -> None:
    """Run the learning curve and write it to RESULTS_PATH (or --out)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--budgets", nargs="+", type=int, default=list(BUDGETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--out", type=Path, default=RESULTS_PATH, help="where to write the results")
    args = parser.parse_args(argv)
    results = learning_curve(args.models, args.budgets, args.seeds, verbose=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results["summary"], indent=1))
    print(f"wrote {args.out} in {results['wall_seconds']} s on {results['threads']} threads")


if __name__ == "__main__":
    main()
