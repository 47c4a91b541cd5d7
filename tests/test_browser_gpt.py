"""The tiny GPT in the page (course_utils/browser_gpt.js, in Node) computes what Python computes: the token ids of
data.prompt_ids, the labels of data.token_labels, the text of tokenizer.decode, the next-token distribution of the
PyTorch model (within 1e-4, on the very file the book serves), and generate's greedy continuations."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from course_utils.browser_gpt import FILE_NAME, page_data, runs_in_page, write_script
from course_utils.checkpoints import load_tiny_gpt
from course_utils.data import load_bpe, load_plays, prompt_ids, token_labels
from course_utils.generation import generate
from course_utils.models import Decoder

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None and not os.environ.get("CI"), reason="Node is not installed (npm)")
EXPLORERS = Path(__file__).resolve().parent.parent / "course_utils" / "explorers.js"

RUNNER = """
import fs from "fs";
import vm from "vm";
import { softmax, warpLogits } from %s;
vm.runInThisContext(fs.readFileSync(%s, "utf8"));
const { tokenizer, model, sample } = globalThis.courseTinyGPT;
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
const { texts = [], decode = [], labels = [], logits = [], greedy = [], refused = [] } = cases;
const error = (read) => { try { read(); return null; } catch (e) { return e.message; } };
const greedyProbs = (z) => softmax(warpLogits(z, 1, 1, 1));  // top-k = 1: one survivor, the arg max
process.stdout.write(JSON.stringify({
  ids: texts.map((t) => tokenizer.encode(t)),
  texts: decode.map((ids) => tokenizer.decode(ids)),
  labels: labels.map((id) => tokenizer.label(id)),
  logits: logits.map((t) => Array.from(model.nextLogits(tokenizer.encode(t), model.newCache()))),
  greedy: greedy.map((t) => sample(tokenizer.encode(t), { n: 2, maxNew: 20, seed: 0, probs: greedyProbs })),
  refused: refused.map(([t, maxNew]) => error(() => (maxNew === 0
    ? model.nextLogits(tokenizer.encode(t), model.newCache())
    : sample(tokenizer.encode(t), { n: 1, maxNew, seed: 0, probs: greedyProbs })))),
}));
"""

# The browser check's prompts too: one token, non-ASCII, special tokens in the text, over 100 tokens.
PROMPTS = ["", "a", "To be, or not to be", "Hamlet: café, naïve, Ærøskøbing, Ελληνικά, 東京, 😀!",
           "<s>hi</s> there<mask>\n\n  x\t y ", "I'll, you've, 42 x 3.14 -- don't!!",
           " ".join(["ROMEO: But soft, what light through yonder window breaks?"] * 7)]


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    return write_script(tmp_path_factory.mktemp("static"))


def run_js(script: Path, **cases) -> dict:
    code = RUNNER % (json.dumps(EXPLORERS.as_uri()), json.dumps(str(script)))
    done = subprocess.run([NODE or "node", "--input-type=module", "-e", code], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_page_tokenizes_decodes_and_labels_as_the_bpe(script):
    tokenizer = load_bpe()
    speeches = [s.text for play in load_plays("validation")[:2] for s in play.speeches][:400]
    texts = PROMPTS + speeches
    g = torch.Generator().manual_seed(0)
    random_ids = [torch.randint(0, tokenizer.get_vocab_size(), (n,), generator=g).tolist() for n in (1, 5, 40)]
    every_id = list(range(tokenizer.get_vocab_size()))
    js = run_js(script, texts=texts, decode=random_ids + [prompt_ids(tokenizer, t)[0].tolist() for t in texts[:20]],
                labels=every_id)
    assert js["ids"] == [prompt_ids(tokenizer, t)[0].tolist() for t in texts]
    assert js["texts"] == [tokenizer.decode(ids, skip_special_tokens=True)
                           for ids in random_ids + [prompt_ids(tokenizer, t)[0].tolist() for t in texts[:20]]]
    assert js["labels"] == token_labels(tokenizer, every_id)


def test_the_page_model_is_the_pytorch_model(script):
    model, tokenizer = load_tiny_gpt(), load_bpe()
    js = run_js(script, logits=PROMPTS, greedy=PROMPTS[:6])
    for prompt, z in zip(PROMPTS, js["logits"]):
        ids = prompt_ids(tokenizer, prompt)
        with torch.no_grad():
            ref = model(ids).logits[0, -1].double()  # (V,)
        z = torch.tensor(z, dtype=torch.float64)
        assert (z - ref).abs().max() < 1e-4, prompt
        assert (z.softmax(-1) - ref.softmax(-1)).abs().max() < 1e-6, prompt
    for prompt, outs in zip(PROMPTS, js["greedy"]):
        ids = prompt_ids(tokenizer, prompt)
        ref = generate(model, ids, 20, eos_token_id=2)[0, ids.shape[1]:].tolist()
        assert outs == [ref, ref], prompt  # two samples at top-k = 1: greedy, whatever the seed draws


def test_the_page_model_refuses_a_prompt_beyond_its_positions(script):
    tokenizer = load_bpe()
    long, near = "word " * 200, PROMPTS[-1]  # 200 tokens and more; 113, with room for 15 new ones, not 20
    js = run_js(script, refused=[[long, 0], [near, 20], [near, 1]])
    n_long = prompt_ids(tokenizer, long).shape[1]
    assert js["refused"][0] == f"the tiny GPT reads at most 128 tokens, got {n_long}"
    assert js["refused"][1] == (f"the prompt ({prompt_ids(tokenizer, near).shape[1]} tokens) + max_new_tokens (20) "
                                "exceeds the model's 128 positions")
    assert js["refused"][2] is None


def test_the_script_carries_the_checkpoint_and_names_it(script):
    data = page_data()
    assert script.name == FILE_NAME and script.read_text().startswith("// The tiny GPT of chapter 06 in the page")
    assert len(data["tokenizer"]["vocab"]) == 8000 and set(data["tensors"]) == set(load_tiny_gpt().state_dict())
    assert script.stat().st_size < 11_000_000  # 7.3 MB of float32 weights in base64, the code, the BPE


def test_only_the_shipped_tiny_gpt_with_its_bpe_runs_in_the_page():
    model, tokenizer = load_tiny_gpt(), load_bpe()
    assert runs_in_page(model, tokenizer)
    other = load_tiny_gpt()
    with torch.no_grad():
        other.norm.bias[0] += 1e-3  # one weight changed: the page would compute another model
    assert not runs_in_page(other, tokenizer)
    assert not runs_in_page(Decoder(8000, max_len=128), tokenizer)
