"""Local copies of the leaderboard's data sets, in the schema of the Hub datasets the task YAMLs read.

``gniazdo eval import-data --from ../shared/data/pl/tasks --out DIR`` turns the shared KLEJ TSVs, 8TAGS, PPC
and PoQuAD files into ``DIR/<key>/{train,test}.jsonl``; ``gniazdo eval --data-dir DIR`` then evaluates offline.

The local files hold what is public, so their test splits are not the leaderboard's (whose labels are not all
released). Scores on them are for comparing our own runs, not for comparing with the published leaderboard:

* PolEmo2 IN/OUT, NKJP-NER, 8TAGS, PPC: their labelled dev set is ``test``; ``train`` is the training set.
* DYK, PSC, CBD have no labelled dev or test set here: every k-th training item is held out as ``test``
  (about 1,000, like the real test sets) and the rest is ``train`` (few-shot examples come from it).
* PoQuAD: only the dev set is here; every 10th article is set aside as ``train`` (few-shot examples), the
  rest is ``test``.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from gniazdo.errors import UserError
from gniazdo.fileio import atomic_open

csv.field_size_limit(sys.maxsize)  # DYK and PSC hold whole Wikipedia paragraphs in a cell
HOLDOUT_SIZE = 1000


def _tsv(path: Path, quoted: bool = False) -> list[dict[str, str]]:
    """KLEJ's TSVs are raw text (a cell may start with a quote that is part of the text), except DYK's, which
    are CSV-quoted ("...""..."...")."""
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE))


def _labelled_lines(path: Path) -> list[dict[str, Any]]:
    """8TAGS: ``<label> <sentence>`` per line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            label, _, sentence = line.partition(" ")
            if not label.isdigit():
                raise UserError(f"{path}:{n}: expected '<label> <sentence>'")
            rows.append({"sentence": sentence, "label": int(label)})
    return rows


def holdout(rows: list[Any], size: int = HOLDOUT_SIZE) -> tuple[list[Any], list[Any]]:
    """(train, test): every k-th row is test, k chosen so that test has about ``size`` rows. Deterministic and
    spread over the whole file (files are often ordered by source or label)."""
    k = max(2, round(len(rows) / size))
    return [r for i, r in enumerate(rows) if i % k], rows[::k]


def _ints(rows: list[dict[str, str]], *fields: str) -> list[dict[str, Any]]:
    return [{k: (int(v) if k in fields else v) for k, v in r.items()} for r in rows]


def _klej(src: Path, folder: str) -> Path:
    return src / "klej" / folder


def _polemo(folder: str) -> Callable[[Path], dict[str, list]]:
    def convert(src: Path) -> dict[str, list]:
        d = _klej(src, folder)
        return {"train": _tsv(d / "train.tsv"), "test": _tsv(d / "dev.tsv")}
    return convert


def _ner(src: Path) -> dict[str, list]:
    d = _klej(src, "klej_nkjp-ner")
    return {"train": _tsv(d / "train.tsv"), "test": _tsv(d / "dev.tsv")}


def _dyk(src: Path) -> dict[str, list]:
    train, test = holdout(_ints(_tsv(_klej(src, "klej_dyk") / "train.tsv", quoted=True), "target"))
    return {"train": train, "test": test}


def _psc(src: Path) -> dict[str, list]:
    train, test = holdout(_ints(_tsv(_klej(src, "klej_psc") / "train.tsv"), "label"))
    return {"train": train, "test": test}


def _cbd(src: Path) -> dict[str, list]:
    train, test = holdout(_ints(_tsv(_klej(src, "klej_cbd") / "train.tsv"), "target"))
    return {"train": train, "test": test}


def _8tags(src: Path) -> dict[str, list]:
    return {"train": _labelled_lines(src / "8tags" / "train.txt"), "test": _labelled_lines(src / "8tags" / "dev.txt")}


def _ppc(src: Path) -> dict[str, list]:
    return {"train": _ints(_tsv(src / "ppc" / "train.txt"), "label"),
            "test": _ints(_tsv(src / "ppc" / "dev.txt"), "label")}


def poquad_docs(article: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """SQuAD 2.0-style article -> one document per question, answers as the Hub dataset has them (lists);
    an unanswerable question has no answers."""
    for p_i, para in enumerate(article["paragraphs"]):
        for q_i, qa in enumerate(para["qas"]):
            answers = [] if qa.get("is_impossible") else qa.get("answers", [])
            yield {"id": f"{article.get('id', '')}-{p_i}-{q_i}", "title": article.get("title", ""),
                   "context": para["context"], "question": qa["question"],
                   "answers": {"text": [a["text"] for a in answers],
                               "answer_start": [a.get("answer_start", -1) for a in answers],
                               "generative_answer": [a.get("generative_answer", a["text"]) for a in answers]},
                   "is_impossible": bool(qa.get("is_impossible", False))}


def _poquad(src: Path) -> dict[str, list]:
    path = src / "poquad" / "poquad_dev.json"
    try:
        articles = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (ValueError, KeyError) as e:
        raise UserError(f"{path}: not a SQuAD-style JSON file ({e})") from None
    out: dict[str, list] = {"train": [], "test": []}
    for i, article in enumerate(articles):
        out["train" if i % 10 == 0 else "test"].extend(poquad_docs(article))
    return out


# data key -> (the source file whose presence says "this data set is here", converter)
SOURCES: dict[str, tuple[str, Callable[[Path], dict[str, list]]]] = {
    "polemo2-in": ("klej/klej_polemo2.0-in/dev.tsv", _polemo("klej_polemo2.0-in")),
    "polemo2-out": ("klej/klej_polemo2.0-out/dev.tsv", _polemo("klej_polemo2.0-out")),
    "8tags": ("8tags/dev.txt", _8tags),
    "dyk": ("klej/klej_dyk/train.tsv", _dyk),
    "ppc": ("ppc/dev.txt", _ppc),
    "psc": ("klej/klej_psc/train.tsv", _psc),
    "cbd": ("klej/klej_cbd/train.tsv", _cbd),
    "klej-ner": ("klej/klej_nkjp-ner/dev.tsv", _ner),
    "poquad": ("poquad/poquad_dev.json", _poquad),
}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def import_data(src: str | Path, out: str | Path, keys: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Convert what ``src`` holds into ``out/<key>/{train,test}.jsonl``; returns {key: {split: n}}.

    Data sets whose source files are absent are skipped (Belebele and PolQA are never here); asking for a
    specific one that is absent is an error.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise UserError(f"--from {src}: not a folder")
    unknown = [k for k in keys or [] if k not in SOURCES]
    if unknown:
        raise UserError(f"unknown data set '{unknown[0]}' (valid: {', '.join(SOURCES)})")
    counts: dict[str, dict[str, int]] = {}
    for key in keys or list(SOURCES):
        marker, convert = SOURCES[key]
        if not (src / marker).is_file():
            if keys:
                raise UserError(f"{key}: {src / marker} not found")
            continue
        for split, rows in convert(src).items():
            write_jsonl(out / key / f"{split}.jsonl", rows)
            counts.setdefault(key, {})[split] = len(rows)
    if not counts:
        raise UserError(f"{src}: none of the task data sets found (expected e.g. {SOURCES['dyk'][0]})")
    return counts
