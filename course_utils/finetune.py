"""Fine-tuning, figure 8 of the lecture: keep the pre-trained encoder, drop the pre-training heads, add a classifier.

The task is the genre of a passage (data.GENRES: 6 labels) from a play the model never saw: it learns from
passages of the training plays and is measured on passages of the test plays. The learning curve compares, for a
few label budgets, the tiny BERT pre-trained by `course_utils.pretrain` and the same architecture from a random
initialisation, both fine-tuned end to end, and the real MiniLM as a linear probe (frozen encoder, trained head):

    python -m course_utils.finetune            # writes course_utils/assets/finetune_results.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import random
import statistics
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from ._validate import check_choice, check_positive_float, check_positive_int
from .data import ASSETS, GENRES, SPECIAL_TOKENS, Play, load_plays, load_wordpiece
from .models import Encoder, EncoderForClassification
from .pretrain import TINY_BERT_CONFIG, TINY_BERT_PATH, load_tiny_bert
from .training import train

RESULTS_PATH = ASSETS / "finetune_results.json"
N_LABELS = len(GENRES)
MAX_TOKENS = 62  # a passage and [CLS], [SEP] fill the tiny BERT's 64 positions
MIN_TOKENS = 16  # shorter passages (a lone "Ay, my lord.") are dropped: too little to judge a genre from
PAD_ID, CLS_ID, SEP_ID = (SPECIAL_TOKENS.index(t) for t in ("[PAD]", "[CLS]", "[SEP]"))
MODELS = ("pretrained", "scratch", "minilm")
BUDGETS = (32, 128, 512)
SEEDS = (0, 1, 2, 3, 4)
N_EVAL = 1200  # test passages, 200 per genre
# BERT's recipe (AdamW, 10% warm-up then linear decay, batch 16) with steps = max(min_steps, epochs x budget / 16).
# Learning rates picked on the validation plays, never the test plays (best mean accuracy at 32 and 128 labels,
# 3 seeds): pretrained from {3e-5, 1e-4, 3e-4, 1e-3}, scratch from {3e-4, 1e-3}, the MiniLM probe from
# {1e-3, 3e-3, 1e-2}. MiniLM is frozen (a linear probe): fine-tuning its 22 M parameters for every budget and seed
# would not fit the script's CPU budget. Re-check the pretrained learning rate when the checkpoint changes.
RECIPES = {
    "pretrained": dict(lr=1e-3, batch_size=16, epochs=5, min_steps=50, freeze_encoder=False),
    "scratch": dict(lr=1e-3, batch_size=16, epochs=5, min_steps=50, freeze_encoder=False),
    "minilm": dict(lr=3e-3, batch_size=16, epochs=100, min_steps=300, freeze_encoder=True),
}
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Passage:
    """Consecutive speeches of one play, labelled with the play's genre."""

    play: str
    genre: str
    text: str  # the speeches, one per line
    ids: tuple[int, ...]  # our WordPiece ids, without [CLS] / [SEP]

    @property
    def label(self) -> int:
        """The genre as a class index, in data.GENRES order."""
        return GENRES.index(self.genre)


def play_passages(play: Play, max_tokens: int = MAX_TOKENS, min_tokens: int = MIN_TOKENS,
                  tokenizer=None) -> list[Passage]:
    """Cut a play into passages: whole consecutive speeches while they fit in max_tokens WordPiece tokens.

    A speech longer than max_tokens is cut between words into near-equal pieces that fit; passages shorter than
    min_tokens are dropped. Speaker names are left out: the text is what is spoken.
    """
    if not isinstance(play, Play):
        raise TypeError(f"play must be a course_utils.data.Play, got {type(play).__name__}")
    check_positive_int("max_tokens", max_tokens)
    check_positive_int("min_tokens", min_tokens)
    if min_tokens > max_tokens:
        raise ValueError(f"min_tokens must be <= max_tokens={max_tokens}, got {min_tokens}")
    tokenizer = tokenizer or load_wordpiece()
    units: list[tuple[str, list[int]]] = []  # (text, ids) of each speech, or of a piece of a long speech
    for speech in play.speeches:
        enc = tokenizer.encode(speech.text, add_special_tokens=False)
        for start, end in _pieces(enc.word_ids, max_tokens):
            units.append((speech.text[enc.offsets[start][0]:enc.offsets[end - 1][1]], enc.ids[start:end]))
    passages, texts, ids = [], [], []
    for text, piece in [*units, ("", [])]:  # the empty sentinel closes the last passage
        if ids and (not piece or len(ids) + len(piece) > max_tokens):
            if len(ids) >= min_tokens:
                passages.append(Passage(play.name, play.genre, "\n".join(texts), tuple(ids)))
            texts, ids = [], []
        if piece:
            texts.append(text)
            ids = ids + piece
    return passages


def _pieces(word_ids: list[int | None], max_tokens: int) -> list[tuple[int, int]]:
    """(start, end) of near-equal pieces of at most max_tokens tokens, cut where a word starts when possible."""
    n = len(word_ids)
    size = math.ceil(n / max(1, math.ceil(n / max_tokens)))
    pieces, start = [], 0

    def inside(i: int) -> bool:  # token i continues the word of token i - 1
        return word_ids[i] is not None and word_ids[i] == word_ids[i - 1]

    while n - start > max_tokens:
        end = start + size  # < n, since n - start > max_tokens >= size
        while end > start + 1 and inside(end):
            end -= 1  # back to the first token of the word
        if inside(end):  # a single word longer than a piece: cut inside it
            end = start + size
        pieces.append((start, end))
        start = end
    return pieces + [(start, n)] if n else []


@lru_cache(maxsize=8)
def _split_passages(split: str, max_tokens: int, min_tokens: int) -> tuple[Passage, ...]:
    tokenizer = load_wordpiece()
    return tuple(p for play in load_plays(split) for p in play_passages(play, max_tokens, min_tokens, tokenizer))


def genre_passages(split: str, n: int | None = None, *, max_tokens: int = MAX_TOKENS, min_tokens: int = MIN_TOKENS,
                   seed: int = 0, tokenizer=None) -> list[Passage]:
    """Passages of a split's plays; with n, a seeded sample of n balanced over the genres (counts differ by <= 1).

    For one seed the samples are nested: the 32 passages of n=32 are among the 128 of n=128. Without n, every
    passage of the split, in play order (the genres are then as unbalanced as the plays). `tokenizer` is a
    tokenizers.Tokenizer with our special tokens, by default the shipped WordPiece (then the passages are cached).
    """
    check_choice("split", split, SPLITS)
    check_positive_int("max_tokens", max_tokens)
    check_positive_int("min_tokens", min_tokens)
    _check_seed(seed)
    if tokenizer is None:
        pool = list(_split_passages(split, max_tokens, min_tokens))
    else:
        pool = [p for play in load_plays(split) for p in play_passages(play, max_tokens, min_tokens, tokenizer)]
    if n is None:
        return pool
    check_positive_int("n", n)
    by_genre = {g: [p for p in pool if p.genre == g] for g in GENRES}
    smallest = min(len(v) for v in by_genre.values())
    if n > smallest * N_LABELS:
        raise ValueError(f"n must be <= {smallest * N_LABELS} for a balanced sample of the {split} plays, got {n}")
    rng = random.Random(seed)
    for g in GENRES:
        rng.shuffle(by_genre[g])
    extra = rng.sample(GENRES, n % N_LABELS)  # these genres get one passage more
    sample = [p for g in GENRES for p in by_genre[g][: n // N_LABELS + (g in extra)]]
    rng.shuffle(sample)
    return sample


def encode(passages: Sequence[Passage], tokenizer=None, max_len: int = 64) -> dict[str, torch.Tensor]:
    """Model inputs: input_ids and attention_mask (N, L) for "[CLS] passage [SEP]", padded; labels (N,).

    tokenizer=None uses the passages' own WordPiece ids (the tiny BERT); a transformers tokenizer (MiniLM)
    tokenises their text again, truncated to max_len.
    """
    _check_passages(passages)
    check_positive_int("max_len", max_len, minimum=3)
    labels = torch.tensor([p.label for p in passages])  # (N,)
    if tokenizer is not None:
        enc = tokenizer([p.text for p in passages], truncation=True, max_length=max_len, padding=True,
                        return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}
    rows = [[CLS_ID, *p.ids[: max_len - 2], SEP_ID] for p in passages]
    length = max(len(r) for r in rows)
    input_ids = torch.tensor([r + [PAD_ID] * (length - len(r)) for r in rows])  # (N, L)
    attention_mask = torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows])  # (N, L)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def _check_passages(passages) -> None:
    if isinstance(passages, (str, bytes)) or not isinstance(passages, Sequence):
        raise TypeError(f"passages must be a list of Passage, got {type(passages).__name__}")
    if not passages:
        raise ValueError("passages must not be empty")
    if not all(isinstance(p, Passage) for p in passages):
        bad = next(p for p in passages if not isinstance(p, Passage))
        raise TypeError(f"passages must hold Passage objects, got an item of type {type(bad).__name__}")


def _check_model(model) -> None:
    if not isinstance(model, EncoderForClassification):
        raise TypeError(f"model must be a course_utils EncoderForClassification, got {type(model).__name__}")


def _check_seed(seed) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r} of type {type(seed).__name__}")


# ------------------------------------------------------------------ the models of the learning curve


def tiny_bert_classifier(pretrained: bool = True, *, seed: int = 0) -> EncoderForClassification:
    """Figure 8: the shipped tiny BERT without its MLM and NSP heads, plus a new classifier on the pooled [CLS].

    The encoder and the pooler are the pre-trained ones (as transformers' BertForSequenceClassification does);
    only the classifier is new. pretrained=False builds the same architecture with BERT's random initialisation.
    """
    if not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be a bool, got {pretrained!r}")
    _check_seed(seed)
    with torch.random.fork_rng(devices=[]):  # seeded, and the caller's random state is left alone
        torch.manual_seed(seed)
        if not pretrained:
            return EncoderForClassification(Encoder(**TINY_BERT_CONFIG), N_LABELS).eval()
        bert = load_tiny_bert()
        model = EncoderForClassification(bert.encoder, N_LABELS)
    model.pooler.load_state_dict(bert.pooler.state_dict())
    return model.eval()


def minilm_classifier(*, seed: int = 0) -> tuple[object, EncoderForClassification]:
    """The real MiniLM (all-MiniLM-L6-v2's BERT) in our EncoderForClassification: returns (tokenizer, model)."""
    from .hf import encoder_from_bert, load_minilm

    _check_seed(seed)
    tokenizer, bert = load_minilm()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EncoderForClassification(encoder_from_bert(bert), N_LABELS)
    if bert.pooler is not None:
        model.pooler.dense.load_state_dict(bert.pooler.dense.state_dict())
    return tokenizer, model.eval()


# ------------------------------------------------------------------ fine-tuning and evaluation


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Indices of mini-batches, forever: each epoch visits the n examples once, in a new seeded order."""
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            yield order[start:start + batch_size]


def fine_tune(model: EncoderForClassification, passages: Sequence[Passage], *, steps: int, lr: float,
              batch_size: int = 16, seed: int = 0, tokenizer=None, max_len: int = 64,
              freeze_encoder: bool = False) -> EncoderForClassification:
    """Fine-tune the model on the passages' genres with cross-entropy (course_utils.training.train), in place.

    Every parameter is trained; freeze_encoder=True trains the classifier only, on the pooled [CLS] vectors
    computed once (a linear probe). Batches and dropout are seeded and the caller's random state is left alone,
    so the same call gives the same model. Returns the model, in eval mode.
    """
    _check_model(model)
    _check_passages(passages)
    check_positive_int("steps", steps)
    check_positive_float("lr", lr)
    check_positive_int("batch_size", batch_size)
    _check_seed(seed)
    if not isinstance(freeze_encoder, bool):
        raise TypeError(f"freeze_encoder must be a bool, got {freeze_encoder!r}")
    if freeze_encoder:
        features = pooled_features(model, passages, tokenizer=tokenizer, max_len=max_len)  # (N, d_model)
        labels = torch.tensor([p.label for p in passages])  # (N,)
        return _fit_classifier(model, features, labels, steps=steps, lr=lr, batch_size=batch_size, seed=seed)
    data = encode(passages, tokenizer, max_len)
    indices = _batches(len(passages), batch_size, torch.Generator().manual_seed(seed))

    def loss_fn(m: EncoderForClassification, idx: torch.Tensor) -> torch.Tensor:
        mask = data["attention_mask"][idx]  # (B, L)
        length = int(mask.sum(1).max())  # drop the columns that are padding in every row
        logits = m(data["input_ids"][idx, :length], None, mask[:, :length])  # (B, n_labels)
        return F.cross_entropy(logits, data["labels"][idx])

    with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator: seed it, then restore it
        torch.manual_seed(seed)
        train(model, indices, loss_fn, steps=steps, lr=lr, progress=False)
    return model


def _fit_classifier(model: EncoderForClassification, features: torch.Tensor, labels: torch.Tensor, *, steps: int,
                    lr: float, batch_size: int, seed: int) -> EncoderForClassification:
    """Train model.classifier alone on fixed pooled features (N, d_model): the linear probe."""
    head = torch.nn.Sequential(model.dropout, model.classifier)  # the part of the model above the pooler
    indices = _batches(len(labels), batch_size, torch.Generator().manual_seed(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        train(head, indices, lambda h, idx: F.cross_entropy(h(features[idx]), labels[idx]), steps=steps, lr=lr)
    model.eval()
    return model


@torch.no_grad()
def pooled_features(model: EncoderForClassification, passages: Sequence[Passage], *, tokenizer=None,
                    max_len: int = 64, batch_size: int = 64) -> torch.Tensor:
    """The classifier's input for each passage (N, d_model): tanh(W h_[CLS] + b), the pooled [CLS] vector."""
    _check_model(model)
    check_positive_int("batch_size", batch_size)
    data = encode(passages, tokenizer, max_len)
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(passages), batch_size):
        ids, mask = data["input_ids"][start:start + batch_size], data["attention_mask"][start:start + batch_size]
        length = int(mask.sum(1).max())
        h = model.encoder(ids[:, :length], None, mask[:, :length]).last_hidden_state  # (B, L, d_model)
        out.append(model.pooler(h))  # (B, d_model)
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def predict(model: EncoderForClassification, passages: Sequence[Passage], *, tokenizer=None, max_len: int = 64,
            batch_size: int = 64) -> torch.Tensor:
    """The predicted genre of each passage (N,), eq. (6): y = arg max_y P(y | x), in eval mode (no dropout)."""
    pooled = pooled_features(model, passages, tokenizer=tokenizer, max_len=max_len, batch_size=batch_size)
    return model.classifier(pooled).argmax(-1)  # (N, n_labels) -> (N,)


def accuracy(model: EncoderForClassification, passages: Sequence[Passage], *, tokenizer=None,
             max_len: int = 64) -> float:
    """The fraction of passages whose genre the model predicts (eq. 6)."""
    predictions = predict(model, passages, tokenizer=tokenizer, max_len=max_len)
    return (predictions == torch.tensor([p.label for p in passages])).float().mean().item()


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, n_labels: int = N_LABELS) -> torch.Tensor:
    """Counts (n_labels, n_labels): row = true genre, column = predicted genre."""
    for name, t in (("labels", labels), ("predictions", predictions)):
        if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.is_floating_point():
            raise TypeError(f"{name} must be a 1-D integer tensor, got {t!r:.60}")
    if labels.shape != predictions.shape:
        raise ValueError(f"labels and predictions must have the same shape, got {tuple(labels.shape)} "
                         f"and {tuple(predictions.shape)}")
    check_positive_int("n_labels", n_labels)
    return torch.bincount(labels * n_labels + predictions, minlength=n_labels**2).view(n_labels, n_labels)


# ------------------------------------------------------------------ the learning curve


def recipe(model: str, budget: int) -> dict:
    """The keyword arguments of fine_tune (steps, lr, batch_size, freeze_encoder) for a model and a label budget."""
    check_choice("model", model, MODELS)
    check_positive_int("budget", budget)
    r = RECIPES[model]
    steps = max(r["min_steps"], math.ceil(r["epochs"] * budget / r["batch_size"]))
    return {"steps": steps, "lr": r["lr"], "batch_size": r["batch_size"], "freeze_encoder": r["freeze_encoder"]}


def run(model: str, budget: int, seed: int = 0, *, eval_passages: Sequence[Passage] | None = None,
        cache: dict | None = None) -> dict:
    """One point of the learning curve: fine-tune on `budget` training passages (seeded), predict the test passages.

    `cache` (a dict, shared between runs) keeps MiniLM's frozen features of the passages already seen.
    """
    check_choice("model", model, MODELS)
    eval_passages = eval_passages if eval_passages is not None else genre_passages("test", N_EVAL, seed=0)
    start = time.perf_counter()
    args = recipe(model, budget)
    train_passages = genre_passages("train", budget, seed=seed)
    labels = torch.tensor([p.label for p in eval_passages])  # (N_eval,)
    if model == "minilm":  # a linear probe: the encoder is frozen, so its features are computed once
        tokenizer, classifier = minilm_classifier(seed=seed)
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
        classifier = tiny_bert_classifier(pretrained=model == "pretrained", seed=seed)
        fine_tune(classifier, train_passages, seed=seed, **args)
        predictions = predict(classifier, eval_passages)  # (N_eval,)
    return {
        "model": model, "budget": budget, "seed": seed, "steps": args["steps"],
        "accuracy": round((predictions == labels).float().mean().item(), 4),
        "confusion": confusion_matrix(labels, predictions).tolist(),
        "seconds": round(time.perf_counter() - start, 1),
    }


def summarise(runs: Sequence[dict]) -> dict:
    """Mean, standard deviation (over seeds), min and max accuracy per model and budget: {model: {budget: {...}}}."""
    out: dict = {}
    for r in runs:
        out.setdefault(r["model"], {}).setdefault(str(r["budget"]), []).append(r["accuracy"])
    return {
        m: {b: {"mean": round(statistics.fmean(a), 4), "std": round(statistics.pstdev(a), 4),
                "min": min(a), "max": max(a), "n": len(a)} for b, a in per.items()}
        for m, per in out.items()
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def learning_curve(models: Sequence[str] = MODELS, budgets: Sequence[int] = BUDGETS, seeds: Sequence[int] = SEEDS,
                   *, n_eval: int = N_EVAL, verbose: bool = False) -> dict:
    """Every model x budget x seed, evaluated on the same balanced test passages; the results as a dict."""
    for m in models:
        check_choice("models", m, MODELS)
    for b in budgets:
        check_positive_int("budgets", b)
    for s in seeds:
        _check_seed(s)
    start, checkpoint = time.perf_counter(), _sha256(TINY_BERT_PATH)
    eval_passages = genre_passages("test", n_eval, seed=0)
    runs, cache = [], {}
    for m in models:
        for budget in budgets:
            for seed in seeds:
                runs.append(run(m, budget, seed, eval_passages=eval_passages, cache=cache))
                if verbose:
                    print(json.dumps({k: v for k, v in runs[-1].items() if k != "confusion"}), flush=True)
    if _sha256(TINY_BERT_PATH) != checkpoint:
        raise RuntimeError(f"{TINY_BERT_PATH} changed during the run: run `python -m course_utils.finetune` again")
    return {
        "config": {
            "task": "genre of a passage of a held-out play", "genres": list(GENRES),
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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: rebuild it with `python -m course_utils.finetune`")
    return json.loads(path.read_text())


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
