"""From the corpus to batches: what each model of the course reads, built from the plays of a split.

- BERT: one document per play, one segment per speech; NSP instances; `collate` pads them into a batch.
- GPT: a split as one stream of BPE ids; random windows of it (nanoGPT's get_batch).
- BART: runs of whole sentences, and `noisy_batch`, the text-infilled source beside the original.
- Fine-tuning: `Passage`s of consecutive speeches, as written or with their words shuffled (a tiny CoLA: is this
  word order English?); `encode` makes model inputs.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Sequence

import torch

from ._validate import check_choice, check_instance, check_int, check_int_tensor, check_seed, pad_batch
from .data import (
    BPE_SPECIAL_TOKENS, GENRES, SPECIAL_TOKENS, SPLIT_NAMES, Play, _bpe_starts_word, bpe_word_starts, check_tokenizer,
    load_bpe, load_plays, load_wordpiece,
)
from .noising import check_poisson_lambda, text_infilling
from .objectives import IGNORE_INDEX, NSPInstance, nsp_instances

BART_MAX_TOKENS = 64  # the tiny BART reads and writes runs of at most 64 BPE ids
BART_NOISE = dict(mask_ratio=0.3, poisson_lambda=3.0)  # its text infilling: BART's 30%, spans of Poisson(3) words
MAX_TOKENS = 62  # a passage and [CLS], [SEP] fill the tiny BERT's 64 positions
MIN_TOKENS = 16  # shorter passages (a lone "Ay, my lord.") are dropped: too few words to judge their order
ORDER_LABELS = ("shuffled", "as written")  # the classes of the fine-tuning task, label 0 and label 1
MAX_BATCH = 2**16  # gpt_batches' batch_size at most
PAD_ID, CLS_ID, SEP_ID = (SPECIAL_TOKENS.index(t) for t in ("[PAD]", "[CLS]", "[SEP]"))


def _check_split(split) -> None:
    check_choice("split", split, SPLIT_NAMES)


# ---------------------------------------------------------------- BERT: documents, NSP instances, batches


def bert_documents(split: str, tokenizer=None) -> list[list[list[int]]]:
    """One document per play, one segment per speech ("Speaker: text", as a script prints it), as WordPiece ids.

    The speaker's name is part of the text, as in any play script: it is what tells a reader that B answers A.
    """
    _check_split(split)
    check_tokenizer(tokenizer, "tokenizers")
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
    check_int("dupe_factor", dupe_factor, 1)
    check_seed("seed", seed)
    check_tokenizer(tokenizer, "tokenizers")
    if isinstance(documents, (list, tuple)) and not documents:
        raise ValueError("documents must hold at least one document, got none")
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


def collate(instances: Sequence[NSPInstance], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad a list of NSPInstance to a batch: input_ids, token_type_ids, attention_mask, next_sentence_label."""
    if isinstance(instances, NSPInstance) or not instances or not all(isinstance(x, NSPInstance) for x in instances):
        raise TypeError(f"instances must be a non-empty list of NSPInstance, got {instances!r:.80}")
    check_int("pad_id", pad_id, 0)
    return {
        "input_ids": pad_batch([x.input_ids for x in instances], pad_id),  # (B, L)
        "token_type_ids": pad_batch([x.token_type_ids for x in instances], 0),
        "attention_mask": pad_batch([[1] * len(x.input_ids) for x in instances], 0),
        "next_sentence_label": torch.tensor([x.label for x in instances]),  # (B,)
    }


# ---------------------------------------------------------------- GPT: one stream of tokens, random windows


def gpt_stream(split: str) -> torch.Tensor:
    """A split's plays as one stream of BPE ids: each play is <s>, one "Speaker: text" line per speech, </s>."""
    _check_split(split)
    return _gpt_stream(split).clone()  # a copy: the cached stream stays as tokenised


@lru_cache(maxsize=None)
def _gpt_stream(split: str) -> torch.Tensor:
    """gpt_stream, tokenised once per split and process."""
    tokenizer = load_bpe()  # its template wraps each text in <s> ... </s>
    texts = ["".join(f"{speech.speaker}: {speech.text}\n" for speech in play.speeches) for play in load_plays(split)]
    return torch.tensor([t for text in texts for t in tokenizer.encode(text).ids])


def gpt_batches(stream: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator
                ) -> Iterator[torch.Tensor]:
    """Random windows of block_size + 1 tokens (nanoGPT's get_batch): inputs are [:-1], targets [1:]."""
    check_int_tensor("stream", stream, ndim=1)
    check_int("batch_size", batch_size, 1, MAX_BATCH)
    check_int("block_size", block_size, 1, len(stream) - 2)
    check_instance("generator", generator, torch.Generator)
    return _windows(stream, batch_size, block_size, generator)


def _windows(stream: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator
             ) -> Iterator[torch.Tensor]:
    while True:
        starts = torch.randint(len(stream) - block_size - 1, (batch_size,), generator=generator)
        yield torch.stack([stream[s:s + block_size + 1] for s in starts.tolist()])  # (B, block_size + 1)


# ---------------------------------------------------------------- BART: runs of sentences, noisy batches


def bart_documents(split: str, max_tokens: int = BART_MAX_TOKENS) -> list[torch.Tensor]:
    """Runs of whole consecutive sentences of each play, each run <s> ... </s> of at most max_tokens BPE ids.

    A sentence longer than a run can hold ends the run and is left out: a run cut mid-sentence would teach the
    model that texts stop anywhere, and reward it for inventing an ending the original never had.
    """
    _check_split(split)
    check_int("max_tokens", max_tokens, 3)
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


def noisy_batch(chunks: Sequence[torch.Tensor], recipe: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Text infilling on each chunk: the corrupted chunk is the source, the original the target (labels).

    recipe holds mask_ratio and poisson_lambda (BART_NOISE, or a pre-training recipe).
    """
    if not isinstance(chunks, (list, tuple)) or not chunks:
        raise TypeError(f"chunks must be a non-empty list of 1-D token tensors, got {chunks!r:.80}")
    for k, chunk in enumerate(chunks):
        check_int_tensor(f"chunks[{k}]", chunk, ndim=1, low=0, high=len(_bpe_starts_word()))
        if chunk.dtype != torch.long or len(chunk) < 2:
            raise TypeError(f"chunks[{k}] must be a LongTensor <s> ... </s>, got {chunk.dtype} of length {len(chunk)}")
    check_instance("recipe", recipe, dict)
    missing = sorted({"mask_ratio", "poisson_lambda"} - set(recipe))
    if missing:
        raise ValueError(f"recipe must hold mask_ratio and poisson_lambda, missing {missing}")
    check_poisson_lambda(recipe["poisson_lambda"])
    pad = BPE_SPECIAL_TOKENS.index("<pad>")
    sources = [text_infilling(c, BPE_SPECIAL_TOKENS.index("<mask>"), mask_ratio=recipe["mask_ratio"],
                              poisson_lambda=recipe["poisson_lambda"], word_starts=bpe_word_starts(c),
                              generator=generator) for c in chunks]
    input_ids = pad_batch(sources, pad)  # (B, S)
    labels = pad_batch(chunks, IGNORE_INDEX)  # (B, T)
    return {"input_ids": input_ids, "attention_mask": (input_ids != pad).long(), "labels": labels}


# ---------------------------------------------------------------- fine-tuning: passages, as written or shuffled


@dataclass(frozen=True)
class Passage:
    """Consecutive speeches of one play, as written or with their words shuffled (then label 0, else 1)."""

    play: str
    genre: str
    text: str  # the speeches, one per line; shuffled: the words in a random order, one line
    ids: tuple[int, ...]  # our WordPiece ids, without [CLS] / [SEP]
    shuffled: bool = False

    @property
    def label(self) -> int:
        """The class index in ORDER_LABELS: 0 shuffled, 1 as written."""
        return int(not self.shuffled)


def play_passages(play: Play, max_tokens: int = MAX_TOKENS, min_tokens: int = MIN_TOKENS,
                  tokenizer=None) -> list[Passage]:
    """Cut a play into passages: whole consecutive speeches while they fit in max_tokens WordPiece tokens.

    A speech longer than max_tokens is cut between words into near-equal pieces that fit; passages shorter than
    min_tokens are dropped. Speaker names are left out: the text is what is spoken.
    """
    check_instance("play", play, Play, "course_utils.data.Play")
    _check_lengths(max_tokens, min_tokens)
    check_tokenizer(tokenizer, "tokenizers")
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
    _check_split(split)
    _check_lengths(max_tokens, min_tokens)
    check_seed("seed", seed)
    check_tokenizer(tokenizer, "tokenizers")
    if n is not None:
        check_int("n", n, 1)
    if tokenizer is None:
        pool = list(_split_passages(split, max_tokens, min_tokens))
    else:
        pool = [p for play in load_plays(split) for p in play_passages(play, max_tokens, min_tokens, tokenizer)]
    if n is None:
        return pool
    by_genre = {g: [p for p in pool if p.genre == g] for g in GENRES}
    smallest = min(len(v) for v in by_genre.values())
    if n > smallest * len(GENRES):
        raise ValueError(f"n must be <= {smallest * len(GENRES)} for a balanced sample of the {split} plays, got {n}")
    rng = random.Random(seed)
    for g in GENRES:
        rng.shuffle(by_genre[g])
    extra = rng.sample(GENRES, n % len(GENRES))  # these genres get one passage more
    sample = [p for g in GENRES for p in by_genre[g][: n // len(GENRES) + (g in extra)]]
    rng.shuffle(sample)
    return sample


def word_order_passages(split: str, n: int | None = None, *, seed: int = 0) -> list[Passage]:
    """genre_passages(split, n, seed=seed) with every other passage of the split's pool shuffled: a tiny CoLA.

    Whether a passage is shuffled, and how, depends on the passage alone (its index in the split's pool), never on
    n or seed: a passage is the same example in every sample that holds it, so the samples of one seed stay nested.
    A shuffled passage holds the same words, hence the same WordPiece ids, in another order: only the order tells
    the two classes apart.
    """
    sample = genre_passages(split, n, seed=seed)  # checks split, n and seed
    shuffled = _shuffled_pool(split)
    return [shuffled.get(p, p) for p in sample]


@lru_cache(maxsize=None)
def _shuffled_pool(split: str) -> dict[Passage, Passage]:
    """The shuffled version of every other passage of a split's pool (even indices), by the passage as written."""
    pool = _split_passages(split, MAX_TOKENS, MIN_TOKENS)
    texts = {p: _shuffled_text(p.text, key) for key, p in enumerate(pool) if key % 2 == 0}
    texts = {p: text for p, text in texts.items() if text is not None}
    encodings = load_wordpiece().encode_batch(list(texts.values()), add_special_tokens=False)
    return {p: Passage(p.play, p.genre, text, tuple(enc.ids[:MAX_TOKENS]), shuffled=True)
            for (p, text), enc in zip(texts.items(), encodings)}


def _shuffled_text(text: str, key: int) -> str | None:
    """The words of text (whitespace-separated, punctuation attached) in a random order seeded by key, on one line;
    None when no other order exists ("Ha ha ha ...": the passage then stays as written)."""
    words, rng = text.split(), random.Random(key)
    if len(set(words)) < 2:
        return None
    order = list(words)
    while order == words:
        rng.shuffle(order)
    return " ".join(order)


def encode(passages: Sequence[Passage], tokenizer=None, max_len: int = 64) -> dict[str, torch.Tensor]:
    """Model inputs: input_ids and attention_mask (N, L) for "[CLS] passage [SEP]", padded; labels (N,).

    tokenizer=None uses the passages' own WordPiece ids (the tiny BERT); a transformers tokenizer (MiniLM)
    tokenises their text again, truncated to max_len.
    """
    check_passages(passages)
    check_int("max_len", max_len, 3)
    check_tokenizer(tokenizer, "transformers")
    labels = torch.tensor([p.label for p in passages])  # (N,)
    if tokenizer is not None:
        enc = tokenizer([p.text for p in passages], truncation=True, max_length=max_len, padding=True,
                        return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}
    rows = [[CLS_ID, *p.ids[: max_len - 2], SEP_ID] for p in passages]
    return {"input_ids": pad_batch(rows, PAD_ID), "attention_mask": pad_batch([[1] * len(r) for r in rows], 0),
            "labels": labels}  # (N, L), (N, L), (N,)


def check_passages(passages, name: str = "passages") -> None:
    """Raise unless `passages` is a non-empty list of Passage."""
    if isinstance(passages, (str, bytes)) or not isinstance(passages, Sequence):
        raise TypeError(f"{name} must be a list of Passage, got {type(passages).__name__}")
    if not passages:
        raise ValueError(f"{name} must not be empty")
    if not all(isinstance(p, Passage) for p in passages):
        bad = next(p for p in passages if not isinstance(p, Passage))
        raise TypeError(f"{name} must hold Passage objects, got an item of type {type(bad).__name__}")


def _check_lengths(max_tokens: int, min_tokens: int) -> None:
    check_int("max_tokens", max_tokens, 1)
    check_int("min_tokens", min_tokens, 1)
    if min_tokens > max_tokens:
        raise ValueError(f"min_tokens must be <= max_tokens={max_tokens}, got {min_tokens}")
