"""``gniazdo data pull``: every test talks to a local HTTP server on 127.0.0.1 only, never the internet."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from click.testing import CliRunner

from conftest import serving

from gniazdo.acquire import Downloader, clean_text, pull_hf, pull_speakleash, pull_wolnelektury
from gniazdo.corpus import DatasetInfo, SpeakLeashWriter, read_documents, read_manifest
from gniazdo.corpus.speakleash import verify_archive
from gniazdo.document import Document
from gniazdo.errors import UserError


# -- a local server: files under a root folder, Range / If-Range, and injectable faults -------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a dropped body is a closed socket

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        srv: _Server = self.server  # type: ignore[assignment]
        path = urlparse(self.path).path
        with srv.lock:
            srv.log.append((path, dict(self.headers)))
        f = srv.root / path.lstrip("/")
        if f.is_dir():
            f = f / "index.json"
        if not f.is_file():
            self.send_error(404)
            return
        data = f.read_bytes()
        etag = '"' + hashlib.sha1(data).hexdigest() + '"'
        start, status = 0, 200
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and path not in srv.ignore_range and (if_range is None or if_range == etag):
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        with srv.lock:
            drop = srv.drop.get(path, 0)
            if drop:
                srv.drop[path] = drop - 1
        if drop:  # announce the whole body, send half of it, hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            return
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.log: list[tuple[str, dict[str, str]]] = []
        self.drop: dict[str, int] = {}
        self.ignore_range: set[str] = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def requests_for(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.log if p == path]


pytestmark = pytest.mark.usefixtures("no_proxy")  # the servers here are on 127.0.0.1


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    srv = _Server(root)
    with serving(srv):
        yield srv


def fast() -> Downloader:
    return Downloader(retries=3, backoff=0.01, timeout=(5.0, 5.0), progress=False)


def _put(root: Path, rel: str, data: bytes | str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# -- the downloader -----------------------------------------------------------------------------------------
def test_resume_partial_file_with_range(server, tmp_path):
    payload = os.urandom(300_000)
    _put(server.root, "big.bin", payload)
    dest = tmp_path / "dl" / "big.bin"
    dest.parent.mkdir()
    Path(str(dest) + ".part").write_bytes(payload[:100_000])

    fast().fetch(f"{server.url}/big.bin", dest)

    assert dest.read_bytes() == payload
    assert not Path(str(dest) + ".part").exists()
    assert [h.get("Range") for h in server.requests_for("/big.bin")] == ["bytes=100000-"]


def test_server_ignoring_range_restarts(server, tmp_path):
    payload = os.urandom(50_000)
    _put(server.root, "f.bin", payload)
    server.ignore_range.add("/f.bin")
    dest = tmp_path / "f.bin"
    Path(str(dest) + ".part").write_bytes(b"x" * 20_000)  # would corrupt the file if appended to

    fast().fetch(f"{server.url}/f.bin", dest)

    assert dest.read_bytes() == payload
    assert server.requests_for("/f.bin")[0].get("Range") == "bytes=20000-"


def test_dropped_connection_is_retried_and_resumed(server, tmp_path):
    payload = os.urandom(200_000)
    _put(server.root, "flaky.bin", payload)
    server.drop["/flaky.bin"] = 2  # the first two answers hang up halfway
    dest = tmp_path / "flaky.bin"

    fast().fetch(f"{server.url}/flaky.bin", dest, expected_size=len(payload))

    assert dest.read_bytes() == payload
    seen = server.requests_for("/flaky.bin")
    assert len(seen) == 3
    assert seen[0].get("Range") is None
    assert all(h.get("Range", "").startswith("bytes=") for h in seen[1:])
    assert all(h.get("If-Range") for h in seen[1:])  # resumed only if the file is unchanged


def test_retries_exhausted_is_one_line_user_error(server, tmp_path):
    _put(server.root, "bad.bin", os.urandom(10_000))
    server.drop["/bad.bin"] = 100
    url = f"{server.url}/bad.bin"
    with pytest.raises(UserError) as e:
        Downloader(retries=2, backoff=0.0, progress=False).fetch(url, tmp_path / "bad.bin")
    assert url in str(e.value) and "3 attempts" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "bad.bin").exists()


def test_http_404_and_refused_connection_name_the_url(server, tmp_path):
    url = f"{server.url}/missing.txt"
    with pytest.raises(UserError, match=re.escape(url) + ".*HTTP 404"):
        fast().fetch(url, tmp_path / "m.txt")
    assert len(server.requests_for("/missing.txt")) == 1  # not retried

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/x"
    with pytest.raises(UserError) as e:
        Downloader(retries=1, backoff=0.0, progress=False).fetch(dead, tmp_path / "x")
    assert dead in str(e.value) and "\n" not in str(e.value)


def test_complete_file_is_skipped_and_416_finishes_a_full_part(server, tmp_path):
    payload = b"hello world\n" * 100
    _put(server.root, "h.txt", payload)
    done = tmp_path / "done.txt"
    done.write_bytes(b"already here")
    fast().fetch(f"{server.url}/h.txt", done)
    assert done.read_bytes() == b"already here" and server.log == []

    dest = tmp_path / "h.txt"
    Path(str(dest) + ".part").write_bytes(payload)  # complete, but not yet renamed (a crash at the end)
    fast().fetch(f"{server.url}/h.txt", dest)
    assert dest.read_bytes() == payload


# -- Wolne Lektury -------------------------------------------------------------------------------------------
PD_FOOTER = ("-----\r\nTa lektura, podobnie jak tysiące innych, dostępna jest na stronie wolnelektury.pl.\r\n"
             "Wersja lektury w opracowaniu merytorycznym i krytycznym (przypisy i motywy) dostępna jest na "
             "stronie https://wolnelektury.pl/katalog/lektura/{slug}.\r\n\r\n"
             "Utwór opracowany został w ramach projektu Wolne Lektury przez fundację Wolne Lektury.\r\n\r\n"
             "Ten utwór nie jest objęty majątkowym prawem autorskim i znajduje się w domenie publicznej, co "
             "oznacza że możesz go swobodnie wykorzystywać, publikować i rozpowszechniać. Jeśli utwór opatrzony "
             "jest dodatkowymi materiałami (przypisy, motywy literackie etc.), które podlegają prawu autorskiemu, "
             "to te dodatkowe materiały udostępnione są na licencji Creative Commons Uznanie Autorstwa – Na "
             "Tych Samych Warunkach 3.0 PL (http://creativecommons.org/licenses/by-sa/3.0/)\r\n\r\n"
             "Tekst opracowany na podstawie: Wydanie z 1974\r\n\r\nWydawca: Fundacja Wolne Lektury\r\n\r\n"
             "ISBN 978-83-288-0000-0\r\n")

BOOKS = {
    "dwa-zolwie": {
        "title": "Dwa żółwie", "author": "Ignacy Krasicki",
        "txt": "Ignacy Krasicki\r\n\r\nDwa żółwie\r\n\r\nISBN 978-83-288-1111-1\r\n\r\n\r\n\r\n"
               "Nie żałując sił własnych i ciężkiej fatygi,\r\nDwa żółwie szły w zawody.\r\n\r\n\r\n\r\n",
        "body": "Nie żałując sił własnych i ciężkiej fatygi,\nDwa żółwie szły w zawody.",
    },
    "scena": {
        "title": "Scena", "author": "Jan Testowy",
        "txt": "Jan Testowy\r\n\r\nScena\r\ntłum. Anna Tłumacz\r\n\r\n\r\n\r\nPierwsza scena.\r\n\r\n-----\r\n\r\n"
               "Druga scena, po przerwie.\r\n\r\n\r\n",
        "body": "Pierwsza scena.\n\n-----\n\nDruga scena, po przerwie.",
    },
}


def _fake_api(root: Path, base: str) -> None:
    listing = [{"slug": slug, "title": b["title"], "author": b["author"], "href": f"{base}/api/books/{slug}/",
                "url": f"{base}/katalog/lektura/{slug}/"} for slug, b in BOOKS.items()]
    listing.append({"slug": "zbior", "title": "Zbiór", "author": "Jan Testowy",
                    "href": f"{base}/api/books/zbior/"})  # a collection: no text of its own
    _put(root, "api/books/index.json", json.dumps(listing))
    _put(root, "api/books/zbior/index.json", json.dumps({"title": "Zbiór", "txt": "", "authors": []}))
    for slug, b in BOOKS.items():
        detail = {"title": b["title"], "url": f"https://wolnelektury.pl/katalog/lektura/{slug}/",
                  "authors": [{"name": b["author"], "slug": "x"}], "txt": f"{base}/media/book/txt/{slug}.txt"}
        _put(root, f"api/books/{slug}/index.json", json.dumps(detail))
        _put(root, f"media/book/txt/{slug}.txt", b["txt"] + PD_FOOTER.format(slug=slug))


def test_wolnelektury_pull(server, tmp_path):
    _fake_api(server.root, server.url)
    out = tmp_path / "wl"

    result = pull_wolnelektury(out, api_url=f"{server.url}/api", downloader=fast())

    assert result.documents == 2 and result.skipped == {"no plain text (a collection, or not yet public)": 1}
    archive = out / "wolnelektury.jsonl.zst"
    assert result.archive == archive
    docs = list(read_documents([archive]))
    assert [d.text for d in docs] == [b["body"] for b in BOOKS.values()]
    for doc, (slug, b) in zip(docs, BOOKS.items()):
        assert {k: doc.meta[k] for k in ("slug", "title", "author", "license")} == {
            "slug": slug, "title": b["title"], "author": b["author"], "license": "public domain"}
        assert doc.meta["url"] == f"https://wolnelektury.pl/katalog/lektura/{slug}/"
        assert "\r" not in doc.text and "wolnelektury.pl" not in doc.text and "ISBN" not in doc.text
    manifest = read_manifest(archive)
    assert manifest["file_size"] == archive.stat().st_size
    assert manifest["name"] == "wolnelektury" and manifest["license"] == "public domain"
    verify_archive(archive)
    assert not (out / ".download").exists()  # raw downloads are removed after success
    resolved = yaml.safe_load((out / "pull.resolved.yaml").read_text())
    assert resolved["source"] == "wolnelektury" and resolved["api_url"] == f"{server.url}/api/"


def test_wolnelektury_missing_book(server, tmp_path):
    _fake_api(server.root, server.url)
    (server.root / "media/book/txt/scena.txt").unlink()  # listed, but its text is gone
    result = pull_wolnelektury(tmp_path / "wl", api_url=f"{server.url}/api/", downloader=fast())
    assert result.documents == 1 and result.skipped["listed but not downloadable (HTTP 404)"] == 1
    # a book asked for by name must exist
    url = f"{server.url}/api/books/nie-ma/"
    with pytest.raises(UserError, match=re.escape(url) + ".*HTTP 404"):
        pull_wolnelektury(tmp_path / "wl2", books=["nie-ma"], api_url=f"{server.url}/api/", downloader=fast())


def test_wolnelektury_selected_books_and_limit(server, tmp_path):
    _fake_api(server.root, server.url)
    result = pull_wolnelektury(tmp_path / "one", books=["scena", "dwa-zolwie"], limit=1,
                               api_url=f"{server.url}/api/", downloader=fast(), keep_downloads=True)
    assert result.documents == 1
    assert [d.meta["slug"] for d in read_documents([result.archive])] == ["scena"]
    assert server.requests_for("/api/books/") == []  # the list is not needed for named books
    assert (tmp_path / "one" / ".download" / "wolnelektury" / "txt" / "scena.txt").exists()


def test_clean_text_keeps_what_it_cannot_recognise():
    # no recognisable header (neither title nor author nor ISBN): nothing is cut from the start
    text, lic = clean_text("Pierwszy wers\n\n\nDrugi wers\n", title="Inny tytuł", authors=["Ktoś"])
    assert text == "Pierwszy wers\n\n\nDrugi wers" and lic is None
    # a licensed work: the licence comes from the footer
    raw = ("Autor\r\n\r\nTytuł\r\n\r\n\r\n\r\nTreść.\r\n\r\n\r\n-----\r\nTa lektura, podobnie jak tysiące innych, "
           "dostępna jest na stronie wolnelektury.pl.\r\n\r\nTen utwór jest udostępniony na licencji "
           "Licencja Wolnej Sztuki 1.3: \r\nhttps://artlibre.org/licence/lal/pl/\r\n")
    text, lic = clean_text(raw, title="Tytuł", authors=["Autor"])
    assert text == "Treść." and lic == "Licencja Wolnej Sztuki 1.3 (https://artlibre.org/licence/lal/pl/)"
    # the ISBN line ends the header even when the text follows after a single blank line
    text, _ = clean_text("Autor\n\nTytuł\n\nISBN 978-83-288-0000-0\n\nPierwszy wers\nDrugi\n\n\nDalej\n")
    assert text == "Pierwszy wers\nDrugi\n\n\nDalej"
    # a '-----' scene break without the Wolne Lektury note after it is text, not a footer
    text, lic = clean_text("Autor\n\nTytuł\n\n\nRaz.\n-----\nDwa.\n", title="Tytuł")
    assert text == "Raz.\n-----\nDwa." and lic is None


# -- SpeakLeash ----------------------------------------------------------------------------------------------
def _publish(root: Path, name: str) -> Path:
    writer = SpeakLeashWriter(root / "sl", name, DatasetInfo(description="test"))
    for i in range(50):
        writer.write(Document(str(i), f"Dokument numer {i}. " * 20, {"i": i}))
    return writer.close()[0]


def test_speakleash_pull_and_size_mismatch(server, tmp_path):
    published = _publish(server.root, "maly")
    out = tmp_path / "sl"
    result = pull_speakleash("maly", f"{server.url}/sl/", out, downloader=fast())
    assert result.archive.read_bytes() == published.read_bytes()
    assert result.documents == 50
    assert (out / "maly.manifest").read_bytes() == (server.root / "sl" / "maly.manifest").read_bytes()
    assert len(list(read_documents([result.archive]))) == 50

    # a manifest that disagrees with the published archive: a clear one-line error naming the URL
    manifest = json.loads((server.root / "sl" / "maly.manifest").read_text())
    manifest["file_size"] += 7
    _put(server.root, "sl/zly.manifest", json.dumps(manifest))
    _put(server.root, "sl/zly.jsonl.zst", published.read_bytes())
    with pytest.raises(UserError) as e:
        pull_speakleash("zly", server.url + "/sl", tmp_path / "bad", downloader=fast())
    msg = str(e.value)
    assert "size mismatch" in msg and f"{server.url}/sl/zly.jsonl.zst" in msg and "\n" not in msg
    assert not (tmp_path / "bad" / "zly.jsonl.zst").exists()


# -- Hugging Face `datasets` ---------------------------------------------------------------------------------
def test_hf_pull_json_from_url_and_local_path(server, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    records = [{"text": f"Zdanie {i}.", "id": i, "zrodlo": "test"} for i in range(5)]
    records.insert(2, {"text": "", "id": 99, "zrodlo": "test"})
    lines = "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
    _put(server.root, "data/pl.jsonl", lines)

    out = tmp_path / "hf"
    result = pull_hf("json", out, data_files=[f"{server.url}/data/pl.jsonl"], limit=4, name="pl",
                     downloader=fast())
    docs = list(read_documents([result.archive]))
    assert [d.text for d in docs] == ["Zdanie 0.", "Zdanie 1.", "Zdanie 2.", "Zdanie 3."]
    assert docs[0].meta == {"id": 0, "zrodlo": "test"}
    assert result.skipped == {"empty text": 1}
    assert read_manifest(result.archive)["file_size"] == result.archive.stat().st_size
    assert not (out / ".download").exists()

    local = _put(tmp_path, "local/pl.jsonl", lines)
    result = pull_hf("json", tmp_path / "hf2", data_files=[str(local)], downloader=fast())
    assert result.documents == 5 and result.archive.name == "json.jsonl.zst"

    with pytest.raises(UserError, match="no field 'tresc'"):
        pull_hf("json", tmp_path / "hf3", data_files=[str(local)], text_field="tresc", downloader=fast())


# -- the command line ----------------------------------------------------------------------------------------
def test_cli_pull_wolnelektury_writes_resolved_args(server, tmp_path):
    from gniazdo.cli.data import data

    _fake_api(server.root, server.url)
    out = tmp_path / "cli"
    res = CliRunner().invoke(data, ["pull", "wolnelektury", "--out", str(out), "--api-url",
                                    f"{server.url}/api/", "--books", "dwa-zolwie", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "1 documents" in res.output
    resolved = yaml.safe_load((out / "pull.resolved.yaml").read_text())
    assert resolved["source"] == "wolnelektury" and resolved["books"] == ["dwa-zolwie"]
    assert resolved["api_url"] == f"{server.url}/api/" and resolved["limit"] is None
    assert [d.meta["slug"] for d in read_documents([out / "wolnelektury.jsonl.zst"])] == ["dwa-zolwie"]


def test_cli_network_error_is_one_line_exit_2(server, tmp_path, capsys):
    try:
        from gniazdo.cli import main
    except ImportError as e:  # the top-level CLI imports stages that may not exist yet in this checkout
        pytest.skip(f"gniazdo.cli not importable: {e}")
    with pytest.raises(SystemExit) as e:
        main(["data", "pull", "speakleash", "nie-ma", "--base-url", server.url, "--out", str(tmp_path / "o"),
              "--retries", "0", "--no-progress"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gniazdo: error:") and f"{server.url}/nie-ma.manifest" in err
    assert len(err.splitlines()) == 1


SHARED_BOOKS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pl" / "corpus" / "books"


@pytest.mark.skipif(not SHARED_BOOKS.exists(), reason=f"shared data not present: {SHARED_BOOKS}")
def test_clean_text_on_real_wolne_lektury_books():
    from gniazdo.acquire.wolnelektury import clean_text

    for path in sorted(SHARED_BOOKS.glob("*.txt")):
        raw = path.read_text(encoding="utf-8")
        text, _ = clean_text(raw)
        assert "\r" not in text and "ISBN" not in text[:300], path.name
        assert "Wolne Lektury" not in text[-2000:] and "-----" not in text[-2000:], path.name
        assert len(text) > 0.8 * len(raw.split("\n-----")[0]), path.name
    text, _ = clean_text((SHARED_BOOKS / "pan-tadeusz.txt").read_text(encoding="utf-8"))
    assert text.startswith("Księga pierwsza") and "Litwo! Ojczyzno moja!" in text[:2000]
