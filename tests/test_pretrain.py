"""The shipped tiny BERT: it loads, it is checked against its config, and it learned something real."""

import json

import pytest
import torch
from safetensors.torch import save_file

from course_utils import set_seed
from course_utils.models import Decoder
from course_utils.pretrain import (
    BART_BEAMS, TINY_BART_PATH, TINY_BERT_CONFIG, TINY_BERT_PATH, TINY_GPT_CONFIG, TINY_GPT_PATH, bigram_perplexity, collate,
    common_subsequence, edit_distance, evaluate_bart, evaluate_bert, evaluate_gpt, load_tiny_bart, load_tiny_bert, load_tiny_gpt,
    bart_documents, perplexity,
)


@pytest.fixture(scope="module")
def model():
    return load_tiny_bert()


def test_checkpoint_is_small_and_matches_its_config(model):
    assert TINY_BERT_PATH.stat().st_size <= 10 * 2**20
    assert model.encoder.vocab_size == TINY_BERT_CONFIG["vocab_size"]
    assert model.mlm.embedding.weight is model.encoder.embeddings.tok.weight  # the tie survives the round trip
    assert TINY_BERT_PATH.with_suffix(".md").is_file()  # the model card ships beside it


def test_quality_on_held_out_plays(model):
    """MLM top-1 at least twice the most-frequent-token baseline; NSP above the majority class and chance.

    Issue 3 asks for NSP accuracy >= 70% on the held-out plays; this checkpoint does not reach it (about 64%,
    79% on the training plays: it learns which names go together in the plays it saw). The bar stays open in
    the issue; here we assert only what holds.
    """
    metrics = evaluate_bert(model, "test", n_instances=2000)
    assert metrics["mlm_accuracy"] >= 2 * metrics["mlm_baseline_accuracy"], metrics
    assert metrics["nsp_accuracy"] > metrics["nsp_majority_accuracy"], metrics
    assert metrics["nsp_balanced_accuracy"] >= 0.6, metrics


def test_collate_pads_and_masks():
    from course_utils.objectives import NSPInstance

    batch = collate([NSPInstance([2, 9, 3, 8, 3], [0, 0, 0, 1, 1], 0), NSPInstance([2, 9, 3, 8, 8, 8, 3], [0] * 3 + [1] * 4, 1)])
    assert batch["input_ids"].tolist() == [[2, 9, 3, 8, 3, 0, 0], [2, 9, 3, 8, 8, 8, 3]]
    assert batch["attention_mask"].sum(1).tolist() == [5, 7]
    assert batch["next_sentence_label"].tolist() == [0, 1]


def test_a_checkpoint_that_does_not_match_its_config_is_refused(tmp_path, model):
    state = {k: v.clone() for k, v in model.state_dict().items() if k != "mlm.embedding.weight"}
    wrong = dict(TINY_BERT_CONFIG, n_layers=TINY_BERT_CONFIG["n_layers"] + 1)
    path = tmp_path / "wrong.safetensors"
    save_file(state, str(path), metadata={"config": json.dumps(wrong)})
    with pytest.raises(ValueError, match="does not match its config"):
        load_tiny_bert(path)
    save_file({"x": torch.zeros(1)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(ValueError, match="no 'config'"):
        load_tiny_bert(tmp_path / "bare.safetensors")
    with pytest.raises(FileNotFoundError, match="python -m course_utils.pretrain bert"):
        load_tiny_bert(tmp_path / "missing.safetensors")


# ---------------------------------------------------------------- tiny GPT and tiny BART


def test_tiny_gpt_beats_a_bigram_model_on_held_out_plays():
    """Issue 4: the shipped GPT's perplexity is below a bigram model of the same training text and tokenizer."""
    model = load_tiny_gpt()
    assert TINY_GPT_PATH.stat().st_size <= 10 * 2**20 and TINY_GPT_PATH.with_suffix(".md").is_file()
    metrics = evaluate_gpt(model, "test")
    assert metrics["perplexity"] < metrics["bigram_perplexity"], metrics


def test_tiny_bart_recovers_more_of_the_original_than_copying_the_corrupted_input():
    """Greedy, on 96 test documents: more of the original comes back than the corrupted input holds (recall).

    Greedy token accuracy stays a little under copying's (every test document: 0.722 vs 0.731); see the next test.
    """
    model = load_tiny_bart()
    assert TINY_BART_PATH.stat().st_size <= 10 * 2**20 and TINY_BART_PATH.with_suffix(".md").is_file()
    metrics = evaluate_bart(model, "test", n_chunks=96)
    assert metrics["token_recall"] > metrics["copy_token_recall"] + 0.01, metrics
    assert metrics["token_accuracy"] >= 0.97 * metrics["copy_token_accuracy"], metrics
    with pytest.raises(ValueError, match="n_chunks"):
        evaluate_bart(model, "test", n_chunks=0)


def test_tiny_bart_with_beam_search_beats_copying_on_every_test_document():
    """Issue 4's bar: token accuracy above copying the corrupted input, on held-out plays (about 3 min on one core).

    With BART_BEAMS = 8 beams (the width chosen on the validation plays), on all 2682 test documents: 0.738 vs 0.731
    (the model card's figures, which this recomputes).
    """
    model = load_tiny_bart()
    metrics = evaluate_bart(model, "test", n_chunks=None, num_beams=BART_BEAMS)
    assert metrics["n_chunks"] == len(bart_documents("test")) and metrics["num_beams"] == BART_BEAMS
    assert metrics["token_accuracy"] > metrics["copy_token_accuracy"] + 0.003, metrics


def test_common_subsequence():
    assert common_subsequence([1, 2, 3, 4], [2, 4, 5]) == 2
    assert common_subsequence([], [1]) == 0 and common_subsequence([7, 7], [7]) == 1


def test_bigram_perplexity_is_exact_on_a_toy_stream():
    train = torch.tensor([0, 1, 0, 1, 0, 2])
    held_out = torch.tensor([0, 1, 2])
    unigram = torch.tensor([3 + 1, 2 + 1, 1 + 1, 0 + 1]) / (6 + 4)
    p01 = 0.5 * (2 / 3) + 0.5 * unigram[1]  # c(0, 1) = 2, c(0) = 3
    p12 = 0.5 * 0 + 0.5 * unigram[2]  # c(1, 2) = 0 although 1 was seen as a context: only the unigram part
    expected = torch.exp(-(torch.log(p01) + torch.log(p12)) / 2).item()
    assert bigram_perplexity(train, held_out, 4, lam=0.5) == pytest.approx(expected, rel=1e-6)


def test_perplexity_is_exp_of_the_mean_next_token_loss():
    set_seed(0)
    model = Decoder(50, d_model=16, n_heads=2, n_layers=1, max_len=8).eval()
    stream = torch.randint(50, (8 * 5 + 1,))
    windows = stream.unfold(0, 9, 8)
    loss = torch.nn.functional.cross_entropy(model(windows[:, :-1]).logits.flatten(0, 1), windows[:, 1:].flatten())
    assert perplexity(model, stream) == pytest.approx(loss.exp().item(), rel=1e-5)


def test_edit_distance():
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 4, 3], [1, 2, 3]) == 1  # a substitution
    assert edit_distance([1, 3], [1, 2, 3]) == 1  # an insertion
    assert edit_distance([], [1, 2]) == 2 and edit_distance([5, 6], []) == 2
    assert edit_distance([1, 2, 3, 4], [2, 3, 4, 1]) == 2


def test_shipped_generators_refuse_a_mismatching_checkpoint(tmp_path):
    for load, command in ((load_tiny_gpt, "gpt"), (load_tiny_bart, "bart")):
        with pytest.raises(FileNotFoundError, match=f"python -m course_utils.pretrain {command}"):
            load(tmp_path / "missing.safetensors")
    model = load_tiny_gpt()
    path = tmp_path / "wrong.safetensors"
    save_file({k: v.clone() for k, v in model.state_dict().items()}, str(path),
              metadata={"config": json.dumps(dict(TINY_GPT_CONFIG, n_layers=TINY_GPT_CONFIG["n_layers"] - 1))})
    with pytest.raises(ValueError, match="does not match its config"):
        load_tiny_gpt(path)


def test_bart_documents_are_runs_of_whole_sentences():
    from course_utils.data import load_bpe

    chunks = bart_documents("validation", max_tokens=32)
    assert all(c[0] == 0 and c[-1] == 2 and len(c) <= 32 for c in chunks)
    text = load_bpe().decode(chunks[0][1:-1].tolist())
    assert text.rstrip()[-1] in ".!?", text  # a run ends where a sentence ends, never mid-sentence
