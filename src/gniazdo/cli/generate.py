"""``gniazdo generate``: complete prompts with a checkpoint, or chat with it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from gniazdo.errors import UserError


@click.command()
@click.option("--model", "model_dir", required=True, help="Hugging Face folder (gniazdo export, or a Hub checkpoint).")
@click.option("--prompt", "prompts", multiple=True, help="A prompt (repeat for several: generated as a batch).")
@click.option("--prompts-file", type=click.Path(dir_okay=False), default=None,
              help="One prompt per line, or JSONL with a \"prompt\" field.")
@click.option("--chat", is_flag=True, help="Interactive conversation on stdin (/system TEXT, /reset, /exit).")
@click.option("--system", default=None, help="System prompt (chat template only).")
@click.option("--no-template", is_flag=True, help="Send prompts as raw text, not as a user turn of the chat template.")
@click.option("--max-new-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=0.7, show_default=True, help="0 = greedy.")
@click.option("--top-k", type=int, default=0, show_default=True, help="0 = off.")
@click.option("--top-p", type=float, default=0.95, show_default=True, help="1 = off.")
@click.option("--repetition-penalty", type=float, default=1.0, show_default=True, help="1 = off; try 1.1.")
@click.option("--stop", multiple=True, help="Stop before this text (repeat for several).")
@click.option("--seed", type=int, default=None, help="Seed of the sampling (reproducible output).")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Prompts decoded at once.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default=None,
              help="Weights dtype (default: as stored).")
@click.option("--jsonl", is_flag=True, help="Many prompts: one JSON line per completion instead of text blocks.")
def generate(model_dir, prompts, prompts_file, chat, system, no_template, max_new_tokens, temperature, top_k, top_p,
             repetition_penalty, stop, seed, batch_size, device, dtype, jsonl) -> None:
    """Generate text with a checkpoint: stream one prompt, batch many, or chat.

    By default a prompt becomes the user turn of the checkpoint's chat template (tokenizer_config.json), as a
    chat model expects; --no-template sends it as raw text to continue (base models). One prompt streams to the
    terminal; several (--prompt repeated, --prompts-file) are decoded together, --batch-size at a time.

    \b
    Example:
      gniazdo generate --model out/sft-export --prompt "Jaka jest stolica Polski?"
      gniazdo generate --model out/export --no-template --prompt "Dawno, dawno temu" --temperature 0
      gniazdo generate --model out/sft-export --prompts-file questions.txt --jsonl > answers.jsonl
      gniazdo generate --model out/sft-export --chat --system "Odpowiadaj krótko."
    """
    from gniazdo.infer import Engine, SamplingParams

    texts = list(prompts)
    if prompts_file:
        texts += _read_prompts(Path(prompts_file))
    if chat == bool(texts):
        raise UserError("give prompts (--prompt, --prompts-file) or --chat, one of the two")
    if chat and no_template:
        raise UserError("--chat needs the chat template; --no-template is for prompts")
    if not Path(model_dir).is_dir():
        raise UserError(f"model folder not found: {model_dir}")
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                            repetition_penalty=repetition_penalty, stop=list(stop), seed=seed)
    if batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    engine = Engine(model_dir, device=device or _default_device(), dtype=dtype, max_batch=batch_size)
    use_template = not no_template and engine.chat_template is not None
    if system and not use_template:
        raise UserError("--system needs the chat template (the checkpoint has none, or --no-template was given)")
    if chat:
        _chat(engine, params, system)
        return

    def prompt_of(text: str):
        if not use_template:
            return text
        return engine.encode_chat(([{"role": "system", "content": system}] if system else [])
                                  + [{"role": "user", "content": text}])

    if len(texts) == 1:
        t0 = time.perf_counter()
        completion = None
        for event in engine.stream_events(prompt_of(texts[0]), params):
            if event.text:
                click.echo(event.text, nl=False)
                sys.stdout.flush()
            completion = event.completion or completion
        click.echo()
        dt = time.perf_counter() - t0
        click.echo(f"[{completion.completion_tokens} tokens, {completion.completion_tokens / dt:.1f} tokens/s, "
                   f"finish: {completion.finish_reason}]", err=True)
        return
    t0 = time.perf_counter()
    completions = engine.generate([prompt_of(t) for t in texts], params)
    dt = time.perf_counter() - t0
    for i, (text, c) in enumerate(zip(texts, completions)):
        if jsonl:
            click.echo(json.dumps({"prompt": text, "text": c.text, "finish_reason": c.finish_reason,
                                   "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens},
                                  ensure_ascii=False))
        else:
            click.echo(f"### {i + 1}: {text}\n{c.text}\n")
    n = sum(c.completion_tokens for c in completions)
    click.echo(f"[{len(completions)} prompts, {n} tokens, {n / dt:.1f} tokens/s]", err=True)


def _chat(engine, params, system: str | None) -> None:
    from gniazdo.infer.chat import HELP, ChatSession

    session = ChatSession(engine, params, system)
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo(HELP, err=True)

    def write(text: str) -> None:
        click.echo(text, nl=False)
        sys.stdout.flush()

    def prompt() -> None:
        if interactive:
            click.echo("> ", nl=False, err=True)

    session.run(sys.stdin, write, prompt)


def _read_prompts(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"prompts file not found: {path}")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                out.append(str(json.loads(line)["prompt"]))
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{path}:{n}: a JSON line needs a \"prompt\" field") from None
        else:
            out.append(line)
    if not out:
        raise UserError(f"{path}: no prompts")
    return out


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
