from __future__ import annotations

import json

import numpy as np
import pytest

from gniazdo.dedup.cosine import CosineExpert, CosineParams
from gniazdo.dedup.lsh import candidate_pairs
from gniazdo.resources import sample_path

PARAGRAPH = ("Rada gminy zdecydowała w czwartek, że stary most na Wiśle zostanie wyremontowany w przyszłym roku. "
             "Prace mają potrwać cztery miesiące, a ruch zostanie przeniesiony na przeprawę tymczasową. "
             "Mieszkańcy pytali o objazdy dla autobusów szkolnych i o koszt całej inwestycji, który wyniesie "
             "ponad dwanaście milionów złotych. Wójt zapewnił, że gmina otrzymała dofinansowanie z programu "
             "rządowego i że przetarg zostanie ogłoszony jeszcze w tym miesiącu.")
EDITED = PARAGRAPH.replace("czwartek", "środę").replace("cztery", "pięć").replace("szkolnych", "miejskich")
UNRELATED = ("Przepis na sernik: twaróg zmiel dwukrotnie, utrzyj masło z cukrem, dodawaj po jednym żółtku, "
             "a na końcu delikatnie wmieszaj ubitą pianę. Piecz godzinę w stu siedemdziesięciu stopniach.")


def test_cosine_estimates_separate_edits_from_unrelated_texts():
    e = CosineExpert()
    sigs = e.signatures([PARAGRAPH, EDITED, UNRELATED, PARAGRAPH])
    assert sigs.shape == (4, 4) and sigs.dtype == np.uint64
    sims = e.similarity(sigs[[0, 0, 0]], sigs[[3, 1, 2]])
    assert sims[0] == 1.0 and 0.75 < sims[1] < 1.0 and sims[2] < 0.4
    assert e.is_duplicate(sims).tolist() == [True, True, False]


def test_idf_is_fitted_once_and_reused():
    e = CosineExpert().fit([PARAGRAPH, UNRELATED])
    a = e.signatures([PARAGRAPH])
    assert np.array_equal(a, e.signatures([PARAGRAPH]))  # fitted idf, not refitted per batch
    assert np.array_equal(CosineExpert(bits=128).fit([PARAGRAPH]).signatures([""]), np.zeros((1, 2), np.uint64))


def test_bits_must_be_whole_words():
    with pytest.raises(ValueError):
        CosineParams(bits=100)


def test_sample_corpus_pairs_found_through_bands():
    docs = [json.loads(line) for line in sample_path("corpus.jsonl").read_text().splitlines()]
    truth = [json.loads(line) for line in sample_path("ground_truth.jsonl").read_text().splitlines()]
    index = {d["id"]: i for i, d in enumerate(docs)}
    expected = {tuple(sorted((index[t["id"]], index[t["duplicate_of"] or t["near_duplicate_of"]])))
                for t in truth if t["duplicate_of"] or t["near_duplicate_of"]}
    e = CosineExpert()
    sigs = e.signatures([d["text"] for d in docs])
    pairs = candidate_pairs(e.band_keys(sigs))
    found = {tuple(p) for p, dup in zip(pairs.tolist(), e.is_duplicate(e.similarity(sigs[pairs[:, 0]],
                                                                                     sigs[pairs[:, 1]])))
             if dup}
    recall = len(found & expected) / len(expected)
    precision = len(found & expected) / len(found)
    assert recall >= 0.9 and precision >= 0.9, (precision, recall)
