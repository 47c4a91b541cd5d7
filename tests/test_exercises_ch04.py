"""The checks of chapter 04's exercises: right answers pass, wrong ones fail loudly, stubs are "not attempted"."""

import random

import pytest
import torch
import torch.nn.functional as F

from course_utils.exercises import ch04
from course_utils.models import Embeddings, EncoderConfig
from course_utils.objectives import IS_NEXT, IS_RANDOM, nsp_instances, truncate_seq_pair
from exercise_contract import contract_tests  # tests/exercise_contract.py

# ---------------------------------------------------------------- solutions, right and wrong


def pair_inputs(a, b, cls_id, sep_id):
    return [cls_id] + a + [sep_id] + b + [sep_id], [0] * (len(a) + 2) + [1] * (len(b) + 1)


def pair_inputs_tensors(a, b, cls_id, sep_id):  # tensors are fine too
    ids, types = pair_inputs(a, b, cls_id, sep_id)
    return torch.tensor(ids), torch.tensor(types)


def pair_inputs_first_sep_is_b(a, b, cls_id, sep_id):  # the [SEP] after A given type 1
    ids, _ = pair_inputs(a, b, cls_id, sep_id)
    return ids, [0] * (len(a) + 1) + [1] * (len(b) + 2)


def pair_inputs_last_sep_is_a(a, b, cls_id, sep_id):  # the final [SEP] given type 0
    ids, _ = pair_inputs(a, b, cls_id, sep_id)
    return ids, [0] * (len(a) + 2) + [1] * len(b) + [0]


def pair_inputs_no_final_sep(a, b, cls_id, sep_id):
    return [cls_id] + a + [sep_id] + b, [0] * (len(a) + 2) + [1] * len(b)


def pair_inputs_swapped_specials(a, b, cls_id, sep_id):
    return pair_inputs(a, b, sep_id, cls_id)


def truncate(a, b, max_num_tokens, flips):
    a, b, k = list(a), list(b), 0
    while len(a) + len(b) > max_num_tokens:
        longer = a if len(a) > len(b) else b
        if flips[k] < 0.5:
            del longer[0]
        else:
            longer.pop()
        k += 1
    return a, b


def truncate_in_place_iterator(a, b, max_num_tokens, flips):  # consumes an iterator, edits in place
    coins = iter(flips)
    while len(a) + len(b) > max_num_tokens:
        longer = a if len(a) > len(b) else b
        longer.pop(0 if next(coins) < 0.5 else -1)
    return a, b


def truncate_a_on_ties(a, b, max_num_tokens, flips):
    a, b, k = list(a), list(b), 0
    while len(a) + len(b) > max_num_tokens:
        longer = a if len(a) >= len(b) else b
        longer.pop(0 if flips[k] < 0.5 else -1)
        k += 1
    return a, b


def truncate_always_back(a, b, max_num_tokens, flips):
    return truncate(a, b, max_num_tokens, [0.9] * len(flips))


def truncate_coin_reversed(a, b, max_num_tokens, flips):  # front when the flip is >= 0.5
    return truncate(a, b, max_num_tokens, [1 - f for f in flips])


def truncate_proportional(a, b, max_num_tokens, flips):  # cut both to half the budget, from the back
    half = max_num_tokens // 2
    return (a[:half], b[:max_num_tokens - half]) if len(a) + len(b) > max_num_tokens else (a, b)


def nsp_loss(nsp_logits, follows):
    log_p = F.log_softmax(nsp_logits, dim=-1)  # (B, 2): log P and log (1 - P)
    y = follows.float()
    return -(y * log_p[:, IS_NEXT] + (1 - y) * log_p[:, IS_RANDOM]).mean()


def nsp_loss_via_bert_labels(nsp_logits, follows):
    return F.cross_entropy(nsp_logits, 1 - follows)


def nsp_loss_naive(nsp_logits, follows):  # log of a probability that underflows to 0 for confident logits
    p = torch.softmax(nsp_logits, dim=-1)[:, IS_NEXT]
    y = follows.float()
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


def nsp_loss_lecture_labels_in_cross_entropy(nsp_logits, follows):  # 1 = follows fed to BERT's head
    return F.cross_entropy(nsp_logits, follows)


def nsp_loss_sum(nsp_logits, follows):
    return nsp_loss(nsp_logits, follows) * len(follows)


def nsp_loss_sigmoid_of_first_logit(nsp_logits, follows):  # forgets the second logit
    return F.binary_cross_entropy_with_logits(nsp_logits[:, IS_NEXT], follows.float())


def norm(x, gain, bias, eps):  # LayerNorm by hand (the exercise forbids F.layer_norm)
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return gain * (x - mu) / torch.sqrt(var + eps) + bias


def embeddings(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps):
    L = input_ids.shape[1]
    return norm(tok[input_ids] + pos[:L] + typ[token_type_ids], gain, bias, eps)  # (B, L, d)


def embeddings_no_position(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps):
    x = tok[input_ids] + typ[token_type_ids]
    return norm(x, gain, bias, eps)


def embeddings_no_type(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps):
    x = tok[input_ids] + pos[: input_ids.shape[1]]
    return norm(x, gain, bias, eps)


def embeddings_positions_from_1(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps):
    L = input_ids.shape[1]
    x = tok[input_ids] + pos[torch.arange(1, L + 1) % pos.shape[0]] + typ[token_type_ids]
    return norm(x, gain, bias, eps)


def embeddings_no_norm(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps):
    return tok[input_ids] + pos[: input_ids.shape[1]] + typ[token_type_ids]


def embeddings_no_affine(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps):
    x = tok[input_ids] + pos[: input_ids.shape[1]] + typ[token_type_ids]
    return norm(x, 1.0, 0.0, eps)


def embeddings_eps_outside(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps):
    x = tok[input_ids] + pos[: input_ids.shape[1]] + typ[token_type_ids]
    mu = x.mean(-1, keepdim=True)
    return gain * (x - mu) / (x.std(-1, unbiased=False, keepdim=True) + eps) + bias


CHECKS = [
    (ch04.check_pair_inputs, pair_inputs),
    (ch04.check_truncate_seq_pair, truncate),
    (ch04.check_nsp_loss, nsp_loss),
    (ch04.check_input_embeddings, embeddings),
]

WRONG = [
    (ch04.check_pair_inputs, pair_inputs_first_sep_is_b),
    (ch04.check_pair_inputs, pair_inputs_last_sep_is_a),
    (ch04.check_pair_inputs, pair_inputs_no_final_sep),
    (ch04.check_pair_inputs, pair_inputs_swapped_specials),
    (ch04.check_truncate_seq_pair, truncate_a_on_ties),
    (ch04.check_truncate_seq_pair, truncate_always_back),
    (ch04.check_truncate_seq_pair, truncate_coin_reversed),
    (ch04.check_truncate_seq_pair, truncate_proportional),
    (ch04.check_nsp_loss, nsp_loss_naive),
    (ch04.check_nsp_loss, nsp_loss_lecture_labels_in_cross_entropy),
    (ch04.check_nsp_loss, nsp_loss_sum),
    (ch04.check_nsp_loss, nsp_loss_sigmoid_of_first_logit),
    (ch04.check_input_embeddings, embeddings_no_position),
    (ch04.check_input_embeddings, embeddings_no_type),
    (ch04.check_input_embeddings, embeddings_positions_from_1),
    (ch04.check_input_embeddings, embeddings_no_norm),
    (ch04.check_input_embeddings, embeddings_no_affine),
    (ch04.check_input_embeddings, embeddings_eps_outside),
]

globals().update(contract_tests(CHECKS, WRONG))  # the shared contract: test_a_right_solution_passes, ...

# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("check, solution", [
    (ch04.check_pair_inputs, pair_inputs_tensors),
    (ch04.check_truncate_seq_pair, truncate_in_place_iterator),
    (ch04.check_nsp_loss, nsp_loss_via_bert_labels),
])
def test_other_right_solutions_pass(check, solution):
    assert check(solution) is True


def test_wrong_output_types_are_reported():
    with pytest.raises(AssertionError, match="expected 2 outputs"):
        ch04.check_pair_inputs(lambda a, b, c, s: pair_inputs(a, b, c, s)[0])
    with pytest.raises(AssertionError, match="expected 2 outputs"):
        ch04.check_truncate_seq_pair(lambda a, b, m, f: a + b)
    with pytest.raises(AssertionError, match="single number"):
        ch04.check_nsp_loss(lambda logits, follows: F.cross_entropy(logits, 1 - follows, reduction="none"))
    with pytest.raises(AssertionError, match="expected shape"):
        ch04.check_input_embeddings(lambda *args: embeddings(*args)[:, 0])


def test_references_agree_with_course_utils_and_transformers_conventions():
    # exercise 1: the layout nsp_instances writes
    x = nsp_instances([[[7, 8]], [[9]]], 0, cls_id=2, sep_id=3, max_seq_length=16, rng=random.Random(0))[0]
    a, b = x.input_ids[1:3], x.input_ids[4:-1]
    assert ch04.pair_inputs(a, b, 2, 3) == (x.input_ids, x.token_type_ids)
    # exercise 3: eq. (5) by hand, with the probabilities
    logits, follows = torch.tensor([[1.0, -1.0], [0.5, 2.0]]), torch.tensor([1, 0])
    p = torch.softmax(logits, -1)[:, IS_NEXT]
    by_hand = -(torch.log(p[0]) + torch.log(1 - p[1])) / 2
    assert torch.allclose(ch04.lecture_nsp_loss(logits, follows), by_hand)
    # exercise 4: the reference is the Embeddings module of the models
    emb = Embeddings(EncoderConfig(20, d_model=6, n_heads=1, max_len=8)).eval()
    ids, types = torch.tensor([[2, 7, 3, 9, 3]]), torch.tensor([[0, 0, 0, 1, 1]])
    got = ch04.input_embeddings(ids, types, emb.tok.weight, emb.pos.weight, emb.typ.weight,
                                emb.norm.weight, emb.norm.bias, 1e-12)
    assert torch.allclose(got, emb(ids, types).detach())


def test_the_coins_drive_the_reference_as_documented():
    coins = ch04._Coins([0.1, 0.9, 0.5])
    a, b = list(range(5)), list(range(10, 15))
    truncate_seq_pair(a, b, 7, coins)  # B (tie), A, B: front of B, back of A, back of B (0.5 is "back")
    assert (a, b) == ([0, 1, 2, 3], [11, 12, 13])


def test_in_place_student_code_cannot_corrupt_the_reference():
    def pair_in_place(a, b, cls_id, sep_id):
        out = pair_inputs(a, b, cls_id, sep_id)
        a.clear()
        return out

    def loss_in_place(nsp_logits, follows):
        out = nsp_loss(nsp_logits, follows)
        nsp_logits.zero_()
        follows.fill_(1)
        return out

    def embeddings_in_place(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps):
        out = embeddings(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps)
        tok.zero_()
        input_ids.zero_()
        return out

    assert ch04.check_pair_inputs(pair_in_place) is True
    assert ch04.check_truncate_seq_pair(truncate_in_place_iterator) is True
    assert ch04.check_nsp_loss(loss_in_place) is True
    assert ch04.check_input_embeddings(embeddings_in_place) is True
