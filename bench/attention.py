"""Speed and memory of our eq. (1) against torch's fused attention, side by side in one process.

    .venv/bin/python bench/attention.py

Prints, for a few (B, H, L, d_head) shapes, the forward time of course_utils' scaled_dot_product_attention
(which materialises alpha, the (L, L) weights the book plots) and of torch.nn.functional's (which may use a
fused kernel and never stores alpha), and the ratio ours / torch; then the same for one BERT-base-sized
TransformerLayer against torch.nn.TransformerEncoderLayer with the same weights. A benchmark: no assertions.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from course_utils.attention import scaled_dot_product_attention
from course_utils.hf import layer_from_torch


def best_times(ours, theirs, repeats: int = 10) -> tuple[float, float]:
    """Best wall times (s) of ours() and theirs(), run alternately so both see the same machine load."""
    ours(), theirs()  # warm-up
    t_ours, t_theirs = [], []
    for _ in range(repeats):
        for fn, times in ((ours, t_ours), (theirs, t_theirs)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return min(t_ours), min(t_theirs)


@torch.no_grad()
def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'shape (B, H, L, d_head)':>26} {'ours ms':>9} {'torch ms':>9} {'ratio':>6} {'alpha MB':>9}")
    for B, H, L, d in [(1, 12, 128, 64), (8, 12, 128, 64), (1, 12, 512, 64), (4, 12, 512, 64)]:
        q, k, v = (torch.randn(B, H, L, d) for _ in range(3))
        ours, theirs = best_times(
            lambda: scaled_dot_product_attention(q, k, v), lambda: F.scaled_dot_product_attention(q, k, v)
        )
        alpha_mb = B * H * L * L * 4 / 2**20
        print(f"{str((B, H, L, d)):>26} {ours * 1e3:9.2f} {theirs * 1e3:9.2f} {ours / theirs:6.2f} {alpha_mb:9.1f}")

    print(f"\n{'TransformerLayer (768, 12 heads, 3072)':>40} {'ours ms':>9} {'torch ms':>9} {'ratio':>6}")
    torch_layer = torch.nn.TransformerEncoderLayer(768, 12, 3072, dropout=0.0, batch_first=True).eval()
    our_layer = layer_from_torch(torch_layer).eval()
    for B, L in [(1, 128), (8, 128)]:
        x = torch.randn(B, L, 768)
        ours, theirs = best_times(lambda: our_layer(x), lambda: torch_layer(x), repeats=5)
        print(f"{f'B={B}, L={L}':>40} {ours * 1e3:9.2f} {theirs * 1e3:9.2f} {ours / theirs:6.2f}")


if __name__ == "__main__":
    main()
