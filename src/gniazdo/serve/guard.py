"""The guard hook: ``guard(text) -> GuardResult(safe, categories, score)``, applied by the server to a prompt and
to the reply (an unsafe one is answered with :data:`REFUSAL_PL`).

Until the safety classifier ("Sójka") exists, :class:`LexiconGuard` flags texts that contain a listed word form.
Its file format is BAN-PL's ``polish_vulgarisms_extended_2.0.txt``: one lowercase word form per line (Polish
inflects, so a lexicon lists forms, not lemmas). Two extensions, which that file does not use: ``#`` comments
and an optional category after a tab (default ``vulgarity``); an entry of several words matches them in a row.
Matching is on whole words after NFKC + lowercase, so "Kurwa," matches ``kurwa`` and "skurwysyński" does not
match ``kurwy``: substring matching would flag innocent words that contain a short form.

The package ships only a tiny lexicon written by the project (``builtin``); point ``lexicon`` at a full list.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import regex
from pydantic import BaseModel, ConfigDict

from gniazdo.errors import UserError

REFUSAL_PL = ("Przepraszam, ale nie mogę pomóc w tej sprawie, ponieważ ta rozmowa narusza zasady bezpiecznego "
              "korzystania z modelu. Chętnie odpowiem na inne pytanie.")
DEFAULT_CATEGORY = "vulgarity"
BUILTIN = "builtin"
_WORD = regex.compile(r"[\p{L}\p{N}]+(?:[-'][\p{L}\p{N}]+)*")


@dataclass
class GuardResult:
    """``score``: how sure the guard is that the text is unsafe, 0..1 (a lexicon is sure either way);
    ``matches``: what triggered it (lexicon entries), for the log."""

    safe: bool
    categories: list[str] = field(default_factory=list)
    score: float = 0.0
    matches: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SAFE = GuardResult(True)


class Guard(Protocol):
    def __call__(self, text: str) -> GuardResult: ...


class NoGuard:
    """Lets everything through (the server's default when no guard is configured)."""

    def __call__(self, text: str) -> GuardResult:
        return SAFE


def words(text: str) -> list[str]:
    """Lowercase NFKC word forms of ``text``, in order (hyphenated and apostrophe forms kept whole)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


class LexiconGuard:
    """Unsafe when the text contains a lexicon entry as whole word(s)."""

    def __init__(self, entries: dict[tuple[str, ...], str]) -> None:
        self.entries = entries  # word sequence -> category
        self.max_words = max((len(k) for k in entries), default=1)

    @classmethod
    def from_file(cls, path: str | Path) -> LexiconGuard:
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise UserError(f"{path}: guard lexicon not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: cannot read the guard lexicon ({e.__class__.__name__}: {e})") from None
        entries: dict[tuple[str, ...], str] = {}
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            phrase, _, category = line.partition("\t")
            key = tuple(words(phrase))
            if key:
                entries[key] = category.strip() or DEFAULT_CATEGORY
        if not entries:
            raise UserError(f"{path}: the guard lexicon has no entries")
        return cls(entries)

    def __call__(self, text: str) -> GuardResult:
        ws = words(text)
        found: dict[str, str] = {}
        for n in range(1, self.max_words + 1):
            for i in range(len(ws) - n + 1):
                key = tuple(ws[i: i + n])
                if key in self.entries:
                    found.setdefault(" ".join(key), self.entries[key])
        if not found:
            return SAFE
        return GuardResult(False, sorted(set(found.values())), 1.0, list(found))


class GuardConfig(BaseModel):
    """``lexicon``: None (no guard), ``builtin`` (the package's tiny list) or a word-list file."""

    model_config = ConfigDict(extra="forbid")

    lexicon: str | None = None
    check_prompt: bool = True
    check_response: bool = True


def builtin_lexicon_path() -> Path:
    from importlib.resources import files

    return Path(str(files("gniazdo.resources") / "safety" / "tiny_lexicon.txt"))


def build_guard(cfg: GuardConfig | None) -> Guard:
    if cfg is None or cfg.lexicon is None:
        return NoGuard()
    return LexiconGuard.from_file(builtin_lexicon_path() if cfg.lexicon == BUILTIN else cfg.lexicon)
