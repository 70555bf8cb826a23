from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import write_jsonl
from gniazdo.errors import UserError
from gniazdo.sft import SFTDataset, SFTPrepareConfig, prepare_sft

from . import conv, sample_conversations, tiny_tokenizer


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "sft-tok"
    root.mkdir(exist_ok=True)
    tok = tiny_tokenizer(root)
    d = tmp_path_factory.mktemp("ds")
    data = write_jsonl(d / "c.jsonl", sample_conversations()[:40] + [conv("a", "b", "c", "d", weight=2)])
    prepare_sft(SFTPrepareConfig(tokenizer=str(tok), data=[str(data)], out=str(d / "sft"), max_len=600, pack=True,
                                 progress=False))
    return d / "sft"


def test_row_arrays_are_shifted_and_masked(folder):
    ds = SFTDataset(folder)
    assert ds.max_len == 600 and len(ds) == ds.n_rows > 0 and ds.meta["pack"]
    for i in range(ds.n_rows):
        r = ds.row(i)
        start, end = ds.rows[i]
        tokens = np.asarray(ds.tokens[start:end], dtype=np.int64)
        n = end - start - 1
        assert all(len(v) == n for v in r.values()) and r["input_ids"].dtype == r["labels"].dtype == np.int64
        assert r["weights"].dtype == np.float32 and r["document_ids"].dtype == np.int64
        assert np.array_equal(r["input_ids"], tokens[:-1])
        learned = ds.learn[start + 1:end].astype(bool)
        assert np.array_equal(r["labels"][learned], tokens[1:][learned]) and (r["labels"][~learned] == -100).all()
        assert (r["weights"][learned] > 0).all() and (r["weights"][~learned] == 0).all()


def test_document_ids_and_positions_follow_conversations(folder):
    ds = SFTDataset(folder)
    multi = 0
    for i in range(ds.n_rows):
        r = ds.row(i)
        start, end = (int(x) for x in ds.rows[i])
        starts = [s - start for s in ds.doc_starts.tolist() if start <= s < end]
        multi += len(starts) > 1
        expected_doc = np.searchsorted(starts, np.arange(end - start - 1), side="right") - 1
        assert np.array_equal(r["document_ids"], expected_doc) and r["document_ids"][0] == 0
        assert np.array_equal(r["position_ids"], np.arange(end - start - 1) - np.array(starts)[expected_doc])
        # no target crosses into the next conversation: the input before a conversation's first token is unlabeled
        for s in starts[1:]:
            assert r["labels"][s - 1] == -100 and r["input_ids"][s] == 4  # <|im_start|>
    assert multi > 0  # packing put several conversations in a row


def test_weights_of_a_weighted_conversation(folder):
    ds = SFTDataset(folder)
    index = int(np.flatnonzero(ds.doc_index == 40)[0])  # the last, weight 2
    start = int(ds.doc_starts[index])
    i = int(np.searchsorted(ds.rows[:, 0], start, side="right") - 1)
    r = ds.row(i)
    doc = r["document_ids"][start - int(ds.rows[i, 0])]
    mask = (r["document_ids"] == doc) & (r["labels"] != -100)
    assert mask.any() and set(r["weights"][mask].tolist()) == {2.0}


def test_missing_or_foreign_folders_are_one_line_errors(folder, tmp_path):
    with pytest.raises(UserError, match="no meta.json"):
        SFTDataset(tmp_path / "nothing")
    (tmp_path / "meta.json").write_text(json.dumps({"format": "gniazdo-sft", "version": 9}))
    with pytest.raises(UserError, match="version 9 is not supported"):
        SFTDataset(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "gniazdo-prefs", "version": 1}))
    with pytest.raises(UserError, match="expected 'gniazdo-sft'"):
        SFTDataset(tmp_path)
    with pytest.raises(IndexError):
        SFTDataset(folder).row(10_000)


def test_trainer_source_reads_it(folder):
    """train/sources.py turns rows into fixed-shape batches; the labels survive padding unchanged."""
    torch = pytest.importorskip("torch")
    from gniazdo.train.sources import SFTSource

    src = SFTSource(folder)
    batch = src.batch(np.array([0, 1]))
    assert batch.input_ids.shape == (2, 599) and batch.labels.dtype == torch.int64
    r = SFTDataset(folder).row(1)
    assert torch.equal(batch.labels[1, :len(r["labels"])], torch.from_numpy(r["labels"]))
