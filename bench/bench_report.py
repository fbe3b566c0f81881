"""Report benchmark: thumbnails, report.html and its page weight and load time in headless Chromium.

For each size (default 1,000 and 10,000 photos) a results tree is *synthesised* by tests/report_tree.py
(manifest, smooth 480×360 stamped/restored images, published files of a few bytes, QA verdicts: not made
by running the pipeline), then:

- thumbnails: `write_thumbnails` per batch (the thumbnails rule's function), time per photo on the
  tree's 480×360 images; with ``--demo-work`` (a finished demo run's work dir) also per photo on the
  demo's real stamped and restored images, and their average thumbnail size;
- report: `write_report` (the report rule's function), wall time;
- page weight: report.html, the row file of the first page, and the thumbnails the first page shows
  (at the demo's average thumbnail size when ``--demo-work`` is given, else the tree's);
- browser: headless Chromium (Debian's, driven by Playwright) opens report.html from the file system;
  load time = navigation start to the first page's rows drawn (``performance.now()`` in the page,
  median of 3, after a warm-up), DOMContentLoaded and load events (the load event waits for the
  thumbnails in view), then the time from a filter change (review photos) and a sort change (by
  size) to the rows drawn, and the bytes the first view loaded.

Prints a table and writes bench/out/bench_report.csv. Usage (from the repo root)::

    .venv/bin/python bench/bench_report.py [--sizes 1000 10000] [--demo-work /path/to/finished/run]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photoarchive.report import thumbnail_bytes, write_report, write_thumbnails  # noqa: E402
from photoarchive.stages import file_path  # noqa: E402
from tests.report_tree import make_report_tree  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def demo_thumbnails(work: Path, long_side: int = 320) -> tuple[float, float]:
    """(seconds per photo for both thumbnails, average thumbnail bytes) on a finished demo run."""
    results = work / "results"
    photos = sorted(p.stem for p in (results / "restore").glob("*.json"))  # the restore records
    pairs = [(file_path(results, "stamp", pid), file_path(results, "restore", pid)) for pid in photos]
    pairs = [(stamp, restore) for stamp, restore in pairs if stamp.exists() and restore.exists()]
    if not pairs:
        raise SystemExit(f"no restored photos under {work}/results/restore")
    sizes, start = [], time.perf_counter()
    for stamp, restore in pairs:
        sizes += [len(thumbnail_bytes(stamp, long_side)[0]), len(thumbnail_bytes(restore, long_side)[0])]
    return (time.perf_counter() - start) / len(pairs), statistics.mean(sizes)


def browser_measure(html: Path) -> dict:
    from playwright.sync_api import sync_playwright

    loaded: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        blank = html.with_name("blank.html")
        blank.write_text('<!doctype html><html lang="en"><title>blank</title><p id="x">x</p></html>')
        page.goto(blank.as_uri())  # warm up the renderer
        loads = []
        for _ in range(3):
            page.goto(html.as_uri() + "#")
            page.wait_for_selector("#rows[data-shown]")
            loads.append(page.evaluate("window.REPORT_DRAWN_MS"))
            page.goto(blank.as_uri())
        page.on("request", lambda request: loaded.append(request.url))
        page.goto(html.as_uri())
        page.wait_for_selector("#rows[data-shown]")
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # lazy thumbnails near the view
        dcl_load = page.evaluate("(n => [n.domContentLoadedEventEnd, n.loadEventEnd])"
                                 "(performance.getEntriesByType('navigation')[0])")
        first_view = list(loaded)
        timings = {}
        for name, select, value in (("filter_review_ms", "#f-status", "r"), ("sort_by_size_ms", "#sort", "size")):
            start = page.evaluate(f"""() => {{ const s = document.querySelector('{select}');
                document.getElementById('rows').removeAttribute('data-shown');
                const t = performance.now(); s.value = '{value}';
                s.dispatchEvent(new Event('change')); return t; }}""")
            page.wait_for_selector("#rows[data-shown]")
            timings[name] = page.evaluate("window.REPORT_DRAWN_MS") - start
        browser.close()
    files = [Path(unquote(urlparse(u).path)) for u in first_view if u.startswith("file:")]
    images = [f for f in files if f.suffix == ".jpg"]
    return {"rows_drawn_ms": statistics.median(loads), "dom_content_loaded_ms": dcl_load[0],
            "load_event_ms": dcl_load[1], **timings,
            "first_view_files": len(files), "first_view_images": len(images),
            "first_view_bytes": sum(f.stat().st_size for f in files if f.exists()),
            "first_view_bytes_without_images": sum(f.stat().st_size for f in files
                                                   if f.exists() and f.suffix != ".jpg")}


def bench_size(n: int, demo_thumb_bytes: float | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="photoarchive-report-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        results, manifest, batches = make_report_tree(work, n, image_px=(480, 360))
        tree_s = time.perf_counter() - start
        start = time.perf_counter()
        dirs = []
        for batch, pairs in batches.items():
            write_thumbnails(pairs, results / "thumbs" / batch, 320, 85)
            dirs.append(results / "thumbs" / batch)
        thumbs_s = time.perf_counter() - start
        photos = sum(len(p) for p in batches.values())
        start = time.perf_counter()
        summary = write_report(manifest, results, results / "report.html", dirs)
        report_s = time.perf_counter() - start
        html = results / "report.html"
        first_chunk = (results / "report-data" / "rows-0000.js").stat().st_size
        data_bytes = sum(p.stat().st_size for p in (results / "report-data").glob("rows-*.js"))
        row = {"photos": n, "tree_s": round(tree_s, 1),
               "thumbnail_ms_per_photo_480px": round(thumbs_s / photos * 1000, 2),
               "report_s": round(report_s, 2), "html_bytes": html.stat().st_size,
               "first_page_rows_bytes": first_chunk, "all_rows_bytes": data_bytes, "row_files": summary["chunks"]}
        if demo_thumb_bytes:
            row["first_page_thumbs_bytes_at_demo_size"] = round(2 * 50 * demo_thumb_bytes)
        try:
            measured = browser_measure(html)
            row.update({k: round(v, 1) if isinstance(v, float) else v for k, v in measured.items()})
        except Exception as exc:  # noqa: BLE001 - no browser: the other numbers still count
            print(f"browser not measured: {exc}", file=sys.stderr)
        return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--demo-work", type=Path, help="a finished demo run's work dir (holding results/)")
    args = ap.parse_args()
    demo_s = demo_bytes = None
    if args.demo_work:
        demo_s, demo_bytes = demo_thumbnails(args.demo_work)
        print(f"demo: thumbnails {demo_s * 1000:.0f} ms per photo (before + after), "
              f"{demo_bytes / 1024:.1f} KB per thumbnail on average")
    rows = [bench_size(n, demo_bytes) for n in args.sizes]
    for row in rows:
        if demo_s is not None:
            row["thumbnail_ms_per_photo_demo"] = round(demo_s * 1000, 1)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")
    out = ROOT / "bench" / "out" / "bench_report.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
