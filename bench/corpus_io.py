"""Read + write throughput of gniazdo's SpeakLeash archive reader/writer vs lm_dataformat.

lm_dataformat is what the `speakleash` package reads archives with. Both sides read the same archive and
write the same documents (text + meta) to a new .jsonl.zst, in this one process, alternating, best of N.

    python bench/corpus_io.py [ARCHIVE] [--repeat 5]

Ends with `ratio: <ours/peer>` — docs/s of (read + write) of ours over the peer's (> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/pl/corpus/spichlerz/benchmark_sm.jsonl.zst"


def ours_read(path: Path) -> list:
    from gniazdo.corpus import read_documents

    return list(read_documents([path]))


def ours_write(docs: list, out: Path) -> None:
    from gniazdo.corpus.speakleash import SpeakLeashWriter

    w = SpeakLeashWriter(out, "bench")
    for d in docs:
        w.write(d)
    w.close()  # includes the manifest with stats and file_size, which lm_dataformat does not write


def peer_read(path: Path) -> list:
    import lm_dataformat

    return list(lm_dataformat.Reader(str(path)).stream_data(get_meta=True))


def peer_write(docs: list, out: Path) -> None:
    import lm_dataformat

    a = lm_dataformat.Archive(str(out))
    for text, meta in docs:
        a.add_data(text, meta)
    a.commit("bench")


def best_of(fn, repeat: int, *args) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("archive", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    path = Path(args.archive)
    if not path.exists():
        raise SystemExit(f"archive not found: {path} (the shared data is needed for this benchmark)")
    tmp = Path(tempfile.mkdtemp())
    try:
        rows = {}
        # Interleave ours and the peer so that machine noise hits both alike.
        t_or, docs = best_of(ours_read, args.repeat, path)
        t_pr, pdocs = best_of(peer_read, args.repeat, path)
        assert len(docs) == len(pdocs) and [d.text for d in docs] == [t for t, _ in pdocs]
        t_ow, _ = best_of(ours_write, args.repeat, docs, tmp / "ours")
        t_pw, _ = best_of(peer_write, args.repeat, pdocs, tmp / "peer")
        n = len(docs)
        rows["gniazdo"] = (n / t_or, n / t_ow, n / (t_or + t_ow))
        rows["lm_dataformat"] = (n / t_pr, n / t_pw, n / (t_pr + t_pw))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"archive: {path.name} ({n} docs, {path.stat().st_size / 1e6:.1f} MB); best of {args.repeat}; "
          f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"{'':<14}{'read docs/s':>14}{'write docs/s':>14}{'read+write docs/s':>20}")
    for name, (r, w, rw) in rows.items():
        print(f"{name:<14}{r:>14,.0f}{w:>14,.0f}{rw:>20,.0f}")
    print(f"read ratio: {rows['gniazdo'][0] / rows['lm_dataformat'][0]:.2f}")
    print(f"write ratio: {rows['gniazdo'][1] / rows['lm_dataformat'][1]:.2f}")
    print(f"ratio: {rows['gniazdo'][2] / rows['lm_dataformat'][2]:.2f}")


if __name__ == "__main__":
    main()
