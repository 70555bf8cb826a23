"""Language identification: py3langid vs lingua-language-detector, accuracy and speed on the shared Polish data.

Both ship their models inside their PyPI wheels. Test sets (from ../shared/data/pl and the sample corpus):

* pl docs — the 13 Wolne Lektury books (Lord Jim is a Polish translation) without header/footer, cut into
  ~2,000-character chunks at paragraph ends; the 2,048 news articles of ``benchmark_sm``; the web pages of
  ``web_sample.jsonl`` that a stopword rule labels Polish (below);
* pl short — KLEJ sentences: NKJP-NER dev, CBD tweets (train), CDSC-E dev sentence A (1,000 each);
* non-pl docs — the sample corpus's English and German documents (ground truth) and the web pages the
  stopword rule labels English;
* sample — every non-junk document of the sample corpus, against its ground-truth language.

web_sample has no language field, so a page is labelled by function words, independently of both models:
``en`` when ≥ 15% of its words are English function words and ≥ 4x the share of Polish ones, ``pl`` the
other way round at ≥ 10%; pages under 20 words or neither way (Finnish/Estonian cookie walls, price lists,
menus; 78 of 2,502) are left out.

Every configuration gets the first 2,000 characters of each text (what the ``language`` step classifies);
"py3langid, full text" shows that the cut costs no accuracy. Accuracy: top-1 language == label, then in
brackets with score ≥ 0.5 too (what the step's default threshold keeps). docs/s: one process, one thread,
CPU time (so other load on the machine does not skew it), best of --repeat round-robin passes over 1,000 pl docs.
"load s": CPU seconds to build the model. Peak RSS of a process that only loads one (measured apart):
py3langid ~130 MB, lingua low accuracy ~100 MB, lingua all languages with every n-gram model ~1.26 GB.

    python bench/language_id.py [--repeat 3] [--limit N]     # ~5 min; --limit 300 for a quick look

Ends with ``ratio: <ours/peer>``: docs/s of the ``language`` step (py3langid inside it) over the fastest
lingua configuration (> 1: ours is faster).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: numpy (py3langid) and rayon (lingua) stay single-threaded

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pl"
PREFIX = 2000
THRESHOLD = 0.5
Classify = Callable[[str], tuple]

_WORD = re.compile(r"[^\W\d_]+")
_PL = frozenset("i w na z się nie że jest o jak co od za po ale oraz dla jego przez być lub są tak które który "
                "która przy może już tylko czy ich go ze jej też także gdy jako".split())
_EN = frozenset("the and of in is that for it with as was are by this be from at or an which you not have were "
                "their has its but".split())


# --- test sets ------------------------------------------------------------------------------------------------

def book_chunks(size: int = 2000) -> list[str]:
    from gniazdo.acquire.wolnelektury import clean_text

    chunks = []
    for path in sorted((DATA / "corpus" / "books").glob("*.txt")):
        text, _ = clean_text(path.read_text(encoding="utf-8"))
        buf = ""
        for para in text.split("\n"):
            buf = f"{buf}\n{para}" if buf else para
            if len(buf) >= size:
                chunks.append(buf.strip())
                buf = ""
        if len(buf.strip()) >= size // 4:
            chunks.append(buf.strip())
    return chunks


def news() -> list[str]:
    from gniazdo.corpus import read_documents

    return [d.text for d in read_documents([DATA / "corpus" / "spichlerz" / "benchmark_sm.jsonl.zst"])]


def stopword_label(text: str) -> str | None:
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 20:
        return None
    pl = sum(w in _PL for w in words) / len(words)
    en = sum(w in _EN for w in words) / len(words)
    if en >= 0.15 and en > 4 * pl:
        return "en"
    if pl >= 0.10 and pl > 4 * en:
        return "pl"
    return None


def web_pages() -> list[tuple[str, str]]:
    with open(DATA / "corpus" / "web" / "web_sample.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    return [(t, lab) for t in texts if (lab := stopword_label(t))]


def klej_sentences(per_task: int = 1000) -> list[str]:
    out = []
    for rel, column in [("klej_nkjp-ner/dev.tsv", "sentence"), ("klej_cbd/train.tsv", "sentence"),
                        ("klej_cdsc-e/dev.tsv", "sentence_A")]:
        with open(DATA / "tasks" / "klej" / rel, encoding="utf-8", newline="") as f:
            rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            out += [r[column] for r in rows if r[column].strip()][:per_task]
    return out


def sample_docs() -> list[tuple[str, str]]:
    from gniazdo.resources import sample_path

    docs = [json.loads(x) for x in sample_path("corpus.jsonl").read_text(encoding="utf-8").splitlines() if x]
    truth = [json.loads(x) for x in sample_path("ground_truth.jsonl").read_text(encoding="utf-8").splitlines() if x]
    return [(d["text"], t["language"]) for d, t in zip(docs, truth) if not t["junk"]]


def load_sets(limit: int | None) -> dict[str, list[tuple[str, str]]]:
    web = web_pages()
    sample = sample_docs()
    sets = {
        "pl docs": [(t, "pl") for t in book_chunks() + news()] + [p for p in web if p[1] == "pl"],
        "pl short": [(t, "pl") for t in klej_sentences()],
        "non-pl docs": [p for p in sample if p[1] != "pl"] + [p for p in web if p[1] != "pl"],
        "sample": sample,
    }
    if limit:  # an evenly spread subsample keeps every source represented
        sets = {k: v[:: max(1, len(v) // limit)][:limit] for k, v in sets.items()}
    return sets


# --- the configurations ---------------------------------------------------------------------------------------

def py3langid_classifier(prefix: int | None) -> Classify:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    lid = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return (lambda t: lid.classify(t[:prefix])) if prefix else lid.classify


def lingua_classifier(low_accuracy: bool) -> Classify:
    from lingua import LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models()
    detector = (builder.with_low_accuracy_mode() if low_accuracy else builder).build()

    def classify(text: str) -> tuple:
        values = detector.compute_language_confidence_values(text[:PREFIX])
        return (values[0].language.iso_code_639_1.name.lower(), values[0].value) if values else (None, 0.0)

    return classify


def step_batch() -> Callable[[list[str]], list[tuple]]:
    """The ``language`` step itself (annotate only, so every document comes back), on Documents."""
    from gniazdo.data.language import LanguageFilter, identifier
    from gniazdo.document import Document

    identifier()
    step = LanguageFilter(filter=False, max_chars=PREFIX)

    def run(texts: list[str]) -> list[tuple]:
        docs = step.run(Document(str(i), t) for i, t in enumerate(texts))
        return [(d.meta["language"]["lang"], d.meta["language"]["score"]) for d in docs]

    return run


def batch(fn: Classify) -> Callable[[list[str]], list[tuple]]:
    return lambda texts: [fn(t) for t in texts]


CONFIGS: dict[str, Callable[[], Callable[[list[str]], list[tuple]]]] = {
    "py3langid, full text": lambda: batch(py3langid_classifier(None)),
    "py3langid": lambda: batch(py3langid_classifier(PREFIX)),
    # lingua shares loaded models between its detectors: the low-accuracy one (trigram models only) goes first,
    # so the other's "load s" shows what its extra n-gram models cost
    "lingua, all languages, low accuracy": lambda: batch(lingua_classifier(low_accuracy=True)),
    "lingua, all languages": lambda: batch(lingua_classifier(low_accuracy=False)),
    "gniazdo language step (py3langid)": step_batch,
}
OURS = "gniazdo language step (py3langid)"


# --- measuring ------------------------------------------------------------------------------------------------

def accuracy(results: list[tuple], labels: list[str]) -> str:
    top1 = sum(r[0] == lab for r, lab in zip(results, labels)) / len(labels)
    kept = sum(r[0] == lab and r[1] >= THRESHOLD for r, lab in zip(results, labels)) / len(labels)
    return f"{100 * top1:.2f} ({100 * kept:.2f})"


def timed(run: Callable[[list[str]], list[tuple]], texts: list[str]) -> float:
    # CPU time of this process (all its threads), not wall time: other work on the machine does not count
    t0 = time.process_time()
    run(texts)
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="at most N texts per test set (quick runs)")
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"shared data not found: {DATA} (this benchmark needs ../shared/data/pl next to the "
                         "project checkout)")
    sets = load_sets(args.limit)
    pl_docs = [t for t, _ in sets["pl docs"]]
    speed_texts = pl_docs[:: max(1, len(pl_docs) // 1000)][:1000]
    print(f"python {sys.version.split()[0]}; texts: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items()))
    print(f"accuracy % top-1 (and with score >= {THRESHOLD}); each text's first {PREFIX} chars unless 'full text'\n")
    head = f"{'configuration':38s} {'load s':>6s}" + "".join(f" {k:>15s}" for k in sets) + f" {'docs/s':>8s}"
    runs, rows = {}, {}
    for name, make in CONFIGS.items():
        t0 = time.process_time()
        runs[name] = make()
        load = time.process_time() - t0
        cells = [accuracy(runs[name]([t for t, _ in data]), [lab for _, lab in data]) for data in sets.values()]
        rows[name] = f"{name:38s} {load:6.1f}" + "".join(f" {c:>15s}" for c in cells)
        print(f"  measured accuracy: {name}", file=sys.stderr, flush=True)
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.repeat):  # round-robin, so that machine noise hits every configuration alike
        for name, run in runs.items():
            best[name] = min(best[name], timed(run, speed_texts))
    rates = {name: len(speed_texts) / t for name, t in best.items()}
    print(head)
    for name, row in rows.items():
        print(f"{row} {rates[name]:8.0f}")
    peer = max((n for n in rates if n.startswith("lingua")), key=rates.get)
    print(f"\nours: {OURS}; peer: {peer} (the faster lingua configuration)")
    print(f"ratio: {rates[OURS] / rates[peer]:.2f}")


if __name__ == "__main__":
    main()
