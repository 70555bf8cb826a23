from __future__ import annotations

import gzip
import json

import pytest

from conftest import write_jsonl
from gniazdo.corpus import detect_format, expand_inputs, open_writer, read_documents
from gniazdo.corpus.base import ReaderOptions
from gniazdo.corpus.jsonl import JsonlReader
from gniazdo.document import Document
from gniazdo.errors import UserError

HTML = """<html><head><title>Pierogi ruskie</title></head><body>
<nav><a href="/">Strona główna</a> | <a href="/kontakt">Kontakt</a></nav>
<article><h1>Pierogi ruskie</h1>
<p>Pierogi ruskie to jedno z najbardziej znanych dań kuchni polskiej. Farsz przygotowuje się z ziemniaków,
twarogu i podsmażonej cebuli, a ciasto z mąki, wody i odrobiny oleju.</p>
<p>Gotowe pierogi wrzuca się do osolonego wrzątku i gotuje kilka minut od wypłynięcia. Podaje się je
ze skwarkami albo z kwaśną śmietaną, często także następnego dnia, odsmażone na maśle.</p>
</article><footer>© 2026 Przepisy babci. Wszelkie prawa zastrzeżone.</footer></body></html>"""


def test_jsonl_fields_go_to_meta_and_ids(tmp_path):
    p = write_jsonl(tmp_path / "web.jsonl", [
        {"id": 7, "text": "raz", "url": "http://a", "meta": {"q": 1}},
        {"content": "dwa", "text": "trzy", "title": "t"},
    ])
    docs = list(read_documents([p]))
    assert docs[0] == Document("7", "raz", {"q": 1, "url": "http://a"})
    assert docs[1] == Document("web:2", "trzy", {"content": "dwa", "title": "t"})
    errors = []
    other = list(read_documents([p], ReaderOptions(text_field="content"), errors.append))
    assert [d.text for d in other] == ["dwa"]
    assert [(e.line, e.reason) for e in errors] == [(1, "text field 'content' missing")]


def test_jsonl_byte_ranges_cover_each_line_once(tmp_path):
    recs = [{"text": f"dokument {i} " + "x" * (i % 17)} for i in range(200)]
    p = write_jsonl(tmp_path / "r.jsonl", recs)
    size = p.stat().st_size
    reader = JsonlReader(p)
    for step in (1, 7, 100, 333, size):
        got = []
        for start in range(0, size, step):
            got += list(reader.read(start=start, end=min(start + step, size)))
        assert [d.text for d in got] == [r["text"] for r in recs]
        assert [d.id for d in got] == [f"r:{i + 1}" for i in range(200)]  # line numbers survive splitting


def test_txt_file_and_block_modes(tmp_path):
    p = tmp_path / "ksiazka.txt"
    p.write_bytes("Rozdział I\r\n\r\nBył sobie kot.\r\nMiał dom.\r\n\r\n\r\nKoniec.\r\n".encode())
    (doc,) = read_documents([p])
    assert doc.id == "ksiazka" and doc.text == "Rozdział I\n\nBył sobie kot.\nMiał dom.\n\n\nKoniec."
    blocks = list(read_documents([p], ReaderOptions(txt_mode="blocks")))
    assert [d.text for d in blocks] == ["Rozdział I", "Był sobie kot.\nMiał dom.", "Koniec."]
    assert [d.id for d in blocks] == ["ksiazka:1", "ksiazka:2", "ksiazka:3"]
    lines = list(read_documents([p], ReaderOptions(txt_mode="lines")))
    assert [(d.id, d.text) for d in lines] == [("ksiazka:1", "Rozdział I"), ("ksiazka:3", "Był sobie kot."),
                                               ("ksiazka:4", "Miał dom."), ("ksiazka:7", "Koniec.")]


def test_parquet_write_read_and_foreign_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    w = open_writer(tmp_path / "x.parquet")
    w.write(Document("a", "tekst ą", {"k": [1, 2], "s": "ż"}))
    w.close()
    assert list(read_documents([tmp_path / "x.parquet"])) == [Document("a", "tekst ą", {"k": [1, 2], "s": "ż"})]
    pq.write_table(pa.table({"content": ["jeden", "dwa"], "lang": ["pl", "pl"]}), tmp_path / "hf.parquet")
    docs = list(read_documents([tmp_path / "hf.parquet"], ReaderOptions(text_field="content")))
    assert [(d.id, d.text, d.meta) for d in docs] == [("hf:1", "jeden", {"lang": "pl"}), ("hf:2", "dwa", {"lang": "pl"})]


def test_html_file_extracts_main_text(tmp_path):
    (tmp_path / "strona.html").write_text(HTML, encoding="utf-8")
    (doc,) = read_documents([tmp_path / "strona.html"])
    assert "Farsz przygotowuje się z ziemniaków" in doc.text
    assert "Strona główna" not in doc.text and "Wszelkie prawa" not in doc.text
    assert doc.meta["title"] == "Pierogi ruskie"


def test_warc_responses_to_text(tmp_path):
    from io import BytesIO

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "crawl.warc.gz"
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for url, body, ctype in [("http://example.pl/pierogi", HTML, "text/html; charset=utf-8"),
                                 ("http://example.pl/logo.png", "PNG", "image/png")]:
            headers = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.0")
            rec = writer.create_warc_record(url, "response", payload=BytesIO(body.encode()), http_headers=headers)
            writer.write_record(rec)
    assert detect_format(path) == "warc"
    docs = list(read_documents([path]))
    assert len(docs) == 1
    assert docs[0].meta["url"] == "http://example.pl/pierogi" and "kuchni polskiej" in docs[0].text


def test_gz_jsonl_and_folder_expansion(tmp_path):
    with gzip.open(tmp_path / "sub" / "a.jsonl.gz" if (tmp_path / "sub").mkdir() is None else "", "wt",
                   encoding="utf-8") as f:
        f.write(json.dumps({"text": "gz"}) + "\n")
    write_jsonl(tmp_path / "b.jsonl", [{"text": "plain"}])
    (tmp_path / "notes.md").write_text("ignored")
    assert [p.name for p in expand_inputs([tmp_path])] == ["b.jsonl", "a.jsonl.gz"]
    assert [d.text for d in read_documents([tmp_path])] == ["plain", "gz"]
    assert [d.text for d in read_documents([str(tmp_path / "*.jsonl")])] == ["plain"]


def test_unknown_format_and_missing_input_are_user_errors(tmp_path):
    (tmp_path / "x.dat").write_text("?")
    with pytest.raises(UserError, match="cannot tell the format"):
        list(read_documents([tmp_path / "x.dat"]))
    with pytest.raises(UserError, match="input not found"):
        list(read_documents([tmp_path / "missing.jsonl"]))
