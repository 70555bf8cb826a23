"""EQ-Bench (v2, "fullscale") scoring, Polish first: EQ-Bench-PL items, any model's answers.

Each item is a dialogue and four emotions; the model rates how strongly a character feels each (0–10), first
pass, then after a self-critique revised. For every emotion ``d = |answer − reference|`` is scaled

    s(d) = 0                                  if d = 0
    s(d) = 6.5 / (1 + e^(−1.2 (d − 4)))       if 0 < d ≤ 5
    s(d) = d                                  if d > 5

and the item scores ``(10 − 0.7477 · Σ s) · 10`` (0.7477 makes random answers score about 0). An answer in
which not all four emotions parse scores 0 and is counted. The benchmark reports the mean first-pass score,
the mean revised score and their average.

Items: EQ-Bench's JSON (``{"1": {"prompt", "reference_answer_fullscale", ...}}``, e.g. the Polish
``eq_bench_v2_questions_171_pl.json``) or JSONL with ``id``, ``prompt`` and ``reference`` (``{emotion: score}``
or EQ-Bench's ``emotion1``..``emotion4_score``). Answers: JSONL ``{"id", "answer"}`` or generated now.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from pathlib import Path
from typing import Any

from pydantic import Field

from gniazdo.config import Config, save_resolved
from gniazdo.errors import UserError
from gniazdo.fileio import atomic_open, write_json_atomic

ADJUST = 0.7477
TEMPERATURE = 0.01  # EQ-Bench's: low, for consistent answers

# Section headings, matched in folded text (lower case, no diacritics); the colon is optional.
_FIRST = re.compile(r"\b(first[\s-]+pass(?:\s+scores)?|pierwsze\s+oceny|wstepne\s+oceny|erste\s+\w+)[\s*#]*:?")
_REVISED = re.compile(r"\b(revised\s+scores|zmienione\s+oceny|poprawione\s+oceny|ostateczne\s+oceny|"
                      r"koncowe\s+oceny|uberarbeitete\s+\w+)[\s*#]*:?")


# -- scoring --------------------------------------------------------------------------------------------------
def scaled_difference(d: float) -> float:
    """EQ-Bench v2's s(d): forgiving for small misses, steep around 4, linear beyond 5."""
    d = abs(d)
    if d == 0:
        return 0.0
    if d <= 5:
        return 6.5 / (1 + math.exp(-1.2 * (d - 4)))
    return d


def item_score(reference: dict[str, float], answer: dict[str, float]) -> float:
    """``(10 − 0.7477 · Σ s(|answer − reference|)) · 10`` over the reference's emotions (all answered)."""
    total = sum(scaled_difference(answer[e] - ref) for e, ref in reference.items())
    return (10 - ADJUST * total) * 10


# -- parsing --------------------------------------------------------------------------------------------------
def fold(text: str) -> str:
    """Lower case without diacritics (``ł`` → ``l`` too): ``Złość`` and ``zlosc`` compare equal."""
    text = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def _emotion_pattern(name: str) -> re.Pattern:
    words = r"[\s_*]+".join(re.escape(w) for w in fold(name).split())
    return re.compile(rf"(?<!\w){words}(?!\w)[\s*_\"'”]*(?:[:=]|[–—-])[\s*_]*(\d+(?:[.,]\d+)?)")


def parse_emotions(text: str, emotions: list[str]) -> dict[str, float] | None:
    """``{emotion: score}`` for every one of ``emotions`` found as ``Emotion: 7`` in ``text`` (case, diacritics,
    markdown and extra text tolerated; the first occurrence wins), or None when one is missing or not 0–10."""
    folded = fold(text)
    found = {}
    for emotion in emotions:
        m = _emotion_pattern(emotion).search(folded)
        if m is None:
            return None
        value = float(m.group(1).replace(",", "."))
        if not 0 <= value <= 10:
            return None
        found[emotion] = value
    return found


def split_passes(text: str) -> tuple[str, str | None]:
    """(first-pass part, revised part or None): split at the revised heading (``Zmienione oceny:``,
    ``Revised scores:``...); the first part starts after the first-pass heading when there is one."""
    folded = fold(text)
    first = _FIRST.search(folded)
    start = first.end() if first else 0
    revised = _REVISED.search(folded, start)
    if revised is None:
        return folded[start:], None
    return folded[start:revised.start()], folded[revised.end():]


def score_answer(text: str, reference: dict[str, float]) -> dict[str, Any]:
    """One answer → first-pass and revised emotions and scores (None where unparseable)."""
    emotions = list(reference)
    first_text, revised_text = split_passes(text or "")
    first = parse_emotions(first_text, emotions)
    revised = parse_emotions(revised_text, emotions) if revised_text is not None else None
    return {"first_pass": None if first is None else item_score(reference, first),
            "revised": None if revised is None else item_score(reference, revised),
            "first_pass_answers": first, "revised_answers": revised}


def summarize(scored: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean first-pass and revised scores over all items (unparseable ones count 0) and their average."""
    n = len(scored)
    out: dict[str, Any] = {"items": n}
    for key in ("first_pass", "revised"):
        out[key] = sum(s[key] or 0.0 for s in scored) / n if n else 0.0
        out[f"{key}_unparsed"] = sum(s[key] is None for s in scored)
    out["average"] = (out["first_pass"] + out["revised"]) / 2
    return out


# -- files ----------------------------------------------------------------------------------------------------
def _reference(raw: Any, where: str) -> dict[str, float]:
    if isinstance(raw, dict) and "emotion1" in raw:
        try:
            raw = {raw[f"emotion{i}"]: raw[f"emotion{i}_score"] for i in range(1, 5)}
        except KeyError as e:
            raise UserError(f"{where}: reference lacks {e}") from None
    if not isinstance(raw, dict) or len(raw) != 4:
        raise UserError(f"{where}: the reference must give four emotions and their scores")
    try:
        return {str(k): float(v) for k, v in raw.items()}
    except (TypeError, ValueError):
        raise UserError(f"{where}: reference scores must be numbers") from None


def load_items(path: str | Path) -> list[dict[str, Any]]:
    """EQ-Bench JSON or JSONL items → ``[{"id", "prompt", "reference": {emotion: score}}]``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"items file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        if isinstance(data, dict) and "prompt" in data:  # JSONL of one line
            rows = [data]
        elif isinstance(data, dict):
            rows = [({"id": k, **v} if isinstance(v, dict) else v) for k, v in data.items()]
        else:
            rows = data if isinstance(data, list) else [data]
    except ValueError:
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            raise UserError(f"{path}: neither a JSON object nor JSONL") from None
    items = []
    for n, r in enumerate(rows, 1):
        where = f"{path}: item {n}"
        if not isinstance(r, dict) or "prompt" not in r:
            raise UserError(f"{where}: expected an object with a prompt")
        raw = r.get("reference_answer_fullscale") or r.get("reference") or r.get("reference_answer")
        items.append({"id": str(r.get("id", r.get("question_id", n))), "prompt": r["prompt"],
                      "reference": _reference(raw, where)})
    if not items:
        raise UserError(f"{path}: no items")
    return items


def load_answers(path: str | Path) -> dict[str, str]:
    """JSONL ``{"id", "answer"}`` (also ``question_id`` / ``response`` / FastChat ``choices[0].turns[0]``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"answers file not found: {path}")
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            key = r.get("id", r.get("question_id"))
            text = r.get("answer", r.get("response"))
            if text is None and "choices" in r:
                text = r["choices"][0]["turns"][0]
        except (ValueError, AttributeError, KeyError, IndexError, TypeError):
            raise UserError(f"{path}:{n}: expected a JSON object with id and answer") from None
        if key is None or not isinstance(text, str):
            raise UserError(f"{path}:{n}: expected a JSON object with id and answer")
        out[str(key)] = text
    return out


# -- the run --------------------------------------------------------------------------------------------------
class EQBenchConfig(Config):
    """Everything one ``gniazdo judge eq-bench`` run depends on (saved as config.resolved.yaml; no API key)."""

    items: str
    answers: str | None = None      # JSONL of answers already generated...
    endpoint: str | None = None     # ...or an OpenAI-compatible URL to generate them now
    model: str | None = None
    out: str
    cache: str | None = None        # default OUT/cache.sqlite
    max_tokens: int = Field(1024, ge=1)
    temperature: float = Field(TEMPERATURE, ge=0)
    concurrency: int = Field(4, ge=1)
    retries: int = Field(4, ge=0)
    timeout: float = Field(300.0, gt=0)
    backoff: float = Field(1.0, ge=0)


def run_eq_bench(cfg: EQBenchConfig, api_key: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Score every item; writes ``scores.jsonl`` (per item), ``summary.json``, ``config.resolved.yaml`` and, when
    generating, ``answers.jsonl`` into ``cfg.out``. Returns the summary. A missing answer counts as unparseable."""
    from gniazdo.eval.judge.client import ChatCache, ChatClient
    from gniazdo.eval.judge.mtbench import run_jobs

    if (cfg.answers is None) == (cfg.endpoint is None):
        raise UserError("give either answers (a JSONL file) or an endpoint to generate them")
    out = Path(cfg.out)
    items = load_items(cfg.items)
    if cfg.answers is not None:
        answers = load_answers(cfg.answers)
    else:
        cache = ChatCache(cfg.cache or out / "cache.sqlite")
        try:
            client = ChatClient(cfg.endpoint, cfg.model, api_key=api_key, cache=cache, timeout=cfg.timeout,
                                retries=cfg.retries, backoff=cfg.backoff)

            def ask(item: dict[str, Any]) -> str:
                return client.chat([{"role": "user", "content": item["prompt"]}], temperature=cfg.temperature,
                                   max_tokens=cfg.max_tokens)

            texts = run_jobs(ask, items, cfg.concurrency, "eq-bench answers", progress)
        finally:
            cache.close()
        answers = {item["id"]: text for item, text in zip(items, texts)}
        with atomic_open(out / "answers.jsonl", "w", encoding="utf-8") as f:
            for key, text in answers.items():
                f.write(json.dumps({"id": key, "model": cfg.model, "answer": text}, ensure_ascii=False) + "\n")
    scored = []
    for item in items:
        text = answers.get(item["id"])
        scored.append({"id": item["id"], "missing": text is None, **score_answer(text or "", item["reference"])})
    with atomic_open(out / "scores.jsonl", "w", encoding="utf-8") as f:
        for s in scored:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    summary = {"benchmark": "eq-bench", "model": cfg.model, **summarize(scored),
               "missing": sum(s["missing"] for s in scored)}
    write_json_atomic(out / "summary.json", summary)
    save_resolved(cfg, out)
    return summary
