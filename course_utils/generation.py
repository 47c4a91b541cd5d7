"""Decoding, the Inference part of the lecture: greedy, beam search, temperature, top-k and top-p, with a KV cache.

The arg max over all V^L continuations is intractable, so a decoder picks one token at a time:
    greedy       y_t = argmax_v p(v | y_<t)
    sampling     y_t ~ softmax(z_t / T), restricted to the top k tokens, then to the top-p probability mass
    beam search  keep the num_beams best prefixes by sum_t log p(y_t | y_<t), score a finished one by
                 that sum / (new tokens) ** length_penalty

generate() returns the same tokens as transformers' model.generate (5.x `_sample` and `_beam_search`, SPECS.md
section 5), for our Decoder and for any transformers causal LM (e.g. GPT2LMHeadModel); for our EncoderDecoder
the source is encoded once and the decoder, started from decoder_start_token_id, reads its own output.
"""

from __future__ import annotations

import inspect
import math
import sys
from typing import NamedTuple

import torch
from torch import nn

from ._validate import check_ids, check_positive_float, check_positive_int, check_tensor
from .attention import KVCache
from .models import Decoder, EncoderDecoder

NEG = -1.0e9  # transformers' score for a beam that must not be chosen (a float32 stand-in for -inf)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """z / T: T < 1 sharpens the softmax towards the arg max, T > 1 flattens it (TemperatureLogitsWarper)."""
    check_tensor("logits", logits, ndim_min=1, floating=True)
    check_positive_float("temperature", temperature)
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set every logit below the k-th largest to -inf; ties with the k-th are kept (TopKLogitsWarper)."""
    check_tensor("logits", logits, ndim_min=1, floating=True)
    check_positive_int("k", k)
    kth = torch.topk(logits, min(k, logits.shape[-1])).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the fewest most likely tokens whose probability mass reaches p, the rest -inf (TopPLogitsWarper).

    A token is kept iff the mass of the tokens strictly more likely than it is below p; the most likely always is.
    """
    check_tensor("logits", logits, ndim_min=1, floating=True)
    check_positive_float("p", p)
    if p > 1:
        raise ValueError(f"p must lie in (0, 1], got {p}")
    sorted_logits, order = torch.sort(logits, descending=False)  # (..., V), least likely first
    mass_below = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # mass of this token and all less likely ones
    remove = mass_below <= 1 - p
    remove[..., -1] = False  # the most likely token stays
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def _warp(scores: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Temperature, then top-k, then top-p, each only when active (transformers' order and switches)."""
    if temperature != 1.0:
        scores = apply_temperature(scores, temperature)
    if top_k != 0:
        scores = top_k_filter(scores, top_k)
    if top_p < 1.0:
        scores = top_p_filter(scores, top_p)
    return scores


def ban_repeated_ngrams(ids: torch.Tensor, scores: torch.Tensor, n: int) -> torch.Tensor:
    """Scores (N, V) with -inf for every token that would repeat an n-gram of its row of ids (N, T).

    transformers' NoRepeatNGramLogitsProcessor: the last n - 1 tokens of a row, wherever they occurred before,
    may not be followed again by the token that followed them then (n = 0: off).
    """
    if n == 0 or ids.shape[1] < n:  # no n-gram in the row yet
        return scores
    windows = ids.unfold(1, n, 1)  # (N, T - n + 1, n): every n-gram of each row
    prefix = ids[:, ids.shape[1] - n + 1:]  # (N, n - 1): the n-gram the next token would complete
    rows, at = (windows[:, :, :-1] == prefix[:, None]).all(-1).nonzero(as_tuple=True)
    return scores.index_put((rows, windows[rows, at, -1]), torch.tensor(-math.inf, dtype=scores.dtype))


def _is_transformers(model) -> bool:
    """True for a transformers model (checked without importing transformers: such a model means it is loaded)."""
    transformers = sys.modules.get("transformers")
    return transformers is not None and isinstance(model, transformers.PreTrainedModel)


def _positions(attention_mask: torch.Tensor | None, batch: int, length: int, device: torch.device) -> torch.Tensor:
    """Position ids (B, T) as transformers builds them: count real tokens only, so left padding shifts nothing."""
    if attention_mask is None:
        return torch.arange(length, device=device).expand(batch, length)
    return (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)  # pads get position 0


class _LanguageModel:
    """Our Decoder or a transformers causal LM behind one interface: next-token logits, and a KV cache to reorder."""

    def __init__(self, model: nn.Module, use_cache: bool):
        self.model, self.ours = model, isinstance(model, Decoder)
        if self.ours:
            self.cache = KVCache() if use_cache else None
            self.extra = {}
        else:  # transformers creates a DynamicCache at the first call; only the last position's logits are needed
            self.cache = None
            self.extra = {"use_cache": use_cache}
            parameters = inspect.signature(model.forward).parameters
            if "logits_to_keep" in parameters:
                self.extra["logits_to_keep"] = 1
            self.cache_name = "cache" if "cache" in parameters else "past_key_values"  # transformers 5.x / 4.x

    def seen(self) -> int:
        """Number of tokens whose keys and values are cached."""
        if self.cache is None:
            return 0
        return self.cache.length if self.ours else self.cache.get_seq_length()

    def next_logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Float32 logits (B, V) of the token after ids (B, T); only the tokens not yet cached are fed."""
        past = self.seen()
        new = ids[:, past:]  # (B, L): the whole prompt first, then one token per step (all of ids without a cache)
        positions = _positions(attention_mask, *ids.shape, ids.device)[:, past:]  # (B, L)
        if self.ours:
            logits = self.model(new, attention_mask, position_ids=positions, cache=self.cache).logits
        else:
            out = self.model(
                input_ids=new, attention_mask=attention_mask, position_ids=positions,
                **{self.cache_name: self.cache}, **self.extra,
            )
            self.cache, logits = getattr(out, self.cache_name), out.logits
        return logits[:, -1].float()  # (B, V)

    def reorder(self, index: torch.Tensor) -> None:
        """Row i of the cache becomes row index[i]: the cache follows the beams that survive."""
        if self.cache is None:
            return
        if self.ours:
            self.cache.reorder(index)
        else:
            self.cache.reorder_cache(index)


class _Seq2Seq:
    """Our EncoderDecoder behind the same interface: h^enc computed once, the decoder fed its own tokens."""

    def __init__(self, model: EncoderDecoder, input_ids, attention_mask, use_cache: bool, num_beams: int):
        self.model = model
        self.source_mask = None if attention_mask is None else attention_mask.repeat_interleave(num_beams, dim=0)
        self.h = model.encode(input_ids, attention_mask).repeat_interleave(num_beams, dim=0)  # (B * beams, L_enc, d)
        self.cache = KVCache() if use_cache else None

    def next_logits(self, ids: torch.Tensor, attention_mask: None) -> torch.Tensor:
        """Float32 logits (B, V) of the target token after ids (B, T), the decoder's tokens so far."""
        past = 0 if self.cache is None else self.cache.length
        out = self.model.decode(ids[:, past:], self.h, self.source_mask, cache=self.cache)
        return out.logits[:, -1].float()  # (B, V)

    def reorder(self, index: torch.Tensor) -> None:
        """The cache follows the surviving beams (h^enc needs nothing: all beams of an item share its source)."""
        if self.cache is not None:
            self.cache.reorder(index)


def _grow(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Extend the padding mask (B, T) by one real token."""
    if attention_mask is None:
        return None
    return torch.cat([attention_mask, attention_mask.new_ones(attention_mask.shape[0], 1)], dim=-1)  # (B, T + 1)


def _sample(
    lm: _LanguageModel, ids: torch.Tensor, attention_mask, max_new_tokens: int, do_sample: bool,
    temperature: float, top_k: int, top_p: float, no_repeat_ngram_size: int, eos: int | None, pad: int,
) -> torch.Tensor:
    """Greedy (first arg max) or ancestral sampling, one token per step; a finished row emits pad (`_sample`)."""
    unfinished = torch.ones(ids.shape[0], dtype=torch.bool, device=ids.device)  # (B,)
    for _ in range(max_new_tokens):
        scores = ban_repeated_ngrams(ids, lm.next_logits(ids, attention_mask), no_repeat_ngram_size)  # (B, V)
        if do_sample:
            probs = torch.softmax(_warp(scores, temperature, top_k, top_p), dim=-1)
            next_token = torch.multinomial(probs, num_samples=1).squeeze(1)  # (B,)
        else:
            next_token = scores.argmax(dim=-1)  # (B,)
        if eos is not None:
            next_token = torch.where(unfinished, next_token, pad)
            unfinished &= next_token != eos
        ids = torch.cat([ids, next_token[:, None]], dim=-1)  # (B, T + 1)
        attention_mask = _grow(attention_mask)
        if not unfinished.any():
            break
    return ids


def _take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, N, ...) -> (B, K, ...): the rows index (B, K) of each batch item."""
    return x.take_along_dim(index.view(*index.shape, *[1] * (x.dim() - 2)), dim=1)


class _Pool(NamedTuple):
    """The num_beams best finished hypotheses of each batch item, best first."""

    sequences: torch.Tensor  # (B, beams, max_len): prompt, new tokens, pad
    scores: torch.Tensor  # (B, beams): sum log p / n_new ** length_penalty; about -1e9 in an empty slot
    n_new: torch.Tensor  # (B, beams): new tokens, eos included
    full: torch.Tensor  # (B, beams): the slot holds a finished hypothesis


def _add_finished(
    pool: _Pool, cand: torch.Tensor, cand_scores: torch.Tensor, just_ended: torch.Tensor, n_new: int,
    length_penalty: float, closed: torch.Tensor, improvable: torch.Tensor,
) -> _Pool:
    """Merge the candidates that just ended into the pool and keep its num_beams best (`_update_finished_beams`).

    Candidates that did not just end, and all candidates of an item that is closed (pool full under
    early_stopping=True) or can no longer improve, get -1e9 added so that they never beat a real hypothesis.
    """
    scores = cand_scores / (n_new**length_penalty)  # (B, n_cand): the length penalty counts new tokens only
    scores += closed.float() * NEG
    scores += (~improvable).float() * NEG
    scores += (~just_ended).float() * NEG
    merged_scores = torch.cat([pool.scores, scores], dim=1)  # (B, beams + n_cand)
    best = torch.topk(merged_scores, pool.scores.shape[1]).indices  # (B, beams)
    return _Pool(
        _take(torch.cat([pool.sequences, cand], dim=1), best),
        merged_scores.gather(1, best),
        torch.cat([pool.n_new, torch.full_like(just_ended, n_new, dtype=torch.long)], dim=1).gather(1, best),
        torch.cat([pool.full, just_ended], dim=1).gather(1, best),
    )


def _beam_search(
    lm: _LanguageModel, input_ids: torch.Tensor, attention_mask, max_new_tokens: int, num_beams: int,
    length_penalty: float, early_stopping: bool | str, no_repeat_ngram_size: int, eos: int | None, pad: int,
) -> torch.Tensor:
    """The best of num_beams hypotheses per row, scored sum log p / (new tokens) ** length_penalty (`_beam_search`).

    Each step ranks the 2 * num_beams best continuations of all beams; those ending in eos (or at the length
    limit) enter the pool of finished hypotheses if they rank in the first num_beams, the best others run on.
    """
    (B, prompt_len), device = input_ids.shape, input_ids.device
    max_len, n_cand = prompt_len + max_new_tokens, 2 * num_beams  # room for num_beams that do not end now
    running = input_ids.new_full((B, num_beams, max_len), pad)  # (B, beams, max_len): prefix, then pad
    running[:, :, :prompt_len] = input_ids[:, None]
    running_scores = torch.zeros(B, num_beams, device=device)  # sum of log-probs
    running_scores[:, 1:] = NEG  # the beams start identical: only beam 0 may expand at the first step
    empty = torch.zeros(B, num_beams, dtype=torch.long, device=device)
    pool = _Pool(running.clone(), torch.full((B, num_beams), NEG, device=device), empty, empty.bool())
    improvable = torch.ones(B, 1, dtype=torch.bool, device=device)  # can a running beam beat the worst finished?
    in_first = torch.arange(n_cand, device=device) < num_beams  # (n_cand,): candidates allowed into the pool
    batch_start = torch.arange(B, device=device)[:, None] * num_beams  # (B, 1): flat row of each item's beam 0
    if attention_mask is not None:
        attention_mask = attention_mask.repeat_interleave(num_beams, dim=0)  # (B * beams, T)
    for cur_len in range(prompt_len, max_len):
        prefixes = running[:, :, :cur_len].flatten(0, 1)  # (B * beams, cur_len)
        logits = lm.next_logits(prefixes, attention_mask)  # (B * beams, V)
        V = logits.shape[-1]
        log_probs = ban_repeated_ngrams(prefixes, torch.log_softmax(logits, dim=-1), no_repeat_ngram_size)
        log_probs = log_probs.view(B, num_beams, V) + running_scores[:, :, None]
        cand_scores, cand_index = torch.topk(log_probs.view(B, num_beams * V), n_cand)  # (B, n_cand), best first
        source, token = cand_index // V, cand_index % V  # the beam each candidate extends, and its new token
        cand = _take(running, source)  # (B, n_cand, max_len)
        cand[:, :, cur_len] = token
        ends = torch.full_like(token, cur_len + 1 >= max_len, dtype=torch.bool)  # (B, n_cand)
        if eos is not None:
            ends |= token == eos

        alive_scores = cand_scores + ends.float() * NEG  # the best num_beams candidates that did not end run on
        keep = torch.topk(alive_scores, num_beams).indices  # (B, beams)
        running, running_scores, source = _take(cand, keep), alive_scores.gather(1, keep), source.gather(1, keep)

        closed = pool.full.all(-1, keepdim=True) & (early_stopping is True)  # (B, 1)
        n_new = cur_len + 1 - prompt_len
        pool = _add_finished(pool, cand, cand_scores, ends & in_first, n_new, length_penalty, closed, improvable)
        improvable = _improvable(
            improvable, running_scores, pool, n_new, max_new_tokens, length_penalty, early_stopping
        )
        if not improvable.any() or (pool.full.all() and early_stopping is True) or ends.all():
            break
        lm.reorder((source + batch_start).flatten())
        attention_mask = _grow(attention_mask)
    return pool.sequences[:, 0, : prompt_len + int(pool.n_new[:, 0].max())]


def _improvable(
    improvable: torch.Tensor, running_scores: torch.Tensor, pool: _Pool, n_new: int, max_new_tokens: int,
    length_penalty: float, early_stopping: bool | str,
) -> torch.Tensor:
    """(B, 1): can the best running beam still beat the worst finished hypothesis (`_check_early_stop_heuristic`)?

    Its best possible score is taken at the current length, or at the length limit with early_stopping="never"
    and length_penalty > 0 (longer is then better); an unfilled pool slot counts as a score of -1e9.
    """
    best_len = max_new_tokens if early_stopping == "never" and length_penalty > 0.0 else n_new
    best_running = running_scores[:, :1] / (best_len**length_penalty)  # (B, 1)
    worst_finished = torch.where(pool.full, pool.scores.min(dim=1, keepdim=True).values, NEG)  # (B, beams)
    return improvable & (best_running > worst_finished).any(dim=-1, keepdim=True)


def _max_positions(model: nn.Module) -> int | None:
    """Longest sequence the model's position embeddings allow (None when unknown)."""
    if isinstance(model, (Decoder, EncoderDecoder)):
        return model.max_len
    return getattr(model.config, "max_position_embeddings", None)


def _check_generate_args(
    model, input_ids, max_new_tokens, do_sample, temperature, top_k, top_p, num_beams, length_penalty,
    early_stopping, no_repeat_ngram_size, eos_token_id, pad_token_id, attention_mask, use_cache,
) -> None:
    """Raise on bad input before any forward pass."""
    seq2seq = isinstance(model, EncoderDecoder)
    if not (isinstance(model, Decoder) or seq2seq or _is_transformers(model)):
        raise TypeError(
            f"model must be a course_utils Decoder or EncoderDecoder, or a transformers causal LM, "
            f"got {type(model).__name__}"
        )
    vocab_size = model.vocab_size if isinstance(model, (Decoder, EncoderDecoder)) else model.config.vocab_size
    check_ids("input_ids", input_ids, vocab_size)
    if input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must hold at least one token per row, got shape {tuple(input_ids.shape)}")
    check_positive_int("max_new_tokens", max_new_tokens, minimum=0)
    max_positions = _max_positions(model)
    if seq2seq and 1 + max_new_tokens > max_positions:  # the target: decoder_start + new tokens
        raise ValueError(f"decoder_start + max_new_tokens ({max_new_tokens}) exceeds the model's {max_positions} "
                         "positions")
    if max_positions is not None and not seq2seq and input_ids.shape[1] + max_new_tokens > max_positions:
        raise ValueError(
            f"the prompt ({input_ids.shape[1]} tokens) + max_new_tokens ({max_new_tokens}) exceeds the model's "
            f"{max_positions} positions"
        )
    for name, flag in (("do_sample", do_sample), ("use_cache", use_cache)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {flag!r}")
    check_positive_float("temperature", temperature)
    check_positive_int("top_k", top_k, minimum=0)
    check_positive_float("top_p", top_p)
    if top_p > 1:
        raise ValueError(f"top_p must lie in (0, 1], got {top_p}")
    check_positive_int("num_beams", num_beams)
    check_positive_int("no_repeat_ngram_size", no_repeat_ngram_size, minimum=0)
    if do_sample and num_beams > 1:
        raise ValueError(f"beam sampling (do_sample=True with num_beams={num_beams}) is not supported: pick one")
    if not isinstance(length_penalty, (int, float)) or isinstance(length_penalty, bool):
        raise TypeError(f"length_penalty must be a number, got {length_penalty!r}")
    if not math.isfinite(length_penalty):
        raise ValueError(f"length_penalty must be finite, got {length_penalty}")
    if not (isinstance(early_stopping, bool) or early_stopping == "never"):
        raise ValueError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    for name, token in (("eos_token_id", eos_token_id), ("pad_token_id", pad_token_id)):
        if token is not None:
            check_positive_int(name, token, minimum=0)
            if token >= vocab_size:
                raise ValueError(f"{name} must lie in [0, {vocab_size}), got {token}")
    if attention_mask is not None:
        check_ids("attention_mask", attention_mask, 2, shape=input_ids.shape)
        if not seq2seq and not attention_mask[:, -1].all():
            raise ValueError("attention_mask must pad on the left (decoder-only): its last column must be all 1")


@torch.no_grad()
def generate(
    model: nn.Module,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    *,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    num_beams: int = 1,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    no_repeat_ngram_size: int = 0,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    attention_mask: torch.Tensor | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Prompt (B, T) + up to max_new_tokens new tokens (B, T + n): the tokens transformers' generate returns.

    Greedy by default; do_sample=True samples after temperature -> top-k (0 = off) -> top-p (1.0 = off);
    num_beams > 1 is beam search: length_penalty > 0 favours longer hypotheses, early_stopping=True stops once
    num_beams have finished, False when the best running beam at its current length cannot beat the worst
    finished one, "never" (with length_penalty > 0) only when it cannot even at max_new_tokens.
    no_repeat_ngram_size=n > 0 forbids any n-gram to occur twice in a row's tokens (prompt included).
    Left-padded prompts need attention_mask (1 = token, 0 = padding). A row stops at eos_token_id, then emits
    pad_token_id (eos when None); decoding ends when every row has stopped. use_cache=False recomputes the
    whole sequence at each step (same tokens, much slower). For an EncoderDecoder, input_ids is the source
    (attention_mask its padding, on either side) and the result is the target: decoder_start + new tokens.
    """
    _check_generate_args(
        model, input_ids, max_new_tokens, do_sample, temperature, top_k, top_p, num_beams, length_penalty,
        early_stopping, no_repeat_ngram_size, eos_token_id, pad_token_id, attention_mask, use_cache,
    )
    if max_new_tokens == 0:
        return input_ids.clone()
    pad = eos_token_id if pad_token_id is None else pad_token_id
    pad = 0 if pad is None else pad  # without eos no row stops early: the pad is never emitted
    if attention_mask is not None and attention_mask.all():
        attention_mask = None  # no padding: transformers drops the mask too
    elif attention_mask is not None:
        attention_mask = attention_mask.long()
    if isinstance(model, EncoderDecoder):  # the prompt is the source; the output is the target, as transformers
        lm = _Seq2Seq(model, input_ids, attention_mask, use_cache, num_beams)
        input_ids = input_ids.new_full((input_ids.shape[0], 1), model.decoder_start_token_id)  # (B, 1)
        attention_mask = None
    else:
        lm = _LanguageModel(model, use_cache)
    if num_beams > 1:
        return _beam_search(
            lm, input_ids, attention_mask, max_new_tokens, num_beams, length_penalty, early_stopping,
            no_repeat_ngram_size, eos_token_id, pad,
        )
    return _sample(
        lm, input_ids, attention_mask, max_new_tokens, do_sample, temperature, top_k, top_p, no_repeat_ngram_size,
        eos_token_id, pad,
    )
