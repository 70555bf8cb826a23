"""Our data pipeline vs datatrove's, single process, on real Polish web text: docs/s and peak memory.

    python bench/data_pipeline.py [--input ../shared/data/pl/corpus/web/web_sample.jsonl] [--repeat 2]

ours : gniazdo data run — JSONL → normalize → language → heuristics (Gopher repetition, FineWeb quality,
       Gopher quality) → metrics (SpeakLeash's, Morfeusz 2) → quality (SpeakLeash's rule) → SpeakLeash archive.
peer : datatrove LocalPipelineExecutor — JsonlReader → language filter → GopherRepetitionFilter →
       FineWebQualityFilter → GopherQualityFilter → JsonlWriter, with the same thresholds.
datatrove's own LanguageFilter downloads a fastText model from the hub at run time, which cannot be done
here, so its language filter is a LambdaFilter calling py3langid on the first 2,000 characters — the same
classifier as our step. Ours also normalises the text and computes the SpeakLeash metrics and grade, which
datatrove does not do at all.

Each side runs in a fresh child process (so peak RSS is its own), alternating, best of --repeat.
Ends with `ratio: <ours/peer>` of docs/s (> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "pl" / "corpus" / "web" / "web_sample.jsonl"
OUR_STEPS = [{"step": "normalize"}, {"step": "language"}, {"step": "heuristics"}, {"step": "metrics"},
             {"step": "quality"}]


def run_ours(src: Path, out: Path) -> dict:
    from gniazdo.pipeline import PipelineConfig, run_pipeline

    cfg = PipelineConfig.model_validate({"input": {"paths": [str(src)]},
                                         "output": {"path": str(out), "excluded": False},
                                         "steps": OUR_STEPS, "workers": 1})
    t0 = time.perf_counter()
    stats = run_pipeline(cfg, progress=False)
    return {"seconds": time.perf_counter() - t0, "docs": stats["documents_in"], "kept": stats["documents_out"]}


def run_peer(src: Path, out: Path) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import LambdaFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from gniazdo.data.heuristics import HeuristicsParams
    from gniazdo.data.heuristics.datatrove_config import datatrove_filters
    from gniazdo.data.language import identify

    p = HeuristicsParams()
    filters = datatrove_filters(p.gopher_repetition, p.fineweb_quality, p.gopher_quality)
    polish = LambdaFilter(lambda doc: (lambda ls: ls[0] == "pl" and ls[1] >= 0.5)(identify(doc.text, 2000)))
    pipeline = [JsonlReader(str(src.parent), glob_pattern=src.name, id_key="url"), polish,
                filters["gopher_repetition"], filters["fineweb_quality"], filters["gopher_quality"],
                JsonlWriter(str(out / "data"))]
    t0 = time.perf_counter()
    LocalPipelineExecutor(pipeline, tasks=1, workers=1, logging_dir=str(out / "logs")).run()
    seconds = time.perf_counter() - t0
    kept = sum(1 for f in (out / "data").glob("*") for _ in __import__("gzip").open(f, "rt"))
    return {"seconds": seconds, "docs": sum(1 for _ in open(src, encoding="utf-8")), "kept": kept}


def child(side: str, src: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = (run_ours if side == "ours" else run_peer)(src, Path(tmp))
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def spawn(side: str, src: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--side", side, "--input", str(src)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--side", choices=["ours", "peer"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    src = Path(args.input)
    if not src.exists():
        raise SystemExit(f"input not found: {src} (the shared data is needed for this benchmark)")
    if args.side:
        child(args.side, src)
        return
    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for side in ("ours", "peer"):
            r = spawn(side, src)
            if side not in best or r["seconds"] < best[side]["seconds"]:
                best[side] = r
    print(f"input: {src.name}; best of {args.repeat}; {platform.machine()}, python {platform.python_version()}")
    print(f"{'':<10}{'docs':>8}{'kept':>8}{'seconds':>10}{'docs/s':>10}{'peak RSS MB':>14}")
    for side, name in (("ours", "gniazdo"), ("peer", "datatrove")):
        r = best[side]
        print(f"{name:<10}{r['docs']:>8}{r['kept']:>8}{r['seconds']:>10.2f}{r['docs'] / r['seconds']:>10.1f}"
              f"{r['max_rss_mb']:>14.0f}")
    ours, peer = best["ours"], best["peer"]
    print(f"memory ratio: {ours['max_rss_mb'] / peer['max_rss_mb']:.2f}")
    print(f"ratio: {(ours['docs'] / ours['seconds']) / (peer['docs'] / peer['seconds']):.2f}")


if __name__ == "__main__":
    main()
