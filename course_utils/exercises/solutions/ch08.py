"""Chapter 08's exercises, solved: token deletion, document rotation, the span budget, sentence permutation."""

import math

import torch


def delete_tokens(tokens, ratio, order):
    n = math.ceil(ratio * (len(tokens) - 2))  # <s> and </s> are not counted
    keep = torch.ones(len(tokens), dtype=torch.bool)
    keep[1 + order[:n]] = False  # positions 1..L-2: never <s> or </s>
    return tokens[keep]


def rotate(tokens, offset):
    return torch.cat([tokens[:1], tokens[offset:-1], tokens[1:offset], tokens[-1:]])


def cut_to_budget(lengths, num_to_mask):
    total = lengths.cumsum(0)  # (n,) running sum
    i = int((total < num_to_mask).sum())  # the first span at which it reaches the budget
    kept = lengths[: i + 1].clone()
    kept[i] = num_to_mask - (total[i - 1] if i > 0 else 0)  # shorten it: the sum is exactly the budget
    return kept


def permute(tokens, full_stop_id, order):
    stops = tokens == full_stop_id
    stops[-2] = True  # the token before </s> ends a sentence
    ends = ((stops[1:] & ~stops[:-1]).nonzero().squeeze(1) + 2).tolist()  # one past each sentence
    if not ends:
        return tokens.clone()
    starts = [1, *ends[:-1]]
    body = [tokens[starts[i]:ends[i]] for i in order.tolist()]
    return torch.cat([tokens[:1], *body, tokens[ends[-1]:]])
