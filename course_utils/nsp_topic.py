"""NSP with a real encoder, and ALBERT's critique measured: how much of next sentence prediction is topic?

Google's NSP negatives pair segment A with a stretch of *another* document: here another play, with other
characters and other words, so a model can answer from the topic alone. ALBERT (Lan et al., 2020) replaced NSP by
sentence-order prediction (SOP), whose negative is the same two segments swapped: same play, same words, only
coherence tells them apart. Two models, measured on the held-out plays:

- the tiny BERT with its own NSP head, as pre-trained by `python -m course_utils.pretrain bert`;
- the real MiniLM with a new NSP head, fine-tuned end to end on NSP pairs of the training plays.

Each sees IsNext pairs, random pairs (NSP's own negatives) and the same IsNext pairs swapped (SOP's negatives):

    python -m course_utils.nsp_topic          # writes course_utils/assets/nsp_topic_results.json
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from ._validate import check_instance, check_int, check_path, check_seed, minibatches, seeded, select_rows
from .checkpoints import TINY_BERT_PATH, load_tiny_bert, sha256
from .data import ASSETS
from .datasets import bert_documents, collate, nsp_dataset
from .finetune import RECIPES
from .models import EncoderForClassification, EncoderForPreTraining
from .objectives import IS_NEXT, IS_RANDOM, NSPInstance
from .training import train

RESULTS_PATH = ASSETS / "nsp_topic_results.json"
MAX_SEQ_LENGTH = 64  # the tiny BERT's positions; MiniLM reads the same lengths
N_TRAIN = 2000  # IsNext pairs and as many random pairs of the training plays, to train MiniLM's NSP head
# MiniLM's recipe: chapter 05's (BERT's AdamW, warm-up and decay, batch 16, the learning rate picked on the
# validation plays for chapter 05's task), two epochs; not tuned for NSP.
RECIPE = dict(lr=RECIPES["minilm"]["lr"], batch_size=16, epochs=2)
KINDS = ("next", "random", "swapped")  # the three kinds of test pairs


def swapped(pair: NSPInstance) -> NSPInstance:
    """ALBERT's SOP negative: [CLS] B [SEP] A [SEP] from [CLS] A [SEP] B [SEP], labelled IS_RANDOM (not next)."""
    check_instance("pair", pair, NSPInstance, "NSPInstance")
    n_a = pair.token_type_ids.count(0) - 2  # [CLS] A [SEP] have type 0
    ids = pair.input_ids
    a, b = ids[1:1 + n_a], ids[2 + n_a:-1]
    return NSPInstance([ids[0], *b, ids[1 + n_a], *a, ids[-1]], [0] * (len(b) + 2) + [1] * (len(a) + 1), IS_RANDOM)


def nsp_pairs(split: str, tokenizer=None, *, seed: int = 0) -> dict[str, list[NSPInstance]]:
    """Balanced pairs of a split's plays by Google's recipe: {"next", "random", "swapped"}, as many of each.

    "swapped" holds the "next" pairs with A and B exchanged. tokenizer: a tokenizers.Tokenizer (default: ours).
    """
    pairs = nsp_dataset(bert_documents(split, tokenizer), max_seq_length=MAX_SEQ_LENGTH, dupe_factor=1, seed=seed,
                        tokenizer=tokenizer)
    nexts = [x for x in pairs if x.label == IS_NEXT]
    randoms = [x for x in pairs if x.label == IS_RANDOM]
    n = min(len(nexts), len(randoms))
    return {"next": nexts[:n], "random": randoms[:n], "swapped": [swapped(x) for x in nexts[:n]]}


@torch.no_grad()
def p_next(model: EncoderForPreTraining | EncoderForClassification, pairs: Sequence[NSPInstance], *, pad_id: int = 0,
           batch_size: int = 64) -> torch.Tensor:
    """P(IsNext | A, B) for each pair (N,): the NSP head of a pre-trained BERT, or a classifier trained on NSP."""
    check_instance("model", model, (EncoderForPreTraining, EncoderForClassification),
                   "course_utils EncoderForPreTraining or EncoderForClassification")
    check_int("batch_size", batch_size, 1)
    if isinstance(pairs, NSPInstance) or not isinstance(pairs, Sequence) or not pairs:
        raise ValueError(f"pairs must be a non-empty list of NSPInstance, got {pairs!r:.60}")
    was_training, out = model.training, []
    model.eval()
    for start in range(0, len(pairs), batch_size):
        b = collate(pairs[start:start + batch_size], pad_id)
        if isinstance(model, EncoderForPreTraining):
            h = model.encoder(b["input_ids"], b["token_type_ids"], b["attention_mask"]).last_hidden_state
            logits = model.nsp(model.pooler(h))  # (B, 2)
        else:
            logits = model(b["input_ids"], b["token_type_ids"], b["attention_mask"])  # (B, 2)
        out.append(logits.softmax(-1)[:, IS_NEXT])
    model.train(was_training)
    return torch.cat(out)


def scores(p: dict[str, torch.Tensor]) -> dict[str, float]:
    """From P(IsNext) of each kind of pair: NSP's accuracy (next vs random) and SOP's (next vs swapped), chance 1/2.

    Also the share of each kind called IsNext (P > 1/2): a model that reads only the topic calls a swapped pair,
    which holds the same play's words, IsNext as often as a true one.
    """
    called = {k: (v > 0.5).float().mean().item() for k, v in p.items()}  # share called IsNext
    return {
        "nsp_accuracy": round((called["next"] + 1 - called["random"]) / 2, 4),
        "sop_accuracy": round((called["next"] + 1 - called["swapped"]) / 2, 4),
        **{f"called_next_{k}": round(v, 4) for k, v in called.items()},
    }


def _without_padding(tokenizer):
    """A copy of a tokenizers.Tokenizer without padding and truncation (MiniLM's backend pads every text to 128)."""
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def minilm_nsp(*, seed: int = 0) -> tuple[EncoderForClassification, object, dict]:
    """MiniLM with a new NSP head (our EncoderForClassification, 2 labels), fine-tuned end to end on NSP pairs of
    the training plays: N_TRAIN IsNext and N_TRAIN random ones. Returns the model, its WordPiece (a
    tokenizers.Tokenizer, to build pairs with) and its training summary."""
    from .finetune import minilm_classifier

    check_seed("seed", seed)
    hf_tokenizer, model = minilm_classifier(seed=seed)
    tokenizer = _without_padding(hf_tokenizer.backend_tokenizer)
    pairs = nsp_pairs("train", tokenizer, seed=seed)
    train_pairs = pairs["next"][:N_TRAIN] + pairs["random"][:N_TRAIN]
    data = collate(train_pairs, tokenizer.token_to_id("[PAD]"))
    steps = RECIPE["epochs"] * len(train_pairs) // RECIPE["batch_size"]
    indices = minibatches(len(train_pairs), RECIPE["batch_size"], torch.Generator().manual_seed(seed))

    def loss_fn(m: EncoderForClassification, idx: torch.Tensor) -> torch.Tensor:
        b = select_rows(data, idx)  # (B, L)
        logits = m(b["input_ids"], b["token_type_ids"], b["attention_mask"])  # (B, 2)
        return F.cross_entropy(logits, b["next_sentence_label"])

    with seeded(seed):
        history = train(model, indices, loss_fn, steps=steps, lr=RECIPE["lr"], progress=False)
    model.eval()
    return model, tokenizer, {"pairs": len(train_pairs), "steps": steps, "final_loss": round(float(history[-1]), 4)}


def measure(split: str = "test", *, seed: int = 0) -> dict:
    """Both models on the split's pairs: their scores, and MiniLM's training summary."""
    start = time.perf_counter()
    ours, tiny_bert = nsp_pairs(split, seed=seed), load_tiny_bert()
    tiny = scores({k: p_next(tiny_bert, v) for k, v in ours.items()})
    model, tokenizer, training = minilm_nsp(seed=seed)
    minilm_pairs = nsp_pairs(split, tokenizer, seed=seed)
    pad = tokenizer.token_to_id("[PAD]")
    minilm = scores({k: p_next(model, v, pad_id=pad) for k, v in minilm_pairs.items()})
    return {
        "config": {"split": split, "seed": seed, "max_seq_length": MAX_SEQ_LENGTH, "n_train": N_TRAIN,
                   "recipe": RECIPE, "tiny_bert_sha256": sha256(TINY_BERT_PATH)},
        "pairs": {"tiny_bert": len(ours["next"]), "minilm": len(minilm_pairs["next"])},
        "tiny_bert": tiny, "minilm": minilm, "minilm_training": training,
        "wall_seconds": round(time.perf_counter() - start, 1), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "machine": platform.machine(),
    }


def load_results(path: Path | str = RESULTS_PATH) -> dict:
    """The stored measurement written by `python -m course_utils.nsp_topic`."""
    path = check_path("path", path, ": rebuild it with `python -m course_utils.nsp_topic`")
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path} is not a measurement written by `python -m course_utils.nsp_topic`: {err}") from None


def main(argv: list[str] | None = None) -> None:
    """Measure both models on the test plays and write the results to RESULTS_PATH (or --out)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="test", choices=("validation", "test"))
    parser.add_argument("--out", type=Path, default=RESULTS_PATH, help="where to write the results")
    args = parser.parse_args(argv)
    results = measure(args.split)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
