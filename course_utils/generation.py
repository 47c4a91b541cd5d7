"""Decoding, the Inference part of the lecture: greedy, beam search, temperature, top-k and top-p, with a KV cache.

The arg max over all V^L continuations is intractable, so a decoder picks one token at a time:
    greedy       y_t = argmax_v p(v | y_<t)
    sampling     y_t ~ softmax(z_t / T), restricted to the top k tokens, then to the top-p probability mass
    beam search  keep the num_beams best prefixes by sum_t log p(y_t | y_<t), score a finished one by
                 that sum / (new tokens) ** length_penalty

generate() returns the same tokens as transformers' model.generate (5.x `_sample` and `_beam_search`, SPECS.md
section 5), for our Decoder and for any transformers causal LM (e.g. GPT2LMHeadModel, through hf.TransformersLM);
for our EncoderDecoder the source is encoded once and the decoder, started from decoder_start_token_id, reads its
own output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from ._validate import check_bool, check_float, check_ids, check_int, check_int_tensor
from .attention import KVCache, position_ids_from_mask
from .hf import TransformersLM, is_transformers_model
from .models import Decoder, EncoderDecoder, LlamaDecoder
from .warpers import (  # noqa: F401  the warpers are part of generation's public face
    WarpedDistribution, apply_temperature, ban_repeated_ngrams, check_warpers, top_k_filter, top_p_filter,
    warp_distribution, warp_logits,
)

NEG = -1.0e9  # transformers' score for a beam that must not be chosen (a float32 stand-in for -inf)
CAUSAL_LMS = (Decoder, LlamaDecoder)  # our causal decoders: GPT-2's layout and Llama's


@torch.no_grad()
def next_token_logits(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """The logits z (V,) of the token after input_ids (1, T): one forward pass (a Decoder or a transformers LM)."""
    if not (isinstance(model, CAUSAL_LMS) or is_transformers_model(model)):
        raise TypeError(f"model must be a course_utils Decoder or LlamaDecoder, or a transformers causal LM, "
                        f"got {type(model).__name__}")
    check_int_tensor("input_ids", input_ids, ndim=2)
    if input_ids.shape[0] != 1 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must hold one prompt of at least one token, shape (1, T), "
                         f"got {tuple(input_ids.shape)}")
    last = {"logits_to_keep": 1} if isinstance(model, CAUSAL_LMS) else {}  # the other positions' are not needed
    return model(input_ids, **last).logits[0, -1].float()  # (V,)



# ---------------------------------------------------------------- the settings of one call


@dataclass(frozen=True)
class DecodingConfig:
    """How generate() decodes: greedy, sampling or beam search, when to stop; validated once, when built."""

    max_new_tokens: int
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    no_repeat_ngram_size: int = 0
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    use_cache: bool = True

    def __post_init__(self):
        check_int("max_new_tokens", self.max_new_tokens, 0)
        check_bool("do_sample", self.do_sample)
        check_bool("use_cache", self.use_cache)
        check_warpers(self.temperature, self.top_k, self.top_p)
        check_int("num_beams", self.num_beams, 1)
        check_int("no_repeat_ngram_size", self.no_repeat_ngram_size, 0)
        if self.do_sample and self.num_beams > 1:
            raise ValueError(f"beam sampling (do_sample=True with num_beams={self.num_beams}) is not supported: "
                             "pick one")
        check_float("length_penalty", self.length_penalty)
        if not (isinstance(self.early_stopping, bool) or self.early_stopping == "never"):
            raise ValueError(f"early_stopping must be True, False or 'never', got {self.early_stopping!r}")
        for name in ("eos_token_id", "pad_token_id"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), 0)

    @property
    def pad(self) -> int:
        """What a finished row emits: pad_token_id, else eos_token_id; 0 when neither (no row then stops early)."""
        pad = self.eos_token_id if self.pad_token_id is None else self.pad_token_id
        return 0 if pad is None else pad


# ---------------------------------------------------------------- the models behind one interface


class _DecoderLM:
    """Our Decoder or LlamaDecoder behind hf.TransformersLM's interface: next-token logits, a KV cache to reorder."""

    def __init__(self, model: Decoder | LlamaDecoder, use_cache: bool):
        self.model, self.cache = model, KVCache() if use_cache else None

    def next_logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Float32 logits (B, V) of the token after ids (B, T); only the tokens not yet cached are fed."""
        past = 0 if self.cache is None else self.cache.length
        positions = position_ids_from_mask(attention_mask, *ids.shape)[:, past:]  # (B, L)
        out = self.model(ids[:, past:], attention_mask, position_ids=positions, cache=self.cache, logits_to_keep=1)
        return out.logits[:, -1].float()  # (B, V)

    def reorder(self, index: torch.Tensor) -> None:
        """Row i of the cache becomes row index[i]: the cache follows the beams that survive."""
        if self.cache is not None:
            self.cache.reorder(index)


class _Seq2SeqLM(_DecoderLM):
    """Our EncoderDecoder behind the same interface: h^enc computed once, the decoder fed its own tokens."""

    def __init__(self, model: EncoderDecoder, input_ids, attention_mask, use_cache: bool, num_beams: int):
        super().__init__(model, use_cache)
        self.source_mask = None if attention_mask is None else attention_mask.repeat_interleave(num_beams, dim=0)
        self.h = model.encode(input_ids, attention_mask).repeat_interleave(num_beams, dim=0)  # (B * beams, L_enc, d)

    def next_logits(self, ids: torch.Tensor, attention_mask: None) -> torch.Tensor:
        """Float32 logits (B, V) of the target token after ids (B, T), the decoder's tokens so far."""
        past = 0 if self.cache is None else self.cache.length
        out = self.model.decode(ids[:, past:], self.h, self.source_mask, cache=self.cache)
        return out.logits[:, -1].float()  # (B, V)

    def reorder(self, index: torch.Tensor) -> None:
        """The decoder's cache follows the beams; its cross-attention part is the same for every beam of a source."""
        if self.cache is not None:
            self.cache.reorder(index, cross=False)


def _grow(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Extend the padding mask (B, T) by one real token."""
    if attention_mask is None:
        return None
    return torch.cat([attention_mask, attention_mask.new_ones(attention_mask.shape[0], 1)], dim=-1)  # (B, T + 1)


def _sample(lm: _DecoderLM | TransformersLM, ids: torch.Tensor, attention_mask, cfg: DecodingConfig) -> torch.Tensor:
    """Greedy (first arg max) or ancestral sampling, one token per step; a finished row emits pad (`_sample`)."""
    unfinished = torch.ones(ids.shape[0], dtype=torch.bool, device=ids.device)  # (B,)
    for _ in range(cfg.max_new_tokens):
        scores = ban_repeated_ngrams(ids, lm.next_logits(ids, attention_mask), cfg.no_repeat_ngram_size)  # (B, V)
        if cfg.do_sample:
            probs = torch.softmax(warp_logits(scores, cfg.temperature, cfg.top_k, cfg.top_p), dim=-1)
            next_token = torch.multinomial(probs, num_samples=1).squeeze(1)  # (B,)
        else:
            next_token = scores.argmax(dim=-1)  # (B,)
        if cfg.eos_token_id is not None:
            next_token = torch.where(unfinished, next_token, cfg.pad)
            unfinished &= next_token != cfg.eos_token_id
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
    cfg: DecodingConfig, closed: torch.Tensor, improvable: torch.Tensor,
) -> _Pool:
    """Merge the candidates that just ended into the pool and keep its num_beams best (`_update_finished_beams`).

    Candidates that did not just end, and all candidates of an item that is closed (pool full under
    early_stopping=True) or can no longer improve, get -1e9 added so that they never beat a real hypothesis.
    """
    scores = cand_scores / (n_new**cfg.length_penalty)  # (B, n_cand): the length penalty counts new tokens only
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
    lm: _DecoderLM | TransformersLM, input_ids: torch.Tensor, attention_mask, cfg: DecodingConfig
) -> torch.Tensor:
    """The best of num_beams hypotheses per row, scored sum log p / (new tokens) ** length_penalty (`_beam_search`).

    Each step ranks the 2 * num_beams best continuations of all beams; those ending in eos (or at the length
    limit) enter the pool of finished hypotheses if they rank in the first num_beams, the best others run on.
    """
    (B, prompt_len), device = input_ids.shape, input_ids.device
    num_beams, eos = cfg.num_beams, cfg.eos_token_id
    max_len, n_cand = prompt_len + cfg.max_new_tokens, 2 * num_beams  # room for num_beams that do not end now
    running = input_ids.new_full((B, num_beams, max_len), cfg.pad)  # (B, beams, max_len): prefix, then pad
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
        log_probs = ban_repeated_ngrams(prefixes, torch.log_softmax(logits, dim=-1), cfg.no_repeat_ngram_size)
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

        closed = pool.full.all(-1, keepdim=True) & (cfg.early_stopping is True)  # (B, 1)
        n_new = cur_len + 1 - prompt_len
        pool = _add_finished(pool, cand, cand_scores, ends & in_first, n_new, cfg, closed, improvable)
        improvable = _improvable(improvable, running_scores, pool, n_new, cfg)
        if not improvable.any() or (pool.full.all() and cfg.early_stopping is True) or ends.all():
            break
        lm.reorder((source + batch_start).flatten())
        attention_mask = _grow(attention_mask)
    return pool.sequences[:, 0, : prompt_len + int(pool.n_new[:, 0].max())]


def _improvable(
    improvable: torch.Tensor, running_scores: torch.Tensor, pool: _Pool, n_new: int, cfg: DecodingConfig
) -> torch.Tensor:
    """(B, 1): can the best running beam still beat the worst finished hypothesis (`_check_early_stop_heuristic`)?

    Its best possible score is taken at the current length, or at the length limit with early_stopping="never"
    and length_penalty > 0 (longer is then better); an unfilled pool slot counts as a score of -1e9.
    """
    never = cfg.early_stopping == "never" and cfg.length_penalty > 0.0
    best_len = cfg.max_new_tokens if never else n_new
    best_running = running_scores[:, :1] / (best_len**cfg.length_penalty)  # (B, 1)
    worst_finished = torch.where(pool.full, pool.scores.min(dim=1, keepdim=True).values, NEG)  # (B, beams)
    return improvable & (best_running > worst_finished).any(dim=-1, keepdim=True)


# ---------------------------------------------------------------- generate


def _check_inputs(model, input_ids, attention_mask, cfg: DecodingConfig) -> None:
    """The model, the prompt and its mask fit together and the length fits the model's positions."""
    seq2seq = isinstance(model, EncoderDecoder)
    if not (isinstance(model, CAUSAL_LMS) or seq2seq or is_transformers_model(model)):
        raise TypeError(f"model must be a course_utils Decoder, LlamaDecoder or EncoderDecoder, or a transformers "
                        f"causal LM, got {type(model).__name__}")
    check_ids("input_ids", input_ids, model.config.vocab_size)
    if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must hold at least one row of at least one token, got shape "
                         f"{tuple(input_ids.shape)}")
    for name, token in (("eos_token_id", cfg.eos_token_id), ("pad_token_id", cfg.pad_token_id)):
        if token is not None:
            check_int(name, token, 0, model.config.vocab_size - 1)
    max_positions = getattr(model.config, "max_len", getattr(model.config, "max_position_embeddings", None))
    length, what = (1, "decoder_start") if seq2seq else (input_ids.shape[1], f"the prompt ({input_ids.shape[1]} tokens)")
    if max_positions is not None and length + cfg.max_new_tokens > max_positions:
        raise ValueError(f"{what} + max_new_tokens ({cfg.max_new_tokens}) exceeds the model's {max_positions} "
                         "positions")
    if attention_mask is not None:
        check_ids("attention_mask", attention_mask, 2, shape=input_ids.shape)
        if not seq2seq and not attention_mask[:, -1].all():
            raise ValueError("attention_mask must pad on the left (decoder-only): its last column must be all 1")
        if not attention_mask.any(dim=-1).all():
            raise ValueError("attention_mask must keep at least one real token in every row, got a row of padding")
    if cfg.num_beams > model.config.vocab_size:
        raise ValueError(f"num_beams must be <= the vocabulary size {model.config.vocab_size}, got {cfg.num_beams}")


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
    cfg = DecodingConfig(max_new_tokens, do_sample, temperature, top_k, top_p, num_beams, length_penalty,
                         early_stopping, no_repeat_ngram_size, eos_token_id, pad_token_id, use_cache)
    _check_inputs(model, input_ids, attention_mask, cfg)
    if attention_mask is not None:
        attention_mask = None if attention_mask.all() else attention_mask.long()  # no padding: transformers drops it
    if isinstance(model, EncoderDecoder):  # the prompt is the source; the output is the target, as transformers
        lm = _Seq2SeqLM(model, input_ids, attention_mask, use_cache, num_beams)
        input_ids = input_ids.new_full((input_ids.shape[0], 1), model.config.decoder_start_token_id)  # (B, 1)
        attention_mask = None
    else:
        lm = _DecoderLM(model, use_cache) if isinstance(model, CAUSAL_LMS) else TransformersLM(model, use_cache)
    if max_new_tokens == 0:
        return input_ids.clone()
    if num_beams > 1:
        return _beam_search(lm, input_ids, attention_mask, cfg)
    return _sample(lm, input_ids, attention_mask, cfg)
