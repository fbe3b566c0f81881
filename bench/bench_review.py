"""Review app speed: page load and list API for 1,000 and 10,000 photos (fake manifest rows).

A fake results/ tree is written (manifest.csv, dedup.tsv, a thumbnail file per photo, small stamp/restore
images for the first page); the app serves it on 127.0.0.1 and headless Chromium (Playwright, the system
binary) loads the page: time until the list and the first photo are shown (``data-ready``), bytes
transferred, and the time to the next page of the list. The list API is also timed directly (cold: the
manifest is parsed; warm: cached).

Usage (from the repo root)::

    .venv/bin/python bench/bench_review.py [--rows 1000 10000] [--out bench/out/bench_review.csv]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from photoarchive.imageio import thumbnail_jpeg, write_image
from photoarchive.manifest import ManifestRow
from photoarchive.review import load_config, make_server
from photoarchive.stages import file_path

REASONS = ["face 0: identity distance 0.{n} from the scan > 0.50: the restored face may be someone else",
           "sharpness fell to 0.{n} of the scan's", "a person was detected but no face (0 faces): the face may be "
           "missed or unrestored"]


def fake_run(root: Path, rows: int) -> Path:
    results = root / "results"
    rng = np.random.default_rng(0)
    pixels = rng.random((600, 800, 3), dtype=np.float32)
    thumb = thumbnail_jpeg(pixels, 320)
    ids = [f"box__scan_{n:05d}.jpg-{n:08x}" for n in range(rows)]
    batch_of = {pid: f"b{n // 8:04d}" for n, pid in enumerate(ids)}
    for n, pid in enumerate(ids):
        folder = results / "thumbs" / batch_of[pid]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{pid}_after.jpg").write_bytes(thumb)
        (folder / f"{pid}_before.jpg").write_bytes(thumb)
        if n < 120:
            write_image(file_path(results, "stamp", pid), pixels)
            write_image(file_path(results, "restore", pid), pixels)
    with open(results / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ManifestRow.__dataclass_fields__))
        writer.writeheader()
        for n, pid in enumerate(ids):
            status = "review" if n % 4 == 0 else "processed"
            reason = REASONS[n % 3].format(n=10 + n % 89) if status == "review" else "all QA checks passed"
            writer.writerow(ManifestRow(photo_id=pid, source=f"box/scan_{n:05d}.jpg", status=status, reason=reason,
                                        faces="1", identity_distance=f"0.{10 + n % 89}",
                                        face_records=json.dumps([{"index": 0, "box": [100, 100, 300, 300],
                                                                  "score": 0.99}]),
                                        output=f"results/{status}/box/scan_{n:05d}_restored.jpg").__dict__)
    (results / "dedup").mkdir(parents=True, exist_ok=True)
    (results / "dedup" / "dedup.tsv").write_text(
        "photo_id\tstatus\tbatch\n" + "".join(f"{pid}\tunique\t{batch_of[pid]}\n" for pid in ids))
    return results


def measure(rows: int, chromium: str) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        results = fake_run(Path(tmp), rows)
        (Path(tmp) / "scans").mkdir()
        server = make_server(results, Path(tmp) / "scans", port=0, reviewer="bench", show_all=False,
                             config=load_config(None))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        out: dict = {"rows": rows}
        started = time.perf_counter()
        body = urllib.request.urlopen(f"{base}/api/photos?limit=100").read()
        out["api_cold_ms"] = round(1000 * (time.perf_counter() - started), 1)
        timings = []
        for _ in range(10):
            started = time.perf_counter()
            urllib.request.urlopen(f"{base}/api/photos?status=all&sort=score&order=desc&offset=500&limit=100").read()
            timings.append(time.perf_counter() - started)
        out["api_warm_sorted_ms"] = round(1000 * sorted(timings)[len(timings) // 2], 1)
        out["api_page_kb"] = round(len(body) / 1024, 1)
        server.data._manifest = None  # the browser's first load parses the manifest again (cold)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)  # waits evaluate JS
            for label in ("cold", "warm"):
                started = time.perf_counter()
                page.goto(base + "/")
                page.wait_for_selector("body[data-ready='1']", timeout=60_000)
                out[f"page_{label}_ms"] = round(1000 * (time.perf_counter() - started), 1)
            transferred = page.evaluate(
                "performance.getEntriesByType('resource').reduce((s, e) => s + e.encodedBodySize, 0)"
                " + performance.getEntriesByType('navigation')[0].encodedBodySize")
            out["page_kb_incl_visible_images"] = round(transferred / 1024, 1)
            out["page_html_js_css_kb"] = round(sum(p.stat().st_size for p in
                                                   (Path(__file__).parents[1] / "photoarchive/data/review").iterdir())
                                               / 1024, 1)
            started = time.perf_counter()
            first = page.evaluate("document.body.dataset.photo")
            page.click("#nextpage")
            page.wait_for_function(f"document.body.dataset.photo !== '{first}'")
            out["next_page_ms"] = round(1000 * (time.perf_counter() - started), 1)
            browser.close()
        server.shutdown()
        server.server_close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=Path("bench/out/bench_review.csv"))
    args = parser.parse_args()
    table = [measure(n, args.chromium) for n in args.rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    for row in table:
        print(", ".join(f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
