"""``gniazdo train`` and ``gniazdo export``: run training from a YAML config; export a checkpoint."""

from __future__ import annotations

import click

from gniazdo.cli.report import console


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--config", "config_path", required=True, help="Training config YAML (see configs/train/).")
@click.argument("overrides", nargs=-1)
def train(config_path, overrides) -> None:
    """Pre-train (or continue training) a model; key=value arguments override the config.

    Re-running the same command resumes from the latest checkpoint (checkpoint.resume: auto). Under torchrun it
    trains with DDP or FSDP2 (parallel.mode). While it runs, edit <out>/live.yaml to change the learning rate,
    intervals or hooks, or write `command: stop` / `command: checkpoint_now`; SIGUSR1 also checkpoints.

    \b
    Example:
      gniazdo train --config configs/train/tiny-cpu.yaml data.shards=out/shards max_steps=300
      torchrun --nproc-per-node 8 -m gniazdo train --config configs/train/1b-gpu.yaml
    """
    from gniazdo.config import load_config
    from gniazdo.train import TrainConfig, train as run

    cfg = load_config(TrainConfig, config_path, overrides)
    last = run(cfg)
    shown = ", ".join(f"{k} {last[k]:.4g}" for k in ("loss", "val_loss", "val_ppl") if last.get(k) is not None)
    console.print(f"training finished in {cfg.out}: {shown}")


@click.group()
def export() -> None:
    """Export trained checkpoints to other formats.

    \b
    Example:
      gniazdo export hf runs/tiny out/tiny-hf
    """


@export.command("hf")
@click.argument("checkpoint")
@click.argument("out")
@click.option("--tokenizer", default=None, help="Tokenizer folder (default: the one the shards were made with).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default=None)
def export_hf_command(checkpoint, out, tokenizer, dtype) -> None:
    """A checkpoint (or a run folder: its latest) → HF folder for transformers' AutoModelForCausalLM.

    \b
    Example:
      gniazdo export hf runs/tiny/checkpoints/step-00000300 out/tiny-hf
    """
    from gniazdo.train.export import export_hf

    path = export_hf(checkpoint, out, tokenizer=tokenizer, dtype=dtype)
    console.print(f"HF model written to {path}")
