"""Checks for the exercises of chapter 04 (next sentence prediction): the input [CLS] A [SEP] B [SEP] with its
token-type ids, Google's truncate_seq_pair driven by given coin flips, eq. (5) in the lecture's label convention,
and BERT's input embeddings (token + position + token type, then LayerNorm; figures 6 and 7).
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..models import Embeddings, EncoderConfig
from ..objectives import IS_NEXT, truncate_seq_pair
from . import compare, gen, loaded, randn


def _ids(n: int, seed: int, low: int = 5, high: int = 8000) -> list[int]:
    """n token ids (no special token), seeded, without touching the global random state."""
    rng = random.Random(seed)
    return [rng.randrange(low, high) for _ in range(n)]


# ---------------------------------------------------------------- exercise 1: [CLS] A [SEP] B [SEP]


def pair_inputs(a: Sequence[int], b: Sequence[int], cls_id: int, sep_id: int) -> tuple[list[int], list[int]]:
    """The reference: (input_ids, token_type_ids) of [CLS] A [SEP] B [SEP], types 0 up to the first [SEP], then 1."""
    return [cls_id, *a, sep_id, *b, sep_id], [0] * (len(a) + 2) + [1] * (len(b) + 1)


def check_pair_inputs(fn: Callable) -> bool:
    """fn(a, b, cls_id, sep_id) = (input_ids, token_type_ids) for the input [CLS] A [SEP] B [SEP].

    a and b are lists of token ids without special tokens. [CLS], A and the first [SEP] have type 0; B and the
    final [SEP] have type 1 (Google's create_pretraining_data.py, and the pair template of BERT's tokenizers).
    Lists or 1-d tensors are accepted.
    """
    cases = [
        (_ids(4, seed=1), _ids(6, seed=2), 2, 3),  # our WordPiece: [CLS] = 2, [SEP] = 3
        (_ids(9, seed=3), _ids(2, seed=4), 2, 3),  # A longer than B
        (_ids(1, seed=5), _ids(1, seed=6), 2, 3),  # the shortest pair: one token each
        (_ids(5, seed=7, high=30522), _ids(7, seed=8, high=30522), 101, 102),  # bert-base-uncased ids
        (_ids(30, seed=9), _ids(31, seed=10), 2, 3),  # a full tiny-BERT input: 64 positions
    ]
    return compare("pair inputs ([CLS] A [SEP] B [SEP])", fn, pair_inputs, cases, atol=0, lists=True)


# ---------------------------------------------------------------- exercise 2: truncate_seq_pair


class _Coins(random.Random):
    """A random.Random whose random() returns the given flips in order."""

    def __init__(self, flips: Sequence[float]):
        super().__init__(0)
        self._flips = iter(flips)

    def random(self) -> float:
        return next(self._flips)


def check_truncate_seq_pair(fn: Callable) -> bool:
    """fn(a, b, max_num_tokens, flips) = (a, b) trimmed as Google's truncate_seq_pair does, driven by `flips`.

    While len(a) + len(b) > max_num_tokens: take the longer list (b on ties) and remove one token, from the front
    if the next flip is < 0.5, else from the back. flips[k] is the coin of the k-th removal (a list of floats in
    [0, 1), longer than needed). Return the two trimmed lists. Reference: objectives.truncate_seq_pair.
    """

    def reference(a, b, max_num_tokens, flips):
        truncate_seq_pair(a, b, max_num_tokens, _Coins(flips))  # a and b are this call's copies
        return torch.tensor(a, dtype=torch.long), torch.tensor(b, dtype=torch.long)

    def flips(n: int, seed: int) -> list[float]:
        rng = random.Random(seed)
        return [rng.random() for _ in range(n)]

    def case(n_a: int, n_b: int, max_num_tokens: int, coins: list[float]):
        return list(range(100, 100 + n_a)), list(range(200, 200 + n_b)), max_num_tokens, coins

    cases = [
        case(5, 4, 12, flips(5, seed=1)),  # fits already: nothing removed, no flip used
        case(10, 4, 8, flips(12, seed=2)),  # only A is longer: A loses 6 tokens
        case(4, 9, 9, flips(12, seed=3)),  # B longer, then equal lengths: ties trim B
        case(6, 6, 6, [0.1, 0.9, 0.2, 0.8, 0.5, 0.49]),  # exact coins: front, back, front, back; 0.5 is "back"
        case(8, 8, 6, [0.0] * 15),  # always from the front
        case(8, 8, 6, [0.99] * 15),  # always from the back
        case(40, 35, 61, flips(20, seed=4)),  # a tiny-BERT pair: max_seq_length 64 - 3
        case(3, 30, 2, flips(35, seed=5)),  # down to one token each
    ]
    return compare("truncate_seq_pair", fn, reference, cases, atol=0, lists=True)


# ---------------------------------------------------------------- exercise 3: eq. (5), the lecture's convention


def lecture_nsp_loss(nsp_logits: torch.Tensor, follows: torch.Tensor) -> torch.Tensor:
    """The reference for eq. (5): follows = 1 where s2 follows s1 (the lecture), so BERT's label is 1 - follows."""
    bert_labels = torch.where(follows.bool(), IS_NEXT, 1 - IS_NEXT)  # IS_NEXT = 0, IS_RANDOM = 1
    return F.cross_entropy(nsp_logits.float(), bert_labels)


def check_nsp_loss(fn: Callable) -> bool:
    """fn(nsp_logits, follows) = eq. (5) averaged over the batch, in the lecture's convention.

    nsp_logits (B, 2) are the NSP head's logits in BERT's order (index 0 = IsNext, 1 = random), so
    P_theta(s1, s2) = softmax(nsp_logits)[:, 0]; follows (B,) holds the lecture's labels: 1 if s2 follows s1,
    0 if s2 is random. One case has confident logits (|logit| ~ 50): compute log P without exp overflow or
    log(0) (log_softmax). Reference: F.cross_entropy with BERT's labels 1 - follows.
    """

    def follows_of(*bits: int) -> torch.Tensor:
        return torch.tensor(bits, dtype=torch.long)

    confident = torch.tensor([[50.0, -50.0], [-45.0, 48.0], [40.0, -40.0], [-30.0, 30.0]])  # (4, 2)
    cases = [
        (randn(8, 2, seed=1), follows_of(1, 0, 1, 1, 0, 0, 1, 0)),
        (randn(5, 2, seed=2, scale=3.0), follows_of(1, 1, 1, 1, 1)),  # only "follows"
        (randn(5, 2, seed=3, scale=3.0), follows_of(0, 0, 0, 0, 0)),  # only random
        (randn(1, 2, seed=4), follows_of(1)),  # one pair
        (torch.tensor([[2.0, -1.0], [2.0, -1.0]]), follows_of(1, 0)),  # the same logits, both labels
        (confident, follows_of(0, 0, 1, 1)),  # confident and wrong everywhere: a large but finite loss
    ]
    return compare("NSP loss (eq. 5, 1 = follows)", fn, lecture_nsp_loss, cases, atol=1e-4)


# ---------------------------------------------------------------- exercise 4: the input embeddings


def input_embeddings(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps) -> torch.Tensor:
    """The reference: course_utils' Embeddings module (BERT's) loaded with the given tables, in eval mode."""
    config = EncoderConfig(tok.shape[0], tok.shape[1], n_heads=1, max_len=pos.shape[0], type_vocab_size=typ.shape[0],
                           eps=eps)
    state = {"tok.weight": tok, "pos.weight": pos, "typ.weight": typ, "norm.weight": gain, "norm.bias": bias}
    return loaded(lambda: Embeddings(config), state)(input_ids, token_type_ids)


def check_input_embeddings(fn: Callable) -> bool:
    """fn(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps) = BERT's input embeddings (B, L, d).

    input_ids and token_type_ids are (B, L); tok (V, d), pos (max_len, d) and typ (2, d) are the three tables
    (rows = vectors); token i of a sequence gets tok[input_ids_i] + pos[i] + typ[token_type_ids_i] (positions
    count from 0), then LayerNorm over d with gain, bias (d,) and eps. Reference: course_utils.models.Embeddings.
    """

    def case(B: int, L: int, V: int, max_len: int, d: int, eps: float, seed: int, n_a: int | None = None):
        ids = torch.randint(5, V, (B, L), generator=gen(seed))  # (B, L)
        n_a = L // 2 if n_a is None else n_a
        types = (torch.arange(L) >= n_a).long().expand(B, L).clone()  # (B, L): 0 for [CLS] A [SEP], then 1
        return (ids, types, randn(V, d, seed=seed + 1, scale=0.5), randn(max_len, d, seed=seed + 2, scale=0.5),
                randn(2, d, seed=seed + 3, scale=0.5), 1 + randn(d, seed=seed + 4, scale=0.2),
                randn(d, seed=seed + 5, scale=0.1), eps)

    cases = [
        case(1, 6, 50, 6, 8, 1e-12, seed=10),  # L = max_len
        case(3, 7, 100, 16, 12, 1e-12, seed=20),  # a batch, L < max_len: positions 0..L-1
        case(2, 9, 80, 12, 16, 1e-12, seed=30, n_a=9),  # a single segment: every type is 0
        case(2, 5, 40, 8, 6, 1e-5, seed=40, n_a=1),  # torch's default eps
        case(2, 10, 60, 10, 4, 1e-1, seed=50),  # a large eps: put it under the square root
    ]
    return compare("input embeddings (figures 6 and 7)", fn, input_embeddings, cases, atol=1e-5,
                   forbidden=("Embedding", "embedding", "layer_norm", "LayerNorm"))
