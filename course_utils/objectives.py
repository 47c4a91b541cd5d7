"""Self-supervised objectives: the transformation T of the lecture that turns raw text D into (x~, y~) pairs,
and the loss that trains a model on them.

- Word2Vec skip-gram with negative sampling, as word2vec.c does it: x~ = (w, C+) -> 1 or (w, C-) -> 0; sgns_loss.
- BERT's masked language modelling (15% of tokens; 80% [MASK], 10% random, 10% kept), as transformers does it.
- BERT's next sentence prediction pairs, as Google's create_pretraining_data.py builds them; mlm_nsp_loss.
- GPT's next-token prediction: lm_loss.
BART's noising and its loss live in `course_utils.noising`. A model argument is duck-typed (this module sits
below `models`).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import (
    check_finite, check_float, check_generator, check_ids, check_instance, check_int, check_int_tensor,
    check_positive, check_probability, check_tensor,
)
from .data import SPECIAL_TOKENS
from .noising import (  # noqa: F401  re-exported for one release: moved to course_utils.noising
    document_rotation, poisson_span_lengths, sentence_permutation, text_infilling, token_deletion, token_masking,
)

IGNORE_INDEX = -100  # labels of positions outside the loss (CrossEntropyLoss's default ignore_index)
IS_NEXT, IS_RANDOM = 0, 1  # BERT's NSP labels; the lecture's eq. (5) writes 1 for "follows": the reverse
MAX_VOCAB = 2**20  # vocabulary sizes above it are refused (the tables would not fit in memory)
MAX_WINDOW = 10_000  # skipgram_pairs' window at most (word2vec.c's default is 5)
MAX_NEGATIVES = 1_000  # sample_negatives' k at most (word2vec.c uses 5 to 20)


# ------------------------------------------------------------------ Word2Vec (skip-gram, negative sampling)


class Vocab(NamedTuple):
    itos: list[str]  # index -> word, most frequent first
    counts: torch.Tensor  # (V,) occurrences in the training text

    @property
    def stoi(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.itos)}


def build_vocab(sentences: Sequence[Sequence[str]], min_count: int = 5) -> Vocab:
    """Words seen at least min_count times, most frequent first (ties in first-seen order)."""
    if isinstance(sentences, (str, torch.Tensor)) or not isinstance(sentences, Sequence):
        raise TypeError(f"sentences must be a list of sentences, got {type(sentences).__name__}")
    for k, sentence in enumerate(sentences):
        is_words = isinstance(sentence, Sequence) and not isinstance(sentence, str)
        if not (is_words and all(isinstance(w, str) for w in sentence)):
            raise TypeError(f"sentences[{k}] must be a list of words (str), got {sentence!r:.60}")
    check_int("min_count", min_count, 1)
    counts = Counter(w for sentence in sentences for w in sentence)
    words = [w for w, c in counts.most_common() if c >= min_count]
    if not words:
        raise ValueError(f"sentences must hold a word that occurs at least min_count={min_count} times, got none")
    return Vocab(words, torch.tensor([counts[w] for w in words]))


def keep_probability(counts: torch.Tensor, sample: float = 1e-3) -> torch.Tensor:
    """word2vec.c's subsampling: keep = (sqrt(c / (s N)) + 1) (s N) / c, so frequent words are dropped more."""
    _check_counts(counts)
    check_positive("sample", sample)
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
    across two sentences. keep[id] is the probability of keeping a word (keep_probability; >= 1: always kept).
    window is at most MAX_WINDOW.
    """
    check_int("window", window, 1, MAX_WINDOW)
    check_tensor("keep", keep, ndim=1, floating=True)
    check_finite("keep", keep)
    if (keep < 0).any():
        raise ValueError(f"keep must hold probabilities >= 0 (>= 1: always kept), got {keep.min().item()}")
    check_generator(generator)
    if isinstance(sentences, torch.Tensor):
        sentences = [sentences]
    check_instance("sentences", sentences, (list, tuple), "1-D tensor of ids or a list of them")
    for k, sentence in enumerate(sentences):
        check_int_tensor(f"sentences[{k}]", sentence, ndim=1, low=0, high=len(keep))
    stream = torch.cat(list(sentences)) if len(sentences) else torch.zeros(0, dtype=torch.long)  # (N,)
    lengths = torch.tensor([len(x) for x in sentences], dtype=torch.long)  # long: [] would make a float tensor
    sentence_of = torch.arange(len(sentences)).repeat_interleave(lengths)
    kept = keep[stream] >= torch.rand(len(stream), generator=generator)  # subsampling, before the windows
    stream, sentence_of = stream[kept], sentence_of[kept]
    radius = window - torch.randint(window, (len(stream),), generator=generator)  # dynamic window b
    position = torch.arange(len(stream))
    centers, contexts = [], []
    reach = min(window, len(stream))  # farther offsets fall outside the stream: the same pairs, in bounded time
    for offset in range(-reach, reach + 1):  # every context position c = pos + offset within the radius
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
    _check_counts(counts)
    check_int_tensor("targets", targets, ndim=1, low=0, high=len(counts))
    check_int("k", k, 1, MAX_NEGATIVES)
    check_float("power", power)
    if power < 0 and (counts == 0).any():
        raise ValueError(f"power must be >= 0 when counts hold a zero (0 ** power is inf), got power={power}")
    check_generator(generator)
    noise = counts.double() ** power
    negatives = torch.multinomial(noise / noise.sum(), len(targets) * k, replacement=True, generator=generator)
    negatives = negatives.view(len(targets), k)
    return negatives, negatives != targets[:, None]


class SkipGram(nn.Module):
    """Word2Vec's two tables: input vectors (syn0, the word vectors kept) and output vectors (syn1neg)."""

    def __init__(self, vocab_size: int, dim: int = 100):
        super().__init__()
        check_int("vocab_size", vocab_size, 1, MAX_VOCAB)
        check_int("dim", dim, 1, 2**14)
        self.inp = nn.Embedding(vocab_size, dim)
        self.out = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.inp.weight, -0.5 / dim, 0.5 / dim)  # word2vec.c's initialisation
        nn.init.zeros_(self.out.weight)

    def forward(self, words: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
        """Logits of P(y~ = 1 | w, C): the dot product of the context's input and the word's output vectors."""
        self._check_inputs(words, contexts)
        return (self.inp(contexts) * self.out(words)).sum(-1)

    def _check_inputs(self, words: torch.Tensor, contexts: torch.Tensor) -> None:
        vocab_size = self.inp.num_embeddings
        check_int_tensor("words", words, low=0, high=vocab_size)
        check_int_tensor("contexts", contexts, low=0, high=vocab_size)
        if words.shape != contexts.shape:
            raise ValueError(f"words and contexts must have the same shape, got {tuple(words.shape)} "
                             f"and {tuple(contexts.shape)}")


def sgns_loss(
    model: SkipGram, centers: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor, use: torch.Tensor
) -> torch.Tensor:
    """-log sigma(u_w . v_c) - sum_k log sigma(-u_k . v_c), averaged over pairs (word2vec.c's orientation).

    centers and contexts (N,), negatives (N, K) and use (N, K) as sample_negatives returns them.
    """
    check_instance("model", model, SkipGram)
    vocab_size = model.inp.num_embeddings
    check_int_tensor("centers", centers, ndim=1, low=0, high=vocab_size)
    check_int_tensor("contexts", contexts, ndim=1, low=0, high=vocab_size)
    check_int_tensor("negatives", negatives, ndim=2, low=0, high=vocab_size)
    check_tensor("use", use, ndim=2)
    if contexts.shape != centers.shape or negatives.shape[0] != len(centers) or use.shape != negatives.shape:
        raise ValueError(f"centers and contexts must be (N,), negatives and use (N, K), got {tuple(centers.shape)}, "
                         f"{tuple(contexts.shape)}, {tuple(negatives.shape)} and {tuple(use.shape)}")
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
    check_int("vocab_size", vocab_size, 1, MAX_VOCAB)
    check_int_tensor("input_ids", input_ids, ndim_min=1, low=0, high=vocab_size)
    check_probability("mlm_probability", mlm_probability)
    check_int("mask_token_id", mask_token_id)
    if not 0 <= mask_token_id < vocab_size:
        raise ValueError(f"mask_token_id must lie in [0, vocab_size={vocab_size}), got {mask_token_id}")
    check_generator(generator)
    if isinstance(special_token_ids, (str, bytes)) or not hasattr(special_token_ids, "__iter__"):
        raise TypeError(f"special_token_ids must be a list of ints, got {special_token_ids!r:.60}")
    specials = special_token_ids.tolist() if isinstance(special_token_ids, torch.Tensor) else list(special_token_ids)
    for k, i in enumerate(specials):
        check_int(f"special_token_ids[{k}]", i, 0, vocab_size - 1)
    specials = torch.tensor(specials, dtype=torch.long)
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
    check_instance("a", a, list)
    check_instance("b", b, list)
    check_int("max_num_tokens", max_num_tokens, 0)
    check_instance("rng", rng, random.Random, "random.Random")
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
    if isinstance(documents, (str, bytes, torch.Tensor)) or not isinstance(documents, Sequence):
        raise TypeError(f"documents must be a list of documents (lists of segments of ids), got {documents!r:.60}")
    check_int("doc_index", doc_index)
    if not 0 <= doc_index < len(documents):
        raise ValueError(f"doc_index must lie in [0, {len(documents)}), got {doc_index}")
    check_int("cls_id", cls_id, 0)
    check_int("sep_id", sep_id, 0)
    check_int("max_seq_length", max_seq_length, 5)
    check_probability("short_seq_prob", short_seq_prob)
    check_instance("rng", rng, random.Random, "random.Random")
    for d, doc in enumerate(documents):
        if isinstance(doc, str) or not isinstance(doc, Sequence) or d == doc_index and not all(map(_is_ids, doc)):
            raise TypeError(f"documents[{d}] must be a list of segments (lists of int token ids >= 0), got {doc!r:.80}")
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
                if not _is_ids(b):
                    raise TypeError(f"documents[{r}] must hold segments of int token ids >= 0, got {b!r:.80}")
                truncate_seq_pair(a, b, max_num_tokens, rng)  # a and b keep at least one token each
                ids = [cls_id, *a, sep_id, *b, sep_id]
                types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
                instances.append(NSPInstance(ids, types, label))
            chunk, length = [], 0
        i += 1
    return instances


# ------------------------------------------------------------------ the losses of BERT and GPT


def bert_masking(input_ids: torch.Tensor, vocab_size: int, generator: torch.Generator | None = None):
    """BERT's 15% / 80-10-10 corruption with our WordPiece tokenizer's [MASK] and special ids: (inputs, labels)."""
    return mask_tokens(input_ids, mask_token_id=SPECIAL_TOKENS.index("[MASK]"), vocab_size=vocab_size,
                       special_token_ids=range(len(SPECIAL_TOKENS)), generator=generator)


def mlm_nsp_loss(model, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
    """BERT's pre-training loss: MLM cross-entropy on the selected positions + NSP cross-entropy (eq. 5).

    model is an EncoderForPreTraining; batch holds input_ids, token_type_ids, attention_mask (B, L) and
    next_sentence_label (B,), as datasets.collate makes it.
    """
    check_instance("batch", batch, dict)
    missing = sorted({"input_ids", "token_type_ids", "attention_mask", "next_sentence_label"} - set(batch))
    if missing:
        raise ValueError(f"batch must hold input_ids, token_type_ids, attention_mask and next_sentence_label "
                         f"(datasets.collate), missing {missing}")
    if not all(hasattr(model, a) for a in ("encoder", "mlm", "nsp", "pooler")):
        raise TypeError(f"model must be an EncoderForPreTraining (encoder + heads), got {type(model).__name__}")
    config, ids = model.encoder.config, batch["input_ids"]
    check_ids("batch['input_ids']", ids, config.vocab_size)
    check_ids("batch['token_type_ids']", batch["token_type_ids"], config.type_vocab_size, shape=ids.shape)
    check_ids("batch['attention_mask']", batch["attention_mask"], 2, shape=ids.shape)
    check_int_tensor("batch['next_sentence_label']", batch["next_sentence_label"], ndim=1, low=0, high=2)
    if len(batch["next_sentence_label"]) != len(ids):
        raise ValueError(f"batch['next_sentence_label'] must hold one label per row of batch['input_ids'] "
                         f"({len(ids)}), got {len(batch['next_sentence_label'])}")
    inputs, labels = bert_masking(ids, config.vocab_size, generator)
    out = model.encoder(inputs, batch["token_type_ids"], batch["attention_mask"])
    selected = labels != IGNORE_INDEX  # only the masked positions go through the (V-wide) MLM head
    mlm = F.cross_entropy(model.mlm(out.last_hidden_state[selected]), labels[selected]) if selected.any() else 0.0
    nsp = F.cross_entropy(model.nsp(model.pooler(out.last_hidden_state)), batch["next_sentence_label"])
    return mlm + nsp


def lm_loss(model, batch: torch.Tensor) -> torch.Tensor:
    """The factorised likelihood's loss: -log p(w_t | w_<t), averaged over the batch's positions.

    model is a Decoder; batch (B, L + 1) holds windows of ids: the model reads [:, :-1] and predicts [:, 1:].
    """
    config = getattr(model, "config", None)
    if not hasattr(config, "causal"):
        raise TypeError(f"model must be a language model (a course_utils Decoder), got {type(model).__name__}")
    check_int_tensor("batch", batch, ndim=2, low=0, high=config.vocab_size)
    if not 2 <= batch.shape[1] <= config.max_len + 1:
        raise ValueError(f"batch must hold windows of at least 2 and at most max_len + 1 = {config.max_len + 1} "
                         f"tokens, got shape {tuple(batch.shape)}")
    logits = model(batch[:, :-1]).logits  # (B, L, V)
    return F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())


def _check_counts(counts) -> None:
    check_tensor("counts", counts, ndim=1)
    check_finite("counts", counts)
    if (counts < 0).any():
        raise ValueError(f"counts must be >= 0, got a minimum of {counts.min().item()}")
    if not counts.sum() > 0:
        raise ValueError("counts must hold at least one positive count, got all zeros")


def _is_ids(segment) -> bool:
    """Whether a segment is a list (or tuple) of Python int token ids >= 0 (the other documents: when B is drawn)."""
    return isinstance(segment, (list, tuple)) and set(map(type, segment)) <= {int} and min(segment, default=0) >= 0
