"""Chapter 05's exercises, solved: the classifier head, the parameters a switch of heads drops and adds, the
learning-rate split between the new head and the pre-trained encoder."""

import torch


def classifier_head(h, W_pool, b_pool, W_cls, b_cls):
    pooled = torch.tanh(h[:, 0] @ W_pool.T + b_pool)  # (B, d): the [CLS] vector, pooled
    return pooled @ W_cls.T + b_cls  # (B, n_labels)


def switch_counts(vocab_size, d_model, n_labels):
    mlm = (d_model * d_model + d_model) + 2 * d_model + vocab_size  # dense, LayerNorm, output bias
    nsp = 2 * d_model + 2
    return mlm + nsp, n_labels * d_model + n_labels


def param_groups(model, lr, encoder_lr):
    head = list(model.classifier.parameters())  # new: learns from scratch
    ids = {id(p) for p in head}
    pretrained = [p for p in model.parameters() if id(p) not in ids]  # encoder and pooler
    return [{"params": head, "lr": lr}, {"params": pretrained, "lr": encoder_lr}]
