"""Package benchmark: time and disk use of the archive hand-off (`photoarchive.package`), links vs copies.

Cases:
- ``demo``: a finished run's working folder (``--demo-work``, the folder holding results/; the input
  folder is ``--demo-input``, default demo/), packaged as it is;
- ``synthetic``: ``--n`` photos (default 1000) in a results tree *synthesised* by
  tests/package_tree.py (keyed per-photo stage records, batch tables, publish records, published
  files and manifest with the pipeline's structure, written through photoarchive.stages.run_batch;
  random payload bytes of ``--kb`` KB per file: a master and 4 derivatives per photo), not made by
  running the pipeline.

Each case is packaged with ``link: auto`` (hard links) and ``link: copy``, then once more unchanged
(the resume check). Disk use is what the bag adds: the blocks of its files that are not hard links to
files outside it. Prints a table and writes ``bench/out/bench_package.csv``.

Usage (from the repo root)::

    .venv/bin/python bench/bench_package.py --n 1000 --kb 100 [--demo-work /path/to/finished/run]
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photoarchive.ingest import discover_sources  # noqa: E402
from photoarchive.metadata import read_metadata_csv  # noqa: E402
from photoarchive.package import PackageOptions, package  # noqa: E402
from tests.package_tree import make_tree  # noqa: E402


def added_disk_bytes(bag: Path) -> int:
    """Bytes of disk the bag occupies beyond files it shares (hard links) with the originals/results."""
    total = 0
    for path in bag.rglob("*"):
        info = path.lstat()
        if path.is_file() and info.st_nlink == 1:
            total += info.st_blocks * 512
    return total


def run_case(name: str, results: Path, scans: Path, sources: list, catalogue: dict, out: Path,
             processes: int) -> list[dict]:
    rows = []
    for link in ("auto", "copy", "copy (unchanged, 2nd run)"):
        mode = link.split()[0]
        if not link.endswith("run)"):
            shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        [bag] = package(results, scans, results / "manifest.csv", sources, out,
                        PackageOptions(link=mode, processes=processes), catalogue)
        seconds = time.perf_counter() - start
        rows.append({"case": name, "link": link, "seconds": round(seconds, 2), "built": bag.built,
                     "files": bag.files, "payload_mb": round(bag.bytes / 1e6, 1),
                     "master_links": bag.links if bag.links >= 0 else "",
                     "added_disk_mb": round(added_disk_bytes(bag.path) / 1e6, 1)})
        print(f"{name:10s} {link:26s} {seconds:8.2f} s  {bag.files:6d} files  {bag.bytes / 1e6:8.1f} MB payload  "
              f"{rows[-1]['added_disk_mb']:8.1f} MB added", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--kb", type=int, default=100, help="size of each synthetic payload file")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--demo-work", type=Path, default=None, help="working folder of a finished demo run")
    parser.add_argument("--demo-input", type=Path, default=ROOT / "demo")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:  # inside the repo: same file system as the inputs
        tmp = Path(tmp)
        if args.demo_work:
            scans = args.demo_input
            catalogue, _ = read_metadata_csv(scans / "metadata.csv")
            sources = discover_sources(scans, skip=(scans / "metadata.csv",),
                                       ignore=("README*", "*.md", "*.py", "Thumbs.db", "desktop.ini"))
            rows += run_case("demo", args.demo_work / "results", scans, sources, catalogue, tmp / "demo_pkg",
                             args.processes)
        start = time.perf_counter()
        tree = make_tree(tmp / "synthetic", n=args.n, size=args.kb * 1000, with_zip=True)
        print(f"(synthesised a results tree of {args.n} photos in {time.perf_counter() - start:.1f} s)")
        rows += run_case(f"synth{args.n}", tree["results"], tree["scans"], tree["sources"], {},
                         tmp / "synth_pkg", args.processes)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bench_package.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print("\n| case | link | seconds | files | payload MB | master links | added disk MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['link']} | {r['seconds']} | {r['files']} | {r['payload_mb']} | "
              f"{r['master_links']} | {r['added_disk_mb']} |")
    print(f"wrote {out / 'bench_package.csv'}")


if __name__ == "__main__":
    main()
