"""The pages in a real browser (headless Chromium through Selenium) against a real server with two tiny models:
a streamed chat answer equal to the API's greedy one, stop, the arena from prompt to stored vote, and errors
(401 without the key, 400 too long, the server gone) shown on the page with the buttons back.

Needs Debian's ``chromium`` and ``chromium-driver``; skipped without them. Selenium is given both paths, so
Selenium Manager never looks for (or downloads) a browser or a driver.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from gniazdo.infer import Engine
from gniazdo.serve.app import create_app
from gniazdo.serve.config import ServeConfig

from . import running, slow_steps

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
WAIT = 15  # seconds; every wait ends far sooner unless something is broken
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--window-size=1200,900")


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.skip(f"chromium/chromedriver not installed: {', '.join(missing)} missing "
                    "(apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROME_ARGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(WAIT)
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def engines(tiny_checkpoint):
    """Two different tiny models (seeds 0 and 1) sharing one tokenizer: the arena needs two."""
    from infer import checkpoint

    other = checkpoint(tiny_checkpoint.parent, "beta", seed=1)
    return {"alfa": Engine(tiny_checkpoint), "beta": Engine(other)}


@pytest.fixture(scope="module")
def server(engines, tmp_path_factory):
    votes = tmp_path_factory.mktemp("arena") / "votes.sqlite"
    app = create_app(ServeConfig(arena_db=str(votes)), engines)
    with running(app) as url:
        yield url, app, votes


# -- page helpers ---------------------------------------------------------------------------------------------
def by_id(driver, element_id):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def wait_until(driver, condition, what):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(lambda d: condition(d), message=what)


def text_of(driver, element_id) -> str:
    """The element's textContent exactly (Selenium's .text is the rendered text, whitespace collapsed)."""
    return driver.execute_script("return document.getElementById(arguments[0]).textContent", element_id)


def model_options(driver) -> list[str]:
    return driver.execute_script("return Array.from(document.getElementById('model').options, o => o.value)")


def fill(driver, element_id, value) -> None:
    box = by_id(driver, element_id)
    box.clear()
    box.send_keys(value)


def answers(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.message.assistant .content'), e => e.textContent)")


def record_requests(driver) -> None:
    """Keep every fetch's JSON body in window.sent, to see what the page asked for."""
    driver.execute_script("""
        window.sent = [];
        const original = window.fetch;
        window.fetch = (url, init) => {
            if (init && init.body) window.sent.push(JSON.parse(init.body));
            return original(url, init);
        };""")


def greedy(url, model, messages, max_tokens) -> str:
    r = httpx.post(url + "/v1/chat/completions", timeout=30,
                   json={"model": model, "messages": messages, "temperature": 0, "max_tokens": max_tokens})
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"]


def send_idle(driver) -> bool:
    return by_id(driver, "send").is_enabled() and not by_id(driver, "stop").is_enabled()


# -- tests ----------------------------------------------------------------------------------------------------
def test_chat_streams_the_greedy_answer_and_keeps_the_conversation(driver, server):
    url = server[0]
    driver.get(url + "/")
    wait_until(driver, lambda d: model_options(d) == ["alfa", "beta"], "the model list")
    fill(driver, "temperature", "0")
    fill(driver, "max-tokens", "10")
    fill(driver, "system-prompt", "Odpowiadaj krótko.")
    record_requests(driver)
    conversation = [{"role": "system", "content": "Odpowiadaj krótko."}]
    for turn, question in enumerate(("Cześć, jak się masz?", "A co u ciebie?"), 1):
        fill(driver, "prompt", question)
        by_id(driver, "send").click()
        wait_until(driver, lambda d: send_idle(d) and len(answers(d)) == turn, "the answer to end")
        conversation.append({"role": "user", "content": question})
        expected = greedy(url, "alfa", conversation, 10)
        assert expected and answers(driver)[-1] == expected
        conversation.append({"role": "assistant", "content": expected})
    assert text_of(driver, "error") == "" and text_of(driver, "prompt") == ""
    sent = driver.execute_script("return window.sent")
    assert [b["stream"] for b in sent] == [True, True]
    assert sent[-1]["messages"] == conversation[:-1]  # the page sends the whole conversation, system first

    by_id(driver, "reset").click()
    assert answers(driver) == []


def test_stop_aborts_a_stream_and_gives_the_send_button_back(driver, server):
    url, app, _ = server
    worker = app.state.service.worker("beta")
    slow_steps(worker, 0.05)
    try:
        driver.get(url + "/")
        wait_until(driver, lambda d: model_options(d) == ["alfa", "beta"], "the model list")
        driver.execute_script("const s = document.getElementById('model'); s.value = 'beta';")
        fill(driver, "max-tokens", "400")
        fill(driver, "prompt", "Opowiedz długą historię.")
        by_id(driver, "send").click()
        wait_until(driver, lambda d: (answers(d) or [""])[-1] != "", "the first words")
        by_id(driver, "stop").click()
        wait_until(driver, send_idle, "the send button to come back")
        assert "Przerwano" in text_of(driver, "status") and text_of(driver, "error") == ""
        assert answers(driver)[-1] != ""  # what had arrived stays on the page
        wait_until(driver, lambda d: worker.running == 0, "the server to cancel the generation")
    finally:
        del worker.batch.step


def test_arena_battle_vote_reveals_names_and_stores_the_row(driver, server):
    url, _, votes = server
    driver.get(url + "/arena")
    prompt = "Jaka jest stolica Polski?"
    fill(driver, "prompt", prompt)
    fill(driver, "temperature", "0")
    fill(driver, "max-tokens", "8")
    by_id(driver, "start").click()
    wait_until(driver, lambda d: by_id(d, "vote-b").is_enabled(), "both answers")
    shown = {side: text_of(driver, f"answer-{side}") for side in "ab"}
    assert all(shown.values())
    assert text_of(driver, "name-a") == text_of(driver, "name-b") == ""  # hidden until the vote
    assert not by_id(driver, "same-model").is_displayed()

    by_id(driver, "vote-b").click()
    wait_until(driver, lambda d: text_of(d, "name-a") != "", "the names")
    names = {side: text_of(driver, f"name-{side}").strip("— ") for side in "ab"}
    assert set(names.values()) == {"alfa", "beta"}
    assert not by_id(driver, "vote-a").is_enabled()  # one vote
    for side in "ab":  # each seat showed its model's own answer
        assert shown[side] == greedy(url, names[side], [{"role": "user", "content": prompt}], 8)

    conn = sqlite3.connect(votes)
    rows = conn.execute("SELECT model_a, model_b, winner, prompt, voter FROM votes").fetchall()
    conn.close()
    assert len(rows) == 1 and rows[0][:4] == (names["a"], names["b"], "model_b", prompt) and rows[0][4]

    driver.get(url + "/arena/leaderboard")
    wait_until(driver, lambda d: "Głosów: 1" in text_of(d, "method"), "the leaderboard")
    rows = driver.execute_script("return Array.from(document.querySelectorAll('#leaderboard-body tr'), "
                                 "tr => Array.from(tr.cells, c => c.textContent))")
    assert [row[1] for row in rows] == [names["b"], names["a"]]  # the winner first


def test_errors_reach_the_page_and_the_buttons_come_back(driver, engines, server):
    # 400 from the server: a max_tokens beyond the context
    driver.get(server[0] + "/")
    wait_until(driver, lambda d: model_options(d) == ["alfa", "beta"], "the model list")
    fill(driver, "max-tokens", "100000")
    fill(driver, "prompt", "Cześć")
    by_id(driver, "send").click()
    wait_until(driver, lambda d: by_id(d, "error").is_displayed(), "the 400 message")
    assert "HTTP 400" in text_of(driver, "error") and "context" in text_of(driver, "error")
    assert send_idle(driver) and by_id(driver, "prompt").get_property("value") == "Cześć"  # given back to retry

    # 401: a server with a key, the page without it; then the key pasted; then the server gone
    app = create_app(ServeConfig(api_key="sekret"), {"alfa": engines["alfa"]})
    with running(app) as url:
        driver.get(url + "/")
        wait_until(driver, lambda d: by_id(d, "error").is_displayed(), "the 401 message")
        assert text_of(driver, "error").startswith("Nie udało się pobrać listy modeli. HTTP 401")
        fill(driver, "api-key", "sekret")
        by_id(driver, "save-key").click()
        wait_until(driver, lambda d: model_options(d) == ["alfa"], "the models, with the key")
        assert not by_id(driver, "error").is_displayed()
    fill(driver, "prompt", "Halo?")
    by_id(driver, "send").click()
    wait_until(driver, lambda d: by_id(d, "error").is_displayed() and send_idle(d), "the network error")
    assert "sieci" in text_of(driver, "error")
