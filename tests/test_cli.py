from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from gniazdo import __version__
from gniazdo.cli import cli, main


def all_commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, (*prefix, name))


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("path", [p for p, _ in all_commands(cli)], ids=" ".join)
def test_every_subcommand_has_help_with_an_example(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "gniazdo " in result.output


def run(*args):
    return subprocess.run([sys.executable, "-m", "gniazdo", *args], capture_output=True, text=True, timeout=60)


def test_user_errors_are_one_line_exit_2_no_traceback(tmp_path):
    r = run("data", "run", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and r.stderr.strip() == f"gniazdo: error: config file not found: {tmp_path / 'missing.yaml'}"
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"input: {{paths: ['{tmp_path}/nothing-here/*.jsonl']}}\noutput: {{path: '{tmp_path}/o'}}\n")
    r = run("data", "run", str(cfg))
    assert r.returncode == 2 and "input not found" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run("data", "run", str(cfg), "workers=0")
    assert r.returncode == 2 and "workers: Input should be greater than or equal to 1" in r.stderr
    r = run("corpus", "info", str(tmp_path / "nope.jsonl.zst"))
    assert r.returncode == 2 and "input not found" in r.stderr


def test_data_run_prints_summary_and_writes_outputs(tmp_path):
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in ["a b c d", "a b c d", "x"]))
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"input: {{paths: ['{tmp_path}/in.jsonl']}}\noutput: {{path: '{tmp_path}/out'}}\n"
                   "steps:\n  - {step: length_filter, min_words: 2}\n  - {step: exact_dedup}\n")
    r = run("data", "run", str(cfg), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "too_few_words: 1" in r.stdout and "exact_dup: 1" in r.stdout
    assert (tmp_path / "out" / "corpus.jsonl.zst").exists() and (tmp_path / "out" / "corpus.manifest").exists()


def test_corpus_commands_through_main(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"id": f"d{i}", "text": f"dokument {i}", "k": i}) for i in range(10)))
    main(["corpus", "convert", str(src), str(tmp_path / "out" / "mini.jsonl.zst")])
    capsys.readouterr()
    main(["corpus", "info", str(tmp_path / "out" / "mini.jsonl.zst"), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert info["stats"] == {"documents": 10, "characters": 100, "k": 45} and info["size_matches"]
    main(["corpus", "sample", str(src), "-n", "3", "--jsonl", "--seed", "1"])
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3 and len({l["id"] for l in lines}) == 3
