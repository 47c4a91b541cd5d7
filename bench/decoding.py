"""Greedy decoding speed: our generate (KV cache) against transformers' generate, on the same weights, one process.

    .venv/bin/python bench/decoding.py

Two random-weight models: our Decoder at the shipped tiny size (d 128, 4 layers, 4 heads, vocab 8000, max_len 512)
and at GPT-2 small's shape (d 768, 12 layers, 12 heads, vocab 50257). Each runs through course_utils' generate
and, converted with decoder_to_gpt2, through GPT2LMHeadModel.generate: 256 new tokens from an 8-token prompt, batch
1 and 8; prints tokens per second and the ratio ours / theirs (> 1: ours is faster). Then our cached against our
uncached generate on the tiny model, filling its 512 positions (504 new tokens). Repeats alternate between the
contenders and the best time counts. A benchmark: no assertions.
"""

from __future__ import annotations

import time

import torch

from course_utils.generation import generate
from course_utils.hf import decoder_to_gpt2
from course_utils.models import Decoder

PROMPT = 8


def best_times(runs: dict, repeats: int) -> tuple[dict, dict]:
    """Best wall time (s) and last output of each run(), the runs alternating so all see the same machine load."""
    times, outputs = {name: [] for name in runs}, {}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            outputs[name] = run()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}, outputs


def ours_vs_theirs(name: str, decoder: Decoder, new_tokens: int, repeats: int) -> None:
    """One table row per batch size: tokens/s of our generate and of transformers', the ratio, same tokens?"""
    gpt2 = decoder_to_gpt2(decoder)
    for batch in (1, 8):
        prompt = torch.randint(0, decoder.vocab_size, (batch, PROMPT), generator=torch.Generator().manual_seed(0))
        generate(decoder, prompt, 4), gpt2.generate(prompt, max_new_tokens=4, do_sample=False)  # warm-up
        best, out = best_times(
            {
                "ours": lambda: generate(decoder, prompt, new_tokens),
                "theirs": lambda: gpt2.generate(prompt, max_new_tokens=new_tokens, do_sample=False, num_beams=1),
            },
            repeats,
        )
        rate = {k: batch * new_tokens / t for k, t in best.items()}
        same = "yes" if torch.equal(out["ours"], out["theirs"]) else "NO"
        print(
            f"{name:>12} {batch:>5} {new_tokens:>6} {rate['ours']:>10.0f} {rate['theirs']:>10.0f} "
            f"{rate['ours'] / rate['theirs']:>6.2f} {same:>6}",
            flush=True,
        )


@torch.inference_mode()
def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, greedy, prompt {PROMPT} tokens")
    tiny = Decoder(8000, d_model=128, n_heads=4, n_layers=4, max_len=512).eval()
    small = Decoder(50257, d_model=768, n_heads=12, n_layers=12, max_len=1024).eval()

    print(f"\n{'model':>12} {'batch':>5} {'new':>6} {'ours tok/s':>10} {'hf tok/s':>10} {'ratio':>6} {'same':>6}")
    ours_vs_theirs("tiny", tiny, 256, repeats=3)
    ours_vs_theirs("gpt2-small", small, 256, repeats=2)

    new_tokens = tiny.max_len - PROMPT
    prompt = torch.randint(0, tiny.vocab_size, (1, PROMPT), generator=torch.Generator().manual_seed(0))
    best, out = best_times(
        {
            "cached": lambda: generate(tiny, prompt, new_tokens),
            "uncached": lambda: generate(tiny, prompt, new_tokens, use_cache=False),
        },
        repeats=2,
    )
    print(f"\n{'tiny, batch 1':>14} {'new':>5} {'cached s':>9} {'uncached s':>11} {'speed-up':>9} {'same':>5}")
    print(
        f"{'':>14} {new_tokens:>5} {best['cached']:>9.2f} {best['uncached']:>11.2f} "
        f"{best['uncached'] / best['cached']:>9.1f} {'yes' if torch.equal(out['cached'], out['uncached']) else 'NO':>5}"
    )


if __name__ == "__main__":
    main()
