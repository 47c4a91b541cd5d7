"""A synthetic seq2seq task whose alignment is visible: spelled-out dates -> ISO dates (chapter 07).

"the fourth of july 1999" -> "1999-07-04". Sources are words (numbers digit by digit), targets characters; both
sides use BART's <s>, <pad>, </s> as ids 0, 1, 2. A calendar date belongs to one split whatever its spelling.
"""

from __future__ import annotations

import random
import re
from datetime import date

import torch

from ._validate import check_choice, check_instance, check_int, check_int_tensor, check_seed, pad_batch

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
            "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth")
DATE_SPECIALS = ("<s>", "<pad>", "</s>")  # on both sides, as in BART
DATE_BOS, DATE_PAD, DATE_EOS = 0, 1, 2
DATE_SOURCE_VOCAB = (*DATE_SPECIALS, "the", "of", ",", *MONTHS, *ORDINALS, "twentieth", "thirtieth", "twenty",
                     "thirty", "st", "nd", "rd", "th", *"0123456789")  # words; numbers digit by digit
DATE_TARGET_VOCAB = (*DATE_SPECIALS, *"0123456789", "-")  # characters of YYYY-MM-DD
_DATE_WORD = re.compile(r"[a-z]+|[0-9]|,")  # "twenty-first" -> twenty first; "1999" -> 1 9 9 9; "4th" -> 4 th
MAX_PAIRS = 1_000_000
_FIRST_DAY, _LAST_DAY = date(1900, 1, 1).toordinal(), date(2099, 12, 31).toordinal()


def date_split(day: date) -> str:
    """The split a calendar date belongs to, by its day number: 10% "test", 10% "validation", the rest "train".

    A date lives in one split whatever its surface form, so held-out dates are never seen in training.
    """
    check_instance("day", day, date, "datetime.date")
    return {0: "test", 1: "validation"}.get(day.toordinal() % 10, "train")


def spell_date(day: date, form: int) -> str:
    """Form 0: the fourth of july 1999, 1: july the fourth, 1999, 2: 4 july 1999, 3: the 4th of july 1999."""
    check_instance("day", day, date, "datetime.date")
    check_choice("form", form, range(4))
    d, month, year = day.day, MONTHS[day.month - 1], day.year
    if d < 20:
        word = ORDINALS[d - 1]
    elif d % 10 == 0:
        word = "twentieth" if d == 20 else "thirtieth"
    else:
        word = f"{'twenty' if d < 30 else 'thirty'}-{ORDINALS[d % 10 - 1]}"
    suffix = "th" if 11 <= d <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    forms = (f"the {word} of {month} {year}", f"{month} the {word}, {year}", f"{d} {month} {year}",
             f"the {d}{suffix} of {month} {year}")
    return forms[form]


def date_pairs(n: int, seed: int, split: str = "train") -> list[tuple[str, str]]:
    """n (spelled-out date, ISO date) pairs: dates uniform over 1900-2099 within `split`, forms uniform; seeded.

    n is at most MAX_PAIRS (a million pairs take seconds; a billion would not fit in memory).
    """
    check_int("n", n, 1, MAX_PAIRS)
    check_seed("seed", seed)
    check_choice("split", split, ("train", "validation", "test"))
    rng, pairs = random.Random(seed), []
    while len(pairs) < n:
        day, form = date.fromordinal(rng.randint(_FIRST_DAY, _LAST_DAY)), rng.randrange(4)
        if date_split(day) == split:
            pairs.append((spell_date(day, form), day.isoformat()))
    return pairs


def encode_dates(pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(src_ids (B, S), src_mask (B, S), tgt_ids (B, T)): <s> words </s> and <s> characters </s>, padded with 1.

    src_mask is 1 on real tokens, 0 on padding; a decoder reads tgt_ids[:, :-1] and predicts tgt_ids[:, 1:].
    """
    if not isinstance(pairs, (list, tuple)) or not pairs:
        raise ValueError(f"pairs must be a non-empty list of (source, target) strings, got {pairs!r:.80}")
    source_id = {w: i for i, w in enumerate(DATE_SOURCE_VOCAB)}
    target_id = {c: i for i, c in enumerate(DATE_TARGET_VOCAB)}
    src, tgt = [], []
    for k, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(s, str) for s in pair):
            raise TypeError(f"pairs[{k}] must be a (source, target) pair of strings, got {pair!r:.80}")
        source, target = pair
        words = _DATE_WORD.findall(source)
        unknown = [w for w in words if w not in source_id] + [c for c in target if c not in target_id]
        if not words or unknown:
            raise ValueError(f"pairs[{k}] must be a date pair in the date vocabularies, got {(source, target)!r}: "
                             f"unknown {unknown}")
        src.append([DATE_BOS, *(source_id[w] for w in words), DATE_EOS])
        tgt.append([DATE_BOS, *(target_id[c] for c in target), DATE_EOS])
    src_ids = pad_batch(src, DATE_PAD)  # (B, S)
    return src_ids, (src_ids != DATE_PAD).long(), pad_batch(tgt, DATE_PAD)


def decode_iso(ids) -> str:
    """The ISO date spelled by target ids (1-D): the characters up to the first </s>, <s> and padding skipped."""
    if not isinstance(ids, torch.Tensor):
        try:
            ids = torch.as_tensor(ids, dtype=None if len(ids) else torch.long)  # [] is no date: ''
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"ids must be a 1-D sequence of integer ids, got {ids!r:.80}") from None
    check_int_tensor("ids", ids, ndim=1, low=0, high=len(DATE_TARGET_VOCAB))
    ids = ids.tolist()
    ids = ids[: ids.index(DATE_EOS)] if DATE_EOS in ids else ids
    return "".join(DATE_TARGET_VOCAB[i] for i in ids if i not in (DATE_BOS, DATE_PAD))
