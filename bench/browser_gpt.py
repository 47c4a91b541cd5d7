"""The tiny GPT in the page against PyTorch: reading a prompt and sampling, the same work side by side, one run.

    .venv/bin/python bench/browser_gpt.py

The page's model (course_utils/browser_gpt.js with the shipped weights, as the book serves it) runs in Node, the
JavaScript engine of Chromium; PyTorch runs the same checkpoint on one thread. For a prompt of 8 and one of 98
tokens (so that 30 new ones fit the 128 positions): the next-token distribution (one forward pass over the prompt),
and 3 samples of 30 new tokens after it (a KV cache in both). The best of 3 repeats counts. A benchmark: no assertions.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time

import torch

from course_utils.browser_gpt import write_script
from course_utils.checkpoints import load_tiny_gpt
from course_utils.data import load_bpe, prompt_ids
from course_utils.generation import generate, next_token_logits

PROMPTS = ["To be, or not to be", " ".join(["ROMEO: But soft, what light through yonder window breaks?"] * 7)]
N_SAMPLES, N_NEW, REPEATS = 3, 30, 3

NODE_TIMER = """
import fs from "fs"; import vm from "vm";
vm.runInThisContext(fs.readFileSync(%s, "utf8"));
const { tokenizer, model, sample } = globalThis.courseTinyGPT;
const softmax = (z) => { const m = Math.max(...z), p = z.map((x) => Math.exp(x - m)), s = p.reduce((a, b) => a + b);
                         return p.map((x) => x / s); };
const best = (work) => Math.min(...Array.from({ length: %d }, () => { const t = performance.now(); work();
                                                                         return performance.now() - t; }));
console.log(JSON.stringify(%s.map((text) => { const ids = tokenizer.encode(text).slice(0, %d);
  return [best(() => model.nextLogits(ids, model.newCache())),
          best(() => sample(ids, { n: %d, maxNew: %d, seed: 0, probs: softmax }))]; })));
"""


def best_ms(work) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main() -> None:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("Node is not installed (make setup installs it with npm)")
    torch.set_num_threads(1)
    model, tokenizer = load_tiny_gpt(), load_bpe()
    room = model.config.max_len - N_NEW  # the prompt is cut so that the samples fit the 128 positions
    with tempfile.TemporaryDirectory() as folder:
        script = write_script(folder)
        code = NODE_TIMER % (json.dumps(str(script)), REPEATS, json.dumps(PROMPTS), room, N_SAMPLES, N_NEW)
        done = subprocess.run([node, "--input-type=module", "-e", code], capture_output=True, text=True, check=True)
    page = json.loads(done.stdout)
    print(f"{'prompt':>8} {'what':>28} {'page (ms)':>10} {'PyTorch (ms)':>12} {'ratio':>6}")
    for text, (read_js, sample_js) in zip(PROMPTS, page):
        ids = prompt_ids(tokenizer, text)[:, :room]
        read_pt = best_ms(lambda: next_token_logits(model, ids))
        sample_pt = best_ms(lambda: generate(model, ids.expand(N_SAMPLES, -1), N_NEW, do_sample=True))
        for what, js, pt in (("next-token distribution", read_js, read_pt),
                             (f"{N_SAMPLES} samples of {N_NEW} tokens", sample_js, sample_pt)):
            print(f"{ids.shape[1]:>8} {what:>28} {js:10.0f} {pt:12.0f} {js / pt:6.1f}")


if __name__ == "__main__":
    main()
