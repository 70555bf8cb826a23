"""Our Gopher/FineWeb filters against datatrove's, on real Polish web text, with FineWeb-2's Polish settings.

datatrove splits Polish words with spaCy's blank "pl" tokenizer, so both datatrove and spaCy must be
installed (dev extra); the test skips otherwise, or when the shared web sample is absent. By default every
second document is compared (datatrove is slow); GNIAZDO_FULL_PARITY=1 compares all of them.
"""

from __future__ import annotations

import os
import time

import pytest

from conftest import SHARED, needs_shared
from gniazdo.corpus import read_documents
from gniazdo.data.heuristics import (FineWebQualityParams, GopherQualityParams, GopherRepetitionParams,
                                     fineweb_quality, gopher_quality, gopher_repetition)

WEB_SAMPLE = SHARED / "corpus" / "web" / "web_sample.jsonl"
pytest.importorskip("spacy", reason="datatrove's Polish word tokenizer needs spaCy")
pytest.importorskip("datatrove.pipeline.filters", reason="datatrove is not installed")
datatrove_data = pytest.importorskip("datatrove.data")

from gniazdo.data.heuristics.datatrove_config import datatrove_filters  # noqa: E402  (after the skips)


def test_keep_drop_decisions_match_datatrove():
    docs = list(read_documents([WEB_SAMPLE]))
    if os.environ.get("GNIAZDO_FULL_PARITY") != "1":
        docs = docs[::2]
    params = {"gopher_repetition": GopherRepetitionParams(), "fineweb_quality": FineWebQualityParams(),
              "gopher_quality": GopherQualityParams()}
    ours_fn = {"gopher_repetition": gopher_repetition, "fineweb_quality": fineweb_quality,
               "gopher_quality": gopher_quality}
    theirs = datatrove_filters(*params.values())

    started = time.process_time()
    ours = {d.id: {name: ours_fn[name](d.text, p) or "keep" for name, p in params.items()} for d in docs}
    ours_s = time.process_time() - started
    started = time.process_time()
    ref = {}
    for d in docs:
        dt_doc = datatrove_data.Document(text=d.text, id=d.id)
        ref[d.id] = {name: _verdict(f.filter(dt_doc)) for name, f in theirs.items()}
    theirs_s = time.process_time() - started

    n = len(docs)
    lines, failures = [f"{n} documents; ours {n / ours_s:.0f} docs/s, datatrove {n / theirs_s:.0f} docs/s"], []
    for name in params:
        agree = sum((ours[i][name] == "keep") == (ref[i][name] == "keep") for i in ours)
        same_reason = sum(ours[i][name] == ref[i][name] for i in ours)
        dropped = sum(ref[i][name] != "keep" for i in ref)
        lines.append(f"{name}: keep/drop agree {agree}/{n} ({agree / n:.2%}), same reason {same_reason}/{n}, "
                     f"datatrove drops {dropped}")
        failures += [f"  {i} {name}: ours={ours[i][name]} datatrove={ref[i][name]}"
                     for i in ours if (ours[i][name] == "keep") != (ref[i][name] == "keep")]
        assert agree / n >= 0.99, "\n".join(lines + failures)
    overall = sum(_kept(ours[i]) == _kept(ref[i]) for i in ours)
    lines.append(f"overall: agree {overall}/{n} ({overall / n:.2%})")
    print("\n".join(lines + failures))
    assert overall / n >= 0.99, "\n".join(lines + failures)
    assert sum(not _kept(r) for r in ref.values()) > n // 10  # the sample exercises the rules


def _verdict(result) -> str:
    return "keep" if result is True else result[1]


def _kept(verdicts: dict[str, str]) -> bool:
    return all(v == "keep" for v in verdicts.values())
