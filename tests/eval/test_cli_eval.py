"""``gniazdo eval``: help with examples, one-line user errors, the server backend's arguments."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from gniazdo.cli import cli, main
from gniazdo.cli.eval import eval_group
from gniazdo.errors import UserError


def commands(group: click.Group, prefix=("eval",)):
    yield prefix
    for name, cmd in group.commands.items():
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from commands(cmd, (*prefix, name))


@pytest.mark.parametrize("path", list(commands(eval_group)), ids=" ".join)
def test_help_has_an_example(path):
    r = CliRunner().invoke(cli, [*path, "--help"])
    assert r.exit_code == 0, r.output
    assert "Example" in r.output and "gniazdo eval" in r.output


def test_bare_eval_shows_help():
    r = CliRunner().invoke(cli, ["eval"])
    assert r.exit_code == 0 and "--model" in r.output and "Example" in r.output


def test_tasks_lists_the_leaderboard():
    r = CliRunner().invoke(cli, ["eval", "tasks"])
    assert r.exit_code == 0
    assert "polish_poquad_open_book" in r.output and "41.6" in r.output and "from data" in r.output


def one_line_error(capsys, argv, expected):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("gniazdo: error: ") and len(err.strip().splitlines()) == 1, err
    assert expected in err, err


def test_user_errors_are_one_line(capsys, tmp_path):
    one_line_error(capsys, ["eval", "--limit", "3", "--out", str(tmp_path)], "give --model DIR or --server URL")
    one_line_error(capsys, ["eval", "--model", str(tmp_path)], "give --out DIR")
    one_line_error(capsys, ["eval", "--model", str(tmp_path), "--out", str(tmp_path / "o"), "--tasks", "nope"],
                   "unknown task 'nope'")
    one_line_error(capsys, ["eval", "--model", str(tmp_path), "--out", str(tmp_path / "o")], "no config.json")
    one_line_error(capsys, ["eval", "--model", "m", "--server", "http://x", "--out", str(tmp_path / "o")],
                   "exactly one of")
    one_line_error(capsys, ["eval", "--server", "http://x", "--out", str(tmp_path / "o")],
                   "need the model's --tokenizer")
    one_line_error(capsys, ["eval", "--server", "http://x", "--chat", "--suite", "pl-mc", "--out", str(tmp_path / "o")],
                   "generative tasks only")
    one_line_error(capsys, ["eval", "--model", "m", "--num-fewshot", "-1", "--out", str(tmp_path / "o")],
                   "num_fewshot")
    one_line_error(capsys, ["eval", "compare", str(tmp_path)], "no results.json")
    one_line_error(capsys, ["eval", "import-data", "--from", str(tmp_path / "x"), "--out", str(tmp_path / "o")],
                   "not a folder")


def test_server_backend_arguments():
    from gniazdo.eval.runner import EvalConfig, model_spec

    cfg = EvalConfig(server="http://localhost:8000", server_model="tiny", tokenizer="tok", out="o",
                     model_args="num_concurrent=4,max_length=4096")
    name, args, chat = model_spec(cfg, {"mc", "gen"})
    assert name == "local-completions" and chat is False
    assert args["base_url"] == "http://localhost:8000/v1/completions" and args["model"] == "tiny"
    assert args["tokenizer"] == "tok" and args["tokenizer_backend"] == "huggingface"
    assert args["num_concurrent"] == 4 and args["max_length"] == 4096  # typed like lm-eval types them
    name, args, chat = model_spec(EvalConfig(server="http://h/v1/", chat=True, out="o", suite="pl-gen"), {"gen"})
    assert name == "local-chat-completions" and chat is True and args["base_url"] == "http://h/v1/chat/completions"
    with pytest.raises(UserError):
        model_spec(EvalConfig(model="m", out="o", model_args="oops"), {"mc"})


def test_resolve_tasks():
    from gniazdo.eval.runner import resolve_tasks

    assert resolve_tasks(["8tags"], "pl-mc") == ["polish_8tags_multiple_choice"]
    assert resolve_tasks(["8tags"], "pl-leaderboard") == ["polish_8tags_multiple_choice", "polish_8tags_regex"]
    assert resolve_tasks(["polqa"], "pl-gen") == ["polish_polqa_closed_book", "polish_polqa_open_book"]
    assert resolve_tasks(["ppc", "polemo2_in", "dyk"], "pl-leaderboard")[:2] == ["polish_dyk_multiple_choice",
                                                                              "polish_ppc_multiple_choice"]
    assert len(resolve_tasks(None, "pl-gen")) == 12
    with pytest.raises(UserError):
        resolve_tasks(["polemo2_in"], kind="mc")
