"""The shipped tiny models learned something real (course_utils.evaluation), and the recipes that made them."""


import pytest

from course_utils import evaluation, pretrain
from course_utils.checkpoints import (
    TINY_BART_CONFIG, TINY_BERT_CONFIG, TINY_GPT_CONFIG, load_card, load_tiny_bart, load_tiny_bert, load_tiny_gpt,
)
from course_utils.evaluation import evaluate_bart, evaluate_bert, evaluate_gpt
from course_utils.models import Decoder, DecoderConfig, Encoder, EncoderDecoder, EncoderForPreTraining


@pytest.fixture(scope="module")
def model():
    return load_tiny_bert()


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


def test_tiny_gpt_beats_a_bigram_model_on_held_out_plays():
    """Issue 4: the shipped GPT's perplexity is below a bigram model of the same training text and tokenizer."""
    metrics = evaluate_gpt(load_tiny_gpt(), "test")
    assert metrics["perplexity"] < metrics["bigram_perplexity"], metrics


def test_tiny_bart_recovers_more_of_the_original_than_copying_the_corrupted_input():
    """Greedy, on 96 test documents: more of the original comes back than the corrupted input holds (recall).

    Greedy token accuracy stays a little under copying's (every test document: 0.722 vs 0.731); see the next test.
    """
    model = load_tiny_bart()
    metrics = evaluate_bart(model, "test", n_chunks=96)
    assert metrics["token_recall"] > metrics["copy_token_recall"] + 0.01, metrics
    assert metrics["token_accuracy"] >= 0.97 * metrics["copy_token_accuracy"], metrics
    with pytest.raises(ValueError, match="n_chunks"):
        evaluate_bart(model, "test", n_chunks=0)


# ---------------------------------------------------------------- the recipes


def test_the_recipes_are_the_shipped_checkpoints_recipes():
    for recipe, path in ((pretrain.BERT_RECIPE, pretrain.TINY_BERT_PATH), (pretrain.GPT_RECIPE, pretrain.TINY_GPT_PATH),
                         (pretrain.BART_RECIPE, pretrain.TINY_BART_PATH)):
        assert load_card(path)["recipe"] == recipe
        assert list(load_card(path)["recipe"]) == list(recipe)  # the same keys, in the same order


def test_pretrain_gpt_writes_a_checkpoint_that_loads(tmp_path, monkeypatch):
    """Two steps of the GPT recipe (evaluation stubbed): the file carries asdict(config), dropout included."""
    monkeypatch.setattr(pretrain, "evaluate_gpt", lambda model, split: {"split": split})
    out = tmp_path / "gpt.safetensors"
    card = pretrain.pretrain_gpt(out, steps=2, batch_size=2, block_size=16)
    model = load_tiny_gpt(out)
    assert model.config == DecoderConfig(**card["config"]) and model.config.dropout == 0.1
    assert card["recipe"]["steps"] == 2 and card["metrics"] == {"validation": {"split": "validation"},
                                                                 "test": {"split": "test"}}
    assert out.with_suffix(".md").read_text().startswith("# tiny GPT")


def test_pretrain_bert_and_bart_write_checkpoints_that_load(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrain, "evaluate_bert", lambda model, split: {})
    monkeypatch.setattr(pretrain, "bart_metrics", lambda model: {})
    card = pretrain.pretrain_bert(tmp_path / "bert.safetensors", steps=2, batch_size=4, dupe_factor=1)
    assert load_tiny_bert(tmp_path / "bert.safetensors").encoder.config == TINY_BERT_CONFIG
    assert card["n_instances"] > 1000
    pretrain.pretrain_bart(tmp_path / "bart.safetensors", steps=2, batch_size=2)
    assert load_tiny_bart(tmp_path / "bart.safetensors").config == TINY_BART_CONFIG


@pytest.mark.parametrize("pretrainer, overrides, error, match", [
    (pretrain.pretrain_bert, {"batch_size": 0}, ValueError, "batch_size must be >= 1, got 0"),
    (pretrain.pretrain_bert, {"steps": 2.5}, TypeError, "steps must be an int"),
    (pretrain.pretrain_bert, {"dupe_factor": 0}, ValueError, "dupe_factor must be >= 1"),
    (pretrain.pretrain_bert, {"lr": 0}, ValueError, "lr must be a finite number"),
    (pretrain.pretrain_bert, {"seed": -1}, ValueError, "seed must be >= 0"),
    (pretrain.pretrain_bert, {"batchsize": 8}, TypeError, r"unknown recipe keys \['batchsize'\]"),
    (pretrain.pretrain_gpt, {"dropout": 1.5}, ValueError, "dropout must lie in"),
    (pretrain.pretrain_gpt, {"block_size": 0}, ValueError, "block_size must be >= 1"),
    (pretrain.pretrain_bart, {"mask_ratio": -0.1}, ValueError, "mask_ratio must lie in"),
    (pretrain.pretrain_bart, {"poisson_lambda": 1e-6}, ValueError, "poisson_lambda must be in"),
    (pretrain.pretrain_bart, {"max_tokens": 0}, ValueError, "max_tokens must be >= 1"),
])
def test_a_bad_recipe_fails_at_once(tmp_path, monkeypatch, pretrainer, overrides, error, match):
    """Issue 17: pretrain_bert(batch_size=0) failed late ("range() arg 3 must not be zero") after building the data."""
    def no_work(*args, **kwargs):
        raise AssertionError("the recipe built its data before checking its arguments")

    for name in ("bert_documents", "nsp_dataset", "gpt_stream", "bart_documents", "load_wordpiece"):
        monkeypatch.setattr(pretrain, name, no_work)
    with pytest.raises(error, match=match):
        pretrainer(tmp_path / "x.safetensors", **overrides)
    assert not (tmp_path / "x.safetensors").exists()


def test_evaluation_refuses_bad_arguments_before_loading_a_split(monkeypatch):
    """Issue 17: a model of the wrong class gave an AttributeError after loading the whole split."""
    gpt = Decoder(50, d_model=16, n_heads=2, n_layers=1, max_len=8)
    bert = EncoderForPreTraining(Encoder(50, d_model=16, n_heads=2, n_layers=1, max_len=8))
    bart = EncoderDecoder(50, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, max_len=8)
    cases = [
        (lambda: evaluate_bert(gpt), TypeError, "model must be a course_utils EncoderForPreTraining"),
        (lambda: evaluate_bert(bert, "dev"), ValueError, "split must be one of"),
        (lambda: evaluate_bert(bert, n_instances=0), ValueError, "n_instances must be >= 1"),
        (lambda: evaluate_bert(bert, seed=-1), ValueError, "seed must be >= 0"),
        (lambda: evaluate_gpt(bart), TypeError, "model must be a course_utils Decoder"),
        (lambda: evaluate_gpt(gpt, "train "), ValueError, "split must be one of"),
        (lambda: evaluate_bart(gpt), TypeError, "model must be a course_utils EncoderDecoder"),
        (lambda: evaluate_bart(bart, n_chunks=0), ValueError, "n_chunks must be >= 1"),
        (lambda: evaluate_bart(bart, num_beams=0), ValueError, "num_beams must be >= 1"),
        (lambda: evaluate_bart(bart, no_repeat_ngram_size=-1), ValueError, "no_repeat_ngram_size must be >= 0"),
        (lambda: evaluate_bart(bart, "dev"), ValueError, "split must be one of"),
        # issue 17, second audit: a vocabulary that is not the shipped tokenizer's, said up front
        (lambda: evaluate_bert(bert), ValueError, r"model must read the shipped WordPiece .*8000 ids.*vocab_size=50"),
        (lambda: evaluate_gpt(gpt), ValueError, r"model must read the shipped BPE .*'s 8000 ids.*vocab_size=50"),
        (lambda: evaluate_bart(bart), ValueError, r"model must read the shipped BPE .*vocab_size=50"),
    ]
    def no_split(*args, **kwargs):
        raise AssertionError("the evaluation loaded a split before checking its arguments")

    for name in ("bert_documents", "nsp_dataset", "gpt_stream", "bart_documents"):
        monkeypatch.setattr(evaluation, name, no_split)
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()


def test_the_old_import_paths_still_work():
    from course_utils import checkpoints, datasets, evaluation, metrics, noising, objectives

    assert pretrain.evaluate_bart is evaluation.evaluate_bart and pretrain.BART_BEAMS == evaluation.BART_BEAMS
    assert pretrain.bert_documents is datasets.bert_documents and pretrain.bart_documents is datasets.bart_documents
    assert pretrain.denoising_loss is noising.denoising_loss and pretrain.lm_loss is objectives.lm_loss
    assert pretrain.bigram_perplexity is metrics.bigram_perplexity
    assert pretrain.TINY_BERT_CONFIG is checkpoints.TINY_BERT_CONFIG is TINY_BERT_CONFIG
    assert pretrain.TINY_GPT_CONFIG is TINY_GPT_CONFIG
