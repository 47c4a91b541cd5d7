"""NSP with a real encoder and ALBERT's swapped pairs (chapter 04): the pairs, the scores, the stored measurement."""

import pytest
import torch

from course_utils import nsp_topic as nt
from course_utils.checkpoints import TINY_BERT_PATH, load_tiny_bert, sha256
from course_utils.objectives import IS_NEXT, IS_RANDOM, NSPInstance


@pytest.fixture(scope="module")
def results():
    return nt.load_results()


@pytest.fixture(scope="module")
def pairs():
    return nt.nsp_pairs("test")


def test_swapped_exchanges_the_segments_and_their_types():
    pair = NSPInstance([2, 10, 11, 3, 20, 21, 22, 3], [0, 0, 0, 0, 1, 1, 1, 1], IS_NEXT)
    assert nt.swapped(pair) == NSPInstance([2, 20, 21, 22, 3, 10, 11, 3], [0, 0, 0, 0, 0, 1, 1, 1], IS_RANDOM)


def test_swapping_twice_gives_the_pair_back(pairs):
    for pair in pairs["next"][:50]:
        twice = nt.swapped(nt.swapped(pair))
        assert (twice.input_ids, twice.token_type_ids) == (pair.input_ids, pair.token_type_ids)


def test_the_three_kinds_of_pairs_are_balanced_and_the_swapped_ones_hold_the_same_tokens(pairs):
    assert len(pairs["next"]) == len(pairs["random"]) == len(pairs["swapped"]) > 500
    assert {x.label for x in pairs["next"]} == {IS_NEXT}
    assert {x.label for x in pairs["random"]} == {x.label for x in pairs["swapped"]} == {IS_RANDOM}
    for a, b in zip(pairs["next"], pairs["swapped"]):
        assert sorted(a.input_ids) == sorted(b.input_ids) and len(a.input_ids) <= nt.MAX_SEQ_LENGTH


def test_scores_count_what_each_kind_is_called():
    p = {"next": torch.tensor([0.9, 0.8, 0.2, 0.7]), "random": torch.tensor([0.1, 0.6, 0.3, 0.2]),
         "swapped": torch.tensor([0.9, 0.8, 0.6, 0.1])}
    s = nt.scores(p)
    assert (s["called_next_next"], s["called_next_random"], s["called_next_swapped"]) == (0.75, 0.25, 0.75)
    assert s["nsp_accuracy"] == 0.75 and s["sop_accuracy"] == 0.5  # topic only: swapped looks like next


def test_stored_results_match_the_code(results):
    config = results["config"]
    assert config["recipe"] == nt.RECIPE and config["n_train"] == nt.N_TRAIN
    assert config["max_seq_length"] == nt.MAX_SEQ_LENGTH and config["split"] == "test"
    assert config["tiny_bert_sha256"] == sha256(TINY_BERT_PATH), (
        "the tiny BERT changed since the measurement: re-run `python -m course_utils.nsp_topic`")
    for model in ("tiny_bert", "minilm"):
        s = results[model]
        assert s["nsp_accuracy"] == pytest.approx((s["called_next_next"] + 1 - s["called_next_random"]) / 2, abs=1e-4)


def test_the_tiny_berts_stored_scores_are_reproduced(results, pairs):
    model = load_tiny_bert()
    again = nt.scores({k: nt.p_next(model, v) for k, v in pairs.items()})
    assert again == pytest.approx(results["tiny_bert"], abs=2e-3)  # a pair or two may flip with the CPU's rounding
    assert results["pairs"]["tiny_bert"] == len(pairs["next"])


def test_bad_input_raises_errors_that_name_the_argument(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    cases = [
        (lambda: nt.swapped([2, 3]), TypeError, "pair must be a NSPInstance"),
        (lambda: nt.p_next(torch.nn.Linear(2, 2), []), TypeError, "model must be a course_utils EncoderForPreTraining"),
        (lambda: nt.p_next(load_tiny_bert(), [], batch_size=0), ValueError, "batch_size must be >= 1"),
        (lambda: nt.p_next(load_tiny_bert(), []), ValueError, "pairs must be a non-empty list of NSPInstance"),
        (lambda: nt.nsp_pairs("dev"), ValueError, "split must be one of"),
        (lambda: nt.minilm_nsp(seed=-1), ValueError, "seed must be >= 0"),
        (lambda: nt.load_results(tmp_path / "missing.json"), FileNotFoundError, "python -m course_utils.nsp_topic"),
        (lambda: nt.load_results(tmp_path / "bad.json"), ValueError, "is not a measurement"),
    ]
    for fn, error, match in cases:
        with pytest.raises(error, match=match):
            fn()
