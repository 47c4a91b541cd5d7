"""Our attention and layer with the weights of torch.nn.MultiheadAttention and torch.nn.TransformerEncoderLayer."""

from __future__ import annotations

from torch import nn

from .._validate import check_instance
from ..attention import MultiHeadAttention
from ..layers import TransformerLayer
from ._common import module_names, transfer


def mha_from_torch(theirs: nn.MultiheadAttention) -> MultiHeadAttention:
    """Our MultiHeadAttention with the weights of a torch.nn.MultiheadAttention (rows of in_proj packed q|k|v)."""
    check_instance("theirs", theirs, nn.MultiheadAttention, "torch.nn.MultiheadAttention")
    if theirs.in_proj_weight is None or theirs.in_proj_bias is None:
        raise ValueError("theirs must have packed projections with bias (kdim == vdim == embed_dim, bias=True)")
    if theirs.bias_k is not None or theirs.add_zero_attn:
        raise ValueError("theirs must not add extra keys (add_bias_kv=True or add_zero_attn=True): "
                         "eq. (1) attends to the sequence's own keys only")
    ours = MultiHeadAttention(theirs.embed_dim, theirs.num_heads)
    wq, wk, wv = theirs.in_proj_weight.detach().chunk(3)  # (3E, E) -> three (E, E)
    bq, bk, bv = theirs.in_proj_bias.detach().chunk(3)
    state = {"q_proj.weight": wq, "q_proj.bias": bq, "k_proj.weight": wk, "k_proj.bias": bk, "v_proj.weight": wv,
             "v_proj.bias": bv, **{f"out_proj.{k}": v for k, v in theirs.out_proj.state_dict().items()}}
    ours.load_state_dict(state)
    return ours


def layer_from_torch(theirs: nn.TransformerEncoderLayer) -> TransformerLayer:
    """Our TransformerLayer equal to a torch.nn.TransformerEncoderLayer (norm_first=False -> "post", True -> "pre")."""
    check_instance("theirs", theirs, nn.TransformerEncoderLayer, "torch.nn.TransformerEncoderLayer")
    activation = {"relu": "relu", "gelu": "gelu"}.get(getattr(theirs.activation, "__name__", ""))
    if activation is None:
        raise ValueError(f"unsupported activation {theirs.activation!r}; expected relu or gelu")
    d_model = theirs.self_attn.embed_dim
    ours = TransformerLayer(
        d_model, theirs.self_attn.num_heads, theirs.linear1.out_features,
        norm="pre" if theirs.norm_first else "post", activation=activation, eps=theirs.norm1.eps,
    )
    state = {f"attn.{k}": v for k, v in mha_from_torch(theirs.self_attn).state_dict().items()}
    state |= theirs.state_dict()
    names = {n: n for n in state if n.startswith("attn.")}
    names |= module_names({"ffn.w1": "linear1", "ffn.w2": "linear2", "norm1": "norm1", "norm2": "norm2"})
    return transfer(ours, state, names).train(theirs.training)
