"""Self-supervised objectives: the transformation T of the lecture that turns raw text D into (x~, y~) pairs.

- Word2Vec skip-gram with negative sampling, as word2vec.c does it: x~ = (w, C+) -> 1 or (w, C-) -> 0.
- BERT's masked language modelling (15% of tokens; 80% [MASK], 10% random, 10% kept), as transformers does it.
- BERT's next sentence prediction pairs, as Google's create_pretraining_data.py builds them.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_positive_int, check_tensor

IGNORE_INDEX = -100  # labels of positions outside the loss (CrossEntropyLoss's default ignore_index)
IS_NEXT, IS_RANDOM = 0, 1  # BERT's NSP labels; the lecture's eq. (5) writes 1 for "follows": the reverse


def _check_probability(name: str, p) -> None:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {p!r}")


# ------------------------------------------------------------------ Word2Vec (skip-gram, negative sampling)


class Vocab(NamedTuple):
    itos: list[str]  # index -> word, most frequent first
    counts: torch.Tensor  # (V,) occurrences in the training text

    @property
    def stoi(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.itos)}


def build_vocab(sentences: Sequence[Sequence[str]], min_count: int = 5) -> Vocab:
    """Words seen at least min_count times, most frequent first (ties in first-seen order)."""
    check_positive_int("min_count", min_count)
    counts = Counter(w for sentence in sentences for w in sentence)
    words = [w for w, c in counts.most_common() if c >= min_count]
    if not words:
        raise ValueError(f"no word occurs at least min_count={min_count} times")
    return Vocab(words, torch.tensor([counts[w] for w in words]))


def keep_probability(counts: torch.Tensor, sample: float = 1e-3) -> torch.Tensor:
    """word2vec.c's subsampling: keep = (sqrt(c / (s N)) + 1) (s N) / c, so frequent words are dropped more."""
    threshold = sample * counts.sum()
    return ((counts / threshold).sqrt() + 1) * threshold / counts


def skipgram_pairs(
    sentences: torch.Tensor | Sequence[torch.Tensor],
    keep: torch.Tensor,
    window: int = 5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(center, context) pairs of word ids: subsample, then a radius uniform in 1..window around each kept word.

    `sentences` is one sentence (a 1-D tensor of ids) or a list of them, done in one call; no window reaches
    across two sentences. keep[id] is the probability of keeping a word (keep_probability).
    """
    check_positive_int("window", window)
    if isinstance(sentences, torch.Tensor):
        sentences = [sentences]
    stream = torch.cat(list(sentences)) if len(sentences) else torch.zeros(0, dtype=torch.long)  # (N,)
    sentence_of = torch.arange(len(sentences)).repeat_interleave(torch.tensor([len(x) for x in sentences]))
    kept = keep[stream] >= torch.rand(len(stream), generator=generator)  # subsampling, before the windows
    stream, sentence_of = stream[kept], sentence_of[kept]
    radius = window - torch.randint(window, (len(stream),), generator=generator)  # dynamic window b
    position = torch.arange(len(stream))
    centers, contexts = [], []
    for offset in range(-window, window + 1):  # every context position c = pos + offset within the radius
        context = position + offset
        inside = (context >= 0) & (context < len(stream))
        same = sentence_of[context.clamp(0, max(len(stream) - 1, 0))] == sentence_of  # same sentence only
        ok = (offset != 0) & (abs(offset) <= radius) & inside & same
        centers.append(position[ok])
        contexts.append(context[ok])
    order = torch.cat(centers).argsort(stable=True)  # pairs grouped by center, contexts left to right
    return stream[torch.cat(centers)[order]], stream[torch.cat(contexts)[order]]


def sample_negatives(
    targets: torch.Tensor, counts: torch.Tensor, k: int = 5, power: float = 0.75,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """K noise words per target from unigram^0.75; returns (negatives (N, K), use (N, K)).

    As in word2vec.c a draw equal to the positive target is skipped, not redrawn: `use` is False there.
    """
    noise = counts.double() ** power
    negatives = torch.multinomial(noise / noise.sum(), len(targets) * k, replacement=True, generator=generator)
    negatives = negatives.view(len(targets), k)
    return negatives, negatives != targets[:, None]


class SkipGram(nn.Module):
    """Word2Vec's two tables: input vectors (syn0, the word vectors kept) and output vectors (syn1neg)."""

    def __init__(self, vocab_size: int, dim: int = 100):
        super().__init__()
        self.inp = nn.Embedding(vocab_size, dim)
        self.out = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.inp.weight, -0.5 / dim, 0.5 / dim)  # word2vec.c's initialisation
        nn.init.zeros_(self.out.weight)

    def forward(self, words: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
        """Logits of P(y~ = 1 | w, C): the dot product of the context's input and the word's output vectors."""
        return (self.inp(contexts) * self.out(words)).sum(-1)


def sgns_loss(
    model: SkipGram, centers: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor, use: torch.Tensor
) -> torch.Tensor:
    """-log sigma(u_w . v_c) - sum_k log sigma(-u_k . v_c), averaged over pairs (word2vec.c's orientation)."""
    positive = F.logsigmoid(model(centers, contexts))  # (N,): (w, C+) -> 1
    negative = F.logsigmoid(-model(negatives, contexts[:, None].expand_as(negatives)))  # (N, K): (w', C) -> 0
    return -(positive + (negative * use).sum(-1)).mean()


# ------------------------------------------------------------------ BERT: masked language modelling


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    special_token_ids: Sequence[int],
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption, as transformers' DataCollatorForLanguageModeling: returns (inputs, labels).

    Each non-special token is selected with probability mlm_probability; a selected token becomes [MASK] (80%),
    a random id in [0, vocab_size) (10%) or stays (10%). labels hold the original id where selected, -100 elsewhere.
    The random draws are made in the collator's order, so the same seed gives the same result.
    """
    check_tensor("input_ids", input_ids, ndim_min=1)
    if input_ids.is_floating_point():
        raise TypeError(f"input_ids must be an integer tensor, got dtype {input_ids.dtype}")
    _check_probability("mlm_probability", mlm_probability)
    check_positive_int("vocab_size", vocab_size)
    if not 0 <= mask_token_id < vocab_size:
        raise ValueError(f"mask_token_id must lie in [0, vocab_size={vocab_size}), got {mask_token_id}")
    specials = torch.as_tensor(list(special_token_ids), dtype=torch.long)
    if mask_token_id not in specials.tolist():
        raise ValueError(f"special_token_ids must include mask_token_id={mask_token_id}, got {specials.tolist()}")

    inputs, labels = input_ids.clone(), input_ids.clone()
    probability = torch.full(labels.shape, float(mlm_probability))
    probability.masked_fill_(torch.isin(input_ids, specials), 0.0)  # [CLS], [SEP], [PAD], ... never selected
    selected = torch.bernoulli(probability, generator=generator).bool()
    labels[~selected] = IGNORE_INDEX
    replaced = torch.bernoulli(torch.full(labels.shape, 0.8), generator=generator).bool() & selected
    inputs[replaced] = mask_token_id
    randomised = torch.bernoulli(torch.full(labels.shape, 0.5), generator=generator).bool() & selected & ~replaced
    random_words = torch.randint(vocab_size, labels.shape, dtype=torch.long, generator=generator)
    inputs[randomised] = random_words[randomised]
    return inputs, labels


# ------------------------------------------------------------------ BERT: next sentence prediction


class NSPInstance(NamedTuple):
    input_ids: list[int]  # [CLS] A [SEP] B [SEP]
    token_type_ids: list[int]  # 0 for [CLS] A [SEP], 1 for B [SEP]
    label: int  # IS_NEXT (0) or IS_RANDOM (1)


def truncate_seq_pair(a: list[int], b: list[int], max_num_tokens: int, rng: random.Random) -> None:
    """Trim the longer of a, b (b on ties) until they fit, from the front or the back at random (in place)."""
    while len(a) + len(b) > max_num_tokens:
        longer = a if len(a) > len(b) else b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def nsp_instances(
    documents: Sequence[Sequence[Sequence[int]]],
    doc_index: int,
    *,
    cls_id: int,
    sep_id: int,
    max_seq_length: int = 128,
    short_seq_prob: float = 0.1,
    rng: random.Random,
) -> list[NSPInstance]:
    """Google BERT's create_instances_from_document: NSP pairs from one document (a list of tokenised segments).

    Segments are gathered until a target length; A is a random prefix of them; B is the rest (IS_NEXT) or, half
    the time, a stretch of another document (IS_RANDOM), in which case the unused segments are put back.
    """
    if not 0 <= doc_index < len(documents):
        raise ValueError(f"doc_index must lie in [0, {len(documents)}), got {doc_index}")
    check_positive_int("max_seq_length", max_seq_length, minimum=5)
    _check_probability("short_seq_prob", short_seq_prob)
    for d, doc in enumerate(documents):
        if not doc or not all(len(segment) for segment in doc):
            raise ValueError(f"documents[{d}] must be a non-empty list of non-empty segments, got {doc!r:.80}")
    document = documents[doc_index]
    max_num_tokens = max_seq_length - 3  # room for [CLS], [SEP], [SEP]
    target = rng.randint(2, max_num_tokens) if rng.random() < short_seq_prob else max_num_tokens

    instances, chunk, length, i = [], [], 0, 0
    while i < len(document):
        chunk.append(list(document[i]))
        length += len(document[i])
        if i == len(document) - 1 or length >= target:
            if chunk:
                a_end = 1 if len(chunk) == 1 else rng.randint(1, len(chunk) - 1)
                a = [t for segment in chunk[:a_end] for t in segment]
                if len(chunk) == 1 or rng.random() < 0.5:
                    label, b = IS_RANDOM, []
                    for _ in range(10):  # a different document, if there is one
                        r = rng.randint(0, len(documents) - 1)
                        if r != doc_index:
                            break
                    other = documents[r]
                    for segment in other[rng.randint(0, len(other) - 1):]:
                        b.extend(segment)
                        if len(b) >= target - len(a):
                            break
                    i -= len(chunk) - a_end  # put the unused segments back
                else:
                    label, b = IS_NEXT, [t for segment in chunk[a_end:] for t in segment]
                truncate_seq_pair(a, b, max_num_tokens, rng)  # a and b keep at least one token each
                ids = [cls_id, *a, sep_id, *b, sep_id]
                types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
                instances.append(NSPInstance(ids, types, label))
            chunk, length = [], 0
        i += 1
    return instances
