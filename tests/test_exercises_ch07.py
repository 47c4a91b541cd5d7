"""The checks of chapter 07's exercises: right answers pass, wrong ones fail loudly, stubs are "not attempted"."""

import math

import pytest
import torch
from transformers.models.bart.modeling_bart import shift_tokens_right as bart_shift_tokens_right

from course_utils.attention import MultiHeadAttention
from course_utils.data import DATE_PAD
from course_utils.exercises import ch07
from course_utils.models import EncoderDecoder
from exercise_contract import contract_tests  # tests/exercise_contract.py

# ---------------------------------------------------------------- solutions, right and wrong


def cross_head(q, k, v, source_mask):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, L_dec, L_enc)
    s = s.masked_fill(source_mask[:, None, :] == 0, float("-inf"))
    alpha = torch.softmax(s, dim=-1)
    return alpha @ v, alpha


def cross_head_einsum(q, k, v, source_mask):  # the same, with einsum and an additive mask
    s = torch.einsum("bid,bjd->bij", q, k) / q.shape[-1] ** 0.5
    alpha = torch.softmax(s + (source_mask[:, None, :] - 1) * 1e9, dim=-1)
    return torch.einsum("bij,bjd->bid", alpha, v), alpha


def cross_head_unscaled(q, k, v, source_mask):  # the lecture's s_ij = q_i^T k_j, without 1 / sqrt(d)
    return cross_head(q * math.sqrt(q.shape[-1]), k, v, source_mask)


def cross_head_no_mask(q, k, v, source_mask):
    return cross_head(q, k, v, torch.ones_like(source_mask))


def cross_head_mask_inverted(q, k, v, source_mask):
    return cross_head(q, k, v, 1 - source_mask)


def cross_head_softmax_over_queries(q, k, v, source_mask):
    s = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(source_mask[:, None, :] == 0, float("-inf"))
    alpha = torch.nan_to_num(torch.softmax(s, dim=-2))
    return alpha @ v, alpha


def cross_head_causal(q, k, v, source_mask):  # the decoder's causal mask carried over to the cross-attention
    causal = torch.ones(q.shape[1], k.shape[1]).tril().long()  # (L_dec, L_enc)
    return cross_head(q, k, v, source_mask[:, None, :] * causal)


def cross_head_scaled_by_keys(q, k, v, source_mask):  # 1 / sqrt(L_enc) instead of 1 / sqrt(d)
    return cross_head(q * math.sqrt(q.shape[-1] / k.shape[1]), k, v, source_mask)


def cross_head_values_are_keys(q, k, v, source_mask):
    return cross_head(q, k, k, source_mask)


def shift(labels, pad_token_id, decoder_start_token_id):
    shifted = torch.full_like(labels, decoder_start_token_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[shifted == -100] = pad_token_id
    return shifted


def shift_in_place_cat(labels, pad_token_id, decoder_start_token_id):  # edits labels first, then concatenates
    labels[labels == -100] = pad_token_id
    start = torch.full((labels.shape[0], 1), decoder_start_token_id)
    return torch.cat([start, labels[:, :-1]], dim=1)


def shift_keeps_minus_100(labels, pad_token_id, decoder_start_token_id):
    return torch.cat([torch.full((labels.shape[0], 1), decoder_start_token_id), labels[:, :-1]], dim=1)


def shift_left(labels, pad_token_id, decoder_start_token_id):
    shifted = torch.full_like(labels, pad_token_id)
    shifted[:, :-1] = labels[:, 1:]
    return shifted.masked_fill(shifted == -100, pad_token_id)


def shift_start_is_pad(labels, pad_token_id, decoder_start_token_id):
    return shift(labels, pad_token_id, pad_token_id)


def shift_keeps_last(labels, pad_token_id, decoder_start_token_id):  # one column too many
    start = torch.full((labels.shape[0], 1), decoder_start_token_id)
    return torch.cat([start, labels], dim=1).masked_fill(torch.cat([start, labels], dim=1) == -100, pad_token_id)


def shift_minus_100_to_zero(labels, pad_token_id, decoder_start_token_id):
    return shift(labels, 0, decoder_start_token_id)


def self_mask(m):
    L = m.shape[1]
    causal = torch.ones(L, L).tril().bool()
    return (m.bool()[:, None, None, :] & causal).reshape(m.shape[0], 1, L, L)


def self_mask_causal_only(m):
    L = m.shape[1]
    return torch.ones(L, L).tril().bool().expand(m.shape[0], 1, L, L)


def self_mask_padding_only(m):
    L = m.shape[1]
    return m.bool()[:, None, None, :].expand(m.shape[0], 1, L, L)


def self_mask_padding_on_queries(m):
    return self_mask(torch.ones_like(m)) & m.bool()[:, None, :, None]


def self_mask_future(m):  # triu: each token sees the tokens after it
    L = m.shape[1]
    return m.bool()[:, None, None, :] & torch.ones(L, L).triu().bool()


def self_mask_strict(m):  # tril(-1): no token sees itself
    L = m.shape[1]
    return m.bool()[:, None, None, :] & torch.ones(L, L).tril(-1).bool()


def self_mask_or(m):
    L = m.shape[1]
    return m.bool()[:, None, None, :] | torch.ones(L, L).tril().bool()


CHECKS = [
    (ch07.check_cross_attention_head, cross_head),
    (ch07.check_shift_tokens_right, shift),
    (ch07.check_decoder_self_mask, self_mask),
]

WRONG = [
    (ch07.check_cross_attention_head, cross_head_unscaled),
    (ch07.check_cross_attention_head, cross_head_no_mask),
    (ch07.check_cross_attention_head, cross_head_mask_inverted),
    (ch07.check_cross_attention_head, cross_head_softmax_over_queries),
    (ch07.check_cross_attention_head, cross_head_causal),
    (ch07.check_cross_attention_head, cross_head_scaled_by_keys),
    (ch07.check_cross_attention_head, cross_head_values_are_keys),
    (ch07.check_shift_tokens_right, shift_keeps_minus_100),
    (ch07.check_shift_tokens_right, shift_left),
    (ch07.check_shift_tokens_right, shift_start_is_pad),
    (ch07.check_shift_tokens_right, shift_keeps_last),
    (ch07.check_shift_tokens_right, shift_minus_100_to_zero),
    (ch07.check_decoder_self_mask, self_mask_causal_only),
    (ch07.check_decoder_self_mask, self_mask_padding_only),
    (ch07.check_decoder_self_mask, self_mask_padding_on_queries),
    (ch07.check_decoder_self_mask, self_mask_future),
    (ch07.check_decoder_self_mask, self_mask_strict),
    (ch07.check_decoder_self_mask, self_mask_or),
]

globals().update(contract_tests(CHECKS, WRONG))  # the shared contract: test_a_right_solution_passes, ...

# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("check, solution", [
    (ch07.check_cross_attention_head, cross_head_einsum),
    (ch07.check_shift_tokens_right, shift_in_place_cat),
])
def test_other_right_solutions_pass(check, solution):
    assert check(solution) is True


def test_wrong_output_types_are_reported():
    with pytest.raises(AssertionError, match="expected 2 outputs"):
        ch07.check_cross_attention_head(lambda q, k, v, m: cross_head(q, k, v, m)[0])
    with pytest.raises(AssertionError, match="expected shape"):
        ch07.check_cross_attention_head(lambda q, k, v, m: (cross_head(q, k, v, m)[0], cross_head(q, k, v, m)[1].mT))
    with pytest.raises(AssertionError, match="integer tensor"):
        ch07.check_shift_tokens_right(lambda labels, pad, start: shift(labels, pad, start).float())
    with pytest.raises(AssertionError, match="boolean"):
        ch07.check_decoder_self_mask(lambda m: self_mask(m).float())
    with pytest.raises(AssertionError, match="expected shape"):
        ch07.check_decoder_self_mask(lambda m: self_mask(m)[:, 0])


def test_cross_attention_reference_is_one_head_of_the_module():
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 3)
    z, h_enc = torch.randn(2, 4, 12), torch.randn(2, 6, 12)  # decoder states, encoder output
    source_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        _, alpha = mha(z, h_enc, mask=source_mask.bool()[:, None, None, :])  # (B, H, L_dec, L_enc)
        head = slice(4, 8)  # head 1 of 3: features 4..7
        q, k = mha.q_proj(z)[..., head], mha.k_proj(h_enc)[..., head]
        v = mha.v_proj(h_enc)[..., head]
    y, alpha_1 = ch07.cross_attention_head(q, k, v, source_mask)
    assert torch.allclose(alpha_1, alpha[:, 1], atol=1e-6)
    assert torch.allclose(alpha_1.sum(-1), torch.ones(2, 4)) and (alpha_1[1, :, 3:] == 0).all()
    assert torch.allclose(y, alpha_1 @ v)


def test_shift_and_mask_references_match_transformers_and_the_model():
    labels = torch.tensor([[5, 6, 7, 2, -100], [8, 2, -100, -100, -100]])
    for pad, start in ((1, 2), (0, 0)):
        assert torch.equal(ch07.shift_tokens_right(labels, pad, start), bart_shift_tokens_right(labels, pad, start))
    model = EncoderDecoder(20, d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, max_len=8)
    m = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    self_mask_of_model, _, _ = model._target_masks(torch.full((2, 5), 5), (2, 3), None, m, None)
    assert torch.equal(ch07.decoder_self_mask(m), self_mask_of_model)
    assert ch07.decoder_self_mask(m).shape == (2, 1, 5, 5) and DATE_PAD == 1  # the chapter's pad id


def test_in_place_student_code_cannot_corrupt_the_reference():
    def cross_head_in_place(q, k, v, source_mask):
        out = cross_head(q, k, v, source_mask)
        source_mask.fill_(1)
        k.zero_()
        return out

    def mask_in_place(m):
        out = self_mask(m)
        m.fill_(1)
        return out

    assert ch07.check_cross_attention_head(cross_head_in_place) is True
    assert ch07.check_shift_tokens_right(shift_in_place_cat) is True
    assert ch07.check_decoder_self_mask(mask_in_place) is True
