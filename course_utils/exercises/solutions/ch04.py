"""Chapter 04's exercises, solved: a pair's inputs, truncation, the lecture's NSP loss, BERT's input embeddings."""

import torch
import torch.nn.functional as F

from ...objectives import IS_NEXT, IS_RANDOM


def pair_inputs(a, b, cls_id, sep_id):
    input_ids = [cls_id, *a, sep_id, *b, sep_id]
    token_type_ids = [0] * (len(a) + 2) + [1] * (len(b) + 1)  # [CLS] A [SEP] -> 0, B [SEP] -> 1
    return input_ids, token_type_ids


def truncate(a, b, max_num_tokens, flips):
    a, b, k = list(a), list(b), 0
    while len(a) + len(b) > max_num_tokens:
        longer = a if len(a) > len(b) else b  # b on ties
        if flips[k] < 0.5:
            del longer[0]  # from the front
        else:
            longer.pop()  # from the back
        k += 1
    return a, b


def nsp_loss_lecture(nsp_logits, follows):
    log_p = F.log_softmax(nsp_logits, dim=-1)  # (B, 2): log P_theta, log (1 - P_theta)
    y = follows.float()
    return -(y * log_p[:, IS_NEXT] + (1 - y) * log_p[:, IS_RANDOM]).mean()


def input_embeddings(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps):
    L = input_ids.shape[1]
    x = tok[input_ids] + pos[:L] + typ[token_type_ids]  # (B, L, d): figure 7
    mu = x.mean(dim=-1, keepdim=True)  # (B, L, 1)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)  # (B, L, 1), divides by d
    return gain * (x - mu) / torch.sqrt(var + eps) + bias  # (B, L, d)
