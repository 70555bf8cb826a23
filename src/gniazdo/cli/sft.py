"""``gniazdo sft``: instruction fine-tuning data: convert records, set a chat template, prepare training rows."""

from __future__ import annotations

import click

from gniazdo.cli.report import console


@click.group()
def sft() -> None:
    """Instruction fine-tuning data: conversations → masked, weighted (packed) rows for `gniazdo train`.

    \b
    Example:
      gniazdo sft convert --from speakleash instruct.jsonl chat.jsonl
      gniazdo sft prepare --tokenizer tok/pl32k --data chat.jsonl --out sft/ --pack --max-len 2048
    """


@sft.command()
@click.option("--from", "fmt", type=click.Choice(["auto", "speakleash", "alpaca", "sharegpt"]), default="auto",
              show_default=True, help="Input record format (auto: by the keys of each record).")
@click.option("--strict", is_flag=True, help="Stop at the first bad record instead of skipping it.")
@click.argument("src")
@click.argument("dst")
def convert(fmt, strict, src, dst) -> None:
    """Convert instruction records (SpeakLeash, Alpaca, ShareGPT) to conversation JSONL ({"messages": [...]}).

    \b
    Example:
      gniazdo sft convert --from speakleash ../shared/data/pl/sft/speakleash_instruct_samples.jsonl chat.jsonl
    """
    from gniazdo.sft.conversations import convert_file

    result = convert_file(src, dst, fmt, strict=strict)
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(result["skipped"].items())) or "none"
    console.print(f"{result['written']:,} conversations written to {dst}; skipped: {skipped}")


def _parse_weights(values: tuple[str, ...]) -> dict[str, float]:
    weights: dict[str, float] = {}
    for value in values:
        for item in filter(None, value.split(",")):
            key, sep, w = item.rpartition("=")
            try:
                weights[key] = float(w)
            except ValueError:
                key = ""
            if not sep or not key:
                raise click.BadParameter(f"'{item}' is not FILE=WEIGHT", param_hint="--weights")
    return weights


@sft.command()
@click.option("--tokenizer", "tokenizer_path", required=True, help="Tokenizer folder (tokenizer.json).")
@click.option("--data", multiple=True, required=True, help="Conversation JSONL files, globs or folders (repeat).")
@click.option("--out", required=True, help="Output folder: train/, val/, meta.json, stats.json, lengths.png.")
@click.option("--template", type=click.Choice(["chatml", "mistral"]), default="chatml", show_default=True)
@click.option("--max-len", type=int, default=4096, show_default=True, help="Tokens per row.")
@click.option("--pack", is_flag=True, help="Pack whole conversations into rows of up to --max-len tokens.")
@click.option("--truncation", type=click.Choice(["drop", "truncate"]), default="drop", show_default=True,
              help="Conversations longer than --max-len: drop them, or cut them at --max-len.")
@click.option("--weights", multiple=True, help="Per input file weights: FILE=W[,FILE=W...] (file path or name).")
@click.option("--val-fraction", type=float, default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-progress", is_flag=True)
def prepare(tokenizer_path, data, out, template, max_len, pack, truncation, weights, val_fraction, seed,
            no_progress) -> None:
    """Tokenize conversations with a chat template: loss only on assistant answers (and their end marker).

    \b
    Example:
      gniazdo sft prepare --tokenizer tok/pl32k --data chat.jsonl --data extra.jsonl --out sft/ \\
          --pack --max-len 2048 --weights extra.jsonl=0.5 --val-fraction 0.02
    """
    from gniazdo.config import validate
    from gniazdo.sft.prepare import SFTPrepareConfig, prepare_sft

    cfg = validate(SFTPrepareConfig, {"tokenizer": tokenizer_path, "data": list(data), "out": out,
                                      "template": template, "max_len": max_len, "pack": pack,
                                      "truncation": truncation, "weights": _parse_weights(weights),
                                      "val_fraction": val_fraction, "seed": seed, "progress": not no_progress})
    meta = prepare_sft(cfg)
    c, tr = meta["counts"], meta["splits"]["train"]
    console.print(f"{c['kept']:,} of {c['read']:,} conversations kept ({c['truncated']:,} truncated, "
                  f"{c['dropped_too_long'] + c['dropped_nothing_learned']:,} too long, "
                  f"{sum(c['bad_records'].values()):,} bad records)")
    console.print(f"train: {tr['rows']:,} rows, {tr['tokens']:,} tokens ({tr['learned_tokens']:,} learned); "
                  f"val: {meta['splits']['val']['rows']:,} rows; written to {out}")


@sft.command()
@click.argument("tokenizer_dir")
@click.option("--template", type=click.Choice(["chatml", "mistral"]), default="chatml", show_default=True)
def template(tokenizer_dir, template) -> None:
    """Store a chat template in a tokenizer's tokenizer_config.json, so serving formats chats as training did.

    \b
    Example:
      gniazdo sft template tok/pl32k --template mistral
    """
    from gniazdo.sft.templates import write_template

    path = write_template(tokenizer_dir, template)
    console.print(f"chat template '{template}' written to {path}")


@sft.command()
@click.argument("folder")
@click.option("--split", default="train", show_default=True)
@click.option("--row", "row_index", type=int, default=0, show_default=True)
def show(folder, split, row_index) -> None:
    """Print a prepared row as text, the learned tokens highlighted: check what the model is taught.

    \b
    Example:
      gniazdo sft show sft/ --row 3
    """
    from rich.text import Text

    from gniazdo.sft.dataset import SFTDataset
    from gniazdo.sft.templates import backend

    ds = SFTDataset(folder, split)
    if not -ds.n_rows <= row_index < ds.n_rows:
        raise click.BadParameter(f"{ds.n_rows} rows in {split}", param_hint="--row")
    tok = backend(ds.meta["tokenizer"]["path"])
    start, end = (int(x) for x in ds.rows[row_index])
    ids, learn = ds.tokens[start:end].tolist(), ds.learn[start:end].tolist()
    text = Text()
    run: list[int] = []
    for k, (i, flag) in enumerate(zip(ids, learn)):  # decode runs of equal flags: bytes of a character stay together
        run.append(i)
        if k + 1 == len(ids) or learn[k + 1] != flag:
            text.append(tok.decode(run, skip_special_tokens=False), style="bold green" if flag else "dim")
            run = []
    console.print(text)
    console.print(f"row {row_index}: {end - start} tokens, {sum(learn)} learned (green)")
