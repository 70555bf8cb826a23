from __future__ import annotations

import io
import json

import zstandard

from conftest import BENCHMARK_SM, needs_shared
from gniazdo.corpus import open_writer, read_documents, read_manifest
from gniazdo.corpus.convert import convert_corpus
from gniazdo.corpus.speakleash import SpeakLeashWriter, verify_archive, write_index
from gniazdo.corpus.stats import ManifestStats
from gniazdo.document import Document


def _raw_records(path):
    with open(path, "rb") as f:
        text = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(f), encoding="utf-8")
        return [json.loads(line) for line in text]


@needs_shared(BENCHMARK_SM)
def test_reads_real_archive_and_meta_matches_file():
    docs = list(read_documents([BENCHMARK_SM]))
    raw = _raw_records(BENCHMARK_SM)
    assert len(docs) == 2048 == len(raw)
    assert [d.text for d in docs] == [r["text"] for r in raw]
    assert [d.meta for d in docs] == [r["meta"] for r in raw]
    assert docs[0].id == "benchmark_sm:1" and docs[-1].id == "benchmark_sm:2048"
    stats = ManifestStats()
    for d in docs:
        stats.add(d)
    manifest = read_manifest(BENCHMARK_SM)
    assert stats.to_dict() == manifest["stats"]  # our stats rules reproduce SpeakLeash's manifest exactly


@needs_shared(BENCHMARK_SM)
def test_round_trip_through_parquet_and_jsonl_keeps_texts_and_meta(tmp_path):
    original = list(read_documents([BENCHMARK_SM]))
    convert_corpus([str(BENCHMARK_SM)], tmp_path / "a" / "bsm.jsonl.zst")
    convert_corpus([str(tmp_path / "a" / "bsm.jsonl.zst")], tmp_path / "b.parquet")
    convert_corpus([str(tmp_path / "b.parquet")], tmp_path / "c.jsonl.gz")
    convert_corpus([str(tmp_path / "c.jsonl.gz")], tmp_path / "d" / "benchmark_sm.jsonl.zst")
    for archive in (tmp_path / "a" / "bsm.jsonl.zst", tmp_path / "d" / "benchmark_sm.jsonl.zst"):
        back = list(read_documents([archive]))
        assert [d.text for d in back] == [d.text for d in original]
        assert [d.meta for d in back] == [d.meta for d in original]
        manifest = read_manifest(archive)
        assert manifest["file_size"] == archive.stat().st_size
        assert manifest["stats"] == read_manifest(BENCHMARK_SM)["stats"]
        verify_archive(archive)
    assert [r["meta"] for r in _raw_records(tmp_path / "d" / "benchmark_sm.jsonl.zst")] == \
        [r["meta"] for r in _raw_records(BENCHMARK_SM)]


def test_manifest_fields_stats_rules_and_quality(tmp_path):
    w = SpeakLeashWriter(tmp_path, "mini", info={"description": "d", "license": "CC0-1.0",
                                                  "sources": [{"name": "s", "url": "http://x"}]})
    w.write(Document("a", "Ala ma kota.", {"words": 3, "length": 12, "ratio": 0.5, "quality": "HIGH", "ok": True}))
    w.write(Document("b", "Kot ma Alę i psa.", {"words": 5, "length": 17, "ratio": 1.0, "quality": "LOW"}))
    (archive,) = w.close()
    m = read_manifest(archive)
    assert set(m) >= {"project", "name", "description", "license", "language", "sources", "file_size", "stats",
                      "creation_date"}
    assert m["name"] == "mini" and m["sources"] == [{"name": "s", "url": "http://x"}]
    assert m["file_size"] == archive.stat().st_size
    assert m["stats"] == {"documents": 2, "characters": 29, "words": 8, "ratio": 0.75,
                          "quality": {"HIGH": 0.5, "LOW": 0.5}}
    assert [r["meta"] for r in _raw_records(archive)][0] == {"words": 3, "length": 12, "ratio": 0.5,
                                                             "quality": "HIGH", "ok": True}


def test_sharding_by_size_and_corpus_index(tmp_path):
    w = open_writer(tmp_path / "out", "speakleash", name="big", shard_size=2000, add_id=True)
    texts = [f"Dokument numer {i}. " + "zdanie " * (50 + i) for i in range(60)]
    for i, t in enumerate(texts):
        w.write(Document(f"d{i}", t, {"n": i}))
    shards = w.close()
    assert len(shards) > 2
    assert [s.name for s in shards] == [f"big-{k:05d}.jsonl.zst" for k in range(len(shards))]
    for s in shards:
        assert read_manifest(s)["file_size"] == s.stat().st_size
    index = json.loads(write_index(tmp_path / "out", "big", shards).read_text())
    assert index["stats"]["documents"] == 60 and index["stats"]["n"] == sum(range(60))
    assert sum(s["documents"] for s in index["shards"]) == 60
    back = list(read_documents([tmp_path / "out"]))
    assert [d.text for d in back] == texts
    assert [d.meta["id"] for d in back] == [f"d{i}" for i in range(60)] == [d.id for d in back]
