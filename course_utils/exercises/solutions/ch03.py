"""Chapter 03's exercises, solved: the skip-gram loss, subsampling, BERT's corruption, the MLM loss."""

import torch
import torch.nn.functional as F

from ...objectives import IGNORE_INDEX


def sgns(v_w, u_pos, u_neg, use):
    positive = F.logsigmoid((u_pos * v_w).sum(-1))  # (N,)   log sigma(u+ . v)
    negative = F.logsigmoid(-(u_neg @ v_w[:, :, None]).squeeze(-1))  # (N, K) log sigma(-u- . v)
    return -(positive + (negative * use).sum(-1)).mean()


def subsample(sentence, counts, sample, u):
    z = counts / counts.sum()  # (V,) frequencies
    keep = (sample / z).sqrt() + sample / z  # (V,) may exceed 1: always kept
    return sentence[keep[sentence] >= u]


def corrupt(input_ids, special_ids, mask_id, u_select, u_action, random_ids):
    special = torch.isin(input_ids, torch.tensor(list(special_ids)))
    selected = (u_select < 0.15) & ~special  # (B, L)
    inputs = torch.where(selected & (u_action < 0.8), mask_id, input_ids)
    inputs = torch.where(selected & (u_action >= 0.8) & (u_action < 0.9), random_ids, inputs)
    labels = torch.where(selected, input_ids, IGNORE_INDEX)
    return inputs, labels


def mlm_loss_by_hand(logits, labels):
    selected = labels != IGNORE_INDEX  # (B, L)
    log_p = logits[selected] - torch.logsumexp(logits[selected], dim=-1, keepdim=True)  # (n, V)
    return -log_p.gather(1, labels[selected][:, None]).mean()
