"""The end-to-end demo on the built-in sample corpus, on CPU, in minutes. Each stage calls the stage's public
API in order; every later stage of gniazdo adds itself here."""

from __future__ import annotations

import shlex
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from gniazdo.corpus.inspect import corpus_info
from gniazdo.pipeline import InputConfig, OutputConfig, PipelineConfig, run_pipeline
from gniazdo.resources import sample_path

# The data pipeline SpeakLeash-style: repair, anonymise, keep Polish, measure, grade, filter, deduplicate.
DEMO_STEPS: list[dict[str, Any]] = [
    {"step": "normalize"},
    {"step": "anonymize"},
    {"step": "language", "keep": ["pl"]},
    {"step": "metrics"},
    {"step": "quality"},
    {"step": "heuristics"},
    {"step": "exact_dedup", "keep": "quality"},
    {"step": "near_dedup", "vote": "majority", "keep": "quality"},
]


def demo_pipeline_config(out: Path, workers: int = 1) -> PipelineConfig:
    return PipelineConfig(
        input=InputConfig(paths=[str(sample_path("corpus.jsonl"))]),
        output=OutputConfig(path=str(out / "corpus"), name="sample",
                            info={"description": "gniazdo sample corpus after the demo pipeline",
                                  "license": "CC0-1.0", "sources": [{"name": "gniazdo-sample"}]}),
        steps=DEMO_STEPS,
        workers=workers,
    )


def _near_dedup_report(corpus: Path, console) -> dict[str, Any]:
    """Score the pipeline's near_dedup decisions, and each expert alone, against the sample's ground truth
    over the documents that reached the step (the kept ones and the removed copies)."""
    from rich.table import Table

    from gniazdo.corpus import read_documents
    from gniazdo.dedup.evaluate import pair_scores
    from gniazdo.dedup.run import NearDedupParams, vote
    from gniazdo.dedup.truth import truth_pairs

    docs = list(read_documents([corpus])) + list(read_documents([corpus / "excluded" / "near_dup"]))
    texts, ids = [d.text for d in docs], [d.meta.get("id", d.id) for d in docs]
    position = {d.id: i for i, d in enumerate(docs)}
    decided = np.array([(position[d.meta["duplicate_of"]], i) for i, d in enumerate(docs)
                        if "duplicate_of" in d.meta], dtype=np.int64).reshape(-1, 2)
    truth = truth_pairs(ids, sample_path("ground_truth.jsonl"))
    votes = vote(texts, NearDedupParams(vote="majority"))
    scores = {name: pair_scores(votes.expert_pairs(name), truth, len(texts)) for name in votes.verdict}
    scores["majority vote (pipeline)"] = pair_scores(decided, truth, len(texts))
    table = Table(title=f"{len(texts)} documents reached near_dedup, {len(truth)} true pairs among them",
                  title_justify="left")
    for col in ("detector", "pairs", "precision", "recall", "F1"):
        table.add_column(col, justify="left" if col == "detector" else "right")
    for name, sc in scores.items():
        table.add_row(name, str(sc["predicted"]), f"{sc['precision']:.3f}", f"{sc['recall']:.3f}", f"{sc['f1']:.3f}")
    console.print(table)
    return scores


def _tokenizer_stage(corpus: Path, out: Path, console) -> dict[str, Any]:
    """Train a small tokenizer on the cleaned corpus, measure it, and tokenise the corpus into shards."""
    from gniazdo.shards import tokenize_corpus
    from gniazdo.tokenizer import TokenizerTrainConfig, train_tokenizer
    from gniazdo.tokenizer.stats import markdown_table, tokenizer_stats

    tok = train_tokenizer(TokenizerTrainConfig(corpus=[str(corpus)], vocab_size=4000, out=str(out / "tokenizer"),
                                               progress=False))
    rows = tokenizer_stats([str(tok)], [str(corpus)])
    console.print(markdown_table(rows))
    meta = tokenize_corpus(tok, [str(corpus)], out / "shards", val_fraction=0.05, seed=0)
    tokens = meta["tokens"]["after_mixture"]
    console.print(f"shards: {tokens['train']['tokens']:,} train tokens ({tokens['train']['documents']} documents), "
                  f"{tokens['val']['tokens']:,} val tokens; by quality: "
                  f"{', '.join(f'{k} {v:,}' for k, v in tokens['train']['quality'].items())}")
    return {"fertility": rows[0]["fertility"], "tokens": tokens}


#: the tiny preset made smaller still: more steps per CPU-minute matter more than width on 65k tokens
DEMO_MODEL = {"dim": 192, "n_layers": 4, "n_heads": 6, "n_kv_heads": 2, "ffn_dim": 512, "max_seq_len": 256}


def demo_train_config(out: Path, shards: Path, steps: int) -> dict[str, Any]:
    """The demo's pre-training run (configs/train/tiny-cpu.yaml is the same run as a file)."""
    return {"out": str(out), "device": "cpu", "seed": 1337, "precision": "fp32", "micro_batch_size": 8,
            "max_steps": steps, "model": {"preset": "tiny", "overrides": dict(DEMO_MODEL)},
            "data": {"shards": str(shards), "seq_len": 128},
            "optim": {"lr": 3e-3, "weight_decay": 0.1}, "schedule": {"kind": "cosine", "warmup_steps": steps // 10},
            "eval": {"interval": max(1, steps // 3), "batches": 8},
            "checkpoint": {"interval": max(1, steps // 3), "keep_last": 1},
            "log": {"interval": max(1, steps // 10), "console": False}}


def _training_stage(shards: Path, out: Path, steps: int, console) -> dict[str, Any]:
    """Pre-train the tiny model on the shards, show the loss falling, export to HF format, load it back with
    transformers and continue a Polish prompt."""
    import json

    import torch
    import transformers

    from gniazdo.config import validate
    from gniazdo.train import TrainConfig, export_hf
    from gniazdo.train.trainer import Trainer

    cfg = validate(TrainConfig, demo_train_config(out / "train", shards, steps))
    trainer = Trainer(cfg)
    console.print(f"model: tiny preset, {trainer.raw.num_params() / 1e6:.1f}M parameters; {steps} steps of "
                  f"{cfg.micro_batch_size} x {cfg.data.seq_len} tokens on CPU")
    last = trainer.fit()
    records = [json.loads(x) for x in (out / "train" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    console.print("loss:     " + "  ".join(f"{r['step']}: {r['loss']:.2f}" for r in train))
    console.print("val loss: " + "  ".join(f"{r['step']}: {r['val_loss']:.2f}" for r in evals))
    hf_dir = export_hf(out / "train", out / "hf")
    transformers.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(hf_dir))
    tok = transformers.AutoTokenizer.from_pretrained(str(hf_dir))
    prompt = "Polska jest krajem, w którym"
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        gen = model.generate(**ids, max_new_tokens=30, do_sample=False, repetition_penalty=1.3,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    text = tok.decode(gen[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)
    console.print(f"exported to {hf_dir} ({type(model).__name__}); transformers continues "
                  f"[italic]„{prompt}”[/]: [bold]{text.strip()}[/]")
    return {"first_loss": train[0]["loss"], "last_loss": train[-1]["loss"], "val_loss": last.get("val_loss"),
            "hf_dir": str(hf_dir), "continuation": text, "architecture": type(model).__name__}


DEMO_QUESTION = "Jaki jest najwyższy szczyt w Polsce?"  # one of the sample instructions


def _answer(hf_dir: Path, question: str) -> str:
    """The model's greedy answer to one chat turn, through transformers and the folder's chat template."""
    import torch
    import transformers

    transformers.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(hf_dir))
    tok = transformers.AutoTokenizer.from_pretrained(str(hf_dir))
    ids = tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    stop = [i for i in (tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id) if i is not None]
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=40, do_sample=False, repetition_penalty=1.2, eos_token_id=stop,
                             pad_token_id=tok.pad_token_id)
    return tok.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def _finetune_stage(base_hf: Path, out: Path, sft_epochs: float, dpop_epochs: float, console) -> dict[str, Any]:
    """SFT on the sample instructions, then DPO-Positive on the sample preference pairs; the same question is
    answered before SFT, after SFT and after DPOP."""
    from gniazdo.config import validate
    from gniazdo.prefs import compute_reference, prepare_prefs
    from gniazdo.resources import sample_path
    from gniazdo.sft import SFTPrepareConfig, prepare_sft
    from gniazdo.train import TrainConfig, export_hf
    from gniazdo.train.trainer import Trainer

    answers = {"before SFT": _answer(base_hf, DEMO_QUESTION)}
    meta = prepare_sft(SFTPrepareConfig(tokenizer=str(base_hf), data=[str(sample_path("instructions.jsonl"))],
                                        out=str(out / "sft-data"), max_len=256, pack=True, val_fraction=0.05,
                                        progress=False))
    train_split = meta["splits"]["train"]
    console.print(f"SFT data: {train_split['conversations']} conversations packed into {train_split['rows']} rows of "
                  f"≤256 tokens, {train_split['learned_tokens']:,} learned (assistant) tokens")
    common = {"device": "cpu", "seed": 1337, "model": {"init_from": str(base_hf), "preset": None},
              "checkpoint": {"interval": 0, "keep_last": 1}, "log": {"interval": 5, "console": False, "plot": False}}
    sft = validate(TrainConfig, {**common, "objective": "sft", "out": str(out / "sft"), "epochs": sft_epochs,
                                 "micro_batch_size": 4, "data": {"prepared": str(out / "sft-data")},
                                 "optim": {"lr": 2e-3, "weight_decay": 0.0}, "schedule": {"warmup_steps": 3},
                                 "loss": {"weighting": "mean", "adaptive_lr": True},
                                 "eval": {"interval": 0, "batches": 4}})
    last = Trainer(sft).fit()
    console.print(f"SFT: loss {last['loss']:.2f}, val loss {last.get('val_loss', float('nan')):.2f}")
    sft_hf = export_hf(out / "sft", out / "sft-hf")
    answers["after SFT"] = _answer(sft_hf, DEMO_QUESTION)

    prepare_prefs(sft_hf, [sample_path("preferences.jsonl")], out / "prefs-data", max_len=256, progress=False)
    compute_reference(sft_hf, out / "prefs-data", progress=False)
    dpop = validate(TrainConfig, {**common, "objective": "dpop", "out": str(out / "dpop"), "epochs": dpop_epochs,
                                  "model": {"init_from": str(sft_hf), "preset": None}, "micro_batch_size": 4,
                                  "grad_accum": 2, "data": {"prepared": str(out / "prefs-data")},
                                  "optim": {"lr": 3e-4, "weight_decay": 0.0},
                                  "schedule": {"kind": "constant", "warmup_steps": 1},
                                  "prefs": {"beta": 0.1, "dpop_lambda": 50.0}, "eval": {"interval": 0}})
    last = Trainer(dpop).fit()
    console.print(f"DPOP: loss {last['loss']:.3f} (log 2 = 0.693 at the start), reward accuracy "
                  f"{last['reward_accuracy']:.0%}, margin {last['reward_margin']:.3f}")
    answers["after DPOP"] = _answer(export_hf(out / "dpop", out / "dpop-hf"), DEMO_QUESTION)
    console.print(f"[bold]{DEMO_QUESTION}[/]")
    for stage, text in answers.items():
        console.print(f"  {stage:>11}: {text}")
    return {"answers": answers, "dpop": last}


def run_demo(out: str | Path = "demo-out", workers: int = 1, fresh: bool = True,
             progress: bool = True, train_steps: int = 200, sft_epochs: float = 6,
             dpop_epochs: float = 2) -> dict[str, Any]:
    """Run every demo stage; returns each stage's summary keyed by stage name."""
    from gniazdo.cli.report import console, print_pipeline_summary

    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    results: dict[str, Any] = {}
    t0 = time.perf_counter()

    console.rule("[bold]1. corpus → data pipeline (normalize, anonymize, language, metrics, quality, "
                 "heuristics, exact dedup, near dedup)")
    cfg = demo_pipeline_config(out, workers)
    stats = run_pipeline(cfg, progress=progress)
    print_pipeline_summary(stats, cfg.output.path)
    quality = corpus_info(Path(cfg.output.path))["stats"].get("quality", {})
    console.print("quality of the kept documents: " + ", ".join(f"{k} {v:.0%}" for k, v in quality.items()))
    results["pipeline"] = {**stats, "quality": quality}

    console.rule("[bold]2. near-duplicates (the near_dedup step above): precision and recall vs the ground truth")
    results["near_dedup"] = _near_dedup_report(Path(cfg.output.path), console)

    console.rule("[bold]3. tokenizer (byte-level BPE) on the cleaned corpus → token shards")
    results["tokenizer"] = _tokenizer_stage(Path(cfg.output.path), out, console)

    console.rule("[bold]4. pre-training the tiny model on the shards → HF export → transformers")
    results["training"] = _training_stage(out / "shards", out, train_steps, console)

    console.rule("[bold]5. instruction tuning (SFT, packed, weighted) → DPO-Positive on preference pairs")
    results["finetune"] = _finetune_stage(Path(results["training"]["hf_dir"]), out, sft_epochs, dpop_epochs, console)

    console.rule("[bold]6. evaluation: Open PL LLM Leaderboard MC tasks through lm-evaluation-harness (--limit)")
    from gniazdo.eval import demo_eval

    evals = demo_eval(str(out / "dpop-hf"), str(out / "eval"), console=console)
    results["eval"] = evals["leaderboard"]
    console.print("(a few hand-written documents per task, shipped for offline runs: the numbers show the "
                  "plumbing works; `gniazdo eval --suite pl-leaderboard` runs the real data)")

    console.rule(f"[bold]done in {time.perf_counter() - t0:.1f}s — outputs in {out}/")
    results["chat_commands"] = chat_commands(out / "dpop-hf")
    console.print("Chat with the model it built (in the terminal, or in the browser at http://127.0.0.1:8000/ — "
                  "the same server speaks the OpenAI API; /arena compares models side by side):")
    for command in results["chat_commands"]:
        console.print(f"  [bold]{command}[/bold]", soft_wrap=True)
    return results


def chat_commands(model_dir: Path) -> list[str]:
    """The commands that chat with a demo model: in the terminal, and through the server's web page."""
    model = shlex.quote(str(model_dir))
    return [f"gniazdo generate --model {model} --chat", f"gniazdo serve --model {model}"]
