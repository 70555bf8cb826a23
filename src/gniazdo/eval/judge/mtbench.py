"""MT-Bench with a judge model (FastChat's llm_judge), Polish first: MT-Bench-PL files or the built-in questions.

Questions are FastChat's ``question.jsonl`` (``question_id``, ``category``, two ``turns``, optional ``reference``
for math / reasoning / coding). Answers are FastChat's ``model_answer/<model>.jsonl`` (``question_id``,
``choices[0].turns``), read from a folder or generated now at an OpenAI-compatible URL with FastChat's
per-category temperatures. Each turn is judged on its own: the first turn alone, the second with the whole
conversation (the ``-multi-turn`` prompts).

* ``single``: a 1–10 grade per answer and turn; a judgment without a parseable grade is re-asked once in Polish
  (:data:`~gniazdo.eval.judge.prompts.REASK_RATING`); still nothing → counted as unparsed, left out of means.
* ``pairwise``: every pair of models, judged twice per turn with the answers' positions swapped; the same
  winner both times wins, a disagreement is a tie (:func:`~gniazdo.eval.judge.parse.combine_verdicts`).
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import Field

from gniazdo.config import Config, save_resolved
from gniazdo.errors import UserError
from gniazdo.eval.judge.client import ChatCache, ChatClient, is_url
from gniazdo.eval.judge.parse import combine_verdicts, parse_rating, parse_verdict, to_model
from gniazdo.eval.judge.prompts import REASK_RATING, REASK_VERDICT, load_judge_prompts, prompt_name
from gniazdo.fileio import atomic_open, write_json_atomic, write_text_atomic

CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
NEED_REFERENCE = ("math", "reasoning", "coding")
# FastChat's sampling temperatures per category when generating answers (others: DEFAULT_TEMPERATURE).
TEMPERATURES = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0, "reasoning": 0.0,
                "stem": 0.1, "humanities": 0.1}
DEFAULT_TEMPERATURE = 0.7
BUILTIN_QUESTIONS = Path(__file__).parent / "questions" / "mt_bench_pl.jsonl"


class MTBenchConfig(Config):
    """Everything one ``gniazdo judge mt-bench`` run depends on (saved as config.resolved.yaml; no API keys)."""

    questions: str = str(BUILTIN_QUESTIONS)
    answers_from: list[str] = Field(min_length=1)
    models: list[str] = []           # one model name per URL in answers_from, in order
    judge: str
    judge_model: str | None = None
    mode: Literal["single", "pairwise"] = "single"
    references: str | None = None    # FastChat reference_answer/<judge>.jsonl; replaces the questions' own
    judge_prompts: str | None = None  # FastChat judge_prompts.jsonl; replaces built-in prompts by name
    out: str
    cache: str | None = None          # default OUT/cache.sqlite
    answer_max_tokens: int = Field(1024, ge=1)
    judge_max_tokens: int = Field(2048, ge=1)
    concurrency: int = Field(4, ge=1)
    retries: int = Field(4, ge=0)
    timeout: float = Field(300.0, gt=0)
    backoff: float = Field(1.0, ge=0)


@dataclass
class Question:
    question_id: Any
    category: str
    turns: list[str]
    reference: list[str] | None = None


# -- reading --------------------------------------------------------------------------------------------------
def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise UserError(f"{path}:{n}: not JSON") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}:{n}: expected a JSON object")
        out.append((n, record))
    return out


def load_questions(path: str | Path = BUILTIN_QUESTIONS) -> list[Question]:
    """FastChat / MT-Bench-PL ``question.jsonl`` → questions (one or two turns each)."""
    path = Path(path)
    questions, seen = [], set()
    for n, r in _jsonl(path):
        turns, ref = r.get("turns"), r.get("reference")
        if "question_id" not in r or not isinstance(r.get("category"), str):
            raise UserError(f"{path}:{n}: a question needs question_id and category")
        if not isinstance(turns, list) or not 1 <= len(turns) <= 2 or not all(isinstance(t, str) for t in turns):
            raise UserError(f"{path}:{n}: turns must be a list of one or two strings")
        if ref is not None and (not isinstance(ref, list) or not all(isinstance(t, str) for t in ref)):
            raise UserError(f"{path}:{n}: reference must be a list of strings")
        if r["question_id"] in seen:
            raise UserError(f"{path}:{n}: question_id {r['question_id']!r} repeats")
        seen.add(r["question_id"])
        questions.append(Question(r["question_id"], r["category"], turns, ref or None))
    if not questions:
        raise UserError(f"{path}: no questions")
    return questions


def read_answer_file(path: str | Path) -> dict[str, list[str]]:
    """FastChat ``model_answer/<model>.jsonl`` → {str(question_id): [answer to turn 1, answer to turn 2]}
    (ids compared as text, so ``1`` and ``"1"`` match)."""
    path = Path(path)
    answers = {}
    for n, r in _jsonl(path):
        try:
            turns = r["choices"][0]["turns"]
        except (KeyError, IndexError, TypeError):
            raise UserError(f"{path}:{n}: expected question_id and choices[0].turns") from None
        if "question_id" not in r or not isinstance(turns, list):
            raise UserError(f"{path}:{n}: expected question_id and choices[0].turns")
        answers[str(r["question_id"])] = [str(t) for t in turns]
    return answers


def write_answer_file(path: str | Path, model: str, questions: list[Question], answers: dict[str, list[str]]) -> None:
    """FastChat's answer format, one line per question."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        for q in questions:
            record = {"question_id": q.question_id, "answer_id": f"{model}-{q.question_id}", "model_id": model,
                      "choices": [{"index": 0, "turns": answers[str(q.question_id)]}], "tstamp": time.time()}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def apply_references(questions: list[Question], path: str | Path) -> None:
    """Reference answers from a FastChat ``reference_answer/*.jsonl`` file replace the questions' own."""
    refs = read_answer_file(path)
    for q in questions:
        if str(q.question_id) in refs:
            q.reference = refs[str(q.question_id)]


def safe_name(model: str) -> str:
    return model.replace("/", "__").replace("\\", "__")


# -- answers --------------------------------------------------------------------------------------------------
def progress_bar(enabled: bool):
    """A bar of requests done (on stderr, only on a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), disable=not (enabled and sys.stderr.isatty()))


def run_jobs(fn: Callable, jobs: list, concurrency: int, label: str, progress: bool) -> list:
    """``fn`` over ``jobs`` on a thread pool, results in order."""
    out = []
    pool = ThreadPoolExecutor(concurrency)
    try:
        with progress_bar(progress) as bar:
            task = bar.add_task(label, total=len(jobs))
            for result in pool.map(fn, jobs):
                out.append(result)
                bar.advance(task)
    finally:  # the first error stops the run: requests not yet started are dropped
        pool.shutdown(wait=True, cancel_futures=True)
    return out


def generate_answers(client: ChatClient, questions: list[Question], max_tokens: int = 1024,
                     concurrency: int = 4, progress: bool = True) -> dict[str, list[str]]:
    """Ask every question turn by turn (the conversation so far in context) at its category's temperature."""
    def answer(q: Question) -> list[str]:
        temperature = TEMPERATURES.get(q.category, DEFAULT_TEMPERATURE)
        messages, turns = [], []
        for turn in q.turns:
            messages.append({"role": "user", "content": turn})
            text = client.chat(list(messages), temperature=temperature, max_tokens=max_tokens)
            messages.append({"role": "assistant", "content": text})
            turns.append(text)
        return turns

    results = run_jobs(answer, questions, concurrency, f"answers {client.model}", progress)
    return {str(q.question_id): turns for q, turns in zip(questions, results)}


def collect_answers(cfg: MTBenchConfig, questions: list[Question], cache: ChatCache, api_key: str | None,
                    progress: bool = True) -> dict[str, dict[str, list[str]]]:
    """{model: {question_id: turns}} from every source: folders, answer files, URLs (generated and saved)."""
    urls = [s for s in cfg.answers_from if is_url(s)]
    if len(cfg.models) != len(urls):
        raise UserError(f"give one --model per URL in --answers-from ({len(urls)} URLs, {len(cfg.models)} models)")
    names = iter(cfg.models)
    answers: dict[str, dict[str, list[str]]] = {}

    def add(model: str, found: dict[str, list[str]], source: str) -> None:
        if model in answers:
            raise UserError(f"answers of model '{model}' come twice (again from {source})")
        answers[model] = found

    for source in cfg.answers_from:
        if is_url(source):
            model = next(names)
            client = ChatClient(source, model, api_key=api_key, cache=cache, timeout=cfg.timeout,
                                retries=cfg.retries, backoff=cfg.backoff)
            found = generate_answers(client, questions, cfg.answer_max_tokens, cfg.concurrency, progress)
            write_answer_file(Path(cfg.out) / "model_answer" / f"{safe_name(model)}.jsonl", model, questions, found)
            add(model, found, source)
        elif Path(source).is_dir():
            files = sorted(Path(source).glob("*.jsonl"))
            if not files:
                raise UserError(f"{source}: no <model>.jsonl answer files")
            for f in files:
                add(f.stem, read_answer_file(f), str(f))
        elif Path(source).is_file():
            add(Path(source).stem, read_answer_file(source), source)
        else:
            raise UserError(f"answers not found: {source} (a folder, a <model>.jsonl file or an http(s) URL)")
    for model, found in answers.items():
        for q in questions:
            if len(found.get(str(q.question_id), [])) < len(q.turns):
                raise UserError(f"model '{model}' has no answer to every turn of question {q.question_id!r}")
    return answers


# -- judging --------------------------------------------------------------------------------------------------
def _ask(client: ChatClient, template: dict[str, Any], values: dict[str, str], parse: Callable, reask: str,
         max_tokens: int) -> tuple[Any, str, str, bool]:
    """One judgment: (parsed value or None, user prompt, judgment text, whether the re-ask rescued it)."""
    try:
        user = template["prompt_template"].format(**values)
    except (KeyError, IndexError) as e:
        raise UserError(f"judge prompt '{template['name']}' uses an unknown field {e}") from None
    messages = [{"role": "user", "content": user}]
    if template.get("system_prompt"):
        messages.insert(0, {"role": "system", "content": template["system_prompt"]})
    text = client.chat(messages, temperature=0.0, max_tokens=max_tokens)
    value = parse(text)
    if value is not None:
        return value, user, text, False
    follow = messages + [{"role": "assistant", "content": text}, {"role": "user", "content": reask}]
    reply = client.chat(follow, temperature=0.0, max_tokens=64)
    value = parse(reply)
    return value, user, f"{text}\n\n{reply}", value is not None


def _prompt(prompts: dict[str, dict], name: str) -> dict[str, Any]:
    if name not in prompts:
        raise UserError(f"no judge prompt named '{name}' (have: {', '.join(sorted(prompts))})")
    return prompts[name]


def _with_reference(q: Question, turn: int) -> bool:
    return q.category in NEED_REFERENCE and q.reference is not None and len(q.reference) >= turn


def _values(q: Question, turn: int, answers: dict[str, list[str]]) -> dict[str, str]:
    """Template fields: ``question``/``answer`` (turn 1) or ``question_1``.. ``answer_2`` (turn 2), for one
    answer (key ``""``) or two (keys ``"a"``, ``"b"``), plus the references when the category needs them."""
    values: dict[str, str] = {}
    if turn == 1:
        values["question"] = q.turns[0]
    else:
        values.update(question_1=q.turns[0], question_2=q.turns[1])
    for who, turns in answers.items():
        name = f"answer_{who}" if who else "answer"
        if turn == 1:
            values[name] = turns[0]
        else:
            values.update({f"{name}_1": turns[0], f"{name}_2": turns[1]})
    if _with_reference(q, turn):
        values.update({f"ref_answer_{i + 1}": r for i, r in enumerate(q.reference[:turn])})
    return values


def judge_single(client: ChatClient, prompts: dict[str, dict], q: Question, model: str, turns: list[str],
                 turn: int, max_tokens: int = 2048) -> dict[str, Any]:
    """Grade one model's answer to one turn: a judgment record (``score`` None when no grade parsed)."""
    name = prompt_name("single", _with_reference(q, turn), turn)
    score, user, text, rescued = _ask(client, _prompt(prompts, name), _values(q, turn, {"": turns}), parse_rating,
                                      REASK_RATING, max_tokens)
    return {"question_id": q.question_id, "category": q.category, "model": model, "turn": turn,
            "judge": [client.model, name], "score": score, "rescued": rescued, "user_prompt": user,
            "judgment": text, "tstamp": time.time()}


def judge_pair(client: ChatClient, prompts: dict[str, dict], q: Question, models: tuple[str, str],
               answers: tuple[list[str], list[str]], turn: int, max_tokens: int = 2048) -> dict[str, Any]:
    """Compare two models on one turn, twice (model 1 as A, then as B): a judgment record with the winner."""
    name = prompt_name("pairwise", _with_reference(q, turn), turn)
    g1, p1, t1, r1 = _ask(client, _prompt(prompts, name), _values(q, turn, {"a": answers[0], "b": answers[1]}),
                          parse_verdict, REASK_VERDICT, max_tokens)
    g2, p2, t2, r2 = _ask(client, _prompt(prompts, name), _values(q, turn, {"a": answers[1], "b": answers[0]}),
                          parse_verdict, REASK_VERDICT, max_tokens)
    return {"question_id": q.question_id, "category": q.category, "model_1": models[0], "model_2": models[1],
            "turn": turn, "judge": [client.model, name], "g1_winner": to_model(g1, True),
            "g2_winner": to_model(g2, False), "winner": combine_verdicts(g1, g2),
            "g1_rescued": r1, "g2_rescued": r2, "g1_user_prompt": p1, "g1_judgment": t1, "g2_user_prompt": p2,
            "g2_judgment": t2, "tstamp": time.time()}


# -- scores ---------------------------------------------------------------------------------------------------
def category_order(found: set[str]) -> list[str]:
    return [c for c in CATEGORIES if c in found] + sorted(found - set(CATEGORIES))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def single_scores(judgments: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model: mean grade overall, per category and per turn; judgments, unparsed and rescued counts."""
    out: dict[str, dict[str, Any]] = {}
    for model in dict.fromkeys(j["model"] for j in judgments):
        mine = [j for j in judgments if j["model"] == model]
        ok = [j for j in mine if j["score"] is not None]
        cats = category_order({j["category"] for j in mine})
        out[model] = {
            "overall": _mean([j["score"] for j in ok]),
            "categories": {c: _mean([j["score"] for j in ok if j["category"] == c]) for c in cats},
            "turns": {str(t): _mean([j["score"] for j in ok if j["turn"] == t]) for t in (1, 2)},
            "judged": len(mine), "unparsed": len(mine) - len(ok), "rescued": sum(j["rescued"] for j in mine)}
    return out


def _win_rate(win: int, tie: int, loss: int) -> float | None:
    n = win + tie + loss
    return (win + 0.5 * tie) / n if n else None


def pairwise_scores(judgments: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model: wins / ties / losses over all its comparisons, win rate (ties count half) overall and per
    category, and the comparisons left out because a judgment had no verdict (``errors``)."""
    out: dict[str, dict[str, Any]] = {}
    cats = category_order({j["category"] for j in judgments})
    tally: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    errors: dict[str, int] = defaultdict(int)
    for j in judgments:
        for me, other in (("model_1", "model_2"), ("model_2", "model_1")):
            model = j[me]
            if j["winner"] == "error":
                errors[model] += 1
                continue
            slot = 1 if j["winner"] == "tie" else 0 if j["winner"] == me else 2
            for key in ("", j["category"]):
                tally[model][key][slot] += 1
    models = list(dict.fromkeys(m for j in judgments for m in (j["model_1"], j["model_2"])))
    for model in models:
        win, tie, loss = tally[model][""]
        out[model] = {"win": win, "tie": tie, "loss": loss, "win_rate": _win_rate(win, tie, loss),
                      "categories": {c: _win_rate(*tally[model][c]) for c in cats}, "errors": errors[model]}
    return out


# -- the run --------------------------------------------------------------------------------------------------
def run_mt_bench(cfg: MTBenchConfig, api_key: str | None = None, judge_api_key: str | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Answers (read or generated) → judgments → scores. Writes into ``cfg.out``: ``judgments.jsonl``,
    ``scores.json``, ``scores.md``, ``radar.png``, ``config.resolved.yaml`` (and ``model_answer/`` when
    generating). Returns the contents of scores.json."""
    from gniazdo.eval.judge.charts import markdown_table, radar_chart

    out = Path(cfg.out)
    questions = load_questions(cfg.questions)
    if cfg.references:
        apply_references(questions, cfg.references)
    prompts = load_judge_prompts(cfg.judge_prompts)
    cache = ChatCache(cfg.cache or out / "cache.sqlite")
    try:
        answers = collect_answers(cfg, questions, cache, api_key, progress)
        if cfg.mode == "pairwise" and len(answers) < 2:
            raise UserError("pairwise mode compares models: give answers of at least two")
        judge = ChatClient(cfg.judge, cfg.judge_model, api_key=judge_api_key, cache=cache, timeout=cfg.timeout,
                           retries=cfg.retries, backoff=cfg.backoff)
        turns = [(q, t) for q in questions for t in range(1, len(q.turns) + 1)]

        def single(job: tuple[str, Question, int]) -> dict[str, Any]:
            model, q, turn = job
            return judge_single(judge, prompts, q, model, answers[model][str(q.question_id)], turn,
                                cfg.judge_max_tokens)

        def pair(job: tuple[tuple[str, str], Question, int]) -> dict[str, Any]:
            models, q, turn = job
            pair_answers = (answers[models[0]][str(q.question_id)], answers[models[1]][str(q.question_id)])
            return judge_pair(judge, prompts, q, models, pair_answers, turn, cfg.judge_max_tokens)

        if cfg.mode == "single":
            jobs, fn = [(m, q, t) for m in answers for q, t in turns], single
        else:
            jobs, fn = [(p, q, t) for p in combinations(answers, 2) for q, t in turns], pair
        judgments = run_jobs(fn, jobs, cfg.concurrency, "judgments", progress)
    finally:
        cache.close()
    with atomic_open(out / "judgments.jsonl", "w", encoding="utf-8") as f:
        for j in judgments:
            f.write(json.dumps(j, ensure_ascii=False) + "\n")
    models = single_scores(judgments) if cfg.mode == "single" else pairwise_scores(judgments)
    summary = {"benchmark": "mt-bench", "mode": cfg.mode, "questions": cfg.questions, "n_questions": len(questions),
               "judge": {"url": cfg.judge, "model": cfg.judge_model}, "judge_calls": judge.calls, "models": models}
    write_json_atomic(out / "scores.json", summary)
    write_text_atomic(out / "scores.md", markdown_table(summary))
    radar_chart(summary, out / "radar.png")
    save_resolved(cfg, out)
    return summary
