"""Functions the task YAMLs call (``!function utils.<name>``). lm-eval imports this file by path, so it must not
import gniazdo: it has to work for a plain ``lm_eval --include_path`` user too."""

from __future__ import annotations

import ast
import re

# ---------------------------------------------------------------- binary F1 of the generative tasks
# lm-eval's "f1" aggregation takes (gold, pred) pairs and computes sklearn's binary F1 (positive class 1).
# Each function turns the extracted letter (or "0"/"1") into that pair; returning a dict names the metric
# "f1" in the results, whatever the function is called.


def _f1_pair(predictions, references, positive: str) -> dict:
    return {"f1": (int(references[0] == positive), int(predictions[0] == positive))}


def f1_dyk(predictions, references):
    """DYK: "C - tak, sugerowana odpowiedź jest poprawna" is the positive class."""
    return _f1_pair(predictions, references, "C")


def f1_psc(predictions, references):
    """PSC: "B - dotyczą tego samego artykułu" (the summary belongs to the text) is the positive class."""
    return _f1_pair(predictions, references, "B")


def f1_cbd(predictions, references):
    """CBD: after the map filter, "1" is a harmful answer and a harmful gold."""
    return _f1_pair(predictions, references, "1")


# ---------------------------------------------------------------- CBD columns


def _cbd_doc(doc: dict) -> dict:
    text = doc.get("TEXT", doc.get("sentence", doc.get("text")))
    label = doc.get("GENERAL TAG", doc.get("target", doc.get("label")))
    return {"text": text, "label": int(label)}


def process_cbd(dataset):
    """The Hub dataset (``TEXT``, ``GENERAL TAG``) and KLEJ's TSV (``sentence``, ``target``) into text + label."""
    return dataset.map(_cbd_doc)


# ---------------------------------------------------------------- PoQuAD / PolQA answers

NO_ANSWER = "bez odpowiedzi"


def poquad_target(doc: dict) -> str:
    """The first gold span, after a space (the model's answer follows "...z Kontekstu):" with one)."""
    answers = doc["answers"]["text"]
    return " " + (answers[0] if len(answers) > 0 else NO_ANSWER)


def _polqa_answers(doc: dict) -> dict:
    answers = doc["answers"]
    if isinstance(answers, str):  # the Hub dataset stores the list as its Python repr
        answers = ast.literal_eval(answers)
    return {"answers": [str(a) for a in answers]}


def _dedup(dataset, key):
    seen: set = set()

    def first(doc) -> bool:
        k = key(doc)
        if k in seen:
            return False
        seen.add(k)
        return True

    return dataset.filter(first)


def process_polqa_open(dataset):
    """Relevant passages only, one document per (passage, question)."""
    dataset = dataset.filter(lambda d: bool(d["relevant"]))
    return _dedup(dataset, lambda d: (d["passage_text"], d["question"])).map(_polqa_answers)


def process_polqa_closed(dataset):
    """One document per question (closed book: the passage is not shown)."""
    dataset = dataset.filter(lambda d: bool(d["relevant"]))
    return _dedup(dataset, lambda d: d["question"]).map(_polqa_answers)


# ---------------------------------------------------------------- the leaderboard's lenient QA match
# A non-numeric answer counts when its Levenshtein distance to the (lowercased) gold is below half the
# gold's length; when the gold holds a number, the answer must hold the same number.

_NUMBER = re.compile(r"-?\d[\d,]*[.,]?\d*")
_TAIL = re.compile(r"\.?\s*(</s>)*\s*$")  # a closing period or end-of-text marker is not part of the answer


def get_number(s: str) -> str | None:
    m = _NUMBER.search(s)
    return m.group().replace(",", ".").rstrip(".") if m else None


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute), two rows of the DP table."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def lenient_match(prediction: str, reference: str) -> int:
    pred = prediction.lower().lstrip()
    pred_number = get_number(pred)
    pred = _TAIL.sub("", pred)
    ref_number = get_number(reference)
    if ref_number is not None:
        return int(ref_number == pred_number)
    return int(edit_distance(pred, reference.lower().lstrip()) < len(reference) / 2)


def levenshtein(predictions, references):
    """1 when the answer matches any gold leniently (see above), else 0; the task averages it."""
    return int(any(lenient_match(predictions[0], ref) for ref in references))
