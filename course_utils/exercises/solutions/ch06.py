"""Chapter 06's exercises, solved: the causal mask with a cache, a sequence's log-likelihood, a padded LM loss."""

import torch
import torch.nn.functional as F


def cached_causal_mask(L, T):
    # query i is position T - L + i of the sequence: it sees the keys j <= T - L + i
    return torch.ones(L, T, dtype=torch.bool).tril(diagonal=T - L)


def sequence_log_likelihood(logits, ids):
    log_p = F.log_softmax(logits[:, :-1], dim=-1)  # (B, L - 1, V): position t scores token t + 1
    return log_p.gather(-1, ids[:, 1:, None]).squeeze(-1).sum(-1)  # (B,)


def lm_loss_padded(logits, ids, attention_mask):
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")  # (B, L - 1)
    real_target = attention_mask[:, 1:].float()  # is the *target* a real token?
    return (nll * real_target).sum() / real_target.sum()
