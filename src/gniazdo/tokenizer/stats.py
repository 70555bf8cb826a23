"""Compare tokenizers on a corpus: fertility, characters per token, single-token words, byte fallback.

Measures, per tokenizer, over the corpus documents (each document encoded whole, as one string, without special
tokens):

- ``fertility``: total tokens / total words, words being ``\\w+`` runs;
- ``chars_per_token``: total characters / total tokens;
- ``single_token_words``: the share of *distinct* words that are one token when they appear mid-text. Each word
  is encoded on its own in its mid-text form: with a leading space for tokenizers that add no prefix (byte-level
  BPE), and bare for those that prepend one themselves (SentencePiece's dummy prefix, a ``Prepend("▁")``
  normalizer), so both get ``▁word`` / ``Ġword``; a word is single when that gives exactly one token;
- ``byte_fallback``: the share of tokens that are not whole characters: SentencePiece / BPE byte-fallback pieces
  ``<0xNN>``, and, for byte-level BPE, tokens whose bytes are not valid UTF-8 on their own (a split character);
- ``single:„`` etc.: whether „ ” — … and the newline are a vocabulary entry of their own (not a byte piece).

    rows = tokenizer_stats(["tok/", "mistral/tokenizer.model"], ["book.txt"])
    print(markdown_table(rows)); plot_fertility(rows, "fertility.png")
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Iterable

from gniazdo.corpus import read_documents
from gniazdo.errors import UserError

_WORD = re.compile(r"\w+")
_BYTE_PIECE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")
CHECKED_CHARS = ["„", "”", "—", "…", "\n"]


def byte_level_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: printable stand-in character → byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


class _Tok:
    """A loaded tokenizer behind one interface: ``pieces(text)``, ``has_piece(s)``, ``is_byte(piece)``."""

    def __init__(self, path: str) -> None:
        p = Path(path)
        self.name = (p.parent.name if p.stem == "tokenizer" else p.stem) if p.is_file() else p.name
        sp_file = p if p.is_file() and p.suffix == ".model" else p / "tokenizer.model"
        hf_file = p if p.is_file() and p.suffix == ".json" else p / "tokenizer.json"
        if hf_file.is_file():
            import json

            from tokenizers import Tokenizer

            self.kind = "hf"
            self.tok = Tokenizer.from_file(str(hf_file))
            spec = json.loads(hf_file.read_text(encoding="utf-8"))
            self.byte_level = "ByteLevel" in json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")])
            self.vocab_size = self.tok.get_vocab_size()
        elif sp_file.is_file():
            import sentencepiece as spm

            self.kind = "sp"
            self.tok = spm.SentencePieceProcessor(model_file=str(sp_file))
            self.byte_level = False
            self.vocab_size = self.tok.get_piece_size()
        else:
            raise UserError(f"{path}: no tokenizer.json or sentencepiece .model / tokenizer.model there")
        self._bytes = byte_level_decoder()
        first = self.pieces("a")[0]
        self.adds_prefix = first.startswith(("▁", "Ġ"))

    def pieces(self, text: str) -> list[str]:
        if self.kind == "sp":
            return self.tok.encode(text, out_type=str)
        return self.tok.encode(text, add_special_tokens=False).tokens

    def is_byte(self, piece: str) -> bool:
        if _BYTE_PIECE.match(piece):
            return True
        if not self.byte_level:
            return False
        try:
            bytes(self._bytes[c] for c in piece).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            return True
        return False

    def has_piece(self, s: str) -> bool:
        if self.kind == "sp":
            i = self.tok.piece_to_id(s)
            return i != self.tok.unk_id() and not self.tok.is_byte(i)
        if self.byte_level:
            s = "".join(chr(c) for c in _unicode_bytes(s))
        return self.tok.token_to_id(s) is not None


def _unicode_bytes(s: str) -> list[int]:
    enc = {b: ord(c) for c, b in byte_level_decoder().items()}
    return [enc[b] for b in s.encode("utf-8")]


def _texts(corpus: Iterable[str], limit_docs: int | None) -> list[str]:
    docs = (d.text for d in read_documents(list(corpus)))
    return list(islice(docs, limit_docs) if limit_docs is not None else docs)


def tokenizer_stats(tokenizers: list[str], corpus: list[str], limit_docs: int | None = None) -> list[dict]:
    """One row per tokenizer (see the module docstring for what each figure means)."""
    texts = _texts(corpus, limit_docs)
    words = Counter(w for t in texts for w in _WORD.findall(t))
    n_words = sum(words.values())
    n_chars = sum(len(t) for t in texts)
    if not n_words:
        raise UserError(f"no words in {', '.join(corpus)}")
    rows = []
    for path in tokenizers:
        tok = _Tok(path)
        n_tokens = n_bytes = 0
        for text in texts:
            pieces = tok.pieces(text)
            n_tokens += len(pieces)
            n_bytes += sum(tok.is_byte(p) for p in pieces)
        prefix = "" if tok.adds_prefix else " "
        single = sum(1 for w in words if len(tok.pieces(prefix + w)) == 1)
        row = {"tokenizer": tok.name, "vocab_size": tok.vocab_size, "docs": len(texts), "words": n_words,
               "tokens": n_tokens, "fertility": n_tokens / n_words, "chars_per_token": n_chars / max(n_tokens, 1),
               "single_token_words": single / len(words), "byte_fallback": n_bytes / max(n_tokens, 1)}
        for c in CHECKED_CHARS:
            row[f"single:{_label(c)}"] = tok.has_piece(c)
        rows.append(row)
    return rows


def _label(c: str) -> str:
    return "\\n" if c == "\n" else c


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table; floats to 3 decimals (shares as %), booleans as ✓ / ✗."""
    if not rows:
        return ""
    cols = list(rows[0])

    def fmt(key: str, v) -> str:
        if isinstance(v, bool):
            return "✓" if v else "✗"
        if isinstance(v, float):
            return f"{100 * v:.1f}%" if key in ("single_token_words", "byte_fallback") else f"{v:.3f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |",
             "|" + "|".join("---" if c == "tokenizer" else "---:" for c in cols) + "|"]
    lines += ["| " + " | ".join(fmt(c, r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot_fertility(rows: list[dict], png_path: str | Path) -> Path:
    """A horizontal bar chart of fertility per tokenizer (lower is better), written to ``png_path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["fertility"], reverse=True)
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.2))
    bars = ax.barh([r["tokenizer"] for r in rows], [r["fertility"] for r in rows], color="#4a7ab5")
    ax.bar_label(bars, fmt="%.2f", padding=3)
    ax.set_xlabel("tokens per word (lower is better)")
    ax.set_title("Tokenizer fertility")
    ax.margins(x=0.15)
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return png_path
