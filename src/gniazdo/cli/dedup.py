"""``gniazdo dedup``: near-duplicate removal with three experts and a vote."""

from __future__ import annotations

import click

from gniazdo.cli.report import console


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", required=True, help="Output folder: survivors, excluded/near_dup/, dedup.json.")
@click.option("--experts", default="minhash,simhash,cosine", show_default=True,
              help="Comma-separated experts: minhash, simhash, cosine.")
@click.option("--vote", "rule", default="majority", show_default=True,
              help="all | any | majority | an expression such as 'minhash & (simhash | cosine)'.")
@click.option("--threshold", type=float, default=None, help="MinHash Jaccard threshold (default 0.5).")
@click.option("--keep", default="first", show_default=True, help="Survivor: first | longest | quality | meta:KEY.")
@click.option("--report", is_flag=True, help="Print the expert agreement matrix and write cluster_sizes.png.")
@click.option("--index", default=None, help="Also dedup against the corpora in this index folder; add survivors.")
@click.option("--memory-mb", type=float, default=None,
              help="Out-of-core run: signatures and band partitions on disk, memory bounded by this budget.")
@click.option("--workers", default=1, show_default=True, help="Processes signing batches (with --memory-mb).")
@click.option("--config", "config_path", default=None, help="YAML with the same keys as dedup's config.")
def dedup(inputs, out, experts, rule, threshold, keep, report, index, memory_mb, workers, config_path) -> None:
    """Remove near-duplicates from INPUTS: MinHash, SimHash and cosine experts, combined by a vote.

    INPUTS are files, globs or folders; arguments of the form KEY=VALUE among them set any config key
    (near.cosine.threshold=0.85, near.simhash.max_distance=10, near.minhash.num_perm=256).

    \b
    Example:
      gniazdo dedup clean/web/ --out dedup/web --vote majority --keep quality --report
      gniazdo dedup clean/news/ --out dedup/news --index dedup/index   # against earlier corpora too
    """
    from gniazdo.config import apply_overrides, read_yaml, validate
    from gniazdo.dedup.corpus import DedupConfig, dedup_corpus

    paths = [p for p in inputs if "=" not in p]
    sets = [p for p in inputs if "=" in p]
    data = read_yaml(config_path) if config_path else {}
    data.update({"inputs": paths, "out": out, "keep": keep, "report": report, "index": index,
                 "memory_mb": memory_mb, "workers": workers})
    data.setdefault("near", {}).update({"experts": experts.split(","), "vote": rule})
    if threshold is not None:
        data["near"].setdefault("minhash", {})["threshold"] = threshold
    cfg = validate(DedupConfig, apply_overrides(data, sets), source=config_path or "")
    summary = dedup_corpus(cfg)
    console.print(f"{summary['documents']:,} documents → {summary['kept']:,} kept, {summary['removed']:,} "
                  f"removed in {summary['clusters_with_duplicates']:,} clusters")
    if "out_of_core" in summary:
        ooc = summary["out_of_core"]
        console.print(f"out of core: {ooc['partitions']} key partitions per band, largest array held "
                      f"{ooc['peak_bytes'] / 2**20:.1f} MB of a {ooc['budget_bytes'] / 2**20:.1f} MB budget")
        console.print(f"output: {out}")
        return
    console.print(f"{summary['candidate_pairs']:,} candidate pairs, {summary['accepted_pairs']:,} accepted")
    if summary["indexed_before"]:
        console.print(f"{len(summary['matched_earlier']):,} documents matched the {summary['indexed_before']:,} "
                      f"indexed before (dedup.json: matched_earlier)")
    if report:
        _print_report(summary)
    console.print(f"output: {out}")


def _print_report(summary: dict) -> None:
    from rich.table import Table

    names = list(summary["experts"])
    experts = Table(title="experts", title_justify="left")
    for col in ("expert", "proposed", "says duplicate", "alone (proposed and duplicate)"):
        experts.add_column(col, justify="left" if col == "expert" else "right")
    for n, e in summary["experts"].items():
        experts.add_row(n, f"{e['proposed']:,}", f"{e['says_duplicate']:,}", f"{e['alone']:,}")
    console.print(experts)
    agreement = Table(title="agreement on candidate pairs (share of equal verdicts)", title_justify="left")
    agreement.add_column("")
    for n in names:
        agreement.add_column(n, justify="right")
    for a in names:
        agreement.add_row(a, *(f"{summary['agreement'][a][b]:.3f}" for b in names))
    console.print(agreement)
    sizes = ", ".join(f"{k}: {v}" for k, v in summary["cluster_sizes"].items() if k != "1")
    console.print(f"cluster sizes (size: clusters): {sizes or '-'}; histogram in cluster_sizes.png")
