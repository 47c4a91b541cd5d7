"""The explorers' JavaScript (course_utils/explorers.js) computes what the Python reference computes: the masks and
alpha of attention.build_mask / scaled_dot_product_attention, and warpers.warp_distribution (survivors, the warped
distribution, both entropies), ties included. Run with Node (installed with npm by `make setup`)."""

import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from course_utils.attention import MASK_KINDS, PAD_SIDES, build_mask, scaled_dot_product_attention
from course_utils.warpers import warp_distribution

JS = Path(__file__).resolve().parent.parent / "course_utils" / "explorers.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None and not os.environ.get("CI"), reason="Node is not installed (npm)")

RUNNER = """
import { attentionWeights, buildMask, entropy, softmax, warpLogits } from %s;
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const { warps, masks } = JSON.parse(input);
  const finite = (xs) => xs.map((x) => (x === null ? -Infinity : x));  // JSON has no -Infinity
  const warped = warps.map(({ z, temperature, top_k, top_p }) => {
    const w = warpLogits(finite(z), temperature, top_k, top_p), after = softmax(w);
    return { kept: Array.from(w, (x) => x > -Infinity), after: Array.from(after),
             entropy_before: entropy(softmax(finite(z))), entropy_after: entropy(after) };
  });
  const masked = masks.map(({ kind, n_queries, n_keys, n_pad, pad_side, q, k, scale }) => {
    const mask = buildMask(kind, n_queries, n_keys, n_pad, pad_side);
    return { mask, alpha: attentionWeights(q, k, mask, scale).map((row) => Array.from(row)) };
  });
  process.stdout.write(JSON.stringify({ warped, masked }));
});
"""


def run_js(warps: list[dict], masks: list[dict]) -> dict:
    """Feed the cases to explorers.js's exported functions in Node; their results, as JSON."""
    script = RUNNER % json.dumps(JS.as_uri())
    done = subprocess.run([NODE or "node", "--input-type=module", "-e", script], input=json.dumps(
        {"warps": warps, "masks": masks}), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


SETTINGS = [(1.0, 0, 1.0), (0.7, 10, 0.8), (1.0, 5, 1.0), (2.0, 0, 0.5), (0.05, 0, 0.9), (0.5, 3, 0.3),
            (1.3, 50, 0.95), (1.0, 1, 1.0), (3.0, 0, 0.999)]


def logit_rows() -> list[torch.Tensor]:
    """Random logits, logits with many exact ties, and logits with removed (-inf) tokens."""
    g = torch.Generator().manual_seed(0)
    plain = torch.randn(500, generator=g) * 3
    ties = (torch.randn(300, generator=g) * 2).round()  # about 15 distinct values: ties at every cut
    removed = torch.randn(200, generator=g).masked_fill(torch.rand(200, generator=g) < 0.3, float("-inf"))
    return [plain, ties, removed]


def test_the_warpers_in_javascript_are_warp_distribution():
    cases = [(z, s) for z in logit_rows() for s in SETTINGS]
    warps = [{"z": [x if x > -torch.inf else None for x in z.tolist()], "temperature": T, "top_k": k, "top_p": p}
             for z, (T, k, p) in cases]
    results = run_js(warps, [])["warped"]
    for (z, (T, k, p)), js in zip(cases, results):
        ref = warp_distribution(z, T, k, p)
        kept, after = torch.tensor(js["kept"]), torch.tensor(js["after"], dtype=torch.float64)
        assert kept.sum() == len(ref.survivors), (T, k, p)
        assert torch.allclose(after.sort().values, ref.after.double().sort().values, atol=1e-6)
        if len(z.unique()) == len(z):  # no ties: the same tokens too (tied ones at the top-p cut: see explorers.js)
            assert torch.equal(kept.nonzero().flatten().sort().values, ref.survivors.sort().values), (T, k, p)
            assert torch.allclose(after, ref.after.double(), atol=1e-6)
        assert js["entropy_before"] == pytest.approx(ref.entropy_before, abs=1e-5)
        assert js["entropy_after"] == pytest.approx(ref.entropy_after, abs=1e-5)


def test_the_masks_and_weights_in_javascript_are_build_mask_and_attention():
    g = torch.Generator().manual_seed(1)
    q, k, k_src = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g), torch.randn(5, 4, generator=g)
    masks = []
    for kind, side, n_q, n_pad in itertools.product(MASK_KINDS, PAD_SIDES, (1, 3, 6), (0, 1, 2)):
        n_k = 4 if kind == "cross" else n_q
        if n_pad >= n_k or (kind == "bidirectional" and n_pad):
            continue
        keys = (k_src if kind == "cross" else k)[:n_k]
        masks.append({"kind": kind, "n_queries": n_q, "n_keys": n_k, "n_pad": n_pad, "pad_side": side,
                      "q": q[:n_q].tolist(), "k": keys.tolist(), "scale": 0.5})
    results = run_js([], masks)["masked"]
    assert len(results) > 40
    for case, js in zip(masks, results):
        mask = build_mask(case["kind"], case["n_queries"], case["n_keys"], case["n_pad"], case["pad_side"])
        assert torch.equal(torch.tensor(js["mask"]), mask), case
        _, alpha = scaled_dot_product_attention(torch.tensor(case["q"]), torch.tensor(case["k"]),
                                                torch.tensor(case["k"]), mask=mask, scale=0.5)
        assert torch.allclose(torch.tensor(js["alpha"], dtype=torch.float64), alpha.double(), atol=1e-6), case
