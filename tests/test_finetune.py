"""Fine-tuning (chapter 05): passages as written or shuffled, balanced samples, the fine-tuning loop and the stored
learning curve."""

from collections import Counter

import pytest
import torch

from course_utils import datasets
from course_utils import finetune as ft
from course_utils.checkpoints import TINY_BERT_PATH, load_tiny_bert, sha256
from course_utils.data import GENRES, SPLIT_NAMES, Play, Scene, Speech, load_play, load_wordpiece, play_names
from course_utils.metrics import confusion_matrix
from course_utils.models import Encoder, EncoderForClassification


@pytest.fixture(scope="module")
def train_32():
    return datasets.word_order_passages("train", 32, seed=0)


@pytest.fixture(scope="module")
def results():
    return ft.load_results()


# ---------------------------------------------------------------- passages


@pytest.mark.parametrize("split", SPLIT_NAMES)
def test_passages_come_only_from_the_plays_of_their_split(split):
    every = datasets.genre_passages(split)
    assert {p.play for p in every} == set(play_names(split))  # every play contributes, no other does
    for p in datasets.genre_passages(split, 60, seed=1):
        assert p.play in play_names(split)
        assert p.genre == load_play(p.play).genre and p.label == 1 and not p.shuffled  # as written


@pytest.mark.parametrize("split, n", [("train", 32), ("train", 128), ("train", 512), ("test", ft.N_EVAL)])
def test_samples_are_balanced_distinct_and_deterministic(split, n):
    sample = datasets.genre_passages(split, n, seed=3)
    counts = Counter(p.genre for p in sample)
    assert len(sample) == len(set(sample)) == n
    assert set(counts) == set(GENRES) and max(counts.values()) - min(counts.values()) <= 1
    assert datasets.genre_passages(split, n, seed=3) == sample
    assert datasets.genre_passages(split, n, seed=4) != sample


def test_samples_of_one_seed_are_nested():
    s32, s128, s512 = (set(datasets.genre_passages("train", n, seed=0)) for n in (32, 128, 512))
    assert s32 < s128 < s512


def test_passages_fit_the_tiny_bert_and_their_text_gives_their_ids():
    tokenizer = load_wordpiece()
    passages = datasets.genre_passages("test")
    assert all(datasets.MIN_TOKENS <= len(p.ids) <= datasets.MAX_TOKENS for p in passages)
    for p in passages[::50]:
        assert tokenizer.encode(p.text, add_special_tokens=False).ids == list(p.ids)
    batch = datasets.encode(passages[:40])
    lengths = torch.tensor([len(p.ids) for p in passages[:40]])
    assert batch["input_ids"].shape[1] <= load_tiny_bert().encoder.config.max_len
    assert (batch["input_ids"][:, 0] == datasets.CLS_ID).all()
    assert (batch["input_ids"].gather(1, (lengths + 1)[:, None]) == datasets.SEP_ID).all()  # [CLS] passage [SEP]
    assert batch["attention_mask"].sum(1).tolist() == (lengths + 2).tolist()


def test_play_passages_pack_whole_speeches_and_cut_long_ones_between_words():
    def speech(n_words: int, word: str = "the") -> Speech:
        return Speech("A", " ".join([word] * n_words))  # "the" and "love" are single tokens

    speeches = (speech(10), speech(30, "love"), speech(30), speech(100, "love"), speech(5))
    play = Play("toy", "Toy", "comedies", (Scene("ACT I", "Scene 1", speeches),))
    passages = datasets.play_passages(play, max_tokens=62, min_tokens=16)
    assert [len(p.ids) for p in passages] == [40, 30, 50, 55]  # 10+30 | 30 | 100 = 50+50 | +5
    assert passages[0].text == speeches[0].text + "\n" + speeches[1].text
    assert passages[3].text.endswith("\n" + speeches[4].text)
    assert [len(p.ids) for p in datasets.play_passages(play, max_tokens=62, min_tokens=45)] == [50, 55]
    assert all(p.play == "toy" and p.genre == "comedies" and p.label == 1 for p in passages)


def test_word_order_passages_shuffle_every_other_passage_of_the_pool_and_keep_its_words():
    pool, shuffled = datasets.genre_passages("test"), datasets.word_order_passages("test")
    assert [p.label for p in shuffled] == [i % 2 for i in range(len(pool))]  # every other passage is shuffled
    for original, p in zip(pool[:200], shuffled[:200]):
        assert sorted(p.text.split()) == sorted(original.text.split())  # the same words
        assert sorted(p.ids) == sorted(original.ids)  # hence the same WordPiece ids: only the order differs
        assert p.shuffled == (p.text.split() != original.text.split()) and (p.play, p.genre) == (original.play,
                                                                                                 original.genre)
    assert datasets.ORDER_LABELS[0] == "shuffled" and datasets.ORDER_LABELS[1] == "as written"


def test_a_passage_is_the_same_example_in_every_sample_that_holds_it():
    by_text = {}
    for n, seed in ((32, 0), (128, 0), (512, 0), (128, 1), (512, 7)):
        sample = datasets.word_order_passages("train", n, seed=seed)
        originals = datasets.genre_passages("train", n, seed=seed)  # the same passages, in the same order
        assert [(p.play, len(p.ids)) for p in sample] == [(p.play, len(p.ids)) for p in originals]
        for original, p in zip(originals, sample):
            assert by_text.setdefault(original, p) == p
    s32, s128 = (set(datasets.word_order_passages("train", n, seed=0)) for n in (32, 128))
    assert s32 < s128  # nested


def test_the_evaluation_set_is_balanced_between_the_two_labels():
    labels = Counter(p.label for p in datasets.word_order_passages("test", ft.N_EVAL, seed=0))
    assert labels == {0: ft.N_EVAL // 2, 1: ft.N_EVAL // 2}


def test_a_text_with_a_single_repeated_word_cannot_be_shuffled():
    assert datasets._shuffled_text(" ".join(["ha,"] * 20), 0) is None
    text = "to be or not to be"
    again = datasets._shuffled_text(text, 3)
    assert again != text and sorted(again.split()) == sorted(text.split()) == sorted(
        datasets._shuffled_text(text + "\n", 3).split())


# ---------------------------------------------------------------- models and fine-tuning


def test_the_classifier_reuses_the_pretrained_encoder_and_pooler():
    bert, model = load_tiny_bert(), ft.tiny_bert_classifier(seed=0)
    reused = {f"encoder.{k}": v for k, v in bert.encoder.state_dict().items()}
    reused |= {f"pooler.{k}": v for k, v in bert.pooler.state_dict().items()}
    state = model.state_dict()
    assert set(state) - set(reused) == {"classifier.weight", "classifier.bias"}  # the only new parameters
    assert all(torch.equal(state[k], v) for k, v in reused.items())
    scratch = ft.tiny_bert_classifier(pretrained=False, seed=0).state_dict()
    assert not torch.equal(scratch["encoder.embeddings.tok.weight"], reused["encoder.embeddings.tok.weight"])


def test_fine_tune_fits_a_tiny_budget(train_32):
    """On held-out plays 32 labels are too few to measure a gain reliably (see the learning curve), so this
    checks that the loop learns: the labels of the 32 training passages, from chance to most of them."""
    model = ft.tiny_bert_classifier(seed=0)
    before = ft.accuracy(model, train_32)
    ft.fine_tune(model, train_32, steps=25, lr=1e-3, batch_size=16, seed=0)
    after = ft.accuracy(model, train_32)
    assert before < 0.7 and after >= 0.9 and not model.training


def test_fine_tune_is_seeded_and_leaves_the_global_random_state_alone(train_32):
    states = []
    for _ in range(2):
        torch.manual_seed(123)
        model = ft.fine_tune(ft.tiny_bert_classifier(seed=1), train_32[:8], steps=2, lr=1e-3, batch_size=4, seed=5)
        states.append(model.state_dict())
        after = torch.rand(3)
        torch.manual_seed(123)
        assert torch.equal(after, torch.rand(3))  # as if nothing had drawn from the global generator
    assert all(torch.equal(v, states[1][k]) for k, v in states[0].items())


def test_freeze_encoder_trains_the_classifier_only(train_32):
    model = ft.tiny_bert_classifier(seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ft.fine_tune(model, train_32, steps=10, lr=1e-2, seed=0, freeze_encoder=True)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"classifier.weight", "classifier.bias"}


def test_predict_accuracy_and_confusion_agree(train_32):
    model = ft.tiny_bert_classifier(seed=0)
    predictions = ft.predict(model, train_32, batch_size=5)  # several batches of different lengths
    labels = torch.tensor([p.label for p in train_32])
    confusion = confusion_matrix(labels, predictions, ft.N_LABELS)
    assert confusion.shape == (2, 2) and confusion.sum() == 32
    assert confusion.sum(1).tolist() == torch.bincount(labels, minlength=2).tolist()  # rows: true labels
    assert ft.accuracy(model, train_32) == pytest.approx(confusion.trace().item() / 32)


# ---------------------------------------------------------------- the stored learning curve


def test_stored_results_hold_every_model_budget_and_seed(results):
    config = results["config"]
    assert set(config["models"]) == set(ft.MODELS) and config["eval"]["split"] == "test"
    keys = Counter((r["model"], r["budget"], r["seed"]) for r in results["runs"])
    assert set(keys) == {(m, b, s) for m in config["models"] for b in config["budgets"] for s in config["seeds"]}
    assert set(keys.values()) == {1}
    assert len(config["seeds"]) >= 3 and config["budgets"] == sorted(config["budgets"])
    assert config["recipes"] == ft.RECIPES  # the recipes that `run` would use today


def test_stored_numbers_are_consistent(results):
    n_eval = results["config"]["eval"]["n"]
    for r in results["runs"]:
        confusion = torch.tensor(r["confusion"])
        assert confusion.shape == (2, 2) and confusion.sum() == n_eval
        assert confusion.sum(1).tolist() == [n_eval // 2] * 2  # a balanced evaluation set
        assert r["accuracy"] == pytest.approx(confusion.trace().item() / n_eval, abs=1e-4)
        assert r["steps"] == ft.recipe(r["model"], r["budget"])["steps"]
    assert results["summary"] == ft.summarise(results["runs"])


def test_stored_results_were_made_with_the_shipped_checkpoint(results):
    assert results["config"]["tiny_bert_sha256"] == sha256(TINY_BERT_PATH), (
        "the tiny BERT changed since the learning curve was computed: re-run `python -m course_utils.finetune`"
    )


def test_pretraining_beats_scratch_by_ten_points_at_128_labels_on_every_seed(results):
    """Issue 14's bar: the same architecture, recipe and labels; only pre-training differs."""
    runs = {(r["model"], r["budget"], r["seed"]): r["accuracy"] for r in results["runs"]}
    gaps = [runs["pretrained", 128, s] - runs["scratch", 128, s] for s in results["config"]["seeds"]]
    assert min(gaps) >= 0.10, gaps


def test_the_best_fine_tuned_encoder_reaches_75_percent_on_the_held_out_plays(results):
    summary = results["summary"]
    best = max(summary[m][b]["mean"] for m in ("pretrained", "minilm") for b in summary[m])
    assert best >= 0.75, summary


def test_a_stored_point_is_reproduced(results):
    stored = next(r for r in results["runs"] if (r["model"], r["budget"], r["seed"]) == ("pretrained", 32, 0))
    again = ft.run("pretrained", 32, seed=0)
    assert abs(again["accuracy"] - stored["accuracy"]) <= 0.01


# ---------------------------------------------------------------- bad input


def test_the_old_import_paths_still_work():
    assert ft.genre_passages is datasets.genre_passages and ft.Passage is datasets.Passage
    assert ft.encode is datasets.encode and ft.confusion_matrix is confusion_matrix and ft.SPLITS == SPLIT_NAMES
    assert ft.MAX_TOKENS == datasets.MAX_TOKENS and ft.CLS_ID == datasets.CLS_ID


def test_bad_input_raises_errors_that_name_the_argument(train_32, tmp_path):
    model = ft.tiny_bert_classifier(seed=0)
    six_labels = EncoderForClassification(Encoder(8000, d_model=8, n_heads=2, n_layers=1, max_len=64), 6)
    small_vocab = EncoderForClassification(Encoder(100, d_model=8, n_heads=2, n_layers=1, max_len=64), 2)
    (tmp_path / "results.json").write_text("{not json")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    cases = [
        (lambda: datasets.genre_passages("dev"), ValueError, "split must be one of"),
        (lambda: datasets.genre_passages("train", 0), ValueError, "n must be >= 1"),
        (lambda: datasets.genre_passages("train", 2.5), TypeError, "n must be an int"),
        (lambda: datasets.genre_passages("test", 10**6), ValueError, "n must be <= "),
        (lambda: datasets.genre_passages("train", 6, seed="0"), TypeError, "seed must be an int"),
        (lambda: datasets.genre_passages("train", 6, max_tokens=0), ValueError, "max_tokens must be >= 1"),
        (lambda: datasets.word_order_passages("dev"), ValueError, "split must be one of"),
        (lambda: datasets.word_order_passages("train", 0), ValueError, "n must be >= 1"),
        (lambda: datasets.word_order_passages("train", 6, seed=-2), ValueError, "seed must be >= 0"),
        (lambda: datasets.play_passages("hamlet"), TypeError, "play must be"),
        (lambda: datasets.play_passages(load_play("hamlet"), max_tokens=10, min_tokens=20), ValueError, "min_tokens"),
        (lambda: datasets.encode([]), ValueError, "passages must not be empty"),
        (lambda: datasets.encode("to be or not"), TypeError, "passages must be a list"),
        (lambda: datasets.encode([1, 2]), TypeError, "passages must hold Passage"),
        (lambda: datasets.encode(train_32, max_len=2), ValueError, "max_len must be >= 3"),
        (lambda: ft.fine_tune(torch.nn.Linear(2, 2), train_32, steps=1, lr=1e-3), TypeError, "model must be"),
        (lambda: ft.fine_tune(model, train_32, steps=0, lr=1e-3), ValueError, "steps must be >= 1"),
        (lambda: ft.fine_tune(model, train_32, steps=1, lr=-1.0), ValueError, "lr must be"),
        (lambda: ft.fine_tune(model, train_32, steps=1, lr=1e-3, batch_size=0), ValueError, "batch_size"),
        (lambda: ft.fine_tune(model, train_32, steps=1, lr=1e-3, freeze_encoder=1), TypeError, "freeze_encoder"),
        (lambda: ft.fine_tune(model, train_32, steps=1, lr=1e-3, seed=-1), ValueError, "seed must be >= 0"),
        (lambda: ft.pooled_features(model, train_32, batch_size=0), ValueError, "batch_size must be >= 1"),
        (lambda: ft.predict(torch.nn.Linear(2, 2), train_32), TypeError, "model must be"),
        (lambda: ft.tiny_bert_classifier(pretrained="yes"), TypeError, "pretrained must be a bool"),
        (lambda: ft.tiny_bert_classifier(seed=2**63), ValueError, "seed must be <= "),
        (lambda: ft.recipe("bert", 32), ValueError, "model must be one of"),
        (lambda: ft.recipe("scratch", 0), ValueError, "budget must be >= 1"),
        (lambda: ft.run("gpt2", 32), ValueError, "model must be one of"),
        (lambda: ft.run("scratch", 32, seed=-1), ValueError, "seed must be >= 0"),
        (lambda: ft.run("scratch", 32, cache=[]), TypeError, "cache must be a dict or None"),
        (lambda: ft.learning_curve(models=["bert"]), ValueError, "models must be one of"),
        (lambda: ft.learning_curve(budgets=[0]), ValueError, "budgets must be >= 1"),
        (lambda: ft.learning_curve(seeds=[-1]), ValueError, "seeds must be >= 0"),
        (lambda: ft.learning_curve(n_eval=0), ValueError, "n_eval must be >= 1, got 0"),
        (lambda: ft.learning_curve(verbose="yes"), TypeError, "verbose must be a bool"),
        (lambda: ft.summarise([{"model": "scratch"}]), ValueError, r"runs\[0\] must be a run's dict"),
        (lambda: confusion_matrix(torch.zeros(3), torch.zeros(3, dtype=torch.long), 6), TypeError, "labels"),
        (lambda: confusion_matrix(torch.zeros(3, dtype=torch.long), torch.zeros(2, dtype=torch.long), 6),
         ValueError, "same shape"),
        (lambda: confusion_matrix(torch.zeros(3, dtype=torch.long), torch.tensor([0, 1, 7]), 6),
         ValueError, r"predictions must lie in \[0, 6\)"),
        (lambda: ft.load_results(tmp_path / "missing.json"), FileNotFoundError, "python -m course_utils.finetune"),
        (lambda: ft.load_results(tmp_path / "results.json"), ValueError, r"results\.json is not a learning curve"),
        (lambda: ft.load_results(tmp_path / "binary.json"), ValueError, r"binary\.json is not a learning curve"),
        # issue 17, second audit
        (lambda: ft.fine_tune(model, train_32, steps=1, lr=1e-3, tokenizer="x"), TypeError,
         "tokenizer must be a transformers tokenizer or None"),
        (lambda: ft.fine_tune(six_labels, train_32, steps=1, lr=1e-3), ValueError,
         r"model must classify the 2 labels of the passages \('shuffled', 'as written'\).*n_labels=6"),
        (lambda: ft.fine_tune(small_vocab, train_32, steps=1, lr=1e-3), ValueError,
         r"passages hold WordPiece ids up to \d+, beyond the model's vocabulary \(model vocab_size=100\)"),
        (lambda: ft.predict(small_vocab, train_32), ValueError, "beyond the model's vocabulary"),
        (lambda: ft.run("scratch", 32, eval_passages=[]), ValueError, "eval_passages must not be empty"),
        (lambda: ft.summarise(None), TypeError, "runs must be a list"),
        (lambda: ft.learning_curve(budgets=5), TypeError, "budgets must be a list"),
        (lambda: ft.learning_curve(models="pretrained"), TypeError, "models must be a list"),
        (lambda: ft.load_results(None), TypeError, "path must be a file path"),
        (lambda: ft.load_results(tmp_path), ValueError, "path must be a file, got the directory"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
