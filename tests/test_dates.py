"""The date-normalisation task of chapter 07: spelled-out dates -> ISO dates, seeded, with disjoint splits."""

from datetime import date

import pytest
import torch

from course_utils.dates import (
    DATE_BOS, DATE_EOS, DATE_PAD, DATE_SOURCE_VOCAB, DATE_TARGET_VOCAB, date_pairs, date_split, decode_iso,
    encode_dates, spell_date,
)


def test_spelled_forms():
    assert [spell_date(date(1999, 7, 4), f) for f in range(4)] == [
        "the fourth of july 1999", "july the fourth, 1999", "4 july 1999", "the 4th of july 1999"]
    assert spell_date(date(2000, 2, 29), 0) == "the twenty-ninth of february 2000"
    assert [spell_date(date(1900, 1, d), 3) for d in (1, 2, 3, 11, 12, 13, 21, 22, 23, 30, 31)] == [
        f"the {s} of january 1900" for s in ("1st", "2nd", "3rd", "11th", "12th", "13th", "21st", "22nd", "23rd",
                                             "30th", "31st")]
    assert spell_date(date(1900, 1, 20), 1) == "january the twentieth, 1900"


def test_pairs_are_deterministic_valid_and_varied():
    pairs = date_pairs(2000, seed=0)
    assert pairs == date_pairs(2000, seed=0) and pairs != date_pairs(2000, seed=1)
    days = [date.fromisoformat(iso) for _, iso in pairs]  # every target is a real calendar date
    assert all(1900 <= d.year <= 2099 for d in days)
    assert any(iso.endswith("-02-29") for _, iso in date_pairs(20000, seed=3))  # leap days occur
    for (source, iso), d in zip(pairs, days):
        assert source in {spell_date(d, f) for f in range(4)}
    forms = [next(f for f in range(4) if spell_date(d, f) == s) for (s, _), d in zip(pairs, days)]
    assert all(abs(forms.count(f) / 2000 - 0.25) < 0.04 for f in range(4))
    assert abs(sum(d.year for d in days) / 2000 - 1999.5) < 4  # years uniform over 1900-2099 (sd ~1.3)


def test_splits_are_disjoint_and_sized():
    train = {iso for _, iso in date_pairs(20000, seed=0)}
    validation = {iso for _, iso in date_pairs(3000, seed=0, split="validation")}
    test = {iso for _, iso in date_pairs(3000, seed=0, split="test")}
    assert not (train & validation) and not (train & test) and not (validation & test)
    every_day = [date.fromordinal(o) for o in range(date(1900, 1, 1).toordinal(), date(2100, 1, 1).toordinal())]
    shares = {s: sum(date_split(d) == s for d in every_day) / len(every_day) for s in ("train", "validation", "test")}
    assert abs(shares["train"] - 0.8) < 1e-3 and abs(shares["test"] - 0.1) < 1e-3


def test_encode_and_decode_round_trip():
    pairs = date_pairs(64, seed=5) + [("the twenty-first of december 2012", "2012-12-21")]
    src_ids, src_mask, tgt_ids = encode_dates(pairs)
    assert src_ids.dtype == tgt_ids.dtype == torch.long and tgt_ids.shape == (65, 12)  # <s> YYYY-MM-DD </s>
    assert [decode_iso(row) for row in tgt_ids] == [iso for _, iso in pairs]
    assert (src_ids[:, 0] == DATE_BOS).all() and (tgt_ids[:, -1] == DATE_EOS).all()
    assert torch.equal(src_mask, (src_ids != DATE_PAD).long())
    last = [DATE_SOURCE_VOCAB[i] for i in src_ids[-1][src_mask[-1].bool()]]
    assert last == ["<s>", "the", "twenty", "first", "of", "december", "2", "0", "1", "2", "</s>"]
    lengths = src_mask.sum(1)  # (B,)
    assert (src_ids[torch.arange(65), lengths - 1] == DATE_EOS).all() and lengths.min() < src_ids.shape[1]
    assert decode_iso([DATE_BOS, 5, 13, DATE_EOS, 7, DATE_PAD]) == DATE_TARGET_VOCAB[5] + "-"  # stops at </s>
    assert decode_iso([]) == "" and decode_iso(torch.tensor([DATE_BOS, DATE_EOS])) == ""  # no date: an empty string


def test_the_old_import_path_still_works():
    from course_utils import data, dates

    assert data.decode_iso is dates.decode_iso and data.DATE_TARGET_VOCAB is dates.DATE_TARGET_VOCAB


@pytest.mark.parametrize("call, error, match", [
    (lambda: date_pairs(3, seed=0, split="dev"), ValueError, "split must be one of"),
    (lambda: date_pairs(0, seed=0), ValueError, "n must be >= 1, got 0"),
    (lambda: date_pairs(2.0, seed=0), TypeError, "n must be an int"),
    (lambda: date_pairs(3, seed=-1), ValueError, "seed must be >= 0"),
    (lambda: date_split("1999-07-04"), TypeError, "day must be a datetime.date"),
    (lambda: spell_date("1999-07-04", 0), TypeError, "day must be a datetime.date"),
    (lambda: spell_date(date(1999, 7, 4), 4), ValueError, "form must be one of"),
    (lambda: encode_dates([]), ValueError, "pairs must be a non-empty list"),
    (lambda: encode_dates([("the fourth of july 1999", "1999-07-04"), ("the fifth of julyy 1999", "1999-07-05")]),
     ValueError, r"pairs\[1\] must be a date pair .*unknown \['julyy'\]"),
    (lambda: encode_dates([("the fourth of july 1999",)]), TypeError, r"pairs\[0\] must be a \(source, target\)"),
    (lambda: encode_dates([(4, 7, 1999)]), TypeError, r"pairs\[0\] must be a \(source, target\) pair of strings"),
    (lambda: decode_iso([0, 14, 2]), ValueError, r"ids must lie in \[0, 14\)"),
    (lambda: decode_iso([0.5, 2.0]), TypeError, "ids must be an integer tensor"),
    (lambda: decode_iso(torch.zeros(2, 3, dtype=torch.long)), ValueError, "ids must have 1 dimensions"),
    (lambda: decode_iso("1999"), TypeError, "ids must be a 1-D sequence of integer ids"),
    (lambda: decode_iso(7), TypeError, "ids must be a 1-D sequence of integer ids"),
    (lambda: date_pairs(10**9, seed=0), ValueError, "n must be <= 1000000"),  # issue 17: a billion pairs hung
])
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()
