"""What every conversion shares: config-to-config checks, parameter-name tables (ours -> theirs), one weight copy."""

from __future__ import annotations

from torch import nn

ACTIVATIONS_FROM = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
ACTIVATIONS_TO = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_new"}  # ours -> transformers'
EAGER = dict(attn_implementation="eager")  # attention weights as in eq. (1), returned for the tests


def transfer(target: nn.Module, source: dict, names: dict[str, str], allowed_missing: tuple[str, ...] = ()):
    """Load target's weights from the state dict `source` (names: target name -> source name); return it in eval mode.

    Only the tied copies named in allowed_missing (loaded with the weight they share) may stay unloaded.
    """
    shapes = {k: v.shape for k, v in target.state_dict().items()}
    state = {t: source[s].detach().reshape(shapes.get(t, source[s].shape)).clone() for t, s in names.items()}
    missing, unexpected = target.load_state_dict(state, strict=False)
    if unexpected or any(not m.endswith(allowed_missing) for m in missing):
        raise RuntimeError(f"conversion is incomplete: missing {missing}, unexpected {unexpected}")
    return target.eval()


def invert(names: dict[str, str]) -> dict[str, str]:
    """The same table read the other way, theirs -> ours."""
    return {theirs: ours for ours, theirs in names.items()}


def check_supported(model: str, theirs: str, unsupported: dict[str, tuple[bool, object]]) -> None:
    """Raise ValueError listing the settings of a transformers config that our model cannot express."""
    bad = {name: value for name, (flag, value) in unsupported.items() if flag}
    if bad:
        raise ValueError(f"our {model} cannot express this {theirs} config: {bad}")


def module_names(pairs: dict[str, str], params: tuple[str, ...] = ("weight", "bias")) -> dict[str, str]:
    """Parameter names of modules, ours -> theirs: {"norm": "ln_f"} -> {"norm.weight": "ln_f.weight", ...}."""
    return {f"{o}.{p}": f"{t}.{p}" for o, t in pairs.items() for p in params}


def layer_names(ours: str, theirs: str, pairs: dict[str, str], n_layers: int) -> dict[str, str]:
    """The parameter names of n_layers layers, ours.i.module -> theirs.i.module, for each module pair."""
    return {o: t for i in range(n_layers) for o, t in module_names(
        {f"{ours}.{i}.{a}": f"{theirs}.{i}.{b}" for a, b in pairs.items()}).items()}


def transformers_class(name: str):
    """A class of transformers, imported only when a conversion needs it."""
    import transformers

    return getattr(transformers, name)
