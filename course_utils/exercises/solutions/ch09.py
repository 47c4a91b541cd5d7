"""Chapter 09's exercises, solved: the softmax with a temperature, top-p, a greedy step, a beam step."""

import torch


def softmax_with_temperature(logits, temperature):
    scaled = logits / temperature
    scaled = scaled - scaled.max(dim=-1, keepdim=True).values  # the largest is 0: exp cannot overflow
    e = scaled.exp()
    return e / e.sum(dim=-1, keepdim=True)


def top_p(logits, p):
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)  # (..., V), most likely first
    mass_above = probs.cumsum(dim=-1) - probs  # mass of the strictly more likely tokens
    remove = mass_above >= p  # never the first: its mass_above is 0
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def greedy_step(model, input_ids):
    next_token = model(input_ids).logits[:, -1].argmax(dim=-1)  # (B,): arg max over V at the last position
    return torch.cat([input_ids, next_token[:, None]], dim=1)  # (B, T + 1)


def beam_step(beam_scores, log_probs, num_beams):
    V = log_probs.shape[-1]
    scores, index = (beam_scores[:, None] + log_probs).flatten().topk(num_beams)  # the best of k |V|
    return scores, index // V, index % V  # row (prefix) and column (token) of each
