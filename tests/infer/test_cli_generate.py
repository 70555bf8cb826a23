"""``gniazdo generate``: one prompt streamed, many batched, and the chat loop on stdin."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gniazdo.cli import cli, main
from gniazdo.infer import Engine, SamplingParams
from gniazdo.infer.chat import ChatSession

from . import checkpoint


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return checkpoint(tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def engine(folder):
    return Engine(folder)


def invoke(*args, input=None):
    return CliRunner().invoke(cli, ["generate", *map(str, args)], input=input, catch_exceptions=False)


def test_one_prompt_streams_the_greedy_completion(folder, engine):
    r = invoke("--model", folder, "--prompt", "Ala ma kota", "--no-template", "--temperature", 0,
               "--max-new-tokens", 12)
    assert r.exit_code == 0
    [c] = engine.generate(["Ala ma kota"], SamplingParams(temperature=0, max_new_tokens=12))
    assert r.stdout == c.text + "\n"
    assert "12 tokens" in r.stderr and "finish: length" in r.stderr


def test_a_prompt_goes_through_the_chat_template(folder, engine):
    r = invoke("--model", folder, "--prompt", "Cześć", "--system", "Bądź miły.", "--temperature", 0,
               "--max-new-tokens", 8)
    assert r.exit_code == 0
    ids = engine.encode_chat([{"role": "system", "content": "Bądź miły."}, {"role": "user", "content": "Cześć"}])
    [c] = engine.generate([ids], SamplingParams(temperature=0, max_new_tokens=8))
    assert r.stdout == c.text + "\n"


def test_many_prompts_are_batched(folder, engine, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("Ala ma kota\n\nDawno temu\n{\"prompt\": \"Zażółć gęślą jaźń\"}\n", encoding="utf-8")
    r = invoke("--model", folder, "--prompts-file", prompts, "--prompt", "Kraków", "--no-template",
               "--temperature", 0, "--max-new-tokens", 6, "--jsonl", "--batch-size", 2)
    assert r.exit_code == 0
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    texts = ["Kraków", "Ala ma kota", "Dawno temu", "Zażółć gęślą jaźń"]
    assert [row["prompt"] for row in rows] == texts
    expected = engine.generate(texts, SamplingParams(temperature=0, max_new_tokens=6))
    assert [row["text"] for row in rows] == [c.text for c in expected]
    assert all(row["completion_tokens"] == 6 and row["finish_reason"] == "length" for row in rows)


def test_chat_keeps_the_conversation_and_obeys_commands(folder, engine):
    lines = ["Cześć!", "/system Odpowiadaj krótko.", "Co słychać?", "/reset", "Jeszcze raz", "/exit",
             "to już nie dociera"]
    r = invoke("--model", folder, "--chat", "--temperature", 0, "--max-new-tokens", 5,
               input="\n".join(lines) + "\n")
    assert r.exit_code == 0
    # the same conversation through the session API, recording what each reply was conditioned on
    session = ChatSession(engine, SamplingParams(temperature=0, max_new_tokens=5))
    out: list[str] = []
    seen: list[list[dict]] = []
    send = session.send

    def spy(user, write):
        seen.append(session.messages() + [{"role": "user", "content": user}])
        return send(user, write)

    session.send = spy
    session.run(lines, out.append)
    assert r.stdout == "".join(out)
    assert "(system prompt set)" in r.stdout and "(conversation cleared)" in r.stdout
    assert [m["content"] for m in seen[0]] == ["Cześć!"]
    assert [m["role"] for m in seen[1]] == ["system", "user", "assistant", "user"]
    assert [m["content"] for m in seen[2]] == ["Odpowiadaj krótko.", "Jeszcze raz"]  # /reset kept the system
    assert len(seen) == 3  # nothing after /exit


def test_chat_drops_the_oldest_exchanges_when_the_context_is_full(folder):
    engine = Engine(folder, max_len=120)
    session = ChatSession(engine, SamplingParams(temperature=0, max_new_tokens=20), system="System.")
    for i in range(8):
        session.send(f"Wiadomość numer {i}: " + "bardzo długa " * 3, lambda _: None)
    assert session.messages()[0]["role"] == "system"
    assert len(session.history) < 16 and session.history[-2]["content"].startswith("Wiadomość numer 7")


def test_user_errors_are_one_line(folder, tmp_path, capsys):
    cases = [
        (["--model", folder], "give prompts (--prompt, --prompts-file) or --chat, one of the two"),
        (["--model", folder, "--prompt", "x", "--chat"], "give prompts"),
        (["--model", tmp_path / "nope", "--prompt", "x"], "model folder not found"),
        (["--model", folder, "--prompt", "x", "--top-p", "2"], "sampling: top_p: Input should be less than"),
        (["--model", folder, "--prompt", "x", "--no-template", "--system", "s"], "--system needs the chat template"),
        (["--model", folder, "--prompt", "x", "--max-new-tokens", "600"], "the context is 512 tokens"),
        (["--model", folder, "--prompts-file", tmp_path / "missing.txt"], "prompts file not found"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as e:
            main(["generate", *map(str, args)])
        err = capsys.readouterr().err
        assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err
