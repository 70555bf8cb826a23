"""Run the Polish leaderboard tasks through lm-evaluation-harness and write results, a table and a chart.

lm-eval does the evaluating (``simple_evaluate``); this module only chooses the model backend, loads our task
YAMLs (``gniazdo/eval/tasks``, an lm-eval include path), points them at local data when asked, and adds the
leaderboard's normalised scores. The backends:

* ``--model DIR``: lm-eval's ``hf`` backend on a Hugging Face folder (ours from ``save_pretrained``), or
  ``vllm`` on a GPU box, or ``gniazdo`` (our own model class, as the trainer's live evaluation uses).
* ``--server URL``: any OpenAI-compatible server through ``local-completions``; log-likelihood tasks need
  ``echo`` + ``logprobs`` from the server and a local ``--tokenizer``.

``--data-dir DIR`` switches every task from the Hub dataset to ``DIR/<key>/{train,validation,test}.jsonl`` in
the same schema (``gniazdo eval import-data`` writes them), by rewriting each task's config before lm-eval
builds it: the prompts, metrics and filters stay the YAML's, only where the documents come from changes.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import Field

from gniazdo.config import Config, save_resolved
from gniazdo.errors import UserError
from gniazdo.eval.scores import OPEN_QA, SUITES, TASKS, baseline_from_labels, known_baseline, leaderboard
from gniazdo.eval.tasks import TASKS_DIR

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


class EvalConfig(Config):
    out: str
    model: str | None = None  # a Hugging Face model folder (or Hub id, for hf/vllm)
    server: str | None = None  # base URL of an OpenAI-compatible server
    backend: Literal["hf", "vllm", "gniazdo"] = "hf"  # for --model
    server_model: str | None = None  # the model name the server serves (the "model" field of requests)
    tokenizer: str | None = None  # for --server: the model's tokenizer (needed by log-likelihood tasks)
    chat: bool = False  # --server: use /v1/chat/completions and the chat template (generative tasks only)
    suite: Literal["pl-leaderboard", "pl-mc", "pl-gen"] = "pl-leaderboard"
    tasks: list[str] | None = None  # instead of the suite: task names or data keys (e.g. 8tags)
    num_fewshot: int = Field(0, ge=0)
    limit: int | None = Field(None, ge=1)  # documents per task (for a quick look; not comparable scores)
    batch_size: str = "auto"
    dtype: str = "auto"
    device: str | None = None
    data_dir: str | None = None
    model_args: str | None = None  # extra lm-eval model arguments, "k=v,k2=v2"
    bootstrap_iters: int = Field(1000, ge=0)  # stderr of F1 is bootstrapped: lm-eval's 100000 takes ages
    log_samples: bool = False
    seed: int = 1234


# ---------------------------------------------------------------- tasks


@lru_cache(maxsize=1)
def task_manager():
    """Our tasks only: indexing lm-eval's ~200 built-in task folders costs seconds and would bring its own
    ``polemo2_in`` along."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS_DIR), include_defaults=False)


SUITE_KIND = {"pl-mc": "mc", "pl-gen": "gen", "pl-leaderboard": None}


def resolve_tasks(tasks: list[str] | None, suite: str = "pl-leaderboard", kind: str | None = None) -> list[str]:
    """lm-eval task names from task names, data keys (``8tags``: its mc and gen variants) or suite names, in
    the leaderboard's order, without repeats. The suite (or ``kind``) narrows keys to one variant:
    ``--suite pl-mc --tasks 8tags`` is ``polish_8tags_multiple_choice``."""
    kind = kind or SUITE_KIND[suite]
    if not tasks:
        return list(SUITES[suite])
    chosen: list[str] = []
    for item in tasks:
        if item in TASKS:
            found = [item]
        elif item in SUITES:
            found = SUITES[item]
        else:
            found = [n for n, t in TASKS.items() if t.key == item]
        found = [n for n in found if kind is None or TASKS[n].kind == kind]
        if not found:
            keys = sorted({t.key for t in TASKS.values()})
            raise UserError(f"unknown task '{item}'" + (f" for kind {kind}" if kind else "")
                            + f" (valid: {', '.join(keys)}, a suite {', '.join(SUITES)}, or a task from "
                              f"'gniazdo eval tasks')")
        chosen += [n for n in found if n not in chosen]
    order = list(TASKS)
    return sorted(chosen, key=order.index)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:  # lm-eval >= 0.4.9
        from lm_eval.tasks._yaml_loader import load_yaml

        return load_yaml(path, resolve_func=True)
    except ImportError:  # older lm-eval
        from lm_eval.utils import load_yaml_config

        return load_yaml_config(str(path), mode="full")


def local_task_config(name: str, data_dir: str | Path) -> dict[str, Any] | None:
    """The task's full config reading ``data_dir/<key>/*.jsonl``; None when there is no ``test.jsonl``.

    The original's splits map onto the local files: its test split is ``test``, its training split ``train``,
    its validation split ``validation``; a few-shot split follows the split it named.
    """
    folder = Path(data_dir) / TASKS[name].key
    files = {s: folder / f"{s}.jsonl" for s in SPLITS if (folder / f"{s}.jsonl").is_file()}
    if "test" not in files:
        return None
    cfg = _load_yaml(task_manager().task_index[name].yaml_path)
    as_local = {cfg.get("test_split"): "test", cfg.get("training_split"): "train",
                cfg.get("validation_split"): "validation"}
    fewshot = cfg.get("fewshot_split")
    cfg.update(
        dataset_path="json", dataset_name=None,
        dataset_kwargs={"data_files": {s: str(p.resolve()) for s, p in files.items()}},
        test_split="test",
        training_split="train" if "train" in files and cfg.get("training_split") else None,
        validation_split="validation" if "validation" in files and cfg.get("validation_split") else None,
    )
    if fewshot is not None:
        local = as_local.get(fewshot, "train")
        cfg["fewshot_split"] = local if local in files else "test"
    return cfg


def load_tasks(names: list[str], data_dir: str | Path | None = None, skip_missing: bool = False) -> dict[str, Any]:
    """lm-eval Task objects (``TaskManager.load``'s dict) for ``names``, on Hub data or ``data_dir``.

    With ``skip_missing`` a task without local data is left out (a suite run on the data at hand); otherwise
    it is an error.
    """
    specs: list[Any] = []
    for name in names:
        if data_dir is None:
            specs.append(name)
            continue
        cfg = local_task_config(name, data_dir)
        if cfg is None:
            where = Path(data_dir) / TASKS[name].key / "test.jsonl"
            if not skip_missing:
                raise UserError(f"task {name}: no local data ({where} not found)")
            log.warning("skipping %s: %s not found", name, where)
            continue
        specs.append(cfg)
    if not specs:
        raise UserError(f"no task has data in {data_dir}" if data_dir else "no tasks selected")
    try:
        return task_manager().load(specs)
    except (FileNotFoundError, ConnectionError) as e:
        raise UserError(f"could not load task data: {e} (offline? use --data-dir)") from None


def baselines_for(tasks: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """Each task's baseline (percent) and where it came from: the leaderboard's, or the evaluated split's
    gold labels (the whole split, whatever --limit is)."""
    values: dict[str, float] = {}
    source: dict[str, str] = {}
    for name, task in tasks.items():
        if name not in TASKS:
            continue
        given = known_baseline(name)
        if given is not None:
            values[name], source[name] = given, ("open QA: 0" if name in OPEN_QA else "leaderboard")
            continue
        labels = [task.doc_to_target(doc) for doc in task.eval_docs]
        values[name], source[name] = baseline_from_labels(TASKS[name], labels), "data"
    return values, source


# ---------------------------------------------------------------- models


def _parse_args(s: str | None) -> dict[str, Any]:
    """``k=v,k2=v2`` with values typed the way lm-eval types them (numbers, booleans)."""
    from lm_eval.utils import handle_arg_string

    out: dict[str, Any] = {}
    for part in (s or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--model-args: '{part}' is not key=value")
        out[key.strip()] = handle_arg_string(value.strip())
    return out


def _completions_url(url: str, chat: bool) -> str:
    url = url.rstrip("/")
    endpoint = "chat/completions" if chat else "completions"
    if url.endswith("/completions"):
        return url
    return f"{url}/{endpoint}" if url.endswith("/v1") else f"{url}/v1/{endpoint}"


def model_spec(cfg: EvalConfig, kinds: set[str]) -> tuple[str, dict[str, Any], bool]:
    """(lm-eval model name, model_args, apply_chat_template) for the config."""
    if bool(cfg.model) == bool(cfg.server):
        raise UserError("give exactly one of --model DIR and --server URL")
    extra = _parse_args(cfg.model_args)
    if cfg.server:
        if cfg.chat and "mc" in kinds:
            raise UserError("--chat serves generative tasks only (chat endpoints give no prompt log-probs); "
                            "use --suite pl-gen")
        if "mc" in kinds and not cfg.tokenizer:
            raise UserError("log-likelihood tasks over --server need the model's --tokenizer (a folder)")
        args: dict[str, Any] = {"base_url": _completions_url(cfg.server, cfg.chat),
                                "model": cfg.server_model or cfg.tokenizer or "default",
                                "num_concurrent": 1, "max_retries": 3, "tokenized_requests": False}
        if cfg.tokenizer:
            # Token ids, not text, when lm-eval has the tokenizer: it scores a continuation by cutting the echoed
            # log-probs at the context's token count, which re-tokenising the text on the server could shift
            # (a tokenizer that adds <s>). Chat completions take only messages.
            args.update(tokenizer=cfg.tokenizer, tokenizer_backend="huggingface", tokenized_requests=not cfg.chat)
        return ("local-chat-completions" if cfg.chat else "local-completions"), {**args, **extra}, cfg.chat
    path = Path(cfg.model)
    if path.exists() and not (path / "config.json").is_file():
        raise UserError(f"{path}: no config.json (not a Hugging Face model folder; export a checkpoint with "
                        "'gniazdo export')")
    if cfg.backend == "gniazdo":
        import gniazdo.eval.lm  # noqa: F401  (registers the "gniazdo" lm-eval model)
    if cfg.backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise UserError("--backend vllm needs vLLM (pip install vllm, on a CUDA machine)") from None
        args = {"pretrained": cfg.model, "dtype": cfg.dtype, "gpu_memory_utilization": 0.85}
    else:
        args = {"pretrained": cfg.model, "dtype": cfg.dtype}
    return cfg.backend, {**args, **extra}, False


# ---------------------------------------------------------------- the run


@contextmanager
def quiet_f1() -> Iterator[None]:
    """sklearn warns on every bootstrap resample of a small F1 sample without positives; noise, not news."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(F-score|Precision|Recall) is ill-defined.*")
        yield


def _device(cfg: EvalConfig) -> str | None:
    if cfg.device or cfg.server:
        return cfg.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _batch_size(cfg: EvalConfig) -> int | str:
    b = cfg.batch_size
    if b.isdigit() and int(b) > 0:
        return int(b)
    if b == "auto" or (b.startswith("auto:") and b[5:].isdigit()):
        return b
    raise UserError(f"--batch-size: '{b}' is not a positive number or 'auto'")


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate, then write ``out/results.json`` (lm-eval's results, the leaderboard scores, the config),
    ``out/leaderboard.md``, ``out/leaderboard.png`` and ``out/config.resolved.yaml``; returns the results dict."""
    import lm_eval
    from lm_eval.utils import handle_non_serializable

    from gniazdo.eval.report import leaderboard_markdown, plot_leaderboard

    names = resolve_tasks(cfg.tasks, cfg.suite)
    kinds = {TASKS[n].kind for n in names}
    model, model_args, chat = model_spec(cfg, kinds)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_resolved(cfg, out)
    loaded = load_tasks(names, cfg.data_dir, skip_missing=not cfg.tasks)
    baselines, baseline_source = baselines_for(loaded["tasks"])
    try:
        with quiet_f1():
            results = lm_eval.simple_evaluate(
                model=model, model_args=model_args, tasks=list(loaded["tasks"].values()),
                num_fewshot=cfg.num_fewshot, batch_size=_batch_size(cfg), device=_device(cfg), limit=cfg.limit,
                bootstrap_iters=cfg.bootstrap_iters, log_samples=cfg.log_samples, apply_chat_template=chat,
                task_manager=task_manager(), random_seed=cfg.seed, numpy_random_seed=cfg.seed,
                torch_random_seed=cfg.seed, fewshot_random_seed=cfg.seed)
    except OSError as e:  # a model folder transformers cannot read, a Hub id offline
        raise UserError(f"could not load the model: {str(e).splitlines()[0]}") from None
    if results is None:  # not the main process of a multi-GPU lm-eval run: it writes nothing
        return {}
    samples = results.pop("samples", None)
    board = leaderboard(results["results"], baselines)
    record = {
        "leaderboard": board,
        "baselines": {n: {"value": baselines[n], "source": baseline_source[n]} for n in baselines},
        "config": cfg.model_dump(mode="json"),
        "lm_eval": results,
    }
    text = json.dumps(record, ensure_ascii=False, indent=2, default=handle_non_serializable)
    (out / "results.json").write_text(text + "\n", encoding="utf-8")
    if samples:
        with open(out / "samples.jsonl", "w", encoding="utf-8") as f:
            for task, rows in samples.items():
                for row in rows:
                    f.write(json.dumps({"task": task, **row}, ensure_ascii=False,
                                       default=handle_non_serializable) + "\n")
    title = _run_title(cfg)
    (out / "leaderboard.md").write_text(leaderboard_markdown(board, title=title, config=cfg.model_dump()),
                                        encoding="utf-8")
    plot_leaderboard(board, out / "leaderboard.png", title=title)
    return json.loads(text)


def _run_title(cfg: EvalConfig) -> str:
    who = cfg.model or f"{cfg.server_model or 'server'} @ {cfg.server}"
    return f"{Path(who).name if cfg.model and os.path.exists(cfg.model) else who}, {cfg.num_fewshot}-shot"
