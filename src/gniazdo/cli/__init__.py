"""The ``gniazdo`` command: one subcommand group per pipeline stage. Thin: parse, then call the stage's API."""

from __future__ import annotations

import sys

import click

from gniazdo import __version__
from gniazdo.errors import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="gniazdo")
def cli() -> None:
    """gniazdo: build a national-language LLM end to end, Polish first.

    \b
    Start here:
      gniazdo demo                      # the whole pipeline on the built-in sample corpus
      gniazdo corpus info ARCHIVE       # what is in a SpeakLeash archive
      gniazdo data run pipeline.yaml    # clean a corpus with a pipeline of steps
    """


def _register() -> None:
    from gniazdo.cli.arena import arena
    from gniazdo.cli.corpus import corpus
    from gniazdo.cli.data import data
    from gniazdo.cli.dedup import dedup
    from gniazdo.cli.demo import demo
    from gniazdo.cli.eval import eval_group
    from gniazdo.cli.generate import generate
    from gniazdo.cli.judge import judge
    from gniazdo.cli.prefs import prefs
    from gniazdo.cli.serve import serve
    from gniazdo.cli.sft import sft
    from gniazdo.cli.tokenize import tokenize
    from gniazdo.cli.tokenizer import tokenizer
    from gniazdo.cli.train import export, train

    for command in (corpus, data, dedup, tokenizer, tokenize, train, export, demo, sft, prefs, judge, arena,
                    eval_group, generate, serve):
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes print one line and exit 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="gniazdo", standalone_mode=False)
    except UserError as e:
        click.echo(f"gniazdo: error: {e}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("gniazdo: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("gniazdo: interrupted (re-run the same command to resume)", err=True)
        sys.exit(130)
