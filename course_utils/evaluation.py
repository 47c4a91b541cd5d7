"""The held-out figures of the tiny models, each beside a baseline that needs no model (the model cards' numbers).

- BERT: MLM top-1 accuracy vs the most frequent token; NSP accuracy vs the majority class.
- GPT: perplexity vs a bigram model of the training plays.
- BART: reconstructions (greedy or beam search) vs copying the corrupted source, by edit distance and LCS.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from ._validate import check_choice, check_instance, check_int, check_seed
from .data import SPLIT_NAMES, load_bpe, load_wordpiece
from .datasets import (
    BART_MAX_TOKENS, BART_NOISE, bart_documents, bert_documents, collate, gpt_stream, noisy_batch, nsp_dataset,
)
from .generation import generate
from .metrics import bigram_perplexity, common_subsequence, edit_distance, perplexity
from .models import Decoder, EncoderDecoder, EncoderForPreTraining
from .objectives import IGNORE_INDEX, IS_NEXT, IS_RANDOM, bert_masking

BART_BEAMS = 8  # beam width of the held-out evaluation beside greedy (best of 1, 4, 8, 16 on the validation plays)


@torch.no_grad()
def evaluate_bert(model: EncoderForPreTraining, split: str = "test", *, n_instances: int = 2000, seed: int = 0) -> dict:
    """MLM top-1 accuracy on masked positions and NSP accuracy on a split's plays, with their baselines.

    The MLM baseline predicts the most frequent token of the training plays at every masked position. NSP pairs
    are a little more often random than not (a chunk of one segment always gets a random B), so the NSP figures
    come with the majority-class accuracy and the balanced accuracy (mean recall of IsNext and random).
    """
    check_instance("model", model, EncoderForPreTraining, "course_utils EncoderForPreTraining (a tiny BERT)")
    check_choice("split", split, SPLIT_NAMES)
    check_int("n_instances", n_instances, 1)
    check_seed("seed", seed)
    tokenizer, vocab_size = load_wordpiece(), model.encoder.config.vocab_size
    _check_vocab(vocab_size, tokenizer, "WordPiece (data.load_wordpiece())")
    instances = nsp_dataset(bert_documents(split), max_seq_length=model.encoder.config.max_len,
                            dupe_factor=1, seed=seed, tokenizer=tokenizer)[:n_instances]
    train_counts = torch.bincount(
        torch.tensor([t for doc in bert_documents("train") for seg in doc for t in seg]), minlength=vocab_size)
    most_frequent = int(train_counts.argmax())
    g = torch.Generator().manual_seed(seed)
    hits = baseline = total = 0
    nsp_pred, nsp_true = [], []
    model.eval()
    for start in range(0, len(instances), 64):
        batch = collate(instances[start:start + 64])
        inputs, labels = bert_masking(batch["input_ids"], vocab_size, g)
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


def evaluate_gpt(model: Decoder, split: str = "test") -> dict:
    """Perplexity on a split's plays, beside a bigram model of the training plays (its weight tuned on validation)."""
    check_instance("model", model, Decoder, "course_utils Decoder (a tiny GPT)")
    check_choice("split", split, SPLIT_NAMES)
    vocab_size = model.config.vocab_size
    _check_vocab(vocab_size, load_bpe(), "BPE (data.load_bpe())")
    train_stream, held_out = gpt_stream("train"), gpt_stream(split)
    lam = _bigram_lambda(vocab_size)
    return {"split": split, "perplexity": perplexity(model, held_out),
            "bigram_perplexity": bigram_perplexity(train_stream, held_out, vocab_size, lam),
            "bigram_lambda": lam, "n_tokens": len(held_out)}


@lru_cache(maxsize=None)
def _bigram_lambda(vocab_size: int) -> float:
    """The bigram model's interpolation weight with the lowest perplexity on the validation plays."""
    train_stream, validation = gpt_stream("train"), gpt_stream("validation")
    return min((0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
               key=lambda lam: bigram_perplexity(train_stream, validation, vocab_size, lam))


@torch.no_grad()
def evaluate_bart(model: EncoderDecoder, split: str = "test", *, n_chunks: int | None = 300, num_beams: int = 1,
                  no_repeat_ngram_size: int = 0, seed: int = 0) -> dict:
    """Greedy (or beam) reconstructions vs copying the corrupted source, by two token measures on the original.

    token_accuracy = 1 - edit distance / length: wrong or invented tokens cost as much as missing ones;
    token_recall = longest common subsequence / length: the original's tokens recovered, in order.
    The n_chunks documents are spread evenly over the split (every k-th), so that every play counts; None: all.
    The documents are noised as the tiny BART was trained (datasets.BART_NOISE), seeded.
    """
    check_instance("model", model, EncoderDecoder, "course_utils EncoderDecoder (a tiny BART)")
    check_choice("split", split, SPLIT_NAMES)
    if n_chunks is not None:
        check_int("n_chunks", n_chunks, 1)
    check_int("num_beams", num_beams, 1)
    check_int("no_repeat_ngram_size", no_repeat_ngram_size, 0)
    check_seed("seed", seed)
    _check_vocab(model.config.vocab_size, load_bpe(), "BPE (data.load_bpe())")
    documents = bart_documents(split)
    if n_chunks is None:
        n_chunks = len(documents)
    chunks = documents[::max(1, len(documents) // n_chunks)][:n_chunks]
    pad, g = model.config.pad_token_id, torch.Generator().manual_seed(seed)
    model.eval()
    ours = copy = ours_kept = copy_kept = length = 0
    for start in range(0, len(chunks), 128):  # 128 documents a batch: a third faster than 32, the same results
        batch = noisy_batch(chunks[start:start + 128], BART_NOISE, g)
        out = generate(model, batch["input_ids"], BART_MAX_TOKENS + 8, attention_mask=batch["attention_mask"],
                       num_beams=num_beams, no_repeat_ngram_size=no_repeat_ngram_size,
                       eos_token_id=model.config.eos_token_id, pad_token_id=pad)
        for source, target, mask, output in zip(batch["input_ids"], chunks[start:start + 128],
                                                batch["attention_mask"], out):
            original = target.tolist()
            prediction = [t for t in output.tolist()[1:] if t != pad]  # drop decoder_start
            corrupted = source[mask.bool()].tolist()
            ours += edit_distance(prediction, original)
            copy += edit_distance(corrupted, original)
            ours_kept += common_subsequence(prediction, original)
            copy_kept += common_subsequence(corrupted, original)
            length += len(original)
    return {"split": split, "num_beams": num_beams, "token_accuracy": 1 - ours / length,
            "copy_token_accuracy": 1 - copy / length,
            "token_recall": ours_kept / length, "copy_token_recall": copy_kept / length,
            "n_chunks": len(chunks), "n_tokens": length}


def _check_vocab(vocab_size: int, tokenizer, name: str) -> None:
    if vocab_size != tokenizer.get_vocab_size():
        raise ValueError(f"model must read the shipped {name}'s {tokenizer.get_vocab_size()} ids, got a model with "
                         f"vocab_size={vocab_size}")


def bart_metrics(model: EncoderDecoder) -> dict:
    """The model card's figures: greedy and beam-search reconstructions of every validation and test document."""
    return {f"{split}{suffix}": evaluate_bart(model, split, n_chunks=None, num_beams=beams)
            for suffix, beams in (("", 1), (f"_beam{BART_BEAMS}", BART_BEAMS)) for split in ("validation", "test")}
