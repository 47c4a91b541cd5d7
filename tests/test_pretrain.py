"""The shipped tiny BERT: it loads, it is checked against its config, and it learned something real."""

import json

import pytest
import torch
from safetensors.torch import save_file

from course_utils.pretrain import TINY_BERT_CONFIG, TINY_BERT_PATH, collate, evaluate_bert, load_tiny_bert


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
