"""``gniazdo data``: run cleaning pipelines, pull raw sources."""

from __future__ import annotations

import click

from gniazdo.cli.report import print_pipeline_summary


@click.group()
def data() -> None:
    """Data pipelines (clean, filter, dedup) and acquisition of raw sources.

    \b
    Example:
      gniazdo data run configs/pipelines/basic.yaml workers=4 steps.0.min_words=30
    """


@data.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--strict", is_flag=True, help="Stop at the first bad input record (default: log it and go on).")
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
def run(config: str, overrides: tuple[str, ...], strict: bool, no_progress: bool) -> None:
    """Run a pipeline declared in CONFIG (YAML), with KEY=VALUE overrides.

    Re-running the same command after a crash or a kill resumes: finished tasks are skipped.

    \b
    Example:
      gniazdo data run pipeline.yaml workers=4 output.path=out/ steps.0.min_words=30
    """
    from gniazdo.pipeline.load import load_pipeline
    from gniazdo.pipeline import run_pipeline

    cfg = load_pipeline(config, overrides)
    if strict:
        cfg.strict = True
    stats = run_pipeline(cfg, progress=not no_progress)
    print_pipeline_summary(stats, cfg.output.path)


@data.command("steps")
def steps() -> None:
    """List the pipeline steps available to `steps:` and their parameters.

    \b
    Example:
      gniazdo data steps
    """
    from gniazdo.pipeline import registered_steps

    for name, cls in registered_steps().items():
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        click.echo(f"{name:<18} {doc}")
        for key, field in cls.Params.model_fields.items():
            default = repr(field.get_default(call_default_factory=True))
            click.echo(f"{'':<20}{key} = {default if len(default) <= 70 else default[:67] + '...'}")


try:  # acquisition commands live in their own module
    from gniazdo.cli.pull import pull

    data.add_command(pull)
except ImportError:  # pragma: no cover - only while the module is being written
    pass
