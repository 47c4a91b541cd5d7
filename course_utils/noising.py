"""BART's noising, as fairseq's DenoisingDataset does it: x~ = the corrupted document, y~ = the document.

Text infilling, token masking and deletion, sentence permutation and document rotation. Each is a random DRAW
(a public function that reads only the torch.Generator it is given) followed by a deterministic TRANSFORM, so
that an exercise can hand a student the very draw the reference makes. Then the loss that trains the model to
undo the noise, and the decoder input of teacher forcing (`shift_tokens_right`).

A document is a 1-D LongTensor that starts with <s> and ends with </s>; neither is ever corrupted.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._validate import (
    check_float, check_generator, check_ids, check_instance, check_int, check_int_tensor, check_probability,
    check_tensor,
)

PMF_CUTOFF = 1e-7  # fairseq's Poisson pmf stops at the first k whose probability is below this (or at k = 127)
POISSON_LAMBDA_MIN = 0.01  # below it a budget takes hundreds of rounds of draws: refused, as fairseq would hang
MAX_TOKENS = 2**20  # documents, budgets and lengths of at most this many tokens (more would not fit in memory)
MAX_ROUNDS = 10_000  # rounds of draws at most; at lambda >= 0.01 needing more has probability < e^-100


def _check_document(tokens) -> None:
    check_tensor("tokens", tokens, ndim=1)
    if tokens.dtype != torch.long:
        raise TypeError(f"tokens must be a LongTensor, got dtype {tokens.dtype}")
    if len(tokens) < 2:
        raise ValueError(f"tokens must hold at least <s> and </s> (length >= 2), got length {len(tokens)}")



def check_poisson_lambda(poisson_lambda) -> None:
    """Raise unless the mean span length is in [0.01, -ln(1e-7) = 16.1]: fairseq's pmf needs P(0) >= 1e-7."""
    check_float("poisson_lambda", poisson_lambda)
    if not POISSON_LAMBDA_MIN <= poisson_lambda <= -math.log(PMF_CUTOFF):
        raise ValueError(f"poisson_lambda must be in [{POISSON_LAMBDA_MIN}, -ln(1e-7) = 16.1], got {poisson_lambda}")


def _num_to_mask(n_words: int, ratio: float) -> int:
    """ceil(ratio * n_words), in float32 as fairseq computes it: 50 * 0.3 -> 16."""
    return math.ceil((torch.tensor(float(n_words)) * ratio).item())


# ------------------------------------------------------------------ the draws


def poisson_pmf(poisson_lambda: float) -> torch.Tensor:
    """P(k) of Poisson(lambda) for k = 0, 1, ... up to the first k with P(k) < 1e-7 or k = 127 (float32, fairseq)."""
    check_poisson_lambda(poisson_lambda)
    pmf = []
    for k in range(128):
        pmf.append(math.exp(-poisson_lambda) * poisson_lambda**k / math.factorial(k))
        if pmf[-1] < PMF_CUTOFF:
            break
    return torch.tensor(pmf)  # float32, as fairseq's Categorical


def draw_span_lengths(num_to_mask: int, poisson_lambda: float, generator: torch.Generator | None = None
                      ) -> torch.Tensor:
    """Span lengths ~ Poisson(lambda), zeros included, drawn num_to_mask at a time until their sum reaches num_to_mask.

    The raw draw of poisson_span_lengths, before `cut_to_budget`. At most MAX_ROUNDS rounds (a ValueError then).
    """
    check_int("num_to_mask", num_to_mask, 1, MAX_TOKENS)
    check_generator(generator)
    pmf = poisson_pmf(poisson_lambda)
    rounds, total = [], 0
    while total < num_to_mask:
        if len(rounds) == MAX_ROUNDS:
            raise ValueError(f"{MAX_ROUNDS} rounds of Poisson({poisson_lambda}) span lengths did not reach "
                             f"num_to_mask={num_to_mask}: use a larger poisson_lambda")
        rounds.append(torch.multinomial(pmf, num_to_mask, replacement=True, generator=generator))
        total += int(rounds[-1].sum())
    return torch.cat(rounds)


def cut_to_budget(lengths: torch.Tensor, num_to_mask: int) -> torch.Tensor:
    """The lengths up to the first whose running sum reaches num_to_mask, that one shortened to meet it exactly."""
    check_int_tensor("lengths", lengths, ndim=1, low=0)
    check_int("num_to_mask", num_to_mask, 1)
    if int(lengths.sum()) < num_to_mask:
        raise ValueError(f"lengths must sum to num_to_mask={num_to_mask} or more, got {int(lengths.sum())}")
    cum_length = lengths.cumsum(0)
    i = int((cum_length < num_to_mask).sum())  # the first span that reaches the budget
    kept = lengths[: i + 1].clone()
    kept[i] = num_to_mask - (cum_length[i - 1] if i > 0 else 0)
    return kept


def poisson_span_lengths(num_to_mask: int, poisson_lambda: float, generator: torch.Generator | None = None
                         ) -> torch.Tensor:
    """Span lengths ~ Poisson(lambda), zeros included, cut so that they sum to exactly num_to_mask (fairseq)."""
    return cut_to_budget(draw_span_lengths(num_to_mask, poisson_lambda, generator), num_to_mask)


def subword_positions(length: int, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """ceil(ratio * (L - 2)) distinct positions among 1..L-2: fairseq's mask_length="subword" (spans of one token)."""
    check_int("length", length, 2, MAX_TOKENS)
    check_probability("ratio", ratio)
    check_generator(generator)
    return 1 + torch.randperm(length - 2, generator=generator)[: _num_to_mask(length - 2, ratio)]


def rotation_offset(length: int, generator: torch.Generator | None = None) -> int:
    """The token at which document_rotation starts the text of a document of `length` tokens: uniform in 1..L-1."""
    check_int("length", length, 2)
    check_generator(generator)
    return int(torch.randint(1, max(1, length - 1) + 1, (1,), generator=generator))


def sentence_bounds(tokens: torch.Tensor, full_stop_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(starts (n,), ends (n,)) of the sentences: an end is a full stop not preceded by another one, the token
    before </s> counts as a full stop; sentence_permutation draws torch.randperm(n) to order them."""
    _check_document(tokens)
    check_int("full_stop_id", full_stop_id, 0)
    full_stops = tokens == full_stop_id  # (L,)
    full_stops[-2] = True
    ends = (full_stops[1:] & ~full_stops[:-1]).nonzero().squeeze(1) + 2  # one past each sentence, (n,)
    return torch.cat([torch.tensor([1]), ends[:-1]]), ends


# ------------------------------------------------------------------ the noising functions


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
    check_int("mask_token_id", mask_token_id, 0)
    check_probability("mask_ratio", mask_ratio)
    check_poisson_lambda(poisson_lambda)
    check_generator(generator)
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
    num_to_mask = _num_to_mask(int(is_word_start.sum()), mask_ratio)
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


def _insert_masks(tokens: torch.Tensor, n: int, mask_token_id: int, generator: torch.Generator | None) -> torch.Tensor:
    """fairseq's add_insertion_noise: n <mask>s at random places between <s> and </s>."""
    positions = 1 + torch.randperm(len(tokens) + n - 2, generator=generator)[:n]
    is_inserted = torch.zeros(len(tokens) + n, dtype=torch.bool)  # (L + n,)
    is_inserted[positions] = True
    result = torch.full((len(tokens) + n,), mask_token_id)
    result[~is_inserted] = tokens
    return result


def token_masking(
    tokens: torch.Tensor, mask_token_id: int, *, ratio: float = 0.15, generator: torch.Generator | None = None
) -> torch.Tensor:
    """BART's token masking: ceil(ratio * (L - 2)) random tokens become <mask> (fairseq: subword, replace_length=1)."""
    _check_document(tokens)
    check_int("mask_token_id", mask_token_id, 0)
    source = tokens.clone()
    source[subword_positions(len(tokens), ratio, generator)] = mask_token_id
    return source


def token_deletion(tokens: torch.Tensor, *, ratio: float = 0.15, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """BART's token deletion: ceil(ratio * (L - 2)) random tokens removed (fairseq: subword, replace_length=0)."""
    _check_document(tokens)
    to_keep = torch.ones(len(tokens), dtype=torch.bool)  # (L,)
    to_keep[subword_positions(len(tokens), ratio, generator)] = False
    return tokens[to_keep]


def sentence_permutation(tokens: torch.Tensor, full_stop_id: int, *, generator: torch.Generator | None = None
                         ) -> torch.Tensor:
    """BART's sentence permutation: all sentences shuffled (fairseq's permute_sentences with p = 1).

    Sentences are cut as `sentence_bounds` says; what follows the last sentence end (a run of full stops before
    </s>) stays in place.
    """
    check_generator(generator)
    starts, ends = sentence_bounds(tokens, full_stop_id)  # (n,), (n,)
    if len(ends) == 0:
        return tokens.clone()
    order = torch.randperm(len(ends), generator=generator)
    return torch.cat([tokens[:1], *(tokens[starts[i]:ends[i]] for i in order), tokens[ends[-1]:]])


def document_rotation(tokens: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """BART's document rotation: the text between <s> and </s> starts at a random token (fairseq's rolling noise)."""
    _check_document(tokens)
    offset = rotation_offset(len(tokens), generator)  # in 1..L-1
    return torch.cat([tokens[:1], tokens[offset:-1], tokens[1:offset], tokens[-1:]])


# ------------------------------------------------------------------ the loss: undo the noise


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """The decoder input for teacher forcing: labels (B, L) one step right behind decoder_start, -100 -> pad."""
    check_tensor("labels", labels, ndim=2)
    if labels.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"labels must be an integer tensor (torch.long), got dtype {labels.dtype}")
    check_int("pad_token_id", pad_token_id, 0)
    check_int("decoder_start_token_id", decoder_start_token_id, 0)
    if ((labels < 0) & (labels != -100)).any():
        raise ValueError(f"labels must hold ids >= 0 or -100 (ignored), got {labels[labels < 0].unique().tolist()}")
    shifted = torch.full_like(labels, decoder_start_token_id)  # (B, L)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == -100, pad_token_id)  # -100 marks positions the loss ignores


def denoising_loss(model, batch: dict) -> torch.Tensor:
    """Cross-entropy of the original tokens given the corrupted source and the original's prefix (teacher forcing).

    model is an EncoderDecoder; batch holds input_ids and attention_mask (B, S) and labels (B, T), -100 on padding.
    """
    check_instance("batch", batch, dict)
    missing = sorted({"input_ids", "attention_mask", "labels"} - set(batch))
    if missing:
        raise ValueError(f"batch must hold input_ids, attention_mask and labels (datasets.noisy_batch), "
                         f"missing {missing}")
    config, ids, labels = getattr(model, "config", None), batch["input_ids"], batch["labels"]
    if not hasattr(config, "decoder_start_token_id"):
        raise TypeError(f"model must be an EncoderDecoder (a tiny BART), got {type(model).__name__}")
    check_ids("batch['input_ids']", ids, config.vocab_size)
    check_ids("batch['attention_mask']", batch["attention_mask"], 2, shape=ids.shape)
    check_int_tensor("batch['labels']", labels, ndim=2, low=-100, high=config.vocab_size)
    if len(labels) != len(ids) or ((labels < 0) & (labels != -100)).any() or (labels == -100).all():
        raise ValueError(f"batch['labels'] must hold one row per source row ({len(ids)}) of ids >= 0 or -100 "
                         f"(ignored), at least one not ignored, got shape {tuple(labels.shape)}, values "
                         f"{labels.unique().tolist()[:8]}")
    decoder_input_ids = shift_tokens_right(labels, config.pad_token_id, config.decoder_start_token_id)
    logits = model(batch["input_ids"], decoder_input_ids, batch["attention_mask"]).logits  # (B, L, V)
    return F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())  # -100: cross_entropy's ignore_index
