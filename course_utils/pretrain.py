"""Pre-train the course's tiny models on the training plays, on CPU, and ship them as safetensors.

    python -m course_utils.pretrain bert     # MLM + NSP, writes course_utils/assets/tiny_bert.safetensors + .md
    python -m course_utils.pretrain gpt      # next-token prediction, tiny_gpt.safetensors + .md
    python -m course_utils.pretrain bart     # denoising (text infilling), tiny_bart.safetensors + .md

The checkpoint stores its config and training figures in the safetensors metadata; the model card (.md) says the
same for people. `load_tiny_bert()`, `load_tiny_gpt()` and `load_tiny_bart()` check that the weights match the config before
handing the model out.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_model, save_model
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from . import set_seed
from ._validate import check_positive_int
from .data import ASSETS, BPE_SPECIAL_TOKENS, SPECIAL_TOKENS, bpe_word_starts, load_bpe, load_plays, load_wordpiece
from .generation import generate
from .models import Decoder, Encoder, EncoderDecoder, EncoderForPreTraining, shift_tokens_right
from .objectives import IGNORE_INDEX, IS_NEXT, IS_RANDOM, mask_tokens, nsp_instances, text_infilling
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


def _load(path: Path | str, build: Callable[[dict], nn.Module], command: str) -> nn.Module:
    """A shipped checkpoint, in eval mode; raises if the file's weights do not match the config it carries."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: rebuild it with `python -m course_utils.pretrain {command}`")
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata() or {}
    if "config" not in metadata:
        raise ValueError(f"{path} has no 'config' in its metadata: not a course_utils checkpoint")
    config = json.loads(metadata["config"])
    try:
        model = build(config)
        load_model(model, str(path), strict=True)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{path} does not match its config {config}: {err}") from None
    return model.eval()


def load_tiny_bert(path: Path | str = TINY_BERT_PATH) -> EncoderForPreTraining:
    """The shipped tiny BERT (MLM + NSP heads), in eval mode."""
    return _load(path, lambda config: EncoderForPreTraining(Encoder(**config)), "bert")


def _save(model: nn.Module, out: Path, config: dict, card: dict, title: str, command: str, history: list[float]):
    """The checkpoint (config and card in its metadata) and its model card beside it."""
    save_model(model, str(out), metadata={"config": json.dumps(config), "card": json.dumps(card)})
    out.with_suffix(".md").write_text(_model_card(title, command, card, history))


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
    card = _card(TINY_BERT_CONFIG, recipe, minutes, history,
                 {s: evaluate_bert(model, s) for s in ("validation", "test")}, n_instances=len(instances))
    _save(model, out, TINY_BERT_CONFIG, card, "tiny BERT (MLM + NSP)", "bert", history)
    return card


# ---------------------------------------------------------------- tiny GPT: next-token prediction

TINY_GPT_PATH = ASSETS / "tiny_gpt.safetensors"
TINY_GPT_CONFIG = dict(vocab_size=8000, d_model=128, n_heads=4, n_layers=4, d_ff=512, max_len=128)
GPT_RECIPE = dict(steps=2500, batch_size=16, block_size=128, lr=1e-3, dropout=0.1, seed=12345)


def gpt_stream(split: str) -> torch.Tensor:
    """A split's plays as one stream of BPE ids: each play is <s>, one "Speaker: text" line per speech, </s>."""
    return _gpt_stream(split).clone()  # a copy: the cached stream stays as tokenised


@lru_cache(maxsize=None)
def _gpt_stream(split: str) -> torch.Tensor:
    """gpt_stream, tokenised once per split and process."""
    tokenizer = load_bpe()  # its template wraps each text in <s> ... </s>
    texts = ["".join(f"{speech.speaker}: {speech.text}\n" for speech in play.speeches) for play in load_plays(split)]
    return torch.tensor([t for text in texts for t in tokenizer.encode(text).ids])


def gpt_batches(stream: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Random windows of block_size + 1 tokens (nanoGPT's get_batch): inputs are [:-1], targets [1:]."""
    while True:
        starts = torch.randint(len(stream) - block_size - 1, (batch_size,), generator=generator)
        yield torch.stack([stream[s:s + block_size + 1] for s in starts.tolist()])  # (B, block_size + 1)


def lm_loss(model: Decoder, batch: torch.Tensor) -> torch.Tensor:
    """The factorised likelihood's loss: -log p(w_t | w_<t), averaged over the batch's positions."""
    logits = model(batch[:, :-1]).logits  # (B, L, V)
    return F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())


@torch.no_grad()
def perplexity(model: Decoder, stream: torch.Tensor, block_size: int | None = None) -> float:
    """exp of the mean next-token loss over consecutive windows of the stream (the tail shorter than one is dropped)."""
    block_size = block_size or model.max_len
    windows = stream.unfold(0, block_size + 1, block_size)  # (N, block_size + 1), each shares its last token
    model.eval()
    nll = sum(F.cross_entropy(model(w[:, :-1]).logits.flatten(0, 1), w[:, 1:].flatten(), reduction="sum").item()
              for w in windows.split(64))
    return math.exp(nll / windows[:, 1:].numel())


def bigram_perplexity(train: torch.Tensor, held_out: torch.Tensor, vocab_size: int, lam: float) -> float:
    """Perplexity of a bigram model interpolated with add-one unigrams: lam c(a, b) / c(a) + (1 - lam) p(b)."""
    unigram = (torch.bincount(train, minlength=vocab_size) + 1.0) / (len(train) + vocab_size)  # (V,)
    codes, counts = torch.unique(train[:-1] * vocab_size + train[1:], return_counts=True)  # seen pairs a*V + b
    context = torch.bincount(train[:-1], minlength=vocab_size).float()  # c(a)
    a, b = held_out[:-1], held_out[1:]
    query = a * vocab_size + b
    at = torch.searchsorted(codes, query).clamp(max=len(codes) - 1)
    pair = torch.where(codes[at] == query, counts[at], 0).float()  # c(a, b), 0 if never seen
    p_bigram = torch.where(context[a] > 0, pair / context[a].clamp(min=1), unigram[b])  # unseen a: back off
    return math.exp(-(lam * p_bigram + (1 - lam) * unigram[b]).log().mean().item())


# ---------------------------------------------------------------- tiny BART: denoising by text infilling

TINY_BART_PATH = ASSETS / "tiny_bart.safetensors"
TINY_BART_CONFIG = dict(vocab_size=8000, d_model=128, n_heads=4, n_encoder_layers=2, n_decoder_layers=3, d_ff=512,
                        max_len=128)  # a third decoder layer: it learns to copy sooner than two (measured)
BART_RECIPE = dict(steps=18000, batch_size=16, max_tokens=64, lr=1e-3, dropout=0.0, mask_ratio=0.3,
                   poisson_lambda=3.0, seed=12345)
BART_BEAMS = 8  # beam width of the held-out evaluation beside greedy (best of 1, 4, 8, 16 on the validation plays)


def bart_documents(split: str, max_tokens: int = 64) -> list[torch.Tensor]:
    """Runs of whole consecutive sentences of each play, each run <s> ... </s> of at most max_tokens BPE ids.

    A sentence longer than a run can hold ends the run and is left out: a run cut mid-sentence would teach the
    model that texts stop anywhere, and reward it for inventing an ending the original never had.
    """
    tokenizer = load_bpe()
    bos, eos = BPE_SPECIAL_TOKENS.index("<s>"), BPE_SPECIAL_TOKENS.index("</s>")
    chunks = []
    for play in load_plays(split):
        chunk = []
        for sentence in play.sentences():
            ids = tokenizer.encode(" " + sentence, add_special_tokens=False).ids
            if chunk and (len(chunk) + len(ids) > max_tokens - 2 or len(ids) > max_tokens - 2):
                chunks.append(torch.tensor([bos, *chunk, eos]))
                chunk = []
            if len(ids) <= max_tokens - 2:
                chunk += ids
        if chunk:
            chunks.append(torch.tensor([bos, *chunk, eos]))
    return chunks


def noisy_batch(chunks: list[torch.Tensor], recipe: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Text infilling on each chunk: the corrupted chunk is the source, the original the target (labels)."""
    pad = BPE_SPECIAL_TOKENS.index("<pad>")
    sources = [text_infilling(c, BPE_SPECIAL_TOKENS.index("<mask>"), mask_ratio=recipe["mask_ratio"],
                              poisson_lambda=recipe["poisson_lambda"], word_starts=bpe_word_starts(c),
                              generator=generator) for c in chunks]
    input_ids = pad_sequence(sources, batch_first=True, padding_value=pad)
    labels = pad_sequence(chunks, batch_first=True, padding_value=IGNORE_INDEX)
    return {"input_ids": input_ids, "attention_mask": (input_ids != pad).long(), "labels": labels}


def denoising_loss(model: EncoderDecoder, batch: dict) -> torch.Tensor:
    """Cross-entropy of the original tokens given the corrupted source and the original's prefix (teacher forcing)."""
    decoder_input_ids = shift_tokens_right(batch["labels"], model.pad_token_id, model.decoder_start_token_id)
    logits = model(batch["input_ids"], decoder_input_ids, batch["attention_mask"]).logits  # (B, L, V)
    return F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE_INDEX)


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance between two token lists (insertions, deletions, substitutions cost 1)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]


def common_subsequence(a: list[int], b: list[int]) -> int:
    """Length of the longest common subsequence: how many tokens of b come out, in order, in a."""
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


@torch.no_grad()
def evaluate_bart(model: EncoderDecoder, split: str = "test", *, n_chunks: int | None = 300, num_beams: int = 1,
                  no_repeat_ngram_size: int = 0, seed: int = 0) -> dict:
    """Greedy (or beam) reconstructions vs copying the corrupted source, by two token measures on the original.

    token_accuracy = 1 - edit distance / length: wrong or invented tokens cost as much as missing ones;
    token_recall = longest common subsequence / length: the original's tokens recovered, in order.
    The n_chunks documents are spread evenly over the split (every k-th), so that every play counts; None: all.
    """
    documents = bart_documents(split)
    if n_chunks is None:
        n_chunks = len(documents)
    check_positive_int("n_chunks", n_chunks)
    chunks = documents[::max(1, len(documents) // n_chunks)][:n_chunks]
    recipe = BART_RECIPE
    g = torch.Generator().manual_seed(seed)
    model.eval()
    ours = copy = ours_kept = copy_kept = length = 0
    for start in range(0, len(chunks), 32):
        batch = noisy_batch(chunks[start:start + 32], recipe, g)
        out = generate(model, batch["input_ids"], recipe["max_tokens"] + 8, attention_mask=batch["attention_mask"],
                       num_beams=num_beams, no_repeat_ngram_size=no_repeat_ngram_size,
                       eos_token_id=model.eos_token_id, pad_token_id=model.pad_token_id)
        for source, target, mask, output in zip(batch["input_ids"], chunks[start:start + 32],
                                                batch["attention_mask"], out):
            original = target.tolist()
            prediction = [t for t in output.tolist()[1:] if t != model.pad_token_id]  # drop decoder_start
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


def load_tiny_gpt(path: Path | str = TINY_GPT_PATH) -> Decoder:
    """The shipped tiny GPT, in eval mode."""
    return _load(path, lambda config: Decoder(**config), "gpt")


def load_tiny_bart(path: Path | str = TINY_BART_PATH) -> EncoderDecoder:
    """The shipped tiny BART, in eval mode."""
    return _load(path, lambda config: EncoderDecoder(**config), "bart")


def evaluate_gpt(model: Decoder, split: str = "test") -> dict:
    """Perplexity on a split's plays, beside a bigram model of the training plays (its weight tuned on validation)."""
    train_stream, held_out = gpt_stream("train"), gpt_stream(split)
    lam = _bigram_lambda(model.vocab_size)
    return {"split": split, "perplexity": perplexity(model, held_out),
            "bigram_perplexity": bigram_perplexity(train_stream, held_out, model.vocab_size, lam),
            "bigram_lambda": lam, "n_tokens": len(held_out)}


@lru_cache(maxsize=None)
def _bigram_lambda(vocab_size: int) -> float:
    """The bigram model's interpolation weight with the lowest perplexity on the validation plays."""
    train_stream, validation = gpt_stream("train"), gpt_stream("validation")
    return min((0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
               key=lambda lam: bigram_perplexity(train_stream, validation, vocab_size, lam))


def pretrain_gpt(out: Path = TINY_GPT_PATH, **recipe) -> dict:
    """Pre-train the tiny GPT on next-token prediction over the training plays; write checkpoint and card."""
    recipe = {**GPT_RECIPE, **recipe}
    generator = set_seed(recipe["seed"])
    model = Decoder(**TINY_GPT_CONFIG, dropout=recipe["dropout"])
    batches = gpt_batches(gpt_stream("train"), recipe["batch_size"], recipe["block_size"], generator)
    start = time.perf_counter()
    history = train(model, batches, lm_loss, steps=recipe["steps"], lr=recipe["lr"], progress=True)
    minutes = (time.perf_counter() - start) / 60
    card = _card(TINY_GPT_CONFIG, recipe, minutes, history,
                 {s: evaluate_gpt(model, s) for s in ("validation", "test")})
    _save(model, out, TINY_GPT_CONFIG, card, "tiny GPT (next-token prediction)", "gpt", history)
    return card


def pretrain_bart(out: Path = TINY_BART_PATH, **recipe) -> dict:
    """Pre-train the tiny BART on text infilling over the training plays; write checkpoint and card."""
    recipe = {**BART_RECIPE, **recipe}
    generator = set_seed(recipe["seed"])
    model = EncoderDecoder(**TINY_BART_CONFIG, dropout=recipe["dropout"])
    chunks = bart_documents("train", recipe["max_tokens"])
    order = torch.randint(len(chunks), (recipe["steps"], recipe["batch_size"]), generator=generator)
    batches = (noisy_batch([chunks[i] for i in row.tolist()], recipe, generator) for row in order)
    start = time.perf_counter()
    history = train(model, batches, denoising_loss, steps=recipe["steps"], lr=recipe["lr"], progress=True)
    minutes = (time.perf_counter() - start) / 60
    card = _card(TINY_BART_CONFIG, recipe, minutes, history, bart_metrics(model))
    _save(model, out, TINY_BART_CONFIG, card, "tiny BART (text infilling)", "bart", history)
    return card


def bart_metrics(model: EncoderDecoder) -> dict:
    """The model card's held-out figures: greedy and beam-search reconstructions of every validation and test document."""
    return {f"{split}{suffix}": evaluate_bart(model, split, n_chunks=None, num_beams=beams)
            for suffix, beams in (("", 1), (f"_beam{BART_BEAMS}", BART_BEAMS)) for split in ("validation", "test")}


def _card(config: dict, recipe: dict, minutes: float, history: list[float], metrics: dict, **extra) -> dict:
    """What the model card and the checkpoint's metadata record: config, recipe, training time (evaluation excluded)."""
    return {"config": config, "recipe": recipe, **extra, "wall_minutes": round(minutes, 1),
            "threads": torch.get_num_threads(), "final_loss": round(sum(history[-100:]) / len(history[-100:]), 4),
            "metrics": metrics}


def _model_card(title: str, command: str, card: dict, history: list[float]) -> str:
    """The model card: what was trained, how, how long, and how well it does on held-out plays."""
    every = max(1, len(history) // 10)
    curve = ", ".join(f"{i}: {sum(history[i:i + every]) / len(history[i:i + every]):.3f}"
                      for i in range(0, len(history), every))
    lines = [f"# {title}", "", f"Written by `python -m course_utils.pretrain {command}` on the training plays of "
             "`course_utils.data`.", "",
             f"- config: `{json.dumps(card['config'])}`", f"- recipe: `{json.dumps(card['recipe'])}`"]
    if "n_instances" in card:
        lines.append(f"- training instances: {card['n_instances']}")
    lines += [f"- wall time: {card['wall_minutes']} min on {card['threads']} CPU threads",
              f"- loss (mean over the last 100 steps): {card['final_loss']}",
              f"- loss curve (mean per tenth of training): {curve}",
              f"- held-out metrics: `{json.dumps(card['metrics'])}`", ""]
    return "\n".join(lines)


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
