"""Polish judge prompts in FastChat's ``judge_prompts.jsonl`` form (written for this project, not translated).

Eight prompts, named as in FastChat so its own file (English) or any translation can replace them
(``--judge-prompts FILE``): ``single-v1`` / ``single-math-v1`` grade the first turn 1–10, their ``-multi-turn``
variants grade the second turn seeing the whole conversation; ``pair-v2`` / ``pair-math-v1`` (and
``-multi-turn``) compare two assistants and answer ``[[A]]``, ``[[B]]`` or ``[[C]]`` (a tie). The ``math``
prompts carry the reference answers (``{ref_answer_1}``, ``{ref_answer_2}``) and are used for the math,
reasoning and coding categories.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gniazdo.errors import UserError

# The re-ask when a single grade has no parseable rating (SpeakLeash's MT-Bench-PL rescue, verbatim).
REASK_RATING = "Podaj wyłącznie końcową ocenę w skali 1-10, ściśle w formacie: Rating: [[liczba]]"
REASK_VERDICT = "Podaj wyłącznie końcowy werdykt, ściśle w formacie: [[A]], [[B]] albo [[C]] (remis)"

_IMPARTIAL = "Oceń jako bezstronny sędzia"
_RATE = ("Po uzasadnieniu musisz ocenić odpowiedź w skali od 1 do 10, ściśle w formacie \"[[ocena]]\", "
         "na przykład: \"Rating: [[5]]\".")
_GENERAL = ("Weź pod uwagę pomocność, trafność, poprawność merytoryczną, głębię, kreatywność i poziom "
            "szczegółowości odpowiedzi, a także poprawność i naturalność polszczyzny.")
_MATH = ("Weź pod uwagę poprawność i pomocność. Otrzymasz odpowiedź wzorcową oraz odpowiedź asystenta. Zacznij "
         "od porównania odpowiedzi asystenta z odpowiedzią wzorcową, wskaż i popraw ewentualne błędy.")
_FAIR = ("Nie kieruj się kolejnością, w jakiej pokazano odpowiedzi, ich długością ani nazwami asystentów. Bądź "
         "możliwie obiektywny.")
_VERDICT = ("Po uzasadnieniu podaj werdykt, ściśle w formacie: \"[[A]]\", jeśli lepszy jest asystent A, "
            "\"[[B]]\", jeśli lepszy jest asystent B, albo \"[[C]]\" przy remisie.")


def _conversation(who: str, a1: str, a2: str) -> str:
    return (f"<|Początek rozmowy asystenta {who} z użytkownikiem|>\n\n### Użytkownik:\n{{question_1}}\n\n"
            f"### Asystent {who}:\n{{{a1}}}\n\n### Użytkownik:\n{{question_2}}\n\n### Asystent {who}:\n{{{a2}}}\n\n"
            f"<|Koniec rozmowy asystenta {who} z użytkownikiem|>")


_REFERENCE_CONVERSATION = ("<|Początek odpowiedzi wzorcowej|>\n\n### Użytkownik:\n{question_1}\n\n"
                           "### Odpowiedź wzorcowa:\n{ref_answer_1}\n\n### Użytkownik:\n{question_2}\n\n"
                           "### Odpowiedź wzorcowa:\n{ref_answer_2}\n\n<|Koniec odpowiedzi wzorcowej|>\n\n\n")
_REFERENCE = "[Początek odpowiedzi wzorcowej]\n{ref_answer_1}\n[Koniec odpowiedzi wzorcowej]\n\n"
_ANSWER = "[Początek odpowiedzi asystenta]\n{answer}\n[Koniec odpowiedzi asystenta]"
_ANSWERS_AB = ("[Początek odpowiedzi asystenta A]\n{answer_a}\n[Koniec odpowiedzi asystenta A]\n\n"
               "[Początek odpowiedzi asystenta B]\n{answer_b}\n[Koniec odpowiedzi asystenta B]")
_SYSTEM = "Jesteś pomocnym asystentem."


def _single(name: str, system: str, template: str, category: str) -> dict[str, Any]:
    return {"name": name, "type": "single", "system_prompt": system, "prompt_template": template,
            "category": category, "output_format": "[[rating]]"}


def _pair(name: str, system: str, template: str, category: str) -> dict[str, Any]:
    return {"name": name, "type": "pairwise", "system_prompt": system, "prompt_template": template,
            "category": category, "output_format": "[[A]]"}


JUDGE_PROMPTS_PL: dict[str, dict[str, Any]] = {p["name"]: p for p in [
    _single("single-v1", _SYSTEM,
            f"[Instrukcja]\n{_IMPARTIAL} jakość odpowiedzi asystenta AI na pytanie użytkownika podane poniżej. "
            f"{_GENERAL} Zacznij od krótkiego uzasadnienia. Bądź możliwie obiektywny. {_RATE}\n\n"
            f"[Pytanie]\n{{question}}\n\n{_ANSWER}", "general"),
    _single("single-math-v1", _SYSTEM,
            f"[Instrukcja]\n{_IMPARTIAL} jakość odpowiedzi asystenta AI na pytanie użytkownika podane poniżej. "
            f"{_MATH} Bądź możliwie obiektywny. {_RATE}\n\n[Pytanie]\n{{question}}\n\n{_REFERENCE}{_ANSWER}",
            "math"),
    _single("single-v1-multi-turn",
            f"{_IMPARTIAL} jakość odpowiedzi asystenta AI w rozmowie z użytkownikiem. {_GENERAL} Skup się na "
            f"odpowiedzi asystenta na drugie pytanie użytkownika. Zacznij od krótkiego uzasadnienia. Bądź możliwie "
            f"obiektywny. {_RATE}\n\n", _conversation("A", "answer_1", "answer_2"), "general"),
    _single("single-math-v1-multi-turn",
            f"{_IMPARTIAL} jakość odpowiedzi asystenta AI w rozmowie z użytkownikiem. {_MATH} Skup się na "
            f"odpowiedzi asystenta na drugie pytanie. Bądź możliwie obiektywny. {_RATE}\n\n",
            _REFERENCE_CONVERSATION + _conversation("A", "answer_1", "answer_2"), "math"),
    _pair("pair-v2",
          f"{_IMPARTIAL} jakość odpowiedzi dwóch asystentów AI na pytanie użytkownika podane poniżej i wybierz "
          f"tego, który lepiej wykonuje polecenia użytkownika i lepiej odpowiada na jego pytanie. {_GENERAL} "
          f"Zacznij od porównania obu odpowiedzi i krótkiego uzasadnienia. {_FAIR} {_VERDICT}",
          f"[Pytanie użytkownika]\n{{question}}\n\n{_ANSWERS_AB}", "general"),
    _pair("pair-v2-multi-turn",
          f"{_IMPARTIAL} jakość odpowiedzi dwóch asystentów AI w rozmowach z użytkownikiem i wybierz tego, który "
          f"lepiej wykonuje polecenia użytkownika. {_GENERAL} Skup się na tym, który lepiej odpowiada na drugie "
          f"pytanie użytkownika. Zacznij od porównania odpowiedzi obu asystentów i krótkiego uzasadnienia. "
          f"{_FAIR} {_VERDICT}",
          _conversation("A", "answer_a_1", "answer_a_2") + "\n\n\n"
          + _conversation("B", "answer_b_1", "answer_b_2"), "general"),
    _pair("pair-math-v1",
          f"{_IMPARTIAL} jakość odpowiedzi dwóch asystentów AI na pytanie użytkownika podane poniżej. Weź pod "
          f"uwagę poprawność i pomocność. Otrzymasz odpowiedź wzorcową oraz odpowiedzi asystentów A i B. Zacznij od "
          f"porównania obu odpowiedzi z odpowiedzią wzorcową, wskaż i popraw błędy. {_FAIR} {_VERDICT}",
          f"[Pytanie użytkownika]\n{{question}}\n\n{_REFERENCE}{_ANSWERS_AB}", "math"),
    _pair("pair-math-v1-multi-turn",
          f"{_IMPARTIAL} jakość odpowiedzi dwóch asystentów AI w rozmowach z użytkownikiem. Weź pod uwagę "
          f"poprawność i pomocność. Otrzymasz odpowiedzi wzorcowe oraz rozmowy asystentów A i B. Oceń, który "
          f"asystent poprawniej i pomocniej odpowiada na drugie pytanie. Zacznij od porównania odpowiedzi obu "
          f"asystentów z odpowiedziami wzorcowymi, wskaż i popraw błędy. {_FAIR} {_VERDICT}",
          _REFERENCE_CONVERSATION + _conversation("A", "answer_a_1", "answer_a_2") + "\n\n\n"
          + _conversation("B", "answer_b_1", "answer_b_2"), "math"),
]}


def load_judge_prompts(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The built-in Polish prompts, with those of a FastChat-style JSONL file (if given) replacing them by name."""
    prompts = dict(JUDGE_PROMPTS_PL)
    if path is None:
        return prompts
    path = Path(path)
    if not path.is_file():
        raise UserError(f"judge prompts file not found: {path}")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            p = json.loads(line)
        except ValueError:
            raise UserError(f"{path}:{n}: not JSON") from None
        missing = {"name", "type", "system_prompt", "prompt_template", "output_format"} - set(p)
        if missing:
            raise UserError(f"{path}:{n}: missing {', '.join(sorted(missing))}")
        prompts[p["name"]] = p
    return prompts


def prompt_name(kind: str, with_reference: bool, turn: int) -> str:
    """``single``/``pairwise`` × reference or not × first or second turn → the prompt's name."""
    base = {("single", False): "single-v1", ("single", True): "single-math-v1",
            ("pairwise", False): "pair-v2", ("pairwise", True): "pair-math-v1"}[(kind, with_reference)]
    return base + ("-multi-turn" if turn == 2 else "")
