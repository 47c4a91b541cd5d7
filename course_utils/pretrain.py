"""Pre-train the course's tiny models on the training plays, on CPU, and ship them as safetensors.

    python -m course_utils.pretrain bert     # MLM + NSP, writes course_utils/assets/tiny_bert.safetensors + .md

The checkpoint stores its config and training figures in the safetensors metadata; the model card (.md) says the
same for people. `load_tiny_bert()` checks that the weights match the config before handing the model out.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_model, save_model

from . import set_seed
from .data import ASSETS, SPECIAL_TOKENS, load_plays, load_wordpiece
from .models import Encoder, EncoderForPreTraining
from .objectives import IGNORE_INDEX, IS_NEXT, IS_RANDOM, mask_tokens, nsp_instances
from .training import train

TINY_BERT_PATH = ASSETS / "tiny_bert.safetensors"
TINY_BERT_CONFIG = dict(vocab_size=8000, d_model=128, n_heads=4, n_layers=4, d_ff=512, max_len=64)
BERT_RECIPE = dict(steps=6000, batch_size=64, max_seq_length=64, lr=1e-3, dupe_factor=10, seed=12345)


def bert_documents(split: str, tokenizer=None) -> list[list[list[int]]]:
    """One document per play, one segment per speech ("Speaker: text", as a script prints it), as WordPiece ids.

    The speaker's name is part of the text, as in any play script: it is what tells a reader that B answers A.
    """
    if tokenizer is None:
        return [[list(segment) for segment in doc] for doc in _wordpiece_documents(split)]  # a fresh copy
    return [
        [tokenizer.encode(f"{speech.speaker}: {speech.text}", add_special_tokens=False).ids for speech in play.speeches]
        for play in load_plays(split)
    ]


@lru_cache(maxsize=None)
def _wordpiece_documents(split: str) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """bert_documents with the shipped tokenizer, tokenised once per process (immutable, so safe to share)."""
    return tuple(tuple(tuple(seg) for seg in doc) for doc in bert_documents(split, load_wordpiece()))


def nsp_dataset(documents, *, max_seq_length: int, dupe_factor: int, seed: int, tokenizer=None) -> list:
    """NSP instances over every document, `dupe_factor` times with different random splits (Google's recipe)."""
    tokenizer = tokenizer or load_wordpiece()
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    rng = random.Random(seed)
    instances = [
        x
        for _ in range(dupe_factor)
        for d in range(len(documents))
        for x in nsp_instances(documents, d, cls_id=cls_id, sep_id=sep_id, max_seq_length=max_seq_length, rng=rng)
    ]
    rng.shuffle(instances)
    return instances


def collate(instances, pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad a list of NSPInstance to a batch: input_ids, token_type_ids, attention_mask, next_sentence_label."""
    length = max(len(x.input_ids) for x in instances)
    pad = lambda seq, value: seq + [value] * (length - len(seq))  # noqa: E731
    return {
        "input_ids": torch.tensor([pad(x.input_ids, pad_id) for x in instances]),
        "token_type_ids": torch.tensor([pad(x.token_type_ids, 0) for x in instances]),
        "attention_mask": torch.tensor([pad([1] * len(x.input_ids), 0) for x in instances]),
        "next_sentence_label": torch.tensor([x.label for x in instances]),
    }


def _mask(input_ids: torch.Tensor, vocab_size: int, generator: torch.Generator | None):
    """BERT's 15% / 80-10-10 corruption with our WordPiece tokenizer's [MASK] and special ids."""
    return mask_tokens(input_ids, mask_token_id=SPECIAL_TOKENS.index("[MASK]"), vocab_size=vocab_size,
                       special_token_ids=range(len(SPECIAL_TOKENS)), generator=generator)


def mlm_nsp_loss(model: EncoderForPreTraining, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
    """BERT's pre-training loss: MLM cross-entropy on the selected positions + NSP cross-entropy (eq. 5)."""
    inputs, labels = _mask(batch["input_ids"], model.encoder.vocab_size, generator)
    out = model.encoder(inputs, batch["token_type_ids"], batch["attention_mask"])
    selected = labels != IGNORE_INDEX  # only the masked positions go through the (V-wide) MLM head
    mlm = F.cross_entropy(model.mlm(out.last_hidden_state[selected]), labels[selected])
    nsp = F.cross_entropy(model.nsp(model.pooler(out.last_hidden_state)), batch["next_sentence_label"])
    return mlm + nsp


def _batches(instances, batch_size: int, seed: int) -> Iterator[dict]:
    rng = random.Random(seed)
    while True:
        order = list(range(len(instances)))
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield collate([instances[i] for i in order[start:start + batch_size]])


@torch.no_grad()
def evaluate_bert(model: EncoderForPreTraining, split: str = "test", *, n_instances: int = 2000, seed: int = 0) -> dict:
    """MLM top-1 accuracy on masked positions and NSP accuracy on a split's plays, with their baselines.

    The MLM baseline predicts the most frequent token of the training plays at every masked position. NSP pairs
    are a little more often random than not (a chunk of one segment always gets a random B), so the NSP figures
    come with the majority-class accuracy and the balanced accuracy (mean recall of IsNext and random).
    """
    tokenizer = load_wordpiece()
    instances = nsp_dataset(bert_documents(split), max_seq_length=model.encoder.max_len,
                            dupe_factor=1, seed=seed, tokenizer=tokenizer)[:n_instances]
    train_counts = torch.bincount(
        torch.tensor([t for doc in _wordpiece_documents("train") for seg in doc for t in seg]),
        minlength=model.encoder.vocab_size,
    )
    most_frequent = int(train_counts.argmax())
    g = torch.Generator().manual_seed(seed)
    hits = baseline = total = 0
    nsp_pred, nsp_true = [], []
    model.eval()
    for start in range(0, len(instances), 64):
        batch = collate(instances[start:start + 64])
        inputs, labels = _mask(batch["input_ids"], model.encoder.vocab_size, g)
        out = model(inputs, batch["token_type_ids"], batch["attention_mask"])
        selected = labels != IGNORE_INDEX
        hits += (out.mlm_logits.argmax(-1)[selected] == labels[selected]).sum().item()
        baseline += (labels[selected] == most_frequent).sum().item()
        total += selected.sum().item()
        nsp_pred.append(out.nsp_logits.argmax(-1))
        nsp_true.append(batch["next_sentence_label"])
    nsp_pred, nsp_true = torch.cat(nsp_pred), torch.cat(nsp_true)
    recall = [(nsp_pred[nsp_true == c] == c).float().mean().item() for c in (IS_NEXT, IS_RANDOM)]
    return {
        "split": split,
        "mlm_accuracy": hits / total,
        "mlm_baseline_accuracy": baseline / total,
        "most_frequent_token": tokenizer.id_to_token(most_frequent),
        "nsp_accuracy": (nsp_pred == nsp_true).float().mean().item(),
        "nsp_majority_accuracy": max(nsp_true.float().mean().item(), 1 - nsp_true.float().mean().item()),
        "nsp_balanced_accuracy": sum(recall) / 2,
        "n_instances": len(instances),
        "n_masked": total,
    }


def load_tiny_bert(path: Path | str = TINY_BERT_PATH) -> EncoderForPreTraining:
    """The shipped tiny BERT, in eval mode; raises if the file's weights do not match the config it carries."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: rebuild it with `python -m course_utils.pretrain bert`")
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata() or {}
    if "config" not in metadata:
        raise ValueError(f"{path} has no 'config' in its metadata: not a course_utils checkpoint")
    config = json.loads(metadata["config"])
    model = EncoderForPreTraining(Encoder(**config))
    try:
        missing, unexpected = load_model(model, str(path), strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not match its config {config}: {err}") from None
    return model.eval()


def pretrain_bert(out: Path = TINY_BERT_PATH, **recipe) -> dict:
    """Pre-train the tiny BERT (MLM + NSP) on the training plays; write the checkpoint and its model card."""
    recipe = {**BERT_RECIPE, **recipe}
    generator = set_seed(recipe["seed"])
    tokenizer = load_wordpiece()
    instances = nsp_dataset(bert_documents("train", tokenizer), max_seq_length=recipe["max_seq_length"],
                            dupe_factor=recipe["dupe_factor"], seed=recipe["seed"], tokenizer=tokenizer)
    model = EncoderForPreTraining(Encoder(**TINY_BERT_CONFIG))
    start = time.perf_counter()
    history = train(
        model, _batches(instances, recipe["batch_size"], recipe["seed"]),
        lambda m, b: mlm_nsp_loss(m, b, generator), steps=recipe["steps"], lr=recipe["lr"], progress=True,
    )
    minutes = (time.perf_counter() - start) / 60
    metrics = {s: evaluate_bert(model, s) for s in ("validation", "test")}
    card = {
        "config": TINY_BERT_CONFIG, "recipe": recipe, "n_instances": len(instances),
        "wall_minutes": round(minutes, 1), "threads": torch.get_num_threads(),
        "final_loss": round(sum(history[-100:]) / len(history[-100:]), 4), "metrics": metrics,
    }
    save_model(model, str(out), metadata={"config": json.dumps(TINY_BERT_CONFIG), "card": json.dumps(card)})
    out.with_suffix(".md").write_text(_model_card("tiny BERT (MLM + NSP)", "bert", card, history))
    return card


def _model_card(title: str, command: str, card: dict, history: list[float]) -> str:
    every = max(1, len(history) // 10)
    curve = ", ".join(f"{i}: {sum(history[i:i + every]) / len(history[i:i + every]):.3f}"
                      for i in range(0, len(history), every))
    return f"""# {title}

Written by `python -m course_utils.pretrain {command}` on the training plays of `course_utils.data`.

- config: `{json.dumps(card["config"])}`
- recipe: `{json.dumps(card["recipe"])}`
- training instances: {card["n_instances"]}
- wall time: {card["wall_minutes"]} min on {card["threads"]} CPU threads
- loss (mean over the last 100 steps): {card["final_loss"]}
- loss curve (mean per tenth of training): {curve}
- held-out metrics: `{json.dumps(card["metrics"])}`
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=["bert"], help="which tiny model to pre-train")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's number of steps")
    parser.add_argument("--out", type=Path, default=TINY_BERT_PATH, help="where to write the checkpoint")
    args = parser.parse_args(argv)
    recipe = {} if args.steps is None else {"steps": args.steps}
    card = pretrain_bert(args.out, **recipe)
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
