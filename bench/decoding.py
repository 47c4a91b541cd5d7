"""Greedy decoding speed: our generate (KV cache) against transformers' generate, on the same weights, one process.

    .venv/bin/python bench/decoding.py

1. GPT-2 layout, random weights: our Decoder at the shipped tiny size (d 128, 4 layers, 4 heads, vocab 8000,
   max_len 512) and at GPT-2 small's shape (d 768, 12 layers, 12 heads, vocab 50257), through course_utils' generate
   and, converted with decoder_to_gpt2, through GPT2LMHeadModel.generate: 256 new tokens, batch 1 and 8.
2. Llama layout, the real SmolLM2-135M-Instruct: our LlamaDecoder read from the GGUF file by our reader, through our
   generate, against transformers' LlamaForCausalLM (its default sdpa attention) through its own generate:
   128 new tokens, batch 1 and 8, with one thread and with two.
3. KV cache against none on the same model: the tiny GPT filling its 512 positions, SmolLM2 with 256 new tokens.
Each row prints tokens per second and the ratio ours / theirs (> 1: ours is faster), and whether the tokens are the
same. Repeats alternate between the contenders and the best time counts. A benchmark: no assertions.
"""

from __future__ import annotations

import time

import torch

from course_utils.generation import generate
from course_utils.hf import decoder_to_gpt2
from course_utils.models import Decoder
from course_utils.pretrained import llama_from_gguf, load_smollm2

PROMPT = 8
HEADER = f"{'model':>12} {'threads':>7} {'batch':>5} {'new':>5} {'ours tok/s':>10} {'hf tok/s':>10} {'ratio':>6} {'same':>5}"


def best_times(runs: dict, repeats: int) -> tuple[dict, dict]:
    """Best wall time (s) and last output of each run(), the runs alternating so all see the same machine load."""
    times, outputs = {name: [] for name in runs}, {}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            outputs[name] = run()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}, outputs


def ours_vs_theirs(name: str, ours, theirs, new_tokens: int, repeats: int, batches=(1, 8)) -> None:
    """One table row per batch size: tokens/s of our generate and of transformers', the ratio, same tokens?"""
    for batch in batches:
        prompt = torch.randint(0, ours.config.vocab_size, (batch, PROMPT), generator=torch.Generator().manual_seed(0))
        generate(ours, prompt, 4), theirs.generate(prompt, max_new_tokens=4, do_sample=False)  # warm-up
        best, out = best_times({
            "ours": lambda: generate(ours, prompt, new_tokens),
            "theirs": lambda: theirs.generate(prompt, max_new_tokens=new_tokens, do_sample=False, num_beams=1,
                                              eos_token_id=None, pad_token_id=0),
        }, repeats)
        rate = {k: batch * new_tokens / t for k, t in best.items()}
        same = "yes" if torch.equal(out["ours"], out["theirs"]) else "NO"
        print(f"{name:>12} {torch.get_num_threads():>7} {batch:>5} {new_tokens:>5} {rate['ours']:>10.0f} "
              f"{rate['theirs']:>10.0f} {rate['ours'] / rate['theirs']:>6.2f} {same:>5}", flush=True)


def cached_vs_uncached(name: str, model, new_tokens: int, repeats: int) -> None:
    """Our generate with and without the KV cache on one model, batch 1: seconds, speed-up, same tokens?"""
    prompt = torch.randint(0, model.config.vocab_size, (1, PROMPT), generator=torch.Generator().manual_seed(0))
    best, out = best_times({"cached": lambda: generate(model, prompt, new_tokens),
                            "uncached": lambda: generate(model, prompt, new_tokens, use_cache=False)}, repeats)
    same = "yes" if torch.equal(out["cached"], out["uncached"]) else "NO"
    print(f"{name:>12} {torch.get_num_threads():>7} {new_tokens:>5} {best['cached']:>9.2f} {best['uncached']:>11.2f} "
          f"{best['uncached'] / best['cached']:>9.1f} {same:>5}", flush=True)


@torch.inference_mode()
def main() -> None:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, greedy, prompt {PROMPT} random tokens")
    tiny = Decoder(8000, d_model=128, n_heads=4, n_layers=4, max_len=512).eval()
    small = Decoder(50257, d_model=768, n_heads=12, n_layers=12, max_len=1024).eval()
    smollm2, _ = load_smollm2("sdpa")  # transformers' default attention: the fastest baseline it offers on CPU
    ours = llama_from_gguf()

    print("\n" + HEADER)
    ours_vs_theirs("tiny", tiny, decoder_to_gpt2(tiny), 256, repeats=3)
    ours_vs_theirs("gpt2-small", small, decoder_to_gpt2(small), 256, repeats=2)
    for n in sorted({1, threads}):
        torch.set_num_threads(n)
        ours_vs_theirs("smollm2", ours, smollm2, 128, repeats=2)
    torch.set_num_threads(threads)

    print(f"\n{'model':>12} {'threads':>7} {'new':>5} {'cached s':>9} {'uncached s':>11} {'speed-up':>9} {'same':>5}")
    cached_vs_uncached("tiny", tiny, tiny.config.max_len - PROMPT, repeats=2)
    cached_vs_uncached("smollm2", ours, 256, repeats=1)


if __name__ == "__main__":
    main()
