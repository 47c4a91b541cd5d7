"""The corpus, its splits and the shipped WordPiece tokenizer."""

import json

import pytest
import torch

from course_utils import data
from course_utils.data import (
    BPE_SPECIAL_TOKENS, SPECIAL_TOKENS, bpe_word_starts, load_bpe, load_play, load_plays, load_wordpiece, parse_play,
    play_names,
)


def test_all_plays_with_their_genres():
    plays = load_plays()
    assert len(plays) == 38
    assert {p.genre for p in plays} == set(data.GENRES)
    hamlet = load_play("hamlet")
    assert hamlet.title == "Hamlet" and hamlet.genre == "tragedies"
    assert hamlet.speeches[0].speaker == "Bernardo" and hamlet.speeches[0].text == "Who's there?"
    assert any(s.startswith("To be, or not to be: that is the question:") for s in hamlet.sentences())


def test_splits_are_disjoint_cover_everything_and_hold_every_genre():
    train, validation, test = (set(play_names(s)) for s in ("train", "validation", "test"))
    assert not (train & validation) and not (train & test) and not (validation & test)
    assert train | validation | test == set(play_names())
    for split in ("validation", "test"):
        assert sorted(p.genre for p in load_plays(split)) == sorted(data.GENRES)


def test_held_out_characters_do_not_speak_in_training_plays():
    """Named characters of held-out plays never speak in a training play (generic roles and a few names recur)."""
    train = {s.speaker for p in load_plays("train") for s in p.speeches}
    for name, character in [("hamlet", "Hamlet"), ("hamlet", "Ophelia"), ("the-tempest", "Prospero"),
                            ("macbeth", "Macbeth"), ("twelfth-night", "Malvolio"), ("titus-andronicus", "Lavinia")]:
        assert character in {s.speaker for s in load_play(name).speeches}
        assert character not in train


def test_parse_play_speeches_directions_and_resumed_speech():
    md = """# A Play

## ACT I

### SCENE I. A room.

_Enter ONE and TWO_

**ONE**  
Hello there.  
_\\[Aside]_  
How now? Good.

_Exit TWO_

And farewell.

**TWO**  
Bye!
"""
    play = parse_play(md, "a-play", "comedies")
    assert play.title == "A Play" and len(play.scenes) == 1 and play.scenes[0].act == "ACT I"
    assert [(s.speaker, s.text) for s in play.speeches] == [
        ("One", "Hello there.\nHow now? Good.\nAnd farewell."), ("Two", "Bye!")
    ]
    assert play.speeches[0].sentences() == ["Hello there.", "How now?", "Good.", "And farewell."]


def test_parse_play_asterisk_directions_and_a_second_level_one_heading():
    """Edward III marks directions *like this*; four plays have a later '#' heading (EPILOGUE, INTERMISSION)."""
    md = """# A Play

## ACT I

*Enter ONE, and
TWO.*

**ONE**  
Hello.

*Trumpet within.*

Who comes?

# EPILOGUE

**TWO**  
Bye!
"""
    play = parse_play(md, "a-play", "histories")
    assert play.title == "A Play" and [s.title for s in play.scenes] == ["", "EPILOGUE"]
    assert [(s.speaker, s.text) for s in play.speeches] == [("One", "Hello.\nWho comes?"), ("Two", "Bye!")]


def test_no_stage_direction_and_no_wrong_title_in_the_corpus():
    for name in play_names():
        play = load_play(name)
        assert play.title not in ("EPILOGUE", "INTERMISSION", "PROLOGUE"), name
        assert not any(s.text.startswith("*") or "*Exeunt" in s.text or "*Enter" in s.text for s in play.speeches), name


def test_bad_split_and_unknown_play():
    with pytest.raises(ValueError, match="split must be one of"):
        play_names("dev")
    with pytest.raises(ValueError, match="unknown play 'hamlett'"):
        load_play("hamlett")


def test_wordpiece_special_ids_and_pair_template():
    tok = load_wordpiece()
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    enc = tok.encode("To be, or not to be.", "That is the question.")
    assert enc.tokens[0] == "[CLS]" and enc.tokens.count("[SEP]") == 2 and enc.tokens[-1] == "[SEP]"
    first_sep = enc.tokens.index("[SEP]")
    assert enc.type_ids == [0] * (first_sep + 1) + [1] * (len(enc.tokens) - first_sep - 1)
    assert tok.decode(enc.ids) == "to be, or not to be. that is the question."


def test_wordpiece_file_is_what_the_script_builds():
    """The shipped JSON is byte-for-byte the rebuild from the training plays (vocabulary renumbered stably)."""
    texts = [speech.text for play in load_plays("train") for speech in play.speeches]
    rebuilt = json.loads(data.train_wordpiece(texts).to_str())
    shipped = json.loads(data.WORDPIECE_PATH.read_text())
    assert rebuilt["model"]["vocab"] == shipped["model"]["vocab"]
    assert len(shipped["model"]["vocab"]) == 8000


def test_words_lowercase_and_inner_apostrophes():
    assert data.words("'Tis now struck twelve; O'er the hill, Francisco!") == [
        "tis", "now", "struck", "twelve", "o'er", "the", "hill", "francisco"
    ]


def test_bpe_special_ids_are_barts_and_the_template_wraps_in_s():
    tok = load_bpe()
    assert [tok.token_to_id(t) for t in BPE_SPECIAL_TOKENS] == [0, 1, 2, 3, 4]  # <s> <pad> </s> <unk> <mask>
    assert tok.get_vocab_size() == 8000
    enc = tok.encode("To be, or not to be")
    assert enc.tokens == ["<s>", "To", "Ġbe", ",", "Ġor", "Ġnot", "Ġto", "Ġbe", "</s>"]  # GPT-2: no prefix space


def test_bpe_is_lossless_on_held_out_plays():
    """Byte-level: decode(encode(text)) gives the text back, line breaks, case and unseen characters included."""
    tok = load_bpe()
    texts = [speech.text for play in load_plays("test") for speech in play.speeches]
    assert len(texts) > 4000
    assert all(tok.decode(enc.ids) == text for enc, text in zip(tok.encode_batch(texts), texts))
    odd = "Ærger — naïve «café» 🎭\n\tend"
    assert tok.decode(tok.encode(odd).ids) == odd  # bytes never seen in training still round-trip


def test_bpe_word_starts_mark_a_leading_space_specials_and_the_first_word():
    tok = load_bpe()
    ids = torch.tensor(tok.encode("To be, or not to be: that is the question.").ids)
    tokens = [tok.id_to_token(i) for i in ids.tolist()]
    expected = [t in BPE_SPECIAL_TOKENS or t.startswith("Ġ") or tokens[i - 1] == "<s>" for i, t in enumerate(tokens)]
    assert bpe_word_starts(ids).tolist() == expected
    assert bpe_word_starts(ids).tolist()[:5] == [True, True, True, False, True]  # <s> To Ġbe , Ġor
    with pytest.raises(TypeError, match="ids must be a LongTensor"):
        bpe_word_starts(ids.int())
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 8000\)"):
        bpe_word_starts(torch.tensor([0, 8000, 2]))


def test_bpe_file_is_what_the_script_builds():
    """The shipped JSON is byte-for-byte the rebuild from the training plays (the BPE trainer is deterministic)."""
    texts = [speech.text for play in load_plays("train") for speech in play.speeches]
    assert data.train_bpe(texts).to_str(pretty=True) == data.BPE_PATH.read_text()


def test_token_labels_refuse_an_id_outside_the_vocabulary():
    """Issue 17: id 10**6 used to come out as ''; a transformers tokenizer is checked against len(tokenizer)."""
    from transformers import PreTrainedTokenizerFast

    tok = load_bpe()
    assert data.token_labels(tok, torch.tensor([0, 7999])) == ["<s>", tok.id_to_token(7999).replace("Ġ", "␣")]
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok)
    for tokenizer in (tok, wrapped):
        with pytest.raises(ValueError, match=r"ids\[1\] must be <= 7999, got 1000000"):
            data.token_labels(tokenizer, [5, 10**6])


@pytest.mark.parametrize("call, error, match", [
    (lambda: play_names("dev"), ValueError, "split must be one of"),
    (lambda: play_names(["test"]), ValueError, "split must be one of"),
    (lambda: load_play("hamlett"), ValueError, "unknown play 'hamlett'"),
    (lambda: load_play(["hamlet"]), TypeError, "name must be a str"),
    (lambda: data.words(None), TypeError, "text must be a str"),
    (lambda: parse_play(b"# Hamlet", "hamlet", "tragedies"), TypeError, "markdown must be a str"),
    (lambda: data.train_bpe("to be or not", 100), TypeError, "texts must be a list of str"),
    (lambda: data.train_wordpiece(["to be"], 3), ValueError, "vocab_size must be >= 6"),
    (lambda: bpe_word_starts([0, 5, 2]), TypeError, "ids must be a torch.Tensor"),
    (lambda: bpe_word_starts(torch.tensor([[0, 5, 2]])), ValueError, "ids must have 1 dimensions"),
    (lambda: bpe_word_starts(torch.tensor([0, 5, 2], dtype=torch.int32)), TypeError, "ids must be a LongTensor"),
    (lambda: bpe_word_starts(torch.tensor([0, -1, 2])), ValueError, r"ids must lie in \[0, 8000\)"),
    (lambda: data.prompt_ids(load_bpe(), 42), TypeError, "prompt must be a str"),
    (lambda: data.token_labels(load_bpe(), [1.5]), TypeError, r"ids\[0\] must be an int"),
    (lambda: data.token_labels(load_bpe(), torch.tensor([-1])), ValueError, r"ids must lie in \[0, 8000\)"),
    (lambda: data.token_labels(load_bpe(), torch.tensor([[1]])), ValueError, "ids must have 1 dimensions"),
    # issue 17, second audit
    (lambda: parse_play("", "a", "comedies"), ValueError, "markdown must hold a play"),
    (lambda: parse_play("# T\n", "a", "poems"), ValueError, "genre must be one of"),
    (lambda: data.train_wordpiece([], 100), ValueError, "texts must hold at least one non-empty text"),
    (lambda: data.train_bpe([""], 100), ValueError, "texts must hold at least one non-empty text"),
    (lambda: data.train_bpe(5, 100), TypeError, "texts must be a list of str"),
    (lambda: data.train_bpe(["a b"], 10**9), ValueError, "vocab_size must be <= 1048576"),
    (lambda: data.eos_id(None), TypeError, "tokenizer must be a tokenizers.Tokenizer .* or a transformers tokenizer"),
    (lambda: data.eos_id("x"), TypeError, "tokenizer must be a tokenizers.Tokenizer"),
    (lambda: data.prompt_ids(None, "hi"), TypeError, "tokenizer must be"),
    (lambda: data.token_labels(None, [1]), TypeError, "tokenizer must be"),
    (lambda: data.token_labels(load_bpe(), 5), TypeError, "ids must be a list of int ids or a 1-D tensor"),
])
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()
