"""Self-supervised objectives: the transformation T of the lecture that turns raw text D into (x~, y~) pairs.

- Word2Vec skip-gram with negative sampling, as word2vec.c does it: x~ = (w, C+) -> 1 or (w, C-) -> 0.
- BERT's masked language modelling (15% of tokens; 80% [MASK], 10% random, 10% kept), as transformers does it.
- BERT's next sentence prediction pairs, as Google's create_pretraining_data.py builds them.
- BART's noising (text infilling, token masking and deletion, sentence permutation, document rotation), as
  fairseq's DenoisingDataset does it: x~ = the corrupted document, y~ = the document.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_positive_float, check_positive_int, check_tensor

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


# ------------------------------------------------------------------ BART: noising (fairseq's DenoisingDataset)


def _check_document(tokens) -> None:
    check_tensor("tokens", tokens, ndim=1)
    if tokens.dtype != torch.long:
        raise TypeError(f"tokens must be a LongTensor, got dtype {tokens.dtype}")
    if len(tokens) < 2:
        raise ValueError(f"tokens must hold at least <s> and </s> (length >= 2), got length {len(tokens)}")


def _num_to_mask(is_word_start: torch.Tensor, ratio: float) -> int:
    return math.ceil((is_word_start.float().sum() * ratio).item())  # in float32 as fairseq: 50 * 0.3 -> 16


def _subword_positions(tokens: torch.Tensor, ratio: float, generator: torch.Generator | None) -> torch.Tensor:
    """ceil(ratio * (L - 2)) distinct positions among 1..L-2: fairseq's mask_length="subword" (spans of one token)."""
    is_word_start = torch.ones_like(tokens)  # (L,)
    is_word_start[0] = is_word_start[-1] = 0  # <s> and </s> never chosen
    n = _num_to_mask(is_word_start, ratio)
    return 1 + torch.randperm(len(tokens) - 2, generator=generator)[:n]


def _insert_masks(tokens: torch.Tensor, n: int, mask_token_id: int, generator: torch.Generator | None) -> torch.Tensor:
    """fairseq's add_insertion_noise: n <mask>s at random places between <s> and </s>."""
    positions = 1 + torch.randperm(len(tokens) + n - 2, generator=generator)[:n]
    is_inserted = torch.zeros(len(tokens) + n, dtype=torch.bool)  # (L + n,)
    is_inserted[positions] = True
    result = torch.full((len(tokens) + n,), mask_token_id)
    result[~is_inserted] = tokens
    return result


def _check_poisson_lambda(poisson_lambda) -> None:
    check_positive_float("poisson_lambda", poisson_lambda)
    if math.exp(-poisson_lambda) < 1e-7:  # fairseq's pmf would be the single point k = 0: it never ends
        raise ValueError(f"poisson_lambda must be at most -ln(1e-7) = 16.1, got {poisson_lambda}")


def poisson_span_lengths(num_to_mask: int, poisson_lambda: float, generator: torch.Generator | None = None
                         ) -> torch.Tensor:
    """Span lengths ~ Poisson(lambda), zeros included, cut so that they sum to exactly num_to_mask (fairseq).

    The pmf stops at k = 127 or at the first k whose probability is < 1e-7; lengths are drawn num_to_mask at a
    time until they reach the budget, kept up to the first span that reaches it, and that span is shortened.
    """
    check_positive_int("num_to_mask", num_to_mask)
    _check_poisson_lambda(poisson_lambda)
    pmf = []
    for k in range(128):
        pmf.append(math.exp(-poisson_lambda) * poisson_lambda**k / math.factorial(k))
        if pmf[-1] < 1e-7:
            break
    pmf = torch.tensor(pmf)  # float32, as fairseq's Categorical
    lengths = torch.multinomial(pmf, num_to_mask, replacement=True, generator=generator)
    while lengths.sum() < num_to_mask:
        lengths = torch.cat([lengths, torch.multinomial(pmf, num_to_mask, replacement=True, generator=generator)])
    cum_length = lengths.cumsum(0)
    i = int((cum_length < num_to_mask).sum())  # the first span that reaches the budget
    lengths[i] = num_to_mask - (cum_length[i - 1] if i > 0 else 0)
    return lengths[: i + 1]


def text_infilling(
    tokens: torch.Tensor,
    mask_token_id: int,
    *,
    mask_ratio: float = 0.3,
    poisson_lambda: float = 3.0,
    word_starts: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """BART's text infilling: spans of Poisson(lambda) words each become one <mask>; a 0-length span inserts one.

    fairseq's add_whole_word_mask (mask_length="span-poisson", replace_length=1), then add_insertion_noise.
    ceil(mask_ratio * #word starts) words are budgeted; spans start at distinct random word starts, run over
    whole words (up to the next word start), stop before </s> and may overlap (then fewer words are masked).
    word_starts (L,) bool marks the tokens that begin a word (data.bpe_word_starts); by default every token does.
    """
    _check_document(tokens)
    check_positive_int("mask_token_id", mask_token_id, minimum=0)
    _check_probability("mask_ratio", mask_ratio)
    _check_poisson_lambda(poisson_lambda)
    if word_starts is None:
        word_starts = torch.ones_like(tokens, dtype=torch.bool)
    check_tensor("word_starts", word_starts, ndim=1)
    if word_starts.dtype != torch.bool:
        raise TypeError(f"word_starts must be a bool tensor, got dtype {word_starts.dtype}")
    if word_starts.shape != tokens.shape:
        raise ValueError(f"word_starts must have the shape of tokens {tuple(tokens.shape)}, "
                         f"got {tuple(word_starts.shape)}")

    is_word_start = word_starts.long()  # (L,)
    is_word_start[0] = is_word_start[-1] = 0  # <s> and </s> never masked
    num_to_mask = _num_to_mask(is_word_start, mask_ratio)
    if num_to_mask == 0:
        return tokens.clone()
    lengths = poisson_span_lengths(num_to_mask, poisson_lambda, generator)
    num_inserts = int((lengths == 0).sum())
    lengths = lengths[lengths > 0]  # (n_spans,)
    starts = is_word_start.nonzero().squeeze(1)  # (W,)
    indices = starts[torch.randperm(len(starts), generator=generator)[: len(lengths)]]  # (n_spans,)

    source, to_keep = tokens.clone(), torch.ones(len(tokens), dtype=torch.bool)
    source[indices] = mask_token_id  # a span's first token becomes <mask>, the rest of it is deleted
    is_word_start[-1] = 255  # </s> acts as a very long word: no span runs into it
    lengths = lengths - 1  # words still to cover after the current one
    while len(indices):  # step every unfinished span one token on; a new word start uses up one word
        lengths = lengths - is_word_start[indices + 1]
        going = lengths >= 0
        indices, lengths = indices[going] + 1, lengths[going]
        to_keep[indices] = False
    source = source[to_keep]
    if num_inserts == 0:
        return source
    # as fairseq: the count goes through the ratio num_inserts / L, so float rounding may add one more <mask>
    n = math.ceil(len(source) * (num_inserts / len(source)))
    return _insert_masks(source, n, mask_token_id, generator)


def token_masking(
    tokens: torch.Tensor, mask_token_id: int, *, ratio: float = 0.15, generator: torch.Generator | None = None
) -> torch.Tensor:
    """BART's token masking: ceil(ratio * (L - 2)) random tokens become <mask> (fairseq: subword, replace_length=1)."""
    _check_document(tokens)
    check_positive_int("mask_token_id", mask_token_id, minimum=0)
    _check_probability("ratio", ratio)
    source = tokens.clone()
    source[_subword_positions(tokens, ratio, generator)] = mask_token_id
    return source


def token_deletion(tokens: torch.Tensor, *, ratio: float = 0.15, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """BART's token deletion: ceil(ratio * (L - 2)) random tokens removed (fairseq: subword, replace_length=0)."""
    _check_document(tokens)
    _check_probability("ratio", ratio)
    to_keep = torch.ones(len(tokens), dtype=torch.bool)  # (L,)
    to_keep[_subword_positions(tokens, ratio, generator)] = False
    return tokens[to_keep]


def sentence_permutation(tokens: torch.Tensor, full_stop_id: int, *, generator: torch.Generator | None = None
                         ) -> torch.Tensor:
    """BART's sentence permutation: all sentences shuffled (fairseq's permute_sentences with p = 1).

    A sentence ends at a full stop not preceded by another one, and the token before </s> counts as a full stop;
    what follows the last sentence end (a run of full stops before </s>) stays in place.
    """
    _check_document(tokens)
    check_positive_int("full_stop_id", full_stop_id, minimum=0)
    full_stops = tokens == full_stop_id  # (L,)
    full_stops[-2] = True
    ends = (full_stops[1:] & ~full_stops[:-1]).nonzero().squeeze(1) + 2  # one past each sentence, (n,)
    if len(ends) == 0:
        return tokens.clone()
    starts = torch.cat([torch.tensor([1]), ends[:-1]])  # (n,)
    order = torch.randperm(len(ends), generator=generator)
    sentences = [tokens[starts[i]:ends[i]] for i in order]
    return torch.cat([tokens[:1], *sentences, tokens[ends[-1]:]])


def document_rotation(tokens: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """BART's document rotation: the text between <s> and </s> starts at a random token (fairseq's rolling noise)."""
    _check_document(tokens)
    offset = int(torch.randint(1, max(1, len(tokens) - 1) + 1, (1,), generator=generator))  # in 1..L-1
    return torch.cat([tokens[:1], tokens[offset:-1], tokens[1:offset], tokens[-1:]])
