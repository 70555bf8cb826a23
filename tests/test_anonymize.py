from __future__ import annotations

import json
from collections import Counter

import pytest
from pydantic import ValidationError

from conftest import write_jsonl
from gniazdo.corpus import read_documents
from gniazdo.data.anonymize import Anonymize, resolve
from gniazdo.data.pii_detectors import PII_TYPES, find_all
from gniazdo.document import Document
from gniazdo.errors import UserError
from gniazdo.pipeline import run_pipeline
from gniazdo.pipeline.load import load_pipeline
from gniazdo.resources import sample_path

STEP = Anonymize()


def anon(text: str, **params) -> str:
    return (Anonymize(**params) if params else STEP).anonymize(text)[0]


# (text, expected) per type: valid values are replaced, invalid ones stay byte for byte.
VECTORS = {
    "pesel": [
        ("PESEL: 44051401359.", "PESEL: <PESEL>."),
        ("PESEL: 44051401358.", None),  # wrong check digit
        ("PESEL: 44131401350.", None),  # right check digit, month 13
        ("PESEL: 02410101357.", None),  # right check digit, born 2102-01-01: in the future
        ("nr 440514013591", None),  # 12 digits: not a PESEL (and not cut out of the longer number)
    ],
    "nip": [
        ("NIP 8567346215,", "NIP <NIP>,"),
        ("NIP: 856-734-62-15", "NIP: <NIP>"),
        ("NIP: 856-73-46-215", "NIP: <NIP>"),
        ("NIP: 856 734 62 15", "NIP: <NIP>"),
        ("VAT-UE: PL8567346215", "VAT-UE: <NIP>"),
        ("VAT-ID: PL 856-734-62-15.", "VAT-ID: <NIP>."),
        ("NIP 8567346216", None),  # checksum
        ("KRS 0000000000", None),  # passes the NIP checksum, but no tax office has code 000
    ],
    "regon": [
        ("REGON 192598184;", "REGON <REGON>;"),
        ("REGON: 12345678512347", "REGON: <REGON>"),
        ("REGON 192598183", None),
        ("REGON: 12345678512348", None),
    ],
    "iban": [
        ("konto PL61 1090 1014 0000 0712 1981 2874.", "konto <IBAN>."),
        ("konto PL61109010140000071219812874", "konto <IBAN>"),
        ("IBAN DE89 3704 0044 0532 0130 00 (Berlin)", "IBAN <IBAN> (Berlin)"),
        ("IBAN GB82WEST12345698765432", "IBAN <IBAN>"),
        ("rachunek 61 1090 1014 0000 0712 1981 2874", "rachunek <IBAN>"),  # NRB, no PL prefix
        ("rachunek 6110 9010 1400 0007 1219 8128 74", "rachunek <IBAN>"),
        ("rachunek 61109010140000071219812874", "rachunek <IBAN>"),
        ("na PL61 1090 1014 0000 0712 1981 2874 PLN", "na <IBAN> PLN"),  # the currency is not swallowed
        ("konto PL61 1090 1014 0000 0712 1981 2875", None),  # mod-97 fails
        ("rachunek 61 1090 1014 0000 0712 1981 2875", None),
    ],
    "id_card": [
        ("dowód ABS123456", "dowód <ID_CARD>"),
        ("dowód osobisty nr ABA 300000.", "dowód osobisty nr <ID_CARD>."),
        ("dowód ABS123457", None),
        ("model XYZ1234567", None),
    ],
    "card": [
        ("karta 4111 1111 1111 1111", "karta <CARD>"),
        ("karta 5500-0000-0000-0004 ważna", "karta <CARD> ważna"),
        ("Amex 378282246310005", "Amex <CARD>"),
        ("Amex 3782 822463 10005", "Amex <CARD>"),
        ("karta 4111 1111 1111 1112", None),  # Luhn fails
        ("nr 1111111111111117", None),  # Luhn passes, but no card network starts with 1
    ],
    "phone": [
        ("tel. +48 601 234 567", "tel. <PHONE>"),
        ("tel. 601-234-567.", "tel. <PHONE>."),
        ("tel. (22) 628 12 34", "tel. <PHONE>"),
        ("tel. 22 628 12 34", "tel. <PHONE>"),
        ("Berlin: +49 30 1234567", "Berlin: <PHONE>"),
        ("tel. +48 101 234 567", None),  # no such Polish range
        ("tel. 601 234 56", None),  # too short
        ("kod CPV 45520000-8", None),  # VALID for phonenumbers, but a CPV code
        ("ogłoszenie nr 45718-2014", None),
        ("w dniach 3.08.2005 21.10.2005", None),
        ("uchwała VIII/64/2019", None),
        ("foto shutterstock_129644894", None),
    ],
    "email": [
        ("pisz: jan.kowalski@example.pl.", "pisz: <EMAIL>."),
        ("<biuro.rem-bud@poczta.example.com.pl>", "<<EMAIL>>"),
        ("a.b+news@example.org, c_d@example.org", "<EMAIL>, <EMAIL>"),
        ("pisz na jan@localhost", None),
        ("cena 5 @ 10 zł", None),
    ],
    "ip": [
        ("z adresu 83.12.45.67.", "z adresu <IP>."),
        ("DNS 2001:4860:4860::8888", "DNS <IP>"),
        ("router 192.168.1.10", None),
        ("10.0.0.1 i 172.16.0.5", None),
        ("localhost 127.0.0.1 ::1", None),
        ("link-local 169.254.1.1 fe80::1", None),
        ("reserved 240.0.0.1, shared 100.64.0.1", None),
        ("wersja 1.2.3.4.5 i 999.1.1.1", None),
        ("o 10:00:00", None),
    ],
}


@pytest.mark.parametrize("text,expected", [(t, e) for cases in VECTORS.values() for t, e in cases])
def test_vectors(text, expected):
    assert anon(text) == (text if expected is None else expected)


def test_every_type_has_valid_and_invalid_vectors():
    assert set(VECTORS) == set(PII_TYPES)
    for kind, cases in VECTORS.items():
        assert any(e is None for _, e in cases) and any(e for _, e in cases), kind


def test_overlaps():
    # A PESEL is not a phone, an IBAN's digits are not a card or a NIP, a NIP in an e-mail stays in the e-mail.
    assert anon("PESEL 44051401359 tel. 601 234 567") == "PESEL <PESEL> tel. <PHONE>"
    assert anon("PL61 1090 1014 0000 0712 1981 2874") == "<IBAN>"
    assert anon("8567346215@example.pl") == "<EMAIL>"
    # 910654912 is both a valid REGON and a valid phone: the keyword before it decides, else priority.
    assert anon("REGON 910654912") == "REGON <REGON>"
    assert anon("tel. 910654912") == "tel. <PHONE>"
    assert anon("REGON: 192598184, tel. 910654912") == "REGON: <REGON>, tel. <PHONE>"
    assert anon("nr 910654912") == "nr <REGON>"


def test_resolve_longest_then_priority():
    text = "PL61 1090 1014 0000 0712 1981 2874"
    spans = resolve(text, find_all(text, set(PII_TYPES)))
    assert [(s.start, s.end, s.type) for s in spans] == [(0, len(text), "iban")]


def test_meta_counts_and_absent_when_none():
    docs = [Document("a", "PESEL 44051401359, mail a@example.pl, b@example.pl, a@example.pl"),
            Document("b", "Nic tu nie ma, tylko 2024 r. i 12 345,67 zł.", {"kind": "news"})]
    out = list(Anonymize().run(iter(docs)))
    assert out[0].text == "PESEL <PESEL>, mail <EMAIL>, <EMAIL>, <EMAIL>"
    assert out[0].meta["pii"] == {"pesel": 1, "email": 3}
    assert out[1].text == "Nic tu nie ma, tylko 2024 r. i 12 345,67 zł." and out[1].meta == {"kind": "news"}


def test_pseudonym_mode_numbers_distinct_values_per_document():
    step = Anonymize(mode="pseudonym")
    text = ("Od a@example.pl do b@example.pl, kopia A@example.pl. Tel. 601-234-567 albo +48 601 234 567, "
            "domowy (22) 628 12 34.")
    out, counts = step.anonymize(text)
    assert out == ("Od <EMAIL_1> do <EMAIL_2>, kopia <EMAIL_1>. Tel. <PHONE_1> albo <PHONE_1>, "
                   "domowy <PHONE_2>.")
    assert counts == {"phone": 3, "email": 3}
    assert step.anonymize("x@example.pl")[0] == "<EMAIL_1>"  # numbering restarts in each document


def test_custom_placeholders_and_types():
    step = Anonymize(placeholders={"email": "[e-mail]", "phone": "[tel]"})
    assert step.anonymize("a@example.pl, 601 234 567")[0] == "[e-mail], [tel]"
    pseudo = Anonymize(mode="pseudonym", placeholders={"email": "[osoba{n}]"})
    assert pseudo.anonymize("a@example.pl b@example.pl 44051401359")[0] == "[osoba1] [osoba2] <PESEL_1>"
    only_mail = Anonymize(types=["email"])
    assert only_mail.anonymize("a@example.pl, PESEL 44051401359")[0] == "<EMAIL>, PESEL 44051401359"
    # Types not asked for still shield their digits: this REGON is not taken for a phone.
    only_phone = Anonymize(types=["phone"])
    assert only_phone.anonymize("REGON 910654912, tel. 601 234 567") == ("REGON 910654912, tel. <PHONE>",
                                                                       {"phone": 1})


def test_params_are_validated():
    with pytest.raises(ValidationError, match=r"\{n\}"):
        Anonymize(mode="pseudonym", placeholders={"email": "[e-mail]"})
    with pytest.raises(ValidationError):
        Anonymize(types=["passport"])
    with pytest.raises(ValidationError, match="unknown phone region"):
        Anonymize(phone_region="XX")
    assert Anonymize(phone_region="de").anonymize("Tel. 030 1234567")[0] == "Tel. <PHONE>"


def _sample():
    docs = [json.loads(line) for line in sample_path("corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    truth = [json.loads(line) for line in sample_path("ground_truth.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [d["id"] for d in docs] == [t["id"] for t in truth]
    return docs, truth


def test_sample_corpus_ground_truth():
    """Every listed value is replaced by its type's placeholder and nothing else changes: the output must
    equal the original text with exactly the ground-truth values substituted."""
    docs, truth = _sample()
    out = list(Anonymize().run(Document(d["id"], d["text"], dict(d["meta"])) for d in docs))
    for doc, src, gt in zip(out, docs, truth):
        expected = src["text"]
        for item in sorted(gt["pii"], key=lambda p: -len(p["value"])):  # longest first: no value cuts another
            assert item["value"] in src["text"], (gt["id"], item)
            expected = expected.replace(item["value"], f"<{item['type'].upper()}>")
        assert doc.text == expected, gt["id"]
        assert doc.meta.get("pii", {}) == dict(Counter(p["type"] for p in gt["pii"])), gt["id"]
    assert sum(bool(gt["pii"]) for gt in truth) >= 20  # the check covers many PII documents


def test_sample_corpus_precision_recall():
    docs, truth = _sample()
    tp = fp = fn = 0
    for doc, gt in zip(docs, truth):
        text = doc["text"]
        found = Counter((s.type, text[s.start:s.end]) for s in resolve(text, find_all(text, set(PII_TYPES))))
        wanted = Counter((p["type"], p["value"]) for p in gt["pii"])
        tp += sum((found & wanted).values())
        fp += sum((found - wanted).values())
        fn += sum((wanted - found).values())
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert tp >= 100
    assert precision == 1.0 and recall == 1.0, (precision, recall, tp, fp, fn)


def test_pipeline_from_yaml(tmp_path):
    write_jsonl(tmp_path / "in" / "a.jsonl", [
        {"id": "1", "text": "Kontakt: jan@example.pl, tel. 601 234 567, znowu jan@example.pl."},
        {"id": "2", "text": "Bez danych osobowych. Numer 12345678901 nie jest PESEL-em."},
    ])
    yaml_path = tmp_path / "pipeline.yaml"
    yaml_path.write_text(
        f"input: {{paths: ['{tmp_path / 'in' / '*.jsonl'}']}}\n"
        f"output: {{path: '{tmp_path / 'out'}', format: jsonl}}\n"
        "steps:\n  - step: anonymize\n    mode: pseudonym\n    types: [email, phone, pesel]\n")
    stats = run_pipeline(load_pipeline(yaml_path), progress=False)
    assert [s["name"] for s in stats["steps"]] == ["read", "anonymize"]
    got = {d.id: d for d in read_documents([tmp_path / "out" / "corpus.jsonl.zst"])}
    assert [d.text for d in got.values()] == [
        "Kontakt: <EMAIL_1>, tel. <PHONE_1>, znowu <EMAIL_1>.",
        "Bez danych osobowych. Numer 12345678901 nie jest PESEL-em."]
    assert [d.meta.get("pii") for d in got.values()] == [{"phone": 1, "email": 2}, None]

    yaml_path.write_text(yaml_path.read_text().replace("types: [email, phone, pesel]", "types: [mail]"))
    with pytest.raises(UserError, match=r"steps\.0\.types"):
        load_pipeline(yaml_path)
